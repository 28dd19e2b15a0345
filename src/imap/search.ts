// SEARCH evaluation (RFC 9051 §6.4.4) over the selected view. Flag, size, date, UID and sequence
// keys use the index data; header and body keys read the message (header once per message,
// the full text only when a BODY/TEXT key needs it). String matching is case-insensitive
// substring matching (RFC 9051 §6.4.4) on decoded text: RFC 2047 encoded words in headers,
// transfer encodings and charsets of text parts in bodies (body-text.ts).

import addressparser from 'nodemailer/lib/addressparser';
import { decodeEncodedWords } from '../core/encoded-words.ts';
import { LIMITS } from '../core/limits.ts';
import { bodyText } from '../mime/body-text.ts';
import { parseStructure } from '../mime/structure.ts';
import { headerFields, readHeader } from './message.ts';
import { inRanges, mergeRanges, type Ranges } from './ranges.ts';
import type { SelectedView } from './selected.ts';
import type { SearchKey, SequenceSet } from './wire/command.ts';

const MONTHS = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];

/** "1-Feb-2024" -> days since the epoch (UTC), or NaN. */
function searchDay(date: string): number {
  const m = /^(\d{1,2})-([A-Za-z]{3})-(\d{4})$/.exec(date);
  if (!m) return Number.NaN;
  return Date.UTC(Number(m[3]), MONTHS.indexOf((m[2] ?? '').toLowerCase()), Number(m[1])) / 86_400_000;
}

const day = (d: Date) => Math.floor(d.getTime() / 86_400_000);

/** The day a Date header names (RFC 5322 §3.3: [day-of-week ","] day month year ...), days
 *  since the epoch, as written: RFC 9051 §6.4.4 SENT* keys disregard time and timezone. Two- and
 *  three-digit years as RFC 5322 §4.3 reads them. Anything else falls back to Date.parse (UTC);
 *  null when that fails too. No regular expression runs on the value (it is client data). */
function sentDay(value: string): number | null {
  let v = value.slice(0, 200);
  const comma = v.indexOf(',');
  if (comma >= 0 && comma < 16) v = v.slice(comma + 1);
  const [d, mon, y] = v.trim().split(/[ \t\r\n]+/, 3);
  const month = MONTHS.indexOf((mon ?? '').slice(0, 3).toLowerCase());
  let year = Number(y);
  const date = Number(d);
  if (month >= 0 && Number.isInteger(year) && Number.isInteger(date) && date >= 1 && date <= 31 && y) {
    if (y.length === 2) year += year < 50 ? 2000 : 1900;
    else if (y.length === 3) year += 1900;
    return Date.UTC(year, month, date) / 86_400_000;
  }
  const parsed = Date.parse(value);
  return Number.isNaN(parsed) ? null : Math.floor(parsed / 86_400_000);
}

/** The addresses of an address header as Dovecot matches them: each `mailbox@host` and display
 *  name, parsed (comments and route syntax gone), so `<user (c)@ (c) domain.org>` is found by
 *  `user@domain.org`. */
function addressForms(value: string | null): string[] {
  if (value === null) return [];
  const out: string[] = [];
  const walk = (list: AddressEntry[]) => {
    for (const a of list) {
      if (a.name) out.push(a.name);
      if (a.address) out.push(a.address);
      if (a.group) walk(a.group);
    }
  };
  walk(addressparser(value.slice(0, 64 * 1024)) as AddressEntry[]);
  return out;
}

interface AddressEntry {
  name?: string;
  address?: string;
  group?: AddressEntry[];
}

interface Texts {
  header: Buffer | null;
  full: string | null;
  body: string | null;
  /** The cached decoded fields (SEARCHED_FIELDS), when the index has them. */
  fields: Record<string, string | null> | null;
}

/** Header fields whose decoded values are cached in the index for SEARCH (one read per message,
 *  ever, instead of one per search). Other HEADER keys read the file. */
const SEARCHED_FIELDS = ['from', 'to', 'cc', 'bcc', 'subject', 'date'] as const;

