// Importing a mailbox with its IMAP identity (store/import.ts) into the Maildir store: the
// mailbox gets the given UIDVALIDITY and UIDNEXT, each message its UID, flags and internal date.
//
// Durability (docs/architecture.md §4): every message file is written to tmp/ and fsynced, gets
// its internal date as mtime, and is renamed into cur/ (or new/); the directories are fsynced
// before the index commits the mailbox and its messages in one transaction.
//
// A server running meanwhile (docs/migrating-from-dovecot.md): the server finds mailboxes by
// their directories and loads a mailbox's index entry when a session opens it. So
// - a folder is built complete in a staging directory the server does not list
//   (`{account}/arcline-import.<pid>.<time>/`), committed to the index while its directory does
//   not exist yet (no session can open it), then renamed into place: a session sees either no
//   mailbox or the imported one;
// - INBOX (the account directory itself) gets its files first and its index entry after: a
//   session opening INBOX in between makes its own index entry, the commit then fails (the
//   entry is not the one the import saw) and the copied files are removed again: nothing is lost
//   or doubled, the import reports the mailbox as not imported;
// - a mailbox that already has message files is refused; one that arcline's index already knows
//   (a session opened it, so a server may hold it in memory) is refused unless `replaceEmpty`,
//   which replaces its index entry.

import { lstat, mkdir, readdir, rename, rm, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { CrlfNormalizer } from '../../core/crlf.ts';
import { ArclineError } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { encodeMutf7 as encodeName } from '../../core/mutf7.ts';
import type { ImportedMailbox, ImportedMessage, ImportOptions } from '../import.ts';
import type { MailIndexBackend } from '../index/backend.ts';
import type { MessageRow } from '../index/db.ts';
import { canonicalName } from '../names.ts';
import type { DirSyncer } from './dirsync.ts';
import { writeDurably } from './durable.ts';
import { flagsToLetters, writeKeywords } from './flags.ts';
import { accountDir, checkNewMailboxName, isInbox, mailboxDir } from './layout.ts';
import { withSize } from './naming.ts';
import { fileThreadHeaders } from './thread-headers.ts';

const MAX_UID = 0xffffffff;
/** Message files written at once. */
const PARALLEL = 8;
const MAX_BASE = 200;

export interface ImportTarget {
  readonly root: string;
  readonly index: MailIndexBackend;
  readonly syncer: DirSyncer;
}

export interface ImportResult {
  readonly messages: number;
  readonly bytes: number;
}

function invalid(name: string, why: string): ArclineError {
  return new ArclineError('INVALID', `${name}: ${why}`);
}

/** The directory of the mailbox, after the checks a CREATE makes of its name. */
function targetDir(acct: string, name: string): string {
  if (isInbox(name)) return acct;
  if (name.includes('/') || [...name].some((c) => (c.codePointAt(0) as number) < 0x20 || c === '\x7f')) {
    throw invalid(name, 'the name has "/" or control characters');
  }
  try {
    checkNewMailboxName(name);
    return mailboxDir(acct, encodeName(name));
  } catch (e) {
    throw invalid(name, (e as Error).message);
  }
}

/** A Maildir unique base from the old name: printable ASCII without "/" or ":", not starting
 *  with "."; its old S= and W= sizes are dropped (the size changes with CRLF line endings). */
function baseFrom(name: string, uid: number, taken: Set<string>): string {
  let base = name
    .split(',')
    .filter((p) => !p.startsWith('S=') && !p.startsWith('W='))
    .join(',');
  let ok = base.length > 0 && base.length <= MAX_BASE && !base.startsWith('.');
  for (let i = 0; ok && i < base.length; i++) {
    const c = base.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || c === 0x2f || c === 0x3a) ok = false;
  }
  if (!ok) base = `${Math.floor(Date.now() / 1000)}.arcline-import-${uid}`;
  while (taken.has(base)) base = `${base}-${uid}`;
  taken.add(base);
  return base;
}

function crlf(src: Readable): Readable {
  return Readable.from(
    (async function* () {
      const n = new CrlfNormalizer();
      for await (const chunk of src) yield n.push(chunk as Buffer);
      const tail = n.end();
      if (tail.length > 0) yield tail;
    })(),
  );
}

async function isEmptyMaildir(dir: string): Promise<boolean> {
  for (const sub of ['new', 'cur']) {
    const names = await readdir(join(dir, sub)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return [] as string[];
      throw e;
    });
    if (names.some((n) => !n.startsWith('.'))) return false;
  }
  return true;
}

async function exists(path: string): Promise<boolean> {
  return lstat(path).then(
    () => true,
    () => false,
  );
}

/** Writes the messages into `dir` (tmp/, then cur/ or new/), PARALLEL at a time; returns their
 *  index rows in UID order and the paths written (for clean-up). */
