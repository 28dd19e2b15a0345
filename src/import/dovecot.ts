// `arcline import dovecot` (issue #13): a user's Dovecot Maildir into the account of an arcline
// user, keeping what a synced IMAP client relies on, so it resynchronises nothing:
//   - each mailbox's UIDVALIDITY and UIDNEXT and each message's UID (dovecot-uidlist); files the
//     list does not name (delivered after Dovecot last looked) get UIDs from its UIDNEXT up, in
//     delivery order
//   - flags from the file names' ":2," info, keywords through the mailbox's dovecot-keywords
//   - internal dates: the files' mtimes (Dovecot's INTERNALDATE for Maildir)
//   - the folder tree: Maildir++ (".Parent.Child" directories, Dovecot's default) or LAYOUT=fs
//     ("Parent/Child" directories), names in modified UTF-7 (or UTF-8, mailbox_list_utf8)
//   - subscriptions (the `subscriptions` file)
// The source tree is only read: message files are copied (with CRLF line endings, as arcline
// stores every message). Nothing outside it is read: directories are walked with lstat (a
// symbolic link is skipped, never followed), files are opened with O_NOFOLLOW, and every name
// comes from readdir (one path component, never "/" or ".."); the store validates the mailbox
// names again. What the store does with a running server: store/maildir/import.ts.

import { constants as fsc } from 'node:fs';
import { lstat, open, readdir, realpath } from 'node:fs/promises';
import { join, relative } from 'node:path';
import { Readable } from 'node:stream';
import { ArclineError, errorMessage } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { ImportedMailbox, ImportedMessage, ImportOptions } from '../store/import.ts';
import { lettersToFlags, parseKeywords } from '../store/maildir/flags.ts';
import { compareNames } from '../store/maildir/naming.ts';
import {
  decodeStoredName,
  fileBase,
  parseSubscriptions,
  parseUidlist,
  SUBSCRIPTIONS_MAX_BYTES,
  UIDLIST_MAX_BYTES,
  type Uidlist,
} from './dovecot-files.ts';

export type DovecotLayout = 'maildir++' | 'fs';

export interface Skipped {
  readonly what: string;
  readonly why: string;
}

export interface PlannedMailbox extends ImportedMailbox {
  /** Messages the uidlist did not name, given UIDs from its UIDNEXT up. */
  readonly newUids: number;
  /** No usable dovecot-uidlist: UIDVALIDITY and UIDs are new (clients resync this mailbox). */
  readonly freshIdentity: boolean;
}

export interface DovecotTree {
  readonly mailboxes: PlannedMailbox[];
  /** Subscribed names (arcline form: "." separator, UTF-8). */
  readonly subscriptions: readonly string[];
  readonly skipped: Skipped[];
}

/** At most this many messages per mailbox are read. */
const MAX_MESSAGES = 10_000_000;

async function kind(path: string): Promise<'dir' | 'file' | 'link' | 'other' | null> {
  try {
    const st = await lstat(path);
    return st.isDirectory() ? 'dir' : st.isFile() ? 'file' : st.isSymbolicLink() ? 'link' : 'other';
  } catch {
    return null;
  }
}

/** A small regular file of the tree (not a link), or null when there is none. */
async function readSmall(path: string, max: number): Promise<string | null> {
  const st = await lstat(path).catch(() => null);
  if (!st) return null;
  if (!st.isFile()) throw new Error('not a regular file');
  if (st.size > max) throw new Error(`larger than ${max} bytes`);
  const fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
  try {
    return await fh.readFile('utf8');
  } finally {
    await fh.close();
  }
}

/** A message file's bytes; opened with O_NOFOLLOW (a file swapped for a link meanwhile fails). */
function readNoFollow(path: string): Readable {
  return Readable.from(
    (async function* () {
      const fh = await open(path, fsc.O_RDONLY | fsc.O_NOFOLLOW);
      try {
        yield* fh.createReadStream({ autoClose: false, highWaterMark: 256 * 1024 });
      } finally {
        await fh.close();
      }
    })(),
  );
}