/** UIDs matching `key`, ascending; null when the view cannot resolve a set of the key. */
export async function searchMessages(view: SelectedView, key: SearchKey): Promise<number[] | null> {
  const uids = view.uids;
  // Sequence and UID sets are resolved once; a sequence number beyond EXISTS is an error.
  // Each as merged UID ranges (ranges.ts): as much memory as the key's text, whatever it names.
  const sets = new Map<SearchKey, Ranges>();
  const collect = (k: SearchKey): boolean => {
    if (k.kind === 'seq' && !k.set.saved) {
      sets.set(k, seqRanges(view.uids, k.set));
      return true;
    }
    if (k.kind === 'seq' || k.kind === 'uid') {
      const r = view.uidRanges(k.set, k.kind === 'uid');
      if (r === null) return false;
      sets.set(k, r);
      return true;
    }
    if (k.kind === 'not') return collect(k.key);
    if (k.kind === 'or') return collect(k.a) && collect(k.b);
    if (k.kind === 'and') return k.keys.every(collect);
    return true;
  };
  if (!collect(key)) return null;
  // Messages are checked SEARCH_PARALLEL at a time: header and body keys wait on file reads,
  // which the thread pool does side by side. The order of the result is kept.
  const hit = new Uint8Array(uids.length);
  const fill: [number, 'search', string][] = [];
  const wantsFields = usesCachedFields(key);
  let cachedFields = new Map<number, string>();
  let since = performance.now();
  for (let i = 0; i < uids.length; i += SEARCH_PARALLEL) {
    // The cached header fields of the next messages, in one request to the index.
    if (wantsFields && i % CACHE_BATCH === 0)
      cachedFields = await view.mailbox.cached(uids.slice(i, i + CACHE_BATCH), 'search');
    // Keys on index data never wait for a file: without this, a long search would hold the
    // event loop for its whole duration (other clients' greetings included).
    if (performance.now() - since >= LIMITS.imap.commandSliceMs) {
      await new Promise<void>((resolve) => setImmediate(resolve));
      since = performance.now();
    }
    const batch = uids.slice(i, i + SEARCH_PARALLEL);
    const found = await Promise.all(
      batch.map(async (uid) => {
        const json = cachedFields.get(uid);
        const texts: Texts = {
          header: null,
          full: null,
          body: null,
          fields: json ? (JSON.parse(json) as Record<string, string | null>) : null,
        };
        const r = await matches(view, uid, key, sets, texts);
        // A header read for this search fills the cache for the next one.
        if (texts.header !== null && texts.fields === null)
          fill.push([uid, 'search', JSON.stringify(fieldsOf(texts.header))]);
        return r;
      }),
    );
    found.forEach((f, j) => {
      if (f) hit[i + j] = 1;
    });
  }
  void view.mailbox.setCached(fill).catch(() => {}); // a cache: not waited for
  return uids.filter((_, i) => hit[i] === 1);
}

const SEARCH_PARALLEL = 16;
/** Messages whose cached fields are asked of the index at once (a multiple of SEARCH_PARALLEL). */
const CACHE_BATCH = 1024;

/** Whether a key reads header fields that the index caches (SEARCHED_FIELDS). */
function usesCachedFields(k: SearchKey): boolean {
  switch (k.kind) {
    case 'not':
      return usesCachedFields(k.key);
    case 'or':
      return usesCachedFields(k.a) || usesCachedFields(k.b);
    case 'and':
      return k.keys.some(usesCachedFields);
    case 'from':
    case 'to':
    case 'cc':
    case 'bcc':
    case 'subject':
    case 'sentbefore':
    case 'senton':
    case 'sentsince':
      return true;
    case 'header':
      return (SEARCHED_FIELDS as readonly string[]).includes(k.field.toLowerCase());
    default:
      return false;
  }
}

async function matches(
  view: SelectedView,
  uid: number,
  k: SearchKey,
  sets: Map<SearchKey, Ranges>,
  texts: Texts,
): Promise<boolean> {
  const meta = view.meta(uid);
  if (!meta) return false;
  const has = (f: string) => meta.flags.includes(f);
  const recent = view.recent.has(uid);
  switch (k.kind) {
    case 'all':
      return true;
    case 'answered':
    case 'deleted':
    case 'draft':
    case 'flagged':
    case 'seen':
      return has(`\\${k.kind[0]?.toUpperCase()}${k.kind.slice(1)}`);
    case 'unanswered':
    case 'undeleted':
    case 'undraft':
    case 'unflagged':
    case 'unseen':
      return !has(`\\${k.kind[2]?.toUpperCase()}${k.kind.slice(3)}`);
    case 'recent':
      return recent;
    case 'new':
      return recent && !has('\\Seen');
    case 'old':
      return !recent;
    case 'keyword':
      return meta.flags.some((f) => f.toLowerCase() === k.flag.toLowerCase());
    case 'unkeyword':
      return !meta.flags.some((f) => f.toLowerCase() === k.flag.toLowerCase());
    case 'larger':
      return meta.size > k.size;
    case 'smaller':
      return meta.size < k.size;
    case 'before':
      return day(meta.internalDate) < searchDay(k.date);
    case 'on':
      return day(meta.internalDate) === searchDay(k.date);
    case 'since':
      return day(meta.internalDate) >= searchDay(k.date);
    case 'sentbefore':
    case 'senton':
    case 'sentsince': {
      const d = sentDay((await field(view, uid, meta.size, 'date', texts)) ?? '');
      if (d === null) return false;
      const want = searchDay(k.date);
      return k.kind === 'sentbefore' ? d < want : k.kind === 'senton' ? d === want : d >= want;
    }
    case 'seq':
    case 'uid':
      return inRanges(sets.get(k) ?? [], uid);
    case 'modseq':
      return meta.modseq >= k.modseq;
    case 'not':
      return !(await matches(view, uid, k.key, sets, texts));
    case 'or':
      return (await matches(view, uid, k.a, sets, texts)) || (await matches(view, uid, k.b, sets, texts));
    case 'and':
      for (const sub of k.keys) if (!(await matches(view, uid, sub, sets, texts))) return false;
      return true;
    case 'from':
    case 'to':
    case 'cc':
    case 'bcc': {
      const v = await field(view, uid, meta.size, k.kind, texts);
      return contains(v, k.value) || addressForms(v).some((a) => contains(a, k.value));
    }
    case 'subject':
      return contains(await field(view, uid, meta.size, k.kind, texts), k.value);
    case 'header': {
      const v = await field(view, uid, meta.size, k.field.toLowerCase(), texts);
      return v !== null && (k.value === '' || contains(v, k.value));
    }
    case 'body':
    case 'text': {
      await fullText(view, uid, texts);
      return contains(k.kind === 'text' ? texts.full : texts.body, k.value);
    }
  }
}

