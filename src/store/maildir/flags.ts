// Message flags in Maildir file names (cr.yp.to/proto/maildir.html "info semantics"), as Dovecot
// and mutt read them: `<base>:2,<letters>`, letters sorted in ASCII order.
//   D \Draft   F \Flagged   P (passed: "$Forwarded")   R \Answered   S \Seen   T \Deleted
// Keywords take the letters a-z, mapped per mailbox in Dovecot's `dovecot-keywords` file
// ("<index> <keyword>" lines; index 0 is "a"). At most 26 keywords per mailbox can live in file
// names; more are refused (Dovecot behaves the same). \Recent is never stored: it is a
// per-session property (RFC 3501 §2.3.2).

export const SYSTEM_LETTERS: Readonly<Record<string, string>> = {
  '\\Draft': 'D',
  '\\Flagged': 'F',
  $Forwarded: 'P',
  '\\Answered': 'R',
  '\\Seen': 'S',
  '\\Deleted': 'T',
};

import { type FileHandle, open, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArclineError } from '../../core/errors.ts';
import { LIMITS } from '../../core/limits.ts';
import { canonicalSystemFlag } from '../names.ts';

const LETTER_TO_SYSTEM = Object.fromEntries(Object.entries(SYSTEM_LETTERS).map(([f, l]) => [l, f]));

export const MAX_KEYWORDS = 26;

/** Splits a Maildir file name into its unique base and its flag letters. */
export function splitName(name: string): { base: string; letters: string } {
  const i = name.indexOf(':2,');
  return i < 0 ? { base: name, letters: '' } : { base: name.slice(0, i), letters: name.slice(i + 3) };
}

/** Flag letters -> IMAP flags, using the mailbox's keyword table. Unknown letters are ignored. */
export function lettersToFlags(letters: string, keywords: readonly string[]): string[] {
  const out: string[] = [];
  for (const l of letters) {
    const sys = LETTER_TO_SYSTEM[l];
    if (sys) out.push(sys);
    else if (l >= 'a' && l <= 'z') {
      const kw = keywords[l.charCodeAt(0) - 97];
      if (kw) out.push(kw);
    }
  }
  return out;
}

/** A message's flags after STORE FLAGS / +FLAGS / -FLAGS (RFC 9051 §6.4.6). */
export function applyFlags(current: readonly string[], mode: 'set' | 'add' | 'remove', flags: readonly string[]) {
  if (mode === 'set') return [...new Set(flags)];
  if (mode === 'add') return [...new Set([...current, ...flags])];
  return current.filter((f) => !flags.includes(f));
}

/** IMAP flags -> sorted letters. Keywords missing from `keywords` are appended to it (the
 *  caller persists the table); returns null when the table is full. */
export function flagsToLetters(flags: readonly string[], keywords: string[]): string | null {
  const letters = new Set<string>();
  for (const f of flags) {
    const sys = SYSTEM_LETTERS[f] ?? SYSTEM_LETTERS[canonicalSystemFlag(f) ?? ''];
    if (sys) {
      letters.add(sys);
      continue;
    }
    if (f.startsWith('\\')) continue; // \Recent and unknown system flags are not stored
    let idx = keywords.findIndex((k) => k.toLowerCase() === f.toLowerCase());
    if (idx < 0) {
      if (keywords.length >= MAX_KEYWORDS) return null;
      keywords.push(f);
      idx = keywords.length - 1;
    }
    letters.add(String.fromCharCode(97 + idx));
  }
  return [...letters].sort().join('');
}

/** Parses a dovecot-keywords file. */
export function parseKeywords(text: string): string[] {
  const out: string[] = [];
  for (const line of text.split('\n')) {
    const m = /^(\d+) (\S+)$/.exec(line.trim());
    if (m && Number(m[1]) < MAX_KEYWORDS) out[Number(m[1])] = m[2] as string;
  }
  return Array.from(out, (k) => k ?? '');
}

export function formatKeywords(keywords: readonly string[]): string {
  return keywords.map((k, i) => `${i} ${k}\n`).join('');
}

/** The keyword table of the Maildir in `dir` (none when it has no dovecot-keywords file). */
export async function readKeywords(dir: string): Promise<string[]> {
  try {
    return parseKeywords(await readFile(join(dir, 'dovecot-keywords'), 'utf8'));
  } catch {
    return [];
  }
}

/** What identifies a version of the keyword table on disk (inode, mtime, size): a mailbox
 *  re-reads its table when another writer (a delivery, another thread or program) replaced it. */
export async function keywordsStamp(dir: string): Promise<string> {
  try {
    const st = await stat(join(dir, 'dovecot-keywords'));
    return `${st.ino}:${st.mtimeMs}:${st.size}`;
  } catch {
    return 'none';
  }
}

/** Whether a flag takes a keyword letter (a-z) rather than a system letter. */
function isKeywordFlag(f: string): boolean {
  return !f.startsWith('\\') && SYSTEM_LETTERS[canonicalSystemFlag(f) ?? ''] === undefined;
}