/** The mailbox directories of the tree: [IMAP name, directory]. */
async function findMailboxes(root: string, layout: DovecotLayout, skipped: Skipped[]): Promise<[string, string][]> {
  const out: [string, string][] = [['INBOX', '']];
  const depthLimit = LIMITS.mailboxes.maxDepth;
  const walk = async (dir: string, prefix: string[]) => {
    for (const entry of (await readdir(dir)).sort()) {
      const path = join(dir, entry);
      if (layout === 'maildir++') {
        if (!entry.startsWith('.')) continue;
      } else if (['new', 'cur', 'tmp'].includes(entry) || entry.startsWith('.')) {
        continue;
      }
      const k = await kind(path);
      if (k !== 'dir') {
        if (k === 'link') skipped.push({ what: path, why: 'a symbolic link (not followed)' });
        continue;
      }
      const stored = layout === 'maildir++' ? entry.slice(1).split('.') : [entry];
      const parts = stored.map((p) => (p === '' ? null : decodeStoredName(p)));
      if (parts.some((p) => p === null || p.includes('.'))) {
        skipped.push({
          what: path,
          why: 'not a folder name arcline can store (bad modified UTF-7, or "." in a level)',
        });
        continue;
      }
      const levels = [...prefix, ...(parts as string[])];
      const name = levels.join('.');
      if (name.toUpperCase() === 'INBOX') {
        skipped.push({ what: path, why: 'a folder named INBOX besides the INBOX' });
        continue;
      }
      if ((await kind(join(path, 'cur'))) === 'dir') out.push([name, relative(root, path)]);
      else if (layout === 'maildir++') skipped.push({ what: path, why: 'no cur/ directory: not a Maildir' });
      if (layout === 'fs' && levels.length < depthLimit) await walk(path, levels);
    }
  };
  await walk(root, []);
  return out;
}

/** Reads one mailbox directory: its uidlist, keywords and message files. */
async function readMailbox(
  name: string,
  dir: string,
  control: string,
  subscribed: boolean,
  skipped: Skipped[],
): Promise<PlannedMailbox> {
  let uidlist: Uidlist | null = null;
  try {
    const text = await readSmall(join(control, 'dovecot-uidlist'), UIDLIST_MAX_BYTES);
    if (text !== null) uidlist = parseUidlist(text);
    else skipped.push({ what: `${name}: dovecot-uidlist`, why: 'missing: new UIDVALIDITY and UIDs for this mailbox' });
  } catch (e) {
    skipped.push({ what: `${name}: dovecot-uidlist`, why: `${errorMessage(e)}: new UIDVALIDITY and UIDs` });
  }
  for (const p of uidlist?.problems ?? []) skipped.push({ what: `${name}: dovecot-uidlist`, why: p });
  let keywords: string[] = [];
  try {
    keywords = parseKeywords((await readSmall(join(control, 'dovecot-keywords'), 64 * 1024)) ?? '');
  } catch (e) {
    skipped.push({ what: `${name}: dovecot-keywords`, why: `${errorMessage(e)}: keywords dropped` });
  }
  const listed: { uid: number; msg: Omit<ImportedMessage, 'uid'> }[] = [];
  const unlisted: Omit<ImportedMessage, 'uid'>[] = [];
  const seen = new Set<string>();
  for (const sub of ['cur', 'new'] as const) {
    const subdir = join(dir, sub);
    if ((await kind(subdir)) !== 'dir') continue;
    for (const file of await readdir(subdir)) {
      if (file.startsWith('.')) continue;
      const path = join(subdir, file);
      const st = await lstat(path).catch(() => null);
      if (!st?.isFile()) {
        skipped.push({
          what: path,
          why: st?.isSymbolicLink() ? 'a symbolic link (not followed)' : 'not a regular file',
        });
        continue;
      }
      const base = fileBase(file);
      if (seen.has(base)) {
        skipped.push({ what: path, why: 'another file has the same unique name' });
        continue;
      }
      if (seen.size >= MAX_MESSAGES) throw new ArclineError('LIMIT', `${name}: more than ${MAX_MESSAGES} messages`);
      seen.add(base);
      const info = file.indexOf(':2,');
      const letters = sub === 'cur' && info >= 0 ? file.slice(info + 3) : '';
      const msg = {
        flags: lettersToFlags(letters, keywords),
        internalDate: Math.floor(st.mtimeMs),
        unseenByReaders: sub === 'new',
        name: base,
        open: () => readNoFollow(path),
      };
      const uid = uidlist?.uids.get(base);
      if (uid !== undefined && uid < (uidlist?.uidNext ?? 0)) listed.push({ uid, msg });
      else unlisted.push(msg);
    }
  }
  listed.sort((a, b) => a.uid - b.uid);
  unlisted.sort((a, b) => compareNames(a.name, b.name));
  let uidNext = uidlist?.uidNext ?? 1;
  const messages: ImportedMessage[] = listed.map((l) => ({ ...l.msg, uid: l.uid }));
  for (const m of unlisted) messages.push({ ...m, uid: uidNext++ });
  return {
    name,
    uidValidity: uidlist?.uidValidity ?? Math.floor(Date.now() / 1000),
    uidNext,
    subscribed,
    keywords,
    messages,
    newUids: unlisted.length,
    freshIdentity: uidlist === null,
  };
}

