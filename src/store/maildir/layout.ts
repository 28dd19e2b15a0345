// Where things live on disk (Maildir, cr.yp.to/proto/maildir.html, with Maildir++ folders as
// Courier/Dovecot lay them out):
//   {root}/{domain}/{local}/            the account; also INBOX (tmp/ new/ cur/)
//   {root}/{domain}/{local}/.Sent/      folder "Sent" (+ an empty `maildirfolder` marker)
//   {root}/{domain}/{local}/.A.B/       folder "A.B": "." is the hierarchy separator
// Pure functions. Every name that reaches the disk is validated here, whatever the caller
// already checked (defence in depth): no "/", NUL, control characters, empty components,
// "." or ".." components, and the resolved path must stay under the account directory.

import { join, resolve, sep } from 'node:path';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import { encodeMutf7 } from '../../core/mutf7.ts';
import { canonicalName } from '../names.ts';

export const DEFAULT_FOLDERS = ['Sent', 'Drafts', 'Trash', 'Junk'] as const;

export class LayoutError extends Error {}

/** A name that is valid but over a size limit (IMAP answers NO [LIMIT], RFC 5530). */
export class NameLimitError extends LayoutError {}

// biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
const BAD_CHARS = /[/\\\x00-\x1f\x7f]/;

/** Splits and validates an AccountId (`local@domain`); returns the account directory. */
export function accountDir(root: string, id: AccountId): string {
  const at = id.lastIndexOf('@');
  const local = id.slice(0, at);
  const domain = id.slice(at + 1);
  if (at <= 0 || BAD_CHARS.test(local) || local.startsWith('.')) {
    throw new LayoutError(`invalid account local part: ${JSON.stringify(local)}`);
  }
  if (!/^[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$/.test(domain)) {
    throw new LayoutError(`invalid account domain: ${JSON.stringify(domain)}`);
  }
  const base = resolve(root);
  const dir = resolve(base, domain, local);
  if (!dir.startsWith(base + sep)) throw new LayoutError('account path escapes the Maildir root');
  return dir;
}

/** True for INBOX in any case (RFC 3501 §5.1: INBOX is case-insensitive). */
export function isInbox(mailbox: string): boolean {
  return mailbox.toUpperCase() === 'INBOX';
}

/** Directory of a mailbox inside an account: INBOX is the account dir, "A.B" is ".A.B". */
export function mailboxDir(account: string, mailbox: string): string {
  if (isInbox(mailbox)) return account;
  if (mailbox === '' || BAD_CHARS.test(mailbox))
    throw new LayoutError(`invalid mailbox name: ${JSON.stringify(mailbox.slice(0, 64))}`);
  // One directory entry ".<name>" of at most NAME_MAX (255) octets.
  if (Buffer.byteLength(mailbox) > LIMITS.mailboxes.maxEncodedNameBytes) {
    throw new NameLimitError(`mailbox name too long (over ${LIMITS.mailboxes.maxEncodedNameBytes} octets on disk)`);
  }
  const parts = mailbox.split('.');
  if (parts.some((p) => p === '' || p === '..'))
    throw new LayoutError(`invalid mailbox name: ${JSON.stringify(mailbox.slice(0, 64))}`);
  const dir = join(account, `.${mailbox}`);
  if (!dir.startsWith(account + sep)) throw new LayoutError('mailbox path escapes the account');
  return dir;
}

/** Directory of the mailbox an IMAP (Unicode) name stands for, as IMAP, delivery and Sieve
 *  see it: INBOX in any case is the account directory (and "inbox.x" is "INBOX.x"), a folder is
 *  ".<modified UTF-7 name>" (RFC 3501 §5.1.3; Dovecot's Maildir++ layout). LayoutError for a name that cannot be stored
 *  ("/", control characters, empty or ".." components, over the length limit). */
export function folderDir(account: string, name: string): string {
  if (name.includes('/')) throw new LayoutError('Mailbox names may not contain "/"');
  if ([...name].some((c) => (c.codePointAt(0) as number) < 0x20 || c === '\x7f')) {
    throw new LayoutError('Mailbox names may not contain control characters');
  }
  return isInbox(name) ? account : mailboxDir(account, encodeMutf7(canonicalName(name)));
}

/** Checks a name about to be created (CREATE, RENAME target): at most LIMITS.mailboxes.maxDepth
 *  hierarchy levels. Length and characters are checked by mailboxDir. */
export function checkNewMailboxName(mailbox: string): void {
  let depth = 1;
  for (let i = mailbox.indexOf('.'); i >= 0; i = mailbox.indexOf('.', i + 1)) depth++;
  if (depth > LIMITS.mailboxes.maxDepth) {
    throw new NameLimitError(`mailbox name too deep (over ${LIMITS.mailboxes.maxDepth} levels)`);
  }
}