const has = (table: readonly string[], k: string) => table.some((t) => t.toLowerCase() === k.toLowerCase());

/** Whether `flags` hold a keyword the table lacks and has room for (addKeywords would grow it). */
export function lacksKeywords(table: readonly string[], flags: readonly string[]): boolean {
  return table.length < MAX_KEYWORDS && flags.some((f) => isKeywordFlag(f) && !has(table, f));
}

/** The keyword table of the Maildir in `dir` with every keyword of `flags` added that it lacks
 *  (as many as fit in 26). When it must grow it is read again and replaced under a lock: the
 *  lock file `dovecot-keywords.lock` is created O_EXCL, written, synced and renamed over the
 *  table (Dovecot's file names and its write-then-rename; its mtime made to grow, as Dovecot's
 *  readers compare mtimes in seconds). So arcline's writers (SMTP threads delivering, IMAP
 *  STORE and APPEND, other arcline processes) never lose each other's keywords, and a letter,
 *  once given to a keyword, keeps it: the table only grows. Dovecot itself excludes writers
 *  through its dovecot-uidlist lock, which we do not take: a Dovecot process adding keywords to
 *  the same mailbox in the same instant is not excluded. */
export async function addKeywords(dir: string, flags: readonly string[]): Promise<string[]> {
  const wanted = flags.filter(isKeywordFlag);
  const current = await readKeywords(dir);
  if (!lacksKeywords(current, wanted)) return current;
  const path = join(dir, 'dovecot-keywords');
  const lock = `${path}.lock`;
  const fh = await takeLock(lock);
  let held = true;
  try {
    const table = await readKeywords(dir);
    for (const k of wanted) if (!has(table, k) && table.length < MAX_KEYWORDS) table.push(k);
    await fh.writeFile(formatKeywords(table));
    const before = await stat(path).catch(() => null);
    const now = Date.now() / 1000;
    if (before && Math.floor(now) <= Math.floor(before.mtimeMs / 1000)) {
      await fh.utimes(now, Math.floor(before.mtimeMs / 1000) + 1);
    }
    await fh.sync();
    await fh.close();
    await rename(lock, path);
    held = false;
    const d = await open(dir, 'r');
    await d.sync().finally(() => d.close());
    return table;
  } finally {
    if (held) {
      await fh.close().catch(() => {});
      await unlink(lock).catch(() => {});
    }
  }
}

/** Creates the dotlock, waiting while another writer holds it (bounded); a lock older than
 *  LIMITS.store.keywordLockStaleMs was left by a crash and is removed. */
async function takeLock(lock: string): Promise<FileHandle> {
  const deadline = Date.now() + LIMITS.store.keywordLockWaitMs;
  for (let wait = 5; ; wait = Math.min(wait * 2, 100)) {
    try {
      return await open(lock, 'wx', 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    }
    const st = await stat(lock).catch(() => null);
    if (st && Date.now() - st.mtimeMs > LIMITS.store.keywordLockStaleMs) {
      await unlink(lock).catch(() => {});
      continue;
    }
    if (Date.now() > deadline) throw new ArclineError('TEMPORARY', 'keyword table locked by another writer');
    await new Promise((r) => setTimeout(r, wait));
  }
}

/** A mailbox's keyword table as last read, read again when another writer replaced it (a
 *  delivery with keywords, another thread or program): one stat per use. */
export class KeywordTable {
  #dir: string;
  #list: string[] | null = null;
  /** The version of dovecot-keywords that #list was read from (keywordsStamp). */
  #stamp = '';

  constructor(dir: string) {
    this.#dir = dir;
  }

  /** The mailbox was renamed: the table moved with it. */
  set dir(dir: string) {
    this.#dir = dir;
  }

  /** The table as last read (without looking at the file). */
  get cached(): readonly string[] {
    return this.#list ?? [];
  }

  async load(): Promise<string[]> {
    const stamp = await keywordsStamp(this.#dir);
    if (this.#list === null || stamp !== this.#stamp) {
      this.#list = await readKeywords(this.#dir);
      this.#stamp = stamp;
    }
    return this.#list;
  }

  /** The table with the keywords of `flags` added (as many as fit: flagsToLetters then answers
   *  null for the rest), under the table's lock (addKeywords). */
  async with(flags: readonly string[]): Promise<string[]> {
    const table = await this.load();
    if (!lacksKeywords(table, flags)) return table;
    this.#list = await addKeywords(this.#dir, flags);
    this.#stamp = ''; // read again next time: another writer may follow at once
    return this.#list;
  }
}

/** Replaces the keyword table atomically (write aside, rename over): for a mailbox no one else
 *  sees yet (an import being staged); live mailboxes use addKeywords. */
export async function writeKeywords(dir: string, keywords: readonly string[]): Promise<void> {
  const path = join(dir, 'dovecot-keywords');
  await writeFile(`${path}.tmp`, formatKeywords(keywords), { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}
