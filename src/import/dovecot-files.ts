// Dovecot's own files in a Maildir, read for `arcline import dovecot` (issue #13). Pure and
// bounded parsers (no I/O, no backtracking regexes, limits on lines and sizes):
//
// dovecot-uidlist (Dovecot src/lib-storage/index/maildir/maildir-uidlist.c, formats 1 to 3):
//   version 1 (Dovecot ≤ 1.0, Courier's courierimapuiddb):  header `1 <uidvalidity> <nextuid>`,
//     entries `<uid> <filename>`
//   version 2 (a few development versions): entries `<uid> <flags> <filename>`
//   version 3 (Dovecot ≥ 1.1): header `3 [<key><value> ...]` (V uidvalidity, N next uid, G guid),
//     entries `<uid> [<key><value> ...] :<filename>` (W virtual size, G guid, P/O POP3 UIDL/order)
//   A file name is recorded without its `:2,<flags>` part; Dovecot matches files by that base.
//   The list may still name files expunged since it was written (it is rewritten lazily).
// subscriptions (Dovecot src/lib-storage/list/subscription-file.c): version 2 starts with the
//   line `V<TAB>2` and an empty line, then one name per line, hierarchy levels separated by TAB,
//   tab-escaped (\x01 + 1/t/r/n/0); the older form is one name per line with the namespace
//   separator. Names are as Dovecot stores them: modified UTF-7 unless mailbox_list_utf8 = yes.
// passwd-file (Dovecot doc "passwd-file"): `user[@domain]:{SCHEME}hash:uid:gid:gecos:home:shell:extra`

import { decodeMutf7 } from '../core/mutf7.ts';

export const UIDLIST_MAX_BYTES = 256 * 1024 * 1024;
export const UIDLIST_MAX_ENTRIES = 4_000_000;
const MAX_LINE = 4096;
const MAX_UID = 0xffffffff;

export interface Uidlist {
  readonly version: 1 | 2 | 3;
  readonly uidValidity: number;
  readonly uidNext: number;
  /** file base (the name up to its ":" info part) -> UID; the first line wins for a base. */
  readonly uids: ReadonlyMap<string, number>;
  /** Lines that could not be used, with the reason (line number first). */
  readonly problems: readonly string[];
}

/** A decimal number of at most 10 digits within 1..MAX_UID, or null. */
function uint32(s: string, min = 1): number | null {
  if (s.length === 0 || s.length > 10) return null;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return null;
  }
  const n = Number(s);
  return n >= min && n <= MAX_UID ? n : null;
}

/** The base of a Maildir file name: up to the first ":" (the info part, "2,<flags>"). */
export function fileBase(name: string): string {
  const i = name.indexOf(':');
  return i < 0 ? name : name.slice(0, i);
}

/** Parses a dovecot-uidlist file; throws an Error when its header is unusable. */
export function parseUidlist(text: string): Uidlist {
  if (text.length > UIDLIST_MAX_BYTES) throw new Error('dovecot-uidlist is too large');
  const nl = text.indexOf('\n');
  const header = (nl < 0 ? text : text.slice(0, nl)).replace(/\r$/, '');
  if (header.length > MAX_LINE) throw new Error('dovecot-uidlist header line is too long');
  const fields = header.split(' ').filter((f) => f !== '');
  let version: 1 | 2 | 3;
  let uidValidity: number | null = null;
  let uidNext: number | null = null;
  if (fields[0] === '1' || fields[0] === '2') {
    version = fields[0] === '1' ? 1 : 2;
    uidValidity = uint32(fields[1] ?? '');
    uidNext = uint32(fields[2] ?? '');
  } else if (fields[0] === '3') {
    version = 3;
    for (const f of fields.slice(1)) {
      if (f[0] === 'V') uidValidity = uint32(f.slice(1));
      else if (f[0] === 'N') uidNext = uint32(f.slice(1));
    }
  } else {
    throw new Error(`dovecot-uidlist: unknown version ${JSON.stringify((fields[0] ?? '').slice(0, 16))}`);
  }
  if (uidValidity === null) throw new Error('dovecot-uidlist: no valid UIDVALIDITY in the header');
  if (uidNext === null) throw new Error('dovecot-uidlist: no valid next UID in the header');
  const uids = new Map<string, number>();
  const seen = new Set<number>();
  const problems: string[] = [];
  const problem = (line: number, why: string) => {
    if (problems.length < 100) problems.push(`line ${line}: ${why}`);
    else if (problems.length === 100) problems.push('more problems not shown');
  };
  let start = nl < 0 ? text.length : nl + 1;
  let lineNo = 1;
  let maxUid = 0;
  while (start < text.length) {
    lineNo++;
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    const line = text.slice(start, end).replace(/\r$/, '');
    start = end + 1;
    if (line === '') continue;
    if (line.length > MAX_LINE) {
      problem(lineNo, 'line too long');
      continue;
    }
    if (uids.size >= UIDLIST_MAX_ENTRIES) throw new Error(`dovecot-uidlist: more than ${UIDLIST_MAX_ENTRIES} entries`);
    const sp = line.indexOf(' ');
    const uid = sp > 0 ? uint32(line.slice(0, sp)) : null;
    if (uid === null) {
      problem(lineNo, 'no valid UID');
      continue;
    }
    let name: string;
    if (version === 3) {
      // Extensions are "<key><value>" words; the file name follows " :" and may hold spaces.
      const colon = line.indexOf(' :', sp);
      name = colon < 0 ? '' : line.slice(colon + 2);
    } else if (version === 2) {
      const sp2 = line.indexOf(' ', sp + 1);
      name = sp2 < 0 ? '' : line.slice(sp2 + 1);
    } else {
      name = line.slice(sp + 1);
    }
    const base = fileBase(name);
    if (base === '') {
      problem(lineNo, 'no file name');
      continue;
    }
    if (seen.has(uid)) {
      problem(lineNo, `UID ${uid} listed twice`);
      continue;
    }
    if (uids.has(base)) {
      problem(lineNo, 'file listed twice');
      continue;
    }
    seen.add(uid);
    uids.set(base, uid);
    if (uid > maxUid) maxUid = uid;
  }
  // A next UID at or below a listed UID would hand that UID out again.
  return { version, uidValidity, uidNext: Math.max(uidNext, maxUid + 1), uids, problems };
}

