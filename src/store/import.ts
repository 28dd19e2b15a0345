// Mail brought in from another server with its IMAP identity kept (issue #13, `arcline import
// dovecot`): a mailbox with the UIDVALIDITY and UIDNEXT it had there and every message with its
// UID, flags and internal date, so a client that was in sync with the old server stays in sync.
// The store implements it (store/maildir/import.ts); the reader of the other server's files
// (import/dovecot.ts) knows nothing of how arcline stores mail.

import type { Readable } from 'node:stream';
import type { MailboxStatus } from './mailboxes.ts';

export interface ImportedMessage {
  readonly uid: number;
  /** IMAP flags and keywords (no \Recent). */
  readonly flags: readonly string[];
  /** Milliseconds since the epoch. */
  readonly internalDate: number;
  /** No mail reader has seen it yet (a Maildir new/ file): \Recent for the first session. */
  readonly unseenByReaders: boolean;
  /** A name for the file that keeps the old one's delivery order (a Maildir unique name). */
  readonly name: string;
  /** The message bytes, any line endings (stored with CRLF, as every other message). */
  open(): Readable;
}

/** A mailbox as the other server had it; `keywords` in the order of its per-mailbox table
 *  (kept, so the Maildir letters stay the same). */
export interface ImportedMailbox extends Pick<MailboxStatus, 'uidValidity' | 'uidNext' | 'keywords'> {
  /** IMAP name, "." as hierarchy separator. */
  readonly name: string;
  readonly subscribed: boolean;
  /** In UID order, UIDs below uidNext. */
  readonly messages: readonly ImportedMessage[];
}

export interface ImportOptions {
  /** Replace the index entry of an empty mailbox arcline has already opened. Only safe when no
   *  running server has the mailbox loaded (the server is stopped, or the user never logged in
   *  since the mailbox was opened by a command): see docs/migrating-from-dovecot.md. */
  readonly replaceEmpty?: boolean;
}
