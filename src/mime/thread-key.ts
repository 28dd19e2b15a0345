// What threading (RFC 8621 §3: the algorithm is the server's) needs of a message: its
// Message-ID, In-Reply-To and References ids and its base subject (RFC 5256 §2.1), read from
// the header block with bounded, linear scans (no backtracking on message input). Pure; the
// store (store/index/threads.ts) keeps the ids and assigns threads, JMAP shows them.
// The rule, as Cyrus's conversations and Gmail: a message joins the thread of a message it
// names in In-Reply-To or References (or of one that names its own Message-ID), nearest first,
// only when the base subjects agree, so a reply reused for a new topic, or a References field
// pasted by a list, does not join unrelated mail; otherwise it starts a thread. Threads never
// merge (a message's thread never changes, RFC 8621 §4.1.1).

import { createHash } from 'node:crypto';
import { decodeEncodedWords } from '../core/encoded-words.ts';

/** References ids kept: the chain's first (its root) and the nearest ones before the parent. */
export const MAX_THREAD_REFERENCES = 50;
/** Characters of one message id kept (RFC 5322 lines are at most 998). */
const MAX_ID = 998;
const MAX_SUBJECT = 1000;

export interface ThreadHeaders {
  /** The message's own Message-ID (without angle brackets), or null. */
  readonly messageId: string | null;
  readonly inReplyTo: readonly string[];
  /** At most MAX_THREAD_REFERENCES: the first and the last ones. */
  readonly references: readonly string[];
  /** The base subject (baseSubject), lower case. */
  readonly subject: string;
}

export const NO_THREAD_HEADERS: ThreadHeaders = { messageId: null, inReplyTo: [], references: [], subject: '' };

/** The threading fields of a header block (the bytes before the blank line). */
export function threadHeaders(header: Buffer): ThreadHeaders {
  const f = fieldsOf(header.toString('latin1'), THREAD_FIELDS);
  const subject = f.get('subject');
  const refs = messageIds(f.get('references') ?? '', 10_000);
  return {
    messageId: messageIds(f.get('message-id') ?? '', 1)[0] ?? null,
    inReplyTo: messageIds(f.get('in-reply-to') ?? '', 4),
    references:
      refs.length <= MAX_THREAD_REFERENCES ? refs : [refs[0] as string, ...refs.slice(-(MAX_THREAD_REFERENCES - 1))],
    // headerValue reads latin1: back to the bytes, then UTF-8 (RFC 6532 headers).
    subject: baseSubject(decodeEncodedWords(Buffer.from(subject ?? '', 'latin1').toString('utf8'))),
  };
}

const THREAD_FIELDS = new Set(['message-id', 'in-reply-to', 'references', 'subject']);

/** The first field of each of `names` (lower case) in a header block, unfolded, trimmed: one
 *  pass over the lines (as structure.ts headerValue does for one name). */
function fieldsOf(text: string, names: ReadonlySet<string>): Map<string, string> {
  const out = new Map<string, string>();
  for (let pos = 0; pos < text.length && out.size < names.size; ) {
    let eol = text.indexOf('\n', pos);
    if (eol < 0) eol = text.length;
    // A field's name is short: look for its colon in the line's first 80 characters only.
    const colon = text.slice(pos, Math.min(eol, pos + 80)).indexOf(':') + pos;
    const name = colon > pos ? text.slice(pos, colon).trimEnd().toLowerCase() : '';
    let next = eol + 1;
    if (names.has(name) && !out.has(name)) {
      const parts = [text.slice(colon + 1, eol)];
      while (next < text.length && (text[next] === ' ' || text[next] === '\t')) {
        let end = text.indexOf('\n', next);
        if (end < 0) end = text.length;
        parts.push(text.slice(next, end));
        next = end + 1;
      }
      out.set(name, parts.join('').replace(/\r/g, '').trim());
    }
    pos = next;
  }
  return out;
}

/** The `<...>` items of a field, leniently (text outside them ignored), white space removed
 *  inside; at most `max`. One pass. */