/** The UIDs a sequence-set search key names. A number beyond EXISTS names no message, as
 *  Dovecot answers (imaptest's esearch script: `SEARCH RETURN () 1000` is OK with no result),
 *  rather than the BAD that FETCH and STORE give (RFC 9051 §9 seq-number). */
/** The UIDs of a sequence set as merged UID ranges; numbers beyond EXISTS name nothing (RFC 9051
 *  §6.4.4 as imaptest's esearch group expects: SEARCH answers OK, unlike FETCH). */
function seqRanges(uids: readonly number[], set: SequenceSet): Ranges {
  const n = uids.length;
  const out: [number, number][] = [];
  for (const [a, b] of set.ranges) {
    let lo = a === '*' ? n : a;
    let hi = b === '*' ? n : b;
    if (lo > hi) [lo, hi] = [hi, lo];
    lo = Math.max(lo, 1);
    hi = Math.min(hi, n);
    // Consecutive sequence numbers are consecutive UIDs of the view.
    if (lo <= hi) out.push([uids[lo - 1] as number, uids[hi - 1] as number]);
  }
  return mergeRanges(out);
}

function contains(haystack: string | null, needle: string): boolean {
  if (haystack === null) return false; // a missing header never matches
  return haystack.toLowerCase().includes(needle.toLowerCase());
}

async function field(
  view: SelectedView,
  uid: number,
  size: number,
  name: string,
  texts: Texts,
): Promise<string | null> {
  if ((SEARCHED_FIELDS as readonly string[]).includes(name) && texts.header === null) {
    if (texts.fields) return texts.fields[name] ?? null;
  }
  if (texts.header === null) {
    const fh = await view.mailbox.openMessage(uid);
    if (!fh) return null;
    try {
      texts.header = await readHeader(fh, size);
    } finally {
      await fh.close();
    }
  }
  return decodedField(texts.header, name);
}

function decodedField(header: Buffer, name: string): string | null {
  const values = headerFields(header)
    .filter(([n]) => n.toLowerCase() === name)
    .map(([, v]) => decodeEncodedWords(Buffer.from(v, 'latin1').toString('utf8')));
  return values.length === 0 ? null : values.join('\n');
}

function fieldsOf(header: Buffer): Record<string, string | null> {
  const out: Record<string, string | null> = {};
  for (const f of SEARCHED_FIELDS) out[f] = decodedField(header, f);
  return out;
}

/** TEXT searches the decoded header and body text; BODY only the body (both decoded). */
async function fullText(view: SelectedView, uid: number, texts: Texts): Promise<void> {
  if (texts.full !== null) return;
  const fh = await view.mailbox.openMessage(uid);
  if (!fh) {
    texts.full = '';
    texts.body = '';
    return;
  }
  try {
    const size = view.meta(uid)?.size ?? 0;
    texts.header ??= await readHeader(fh, size);
    texts.body = await bodyText(fh, await parseStructure(fh, size));
    const headers = headerFields(texts.header)
      .map(([n, v]) => `${n}: ${decodeEncodedWords(Buffer.from(v, 'latin1').toString('utf8'))}`)
      .join('\n');
    texts.full = `${headers}\n${texts.body}`;
  } finally {
    await fh.close();
  }
}
