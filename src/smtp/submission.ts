// Message submission rules (RFC 6409) as pure functions over the header block of a message:
// - the author (From:, and Sender:, Resent-From:, Resent-Sender: when present) must be
//   addresses the authenticated user owns (RFC 6409 §6.1: the MSA may refuse a message whose
//   sender it cannot vouch for). Every field of the header is read: the header is held whole
//   up to [smtp] max_header_size, and a larger one is refused before it is looked at;
// - a message without Message-ID: or Date: gets them (RFC 6409 §8.1, §8.3), which receivers
//   such as Gmail expect.
// The service (service.ts) captures the header block while the message streams to the spool.

import addressparser from 'nodemailer/lib/addressparser';
import { LIMITS } from '../core/limits.ts';
import { rfc5322Date } from './trace.ts';

export interface HeaderField {
  /** Lower-case field name. */
  readonly name: string;
  /** Unfolded value, without the leading space. */
  readonly value: string;
}

/** What a streamed message's header turned out to be. */
export type HeaderResult =
  /** The whole header block, each field ending in CRLF (without the empty line). `hasBody` is
   *  false for a message that never had the empty line: all of it is header (RFC 5322 §3.5). */
  | { readonly kind: 'ok'; readonly block: Buffer; readonly hasBody: boolean }
  /** Larger than the limit: refused (552 5.3.4); nothing of it was kept. */
  | { readonly kind: 'too-big' };

const CR = 0x0d;
const LF = 0x0a;

/** Collects the header block (up to the empty line) of a streamed message, bounded. Each byte
 *  is looked at once whatever the chunking (a client sending one byte per packet costs no
 *  more than one sending it whole), and past `max` bytes nothing more is held. */
export class HeaderCapture {
  readonly #max: number;
  #chunks: Buffer[] = [];
  #consumed = 0;
  /** How much of CR LF CR LF has just been seen; the message starts as if after a CRLF, so a
   *  leading empty line (no header at all, RFC 5322 §2.1) ends the header at once. */
  #matched = 2;
  #state: 'header' | 'done' | 'too-big' = 'header';
  #hasBody = false;

  constructor(max: number) {
    this.#max = max;
  }

  /** True once the header is known to be larger than the limit. */
  get tooBig(): boolean {
    return this.#state === 'too-big';
  }