/** Undoes Dovecot's str_tabescape(): \x01 followed by 1, t, r, n or 0. */
function tabUnescape(s: string): string | null {
  if (!s.includes('\x01')) return s;
  let out = '';
  for (let i = 0; i < s.length; i++) {
    if (s[i] !== '\x01') {
      out += s[i];
      continue;
    }
    const c = s[++i];
    const v = c === '1' ? '\x01' : c === 't' ? '\t' : c === 'r' ? '\r' : c === 'n' ? '\n' : c === '0' ? '\0' : null;
    if (v === null) return null;
    out += v;
  }
  return out;
}

/** A folder name component as Dovecot stores it (modified UTF-7, or UTF-8 with
 *  mailbox_list_utf8 = yes) -> the name; null when it is neither. */
export function decodeStoredName(s: string): string | null {
  const m = decodeMutf7(s);
  if (m !== null) return m;
  // Not modified UTF-7: UTF-8 names carry non-ASCII characters and no "&" shift.
  // Control characters are no part of a name either way.
  // biome-ignore lint/suspicious/noControlCharactersInRegex: control characters are what we refuse
  if (s.includes('&') || !s.isWellFormed() || /[\x00-\x1f\x7f]/.test(s)) return null;
  return /[^\x20-\x7e]/.test(s) ? s : null;
}

export const SUBSCRIPTIONS_MAX_BYTES = 4 * 1024 * 1024;
const MAX_SUBSCRIPTIONS = 100_000;

export interface Subscriptions {
  /** Names with "." as the hierarchy separator (arcline's), decoded to UTF-8. */
  readonly names: readonly string[];
  readonly problems: readonly string[];
}

/** Parses Dovecot's `subscriptions` file. `separator`: the namespace separator the old
 *  one-name-per-line form uses ("." for Maildir++, as arcline). */
export function parseSubscriptions(text: string, separator = '.'): Subscriptions {
  if (text.length > SUBSCRIPTIONS_MAX_BYTES) throw new Error('subscriptions file is too large');
  const lines = text.split('\n');
  const v2 = lines[0]?.replace(/\r$/, '') === 'V\t2';
  const names: string[] = [];
  const problems: string[] = [];
  const seen = new Set<string>();
  for (let i = v2 ? 1 : 0; i < lines.length && names.length < MAX_SUBSCRIPTIONS; i++) {
    const line = (lines[i] as string).replace(/\r$/, '');
    if (line === '' || line.length > MAX_LINE) {
      if (line !== '') problems.push(`line ${i + 1}: too long`);
      continue;
    }
    const parts = v2 ? line.split('\t').map(tabUnescape) : line.split(separator);
    const decoded: string[] = [];
    for (const p of parts) {
      const d = p === null || p === '' ? null : decodeStoredName(p);
      if (d === null || d.includes('.')) {
        decoded.length = 0;
        break;
      }
      decoded.push(d);
    }
    if (decoded.length === 0) {
      problems.push(`line ${i + 1}: ${JSON.stringify(line.slice(0, 64))} is not a name arcline can store`);
      continue;
    }
    const name = decoded.join('.');
    const key = name.toUpperCase() === 'INBOX' ? 'INBOX' : name;
    if (!seen.has(key)) {
      seen.add(key);
      names.push(key);
    }
  }
  return { names, problems };
}

export interface PasswdEntry {
  readonly line: number;
  readonly user: string;
  /** The password field as written ({SCHEME} prefix included), possibly empty. */
  readonly password: string;
  readonly extra: string;
}

export const PASSWD_MAX_BYTES = 64 * 1024 * 1024;

/** Parses a Dovecot passwd-file: one `user:password:uid:gid:gecos:home:shell:extra` per line;
 *  `#` comments and blank lines are skipped. The password field is everything up to the next
 *  ":" (Dovecot's scheme prefixes and crypt hashes contain none). */
export function parsePasswdFile(text: string): { entries: PasswdEntry[]; problems: string[] } {
  if (text.length > PASSWD_MAX_BYTES) throw new Error('passwd-file is too large');
  const entries: PasswdEntry[] = [];
  const problems: string[] = [];
  const lines = text.split('\n');
  for (let i = 0; i < lines.length; i++) {
    const line = (lines[i] as string).replace(/\r$/, '');
    if (line.trim() === '' || line.trimStart().startsWith('#')) continue;
    if (line.length > MAX_LINE) {
      problems.push(`line ${i + 1}: too long`);
      continue;
    }
    const f = line.split(':');
    const user = (f[0] ?? '').trim();
    if (user === '') {
      problems.push(`line ${i + 1}: no user name`);
      continue;
    }
    entries.push({ line: i + 1, user, password: f[1] ?? '', extra: f.slice(7).join(':').trim() });
  }
  return { entries, problems };
}