/** Reads a Dovecot Maildir tree (nothing is written). A directory that cannot be read (the
 *  tree belongs to Dovecot's mail user, the CLI runs as arcline's) fails the whole reading. */
export async function readDovecotTree(dir: string, layout: DovecotLayout, control?: string): Promise<DovecotTree> {
  try {
    return await readTree(dir, layout, control);
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === 'EACCES' || err.code === 'EPERM') {
      throw new ArclineError(
        'INVALID',
        `${err.path ?? dir}: permission denied: the tree must be readable by the user arcline runs as (docs/migrating-from-dovecot.md)`,
      );
    }
    throw e;
  }
}

async function readTree(dir: string, layout: DovecotLayout, control: string | undefined): Promise<DovecotTree> {
  let root: string;
  try {
    root = await realpath(dir);
  } catch (e) {
    throw new ArclineError('NOT_FOUND', `${dir}: ${errorMessage(e)}`);
  }
  if ((await kind(join(root, 'cur'))) !== 'dir') throw new ArclineError('INVALID', `${dir} is not a Maildir (no cur/)`);
  // mail_location's CONTROL=: dovecot-uidlist, dovecot-keywords and subscriptions live in a
  // tree of their own, folder by folder as the mail.
  let controlRoot = root;
  if (control !== undefined) {
    controlRoot = await realpath(control).catch((e) => {
      throw new ArclineError('NOT_FOUND', `${control}: ${errorMessage(e)}`);
    });
  }
  const skipped: Skipped[] = [];
  let subscriptions: string[] = [];
  try {
    const text = await readSmall(join(controlRoot, 'subscriptions'), SUBSCRIPTIONS_MAX_BYTES);
    if (text === null) skipped.push({ what: 'subscriptions', why: 'no subscriptions file: nothing is subscribed' });
    else {
      const s = parseSubscriptions(text, layout === 'fs' ? '/' : '.');
      subscriptions = [...s.names];
      for (const p of s.problems) skipped.push({ what: 'subscriptions', why: p });
    }
  } catch (e) {
    skipped.push({ what: 'subscriptions', why: errorMessage(e) });
  }
  const subscribed = new Set(subscriptions);
  const mailboxes: PlannedMailbox[] = [];
  for (const [name, rel] of await findMailboxes(root, layout, skipped)) {
    mailboxes.push(await readMailbox(name, join(root, rel), join(controlRoot, rel), subscribed.has(name), skipped));
  }
  return { mailboxes, subscriptions, skipped };
}

export interface ImportSink {
  importMailbox(account: AccountId, m: ImportedMailbox, opts: ImportOptions): Promise<{ messages: number }>;
  setSubscribed(account: AccountId, name: string, on: boolean): Promise<void>;
}

export interface ImportReport {
  readonly imported: PlannedMailbox[];
  readonly subscribed: string[];
  readonly skipped: Skipped[];
}

/** Imports a read tree into the account, mailbox by mailbox (each all or nothing). A mailbox
 *  the store refuses is reported and the others go on. */
export async function importDovecotTree(
  sink: ImportSink,
  account: AccountId,
  tree: DovecotTree,
  opts: ImportOptions & { dryRun?: boolean } = {},
): Promise<ImportReport> {
  const skipped = [...tree.skipped];
  const imported: PlannedMailbox[] = [];
  for (const m of tree.mailboxes) {
    try {
      if (!opts.dryRun) await sink.importMailbox(account, m, opts);
      imported.push(m);
    } catch (e) {
      const msg = errorMessage(e);
      skipped.push({
        what: m.name,
        why: `not imported: ${msg.startsWith(`${m.name}: `) ? msg.slice(m.name.length + 2) : msg}`,
      });
    }
  }
  // Subscriptions to names no imported mailbox has (RFC 9051 §6.3.7: they outlive mailboxes).
  const done = new Set(tree.mailboxes.map((m) => m.name));
  const subscribed: string[] = tree.subscriptions.filter((n) => done.has(n) && imported.some((m) => m.name === n));
  for (const name of tree.subscriptions) {
    if (done.has(name)) continue;
    try {
      if (!opts.dryRun) await sink.setSubscribed(account, name, true);
      subscribed.push(name);
    } catch (e) {
      skipped.push({ what: `subscription ${name}`, why: errorMessage(e) });
    }
  }
  return { imported, subscribed, skipped };
}