  feed(chunk: Buffer): void {
    if (this.#state !== 'header') return;
    let m = this.#matched;
    let i = 0;
    for (; i < chunk.length && m !== 4; i++) {
      const b = chunk[i];
      if (b === CR) m = m === 2 ? 3 : 1;
      else if (b === LF) m = m === 1 || m === 3 ? m + 1 : 0;
      else m = 0;
    }
    this.#matched = m;
    this.#consumed += i;
    if (m === 4) {
      // The block ends with the CRLF of its last field; the empty line is not part of it.
      this.#chunks.push(chunk.subarray(0, i));
      this.#finish(this.#consumed - 2, true);
      return;
    }
    if (this.#consumed > this.#max + 2) {
      this.#tooBig();
      return;
    }
    this.#chunks.push(chunk);
  }

  /** Call at the end of the message: a message without the empty line is all header. */
  end(): HeaderResult {
    if (this.#state === 'header') this.#finish(this.#consumed, false);
    if (this.#state === 'too-big') return { kind: 'too-big' };
    return { kind: 'ok', block: this.#chunks[0] ?? Buffer.alloc(0), hasBody: this.#hasBody };
  }

  #finish(length: number, hasBody: boolean): void {
    if (length > this.#max) {
      this.#tooBig();
      return;
    }
    this.#chunks = [Buffer.concat(this.#chunks).subarray(0, length)];
    this.#state = 'done';
    this.#hasBody = hasBody;
  }

  #tooBig(): void {
    this.#chunks = [];
    this.#state = 'too-big';
  }
}

const isWsp = (c: number) => c === 0x20 || c === 0x09;
/** RFC 5322 §3.6.8 ftext: printable US-ASCII except ":". */
const isFtext = (c: number) => c >= 0x21 && c <= 0x7e && c !== 0x3a;

/** Splits a header block into unfolded fields (RFC 5322 §2.2.3). The obsolete syntax with
 *  white space between the name and the colon (RFC 5322 §4.5: `From : x`) is a field too;
 *  lines that are not fields are skipped. Bytes are read as UTF-8 (RFC 6532). One pass over
 *  each line, no regular expression. */
export function headerFields(block: Buffer): HeaderField[] {
  const fields: HeaderField[] = [];
  let current: { name: string; value: string } | null = null;
  for (const line of block.toString('utf8').split('\r\n')) {
    if (line === '') continue;
    if (isWsp(line.charCodeAt(0))) {
      if (current) current.value += line;
      continue;
    }
    let n = 0;
    while (n < line.length && isFtext(line.charCodeAt(n))) n++;
    let colon = n;
    while (colon < line.length && isWsp(line.charCodeAt(colon))) colon++;
    if (n === 0 || line.charCodeAt(colon) !== 0x3a) {
      current = null;
      continue;
    }
    current = { name: line.slice(0, n).toLowerCase(), value: line.slice(colon + 1) };
    fields.push(current);
  }
  return fields.map((f) => ({ name: f.name, value: f.value.trim() }));
}

/** Every mailbox address of the named fields (groups flattened), as written. Fields beyond
 *  LIMITS.smtp.maxAuthorFieldBytes in all are not parsed: an address list costs time in
 *  proportion to its length, and nothing a client sends may hold the event loop. */
export function addressesIn(fields: readonly HeaderField[], name: string): string[] {
  const out: string[] = [];
  let budget = LIMITS.smtp.maxAuthorFieldBytes;
  for (const f of fields) {
    if (f.name !== name) continue;
    budget -= f.value.length;
    if (budget < 0) break;
    for (const a of addressparser(f.value, { flatten: true })) if (a.address) out.push(a.address);
  }
  return out;
}

/** Characters that end an address-like token: controls, white space, and the RFC 5322
 *  specials except "@" and "." (RFC 5322 §3.2.3). */
const TOKEN_END = new Uint8Array(0x80);
for (let c = 0; c < 0x80; c++)
  TOKEN_END[c] = c <= 0x20 || c === 0x7f || '"(),:;<>[\\]'.includes(String.fromCharCode(c)) ? 1 : 0;
const isTokenEnd = (c: number) => c < 0x80 && TOKEN_END[c] === 1;

/** Every `local@domain` that appears anywhere in a field value: in a display name, a comment,
 *  a quoted string. A reader shown such a value may take any of them for the author, so each
 *  must be the user's too. One pass, no regular expression. */
export function addressTokens(value: string): string[] {
  const out: string[] = [];
  let start = 0;
  let at = -1; // the first "@" of the current token
  for (let i = 0; i <= value.length; i++) {
    const c = i < value.length ? value.charCodeAt(i) : 0x20;
    if (!isTokenEnd(c)) {
      if (c === 0x40 && at < start) at = i;
      continue;
    }
    if (at > start && at < i - 1) out.push(value.slice(start, i));
    start = i + 1;
  }
  return out;
}

/** Fields that name the author or the sender of a message (RFC 5322 §3.6.2, §3.6.6). */
const AUTHOR_FIELDS: ReadonlySet<string> = new Set(['from', 'sender', 'resent-from', 'resent-sender']);

export type AuthorCheck =
  | { readonly ok: true; readonly authors: readonly string[] }
  | { readonly ok: false; readonly reason: 'no-from' | 'many-from' | 'too-long' };

/** The addresses that must be owned: every address of From: (exactly one field, RFC 5322
 *  §3.6), Sender:, Resent-From: and Resent-Sender: (every one of them, wherever it is in the
 *  header), and every other address written anywhere in those fields. */
export function authorAddresses(fields: readonly HeaderField[]): AuthorCheck {
  const fromFields = fields.filter((f) => f.name === 'from').length;
  if (fromFields === 0) return { ok: false, reason: 'no-from' };
  if (fromFields > 1) return { ok: false, reason: 'many-from' };
  const authorFields = fields.filter((f) => AUTHOR_FIELDS.has(f.name));
  if (authorFields.reduce((n, f) => n + f.value.length, 0) > LIMITS.smtp.maxAuthorFieldBytes) {
    return { ok: false, reason: 'too-long' };
  }
  if (addressesIn(fields, 'from').length === 0) return { ok: false, reason: 'no-from' };
  const authors = new Set<string>();
  for (const f of authorFields) {
    for (const a of addressparser(f.value, { flatten: true })) if (a.address) authors.add(a.address);
    for (const a of addressTokens(f.value)) authors.add(a);
  }
  return { ok: true, authors: [...authors] };
}

/** Header lines to add for a submitted message: Message-ID and Date when missing. */
export function missingHeaders(
  fields: readonly HeaderField[],
  opts: { readonly id: string; readonly hostname: string; readonly date: Date },
): string {
  let out = '';
  if (!fields.some((f) => f.name === 'message-id')) out += `Message-ID: <${opts.id}@${opts.hostname}>\r\n`;
  if (!fields.some((f) => f.name === 'date')) out += `Date: ${rfc5322Date(opts.date)}\r\n`;
  return out;
}
