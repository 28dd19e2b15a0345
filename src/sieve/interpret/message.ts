// The message as a script sees it: the header block split into fields, unfolded and with RFC
// 2047 encoded words decoded (RFC 5228 §2.7.2), and the addresses of address headers (RFC 5322
// §3.4) for the address test (RFC 5228 §5.1). Pure and bounded by the header block's size.

import { decodeEncodedWords } from '../../core/encoded-words.ts';
import type { SieveMessage } from '../run-types.ts';

const utf8 = new TextDecoder('utf-8', { fatal: false });

/** Splits a raw header block (up to the empty line, or all of it) into fields (RFC 5322 §2.2:
 *  a line starting with white space continues the field before it; unfolding removes the CRLF). */
export function parseHeaderBlock(head: Buffer): { name: string; value: string }[] {
  const text = utf8.decode(head);
  const fields: { name: string; value: string }[] = [];
  let current: string | null = null;
  const flush = (): void => {
    if (current === null) return;
    const colon = current.indexOf(':');
    if (colon > 0) {
      const name = current.slice(0, colon).trim();
      const value = current.slice(colon + 1).trim();
      if (name.length > 0) fields.push({ name, value: decodeEncodedWords(value) });
    }
    current = null;
  };
  let start = 0;
  while (start < text.length) {
    let end = text.indexOf('\n', start);
    if (end < 0) end = text.length;
    let line = text.slice(start, end);
    if (line.endsWith('\r')) line = line.slice(0, -1);
    start = end + 1;
    if (line.length === 0) break; // the end of the header
    const c = line.charCodeAt(0);
    // Unfolding (RFC 5322 §2.2.3) removes the CRLF; the folding white space becomes one space
    // character, as Dovecot shows it.
    if ((c === 0x20 || c === 0x09) && current !== null) current += ` ${line.slice(1)}`;
    else {
      flush();
      current = line;
    }
  }
  flush();
  return fields;
}

/** The SieveMessage for delivery: `head` is the raw header block, `raw` reads the whole
 *  message (only for the body test). */
export function sieveMessage(head: Buffer, size: number, raw: () => Promise<Buffer>): SieveMessage {
  return { headers: parseHeaderBlock(head), size, raw };
}

/** The values of every field with this name (case-insensitive, RFC 5228 §2.9), in order. */
export function headerValues(msg: SieveMessage, name: string): string[] {
  const want = name.toLowerCase();
  const out: string[] = [];
  for (const h of msg.headers) if (h.name.toLowerCase() === want) out.push(h.value);
  return out;
}

/** One address of an address list: local part and domain (domain null for a bare local part). */
export interface Address {
  readonly local: string;
  readonly domain: string | null;
}

/** RFC 5322 §3.4 address-list, leniently: display names, comments, angle addresses, groups.
 *  Returns null when the value cannot be split (an open quote, comment or angle bracket).
 *  Linear in the value's length. */
export function parseAddressList(value: string): Address[] | null {
  const tokens = tokenizeAddresses(value);
  if (tokens === null) return null;
  const out: Address[] = [];
  // Split into mailboxes at ',' and group boundaries; in each, the part in <> wins, else the
  // words as an addr-spec.
  let words: string[] = [];
  let angle: string[] | null = null;
  let inAngle = false;
  let sawAngle = false;
  const end = (): boolean => {
    const spec = sawAngle ? (angle ?? []) : words;
    words = [];
    angle = null;
    sawAngle = false;
    // An entry that is no address ("@x", "<>") is skipped; the others count (as Dovecot's
    // lenient parser, which Pigeonhole uses).
    const a = spec.length === 0 ? null : toAddress(spec);
    if (a !== null) out.push(a);
    return true;
  };
  for (const t of tokens) {
    if (inAngle) {
      if (t === '>') inAngle = false;
      else (angle as string[]).push(t);
      continue;
    }
    if (t === '<') {
      inAngle = true;
      sawAngle = true;
      angle = [];
    } else if (t === ',' || t === ';') {
      if (!end()) return null;
    } else if (t === ':') {
      words = []; // a group's display name
    } else words.push(t);
  }
  if (inAngle || !end()) return null;
  return out;
}

function toAddress(spec: string[]): Address | null {
  // A route (obs-route "@a,@b:") before the address is dropped.
  const colon = spec.lastIndexOf(':');
  const s = (colon >= 0 ? spec.slice(colon + 1) : spec).join('');
  if (s.length === 0) return null;
  const at = s.lastIndexOf('@');
  if (at < 0) return { local: s, domain: null };
  if (at === 0 || at === s.length - 1) return null;
  return { local: s.slice(0, at), domain: s.slice(at + 1) };
}

/** Words (atoms and quoted strings, unquoted), specials as one-character tokens; comments and
 *  white space dropped. A quoted string keeps its quotes off but stays one word. */
function tokenizeAddresses(v: string): string[] | null {
  const out: string[] = [];
  let i = 0;
  while (i < v.length) {
    const c = v[i] as string;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n') {
      i++;
    } else if (c === '(') {
      let depth = 0;
      for (; i < v.length; i++) {
        if (v[i] === '\\') i++;
        else if (v[i] === '(') depth++;
        else if (v[i] === ')' && --depth === 0) break;
      }
      if (i >= v.length) return null;
      i++;
    } else if (c === '"') {
      let s = '';
      i++;
      for (; i < v.length && v[i] !== '"'; i++) {
        if (v[i] === '\\') i++;
        s += v[i] ?? '';
      }
      if (i >= v.length) return null;
      i++;
      out.push(s);
    } else if ('<>,:;@'.includes(c)) {
      out.push(c);
      i++;
    } else if (c === ')') {
      i++; // a stray closing parenthesis
    } else {
      const start = i;
      while (i < v.length && !' \t\r\n()"<>,:;@'.includes(v[i] as string)) i++;
      out.push(v.slice(start, i));
    }
  }
  return out;
}