export function messageIds(value: string, max: number): string[] {
  const out: string[] = [];
  let i = value.indexOf('<');
  while (i >= 0 && out.length < max) {
    const close = value.indexOf('>', i + 1);
    if (close < 0) break;
    const next = value.indexOf('<', i + 1);
    if (next >= 0 && next < close) {
      i = next; // "<a <b>": the inner one
      continue;
    }
    const id = value
      .slice(i + 1, close)
      .replace(/\s+/g, '')
      .slice(0, MAX_ID);
    if (id !== '') out.push(id);
    i = value.indexOf('<', close + 1);
  }
  return out;
}

/** The ids a message is looked up by, nearest first: In-Reply-To, References from the last,
 *  its own Message-ID (a parent arriving after its reply finds the reply's thread by it). */
export function threadCandidates(h: ThreadHeaders): string[] {
  return [...new Set([...h.inReplyTo, ...[...h.references].reverse(), ...(h.messageId ? [h.messageId] : [])])];
}

/** The key a message id is stored under: 128 bits of its SHA-256 (bounded length). */
export function messageIdKey(id: string): string {
  return createHash('sha256').update(id).digest('base64url').slice(0, 22);
}

/** The key a base subject is compared by. */
export function subjectKey(base: string): string {
  return createHash('sha256').update(base).digest('base64url').slice(0, 16);
}

/** RFC 5256 §2.1 base subject, compared case-insensitively (lower-cased here): white space
 *  collapsed, trailing "(fwd)", leading "Re:", "Fw:", "Fwd:" (with an optional [blob]) and
 *  leading "[blob]" removed, and a "[Fwd: ...]" wrapper unwrapped, repeatedly. Every pattern is
 *  anchored and without nested repetition (linear on any input). */
export function baseSubject(subject: string): string {
  let s = subject.slice(0, MAX_SUBJECT).replace(/\s+/g, ' ').trim();
  for (let outer = 0; outer < 100; outer++) {
    // (2) trailing "(fwd)"
    for (let i = 0; i < 100 && /\(fwd\)$/i.test(s); i++) s = s.slice(0, -5).trimEnd();
    // (3)-(4) leading subj-refwd and subj-blob
    for (let i = 0; i < 100; i++) {
      const before = s;
      const m = /^(?:re|fwd?)\s*(?:\[[^[\]]*\]\s*)?:\s*/i.exec(s);
      if (m) s = s.slice(m[0].length);
      const blob = /^\[[^[\]]*\]\s*/.exec(s);
      if (blob && s.length > blob[0].length) s = s.slice(blob[0].length);
      if (s === before) break;
    }
    // (5) "[fwd:" subject "]"
    if (/^\[fwd:/i.test(s) && s.endsWith(']')) {
      s = s.slice(5, -1).trim();
      continue;
    }
    break;
  }
  return s.toLowerCase();
}

/** Where a message's header block ends in `buf` (the index of its blank line's first byte),
 *  or -1 when `buf` holds no blank line. */
export function headerEnd(buf: Buffer): number {
  let i = 0;
  for (;;) {
    const lf = buf.indexOf(0x0a, i);
    if (lf < 0) return -1;
    // A line that is empty (LF) or only CR.
    if (lf === i || (lf === i + 1 && buf[i] === 0x0d)) return i;
    i = lf + 1;
  }
}

/** A thread a message id is known in, with the subject key it was recorded under. */
export interface KnownThread {
  readonly thread: string;
  readonly subject: string;
}

/** The thread a message joins: the first thread (nearest candidate first) that one of its
 *  ids is known in under the same base subject; else `fresh`, a new one. */
export function chooseThread(h: ThreadHeaders, lookup: (key: string) => readonly KnownThread[], fresh: string): string {
  const subject = subjectKey(h.subject);
  for (const id of threadCandidates(h))
    for (const k of lookup(messageIdKey(id))) if (k.subject === subject) return k.thread;
  return fresh;
}

/** The keys a message is recorded under in its thread: its own id and every id it names. */
export function recordedKeys(h: ThreadHeaders): string[] {
  return [...new Set([...(h.messageId ? [h.messageId] : []), ...h.inReplyTo, ...h.references].map(messageIdKey))];
}
