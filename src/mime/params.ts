// MIME parameter values (RFC 2045 §5.1) with RFC 2231 extensions: continuations
// (`name*0=...; name*1=...`), charset and language (`name*=utf-8'en'%E2%82%AC`), both together
// (`name*0*=utf-8''...; name*1*=...`). Values that are RFC 2047 encoded words (which RFC 2047
// §5 forbids in parameters, but common mailers write for file names) are decoded too.
// Input: the pairs parseParams (structure.ts) returns from a header read as latin1 (one char per
// octet: raw UTF-8, RFC 6532, is decoded here); bounded by its 65 pairs.

import { decodeEncodedWords } from '../core/encoded-words.ts';
import { decodeCharset } from './decode.ts';

interface Segment {
  readonly index: number;
  readonly extended: boolean;
  readonly value: string;
}

/** Parameters by lower-case name, values decoded to text; the first of duplicates wins. */
export function decodeParams(pairs: readonly (readonly [string, string])[]): Map<string, string> {
  const out = new Map<string, string>();
  const pieces = new Map<string, Segment[]>();
  for (const [rawName, value] of pairs) {
    const name = rawName.toLowerCase();
    const star = name.indexOf('*');
    if (star < 0) {
      if (!out.has(name)) out.set(name, decodeCharset(Buffer.from(value, 'latin1'), null).text);
      continue;
    }
    const base = name.slice(0, star);
    const rest = name.slice(star + 1); // "", "0", "0*", "12", "12*"
    const extended = rest.endsWith('*') || rest === '';
    const digits = rest.endsWith('*') ? rest.slice(0, -1) : rest;
    if (digits !== '' && !/^\d{1,3}$/.test(digits)) continue;
    const index = digits === '' ? -1 : Number(digits);
    const list = pieces.get(base) ?? [];
    if (list.length < 100) list.push({ index, extended, value });
    pieces.set(base, list);
  }
  for (const [name, segments] of pieces) {
    const value = joinSegments(segments);
    // RFC 2231 §4: an extended value takes precedence over a plain one of the same name.
    if (value !== null) out.set(name, value);
  }
  for (const [name, value] of out) if (value.includes('=?')) out.set(name, decodeEncodedWords(value));
  return out;
}

/** RFC 2231 §3-§4: segments in index order (a lone `name*` is index -1), the charset and
 *  language on the first extended segment, %XX octets in extended segments only. */
function joinSegments(segments: Segment[]): string | null {
  const sorted = [...segments].sort((a, b) => a.index - b.index);
  const first = sorted[0];
  if (!first) return null;
  let charset: string | null = null;
  const bytes: Buffer[] = [];
  let expect = sorted[0]?.index === -1 ? -1 : 0;
  for (const s of sorted) {
    if (s.index !== expect) break; // RFC 2231 §3: a gap ends the value
    expect = s.index === -1 ? Number.POSITIVE_INFINITY : expect + 1;
    let v = s.value;
    if (s.extended && s === first) {
      const q1 = v.indexOf("'");
      const q2 = q1 < 0 ? -1 : v.indexOf("'", q1 + 1);
      if (q2 >= 0) {
        charset = v.slice(0, q1) || null;
        v = v.slice(q2 + 1);
      }
    }
    bytes.push(s.extended ? percentDecode(v) : Buffer.from(v, 'latin1'));
  }
  return decodeCharset(Buffer.concat(bytes), charset).text;
}

function percentDecode(v: string): Buffer {
  const out: number[] = [];
  for (let i = 0; i < v.length; i++) {
    const c = v.charCodeAt(i);
    if (c === 37 && /^[0-9A-Fa-f]{2}$/.test(v.slice(i + 1, i + 3))) {
      out.push(Number.parseInt(v.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(c & 0xff);
    }
  }
  return Buffer.from(out);
}