async function writeMessages(
  m: ImportedMailbox,
  dir: string,
  keywords: string[],
  written: string[],
): Promise<MessageRow[]> {
  const rows: MessageRow[] = new Array(m.messages.length);
  const taken = new Set<string>();
  const plans = m.messages.map((msg) => {
    const letters = flagsToLetters(msg.flags, keywords);
    if (letters === null) throw invalid(m.name, 'more than 26 keywords');
    return { msg, letters, base: baseFrom(msg.name, msg.uid, taken) };
  });
  let next = 0;
  const one = async (i: number) => {
    const { msg, letters, base } = plans[i] as { msg: ImportedMessage; letters: string; base: string };
    const tmp = join(dir, 'tmp', base);
    written.push(tmp);
    const size = await writeDurably(tmp, Buffer.alloc(0), {
      size: 0,
      open: () => crlf(msg.open()),
      dispose: async () => {},
    });
    const date = new Date(msg.internalDate);
    await utimes(tmp, date, date);
    const inNew = msg.unseenByReaders && letters === '';
    const sized = withSize(base, size);
    const final = inNew ? join(dir, 'new', sized) : join(dir, 'cur', `${sized}:2,${letters}`);
    await rename(tmp, final);
    written.push(final);
    // The threading fields now (the index commits before the folder is in place to read).
    const thread = await fileThreadHeaders(final);
    rows[i] = { uid: msg.uid, base: sized, inNew, letters, modseq: 1, size, internalDate: msg.internalDate, thread };
  };
  const worker = async () => {
    for (let i = next++; i < plans.length; i = next++) await one(i);
  };
  await Promise.all(Array.from({ length: Math.min(PARALLEL, plans.length) }, worker));
  return rows;
}

const STAGING = 'arcline-import.';

/** Removes staging directories an interrupted import left (its process is gone). */
async function removeStaleStaging(acct: string): Promise<void> {
  for (const name of await readdir(acct)) {
    if (!name.startsWith(STAGING)) continue;
    const pid = Number.parseInt(name.slice(STAGING.length), 10);
    if (pid === process.pid || (pid > 0 && alive(pid))) continue;
    await rm(join(acct, name), { recursive: true, force: true });
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** Imports one mailbox (see the head of this file); all or nothing. */
export async function importMailbox(
  t: ImportTarget,
  account: AccountId,
  m: ImportedMailbox,
  opts: ImportOptions = {},
): Promise<ImportResult> {
  const name = canonicalName(m.name);
  let acct: string;
  try {
    acct = accountDir(t.root, account);
  } catch (e) {
    throw new ArclineError('INVALID', (e as Error).message);
  }
  if (!(await exists(join(acct, 'cur')))) throw new ArclineError('NOT_FOUND', `no Maildir for account ${account}`);
  const target = targetDir(acct, name);
  await removeStaleStaging(acct);
  if (!Number.isInteger(m.uidValidity) || m.uidValidity < 1 || m.uidValidity > MAX_UID) {
    throw invalid(name, `UIDVALIDITY ${m.uidValidity} is out of range`);
  }
  let last = 0;
  for (const msg of m.messages) {
    if (!Number.isInteger(msg.uid) || msg.uid <= last) throw invalid(name, 'UIDs are not strictly increasing');
    last = msg.uid;
  }
  if (!Number.isInteger(m.uidNext) || m.uidNext <= last || m.uidNext > MAX_UID + 1) {
    throw invalid(name, `UIDNEXT ${m.uidNext} does not exceed every UID`);
  }
  if (!(await isEmptyMaildir(target))) throw new ArclineError('EXISTS', `${name}: the mailbox already has messages`);
  const known = await t.index.mailbox(account, name);
  if (known && !opts.replaceEmpty) {
    throw new ArclineError(
      'EXISTS',
      `${name}: arcline already has this mailbox (a client opened it, or an earlier import); if it is empty, stop the server and import again with --replace-empty`,
    );
  }
  const keywords = [...m.keywords];
  const written: string[] = [];
  const inbox = name === 'INBOX';
  const staging = inbox ? null : join(acct, `${STAGING}${process.pid}.${Date.now()}`);
  const dir = staging ? join(staging, 'mailbox') : acct;
  let committed: number | null = null;
  const old = staging ? join(staging, 'old') : '';
  let movedOld = false;
  try {
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
    if (!inbox) await writeFile(join(dir, 'maildirfolder'), '', { mode: 0o600, flag: 'a' });
    const rows = await writeMessages(m, dir, keywords, written);
    if (keywords.length > 0) await writeKeywords(dir, keywords);
    // The last UIDVALIDITY beside the files, as MaildirAccounts keeps it (survives a lost index).
    await writeFile(join(dir, 'arcline-uidvalidity'), `${m.uidValidity}\n`, { mode: 0o600 });
    for (const sub of ['tmp', 'new', 'cur', '.']) await t.syncer.sync(join(dir, sub));
    const row = await t.index.importMailbox(
      account,
      name,
      { uidvalidity: m.uidValidity, uidnext: m.uidNext, subscribed: m.subscribed, expect: known?.id ?? null },
      rows,
    );
    committed = row.id;
    if (staging) {
      // An empty folder already there (arcline's default Sent, Drafts ...): moved aside, then
      // checked again, since a delivery may have reached it meanwhile.
      if (await exists(target)) {
        await rename(target, old);
        movedOld = true;
        if (!(await isEmptyMaildir(old))) {
          throw new ArclineError('EXISTS', `${name}: a message arrived in the mailbox during the import`);
        }
      }
      await rename(dir, target);
      movedOld = false;
      await t.syncer.sync(acct);
      await rm(staging, { recursive: true, force: true });
    }
    return { messages: rows.length, bytes: rows.reduce((n, r) => n + r.size, 0) };
  } catch (e) {
    if (committed !== null) await t.index.deleteMailbox(committed).catch(() => {});
    if (movedOld) await rename(old, target).catch(() => {}); // the folder that was there comes back
    if (staging) await rm(staging, { recursive: true, force: true }).catch(() => {});
    else await Promise.all(written.map((p) => rm(p, { force: true }).catch(() => {})));
    if (e instanceof ArclineError) throw e;
    throw new ArclineError('TEMPORARY', `${name}: ${(e as Error).message}`, { cause: e });
  }
}
