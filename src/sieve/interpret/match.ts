// Comparators (RFC 4790 §9, RFC 5228 §2.7.3), match types :is :contains :matches (RFC 5228
// §2.7.1) and the relational :count/:value (RFC 5231 §4). :matches is a glob without
// backtracking: the pattern is cut at its '*' into segments; the first is anchored at the
// start, the last at the end, each middle one is taken at its leftmost occurrence (leftmost is
// always right for '*'), so the work is at most text length × pattern length, and every
// character comparison is charged to a budget (LIMITS.sieve.maxMatchWork).

import { LIMITS } from '../../core/limits.ts';

export type Comparator = 'i;octet' | 'i;ascii-casemap' | 'i;ascii-numeric';
export type Relation = 'gt' | 'ge' | 'lt' | 'le' | 'eq' | 'ne';

export interface MatchSpec {
  readonly type: 'is' | 'contains' | 'matches' | 'count' | 'value';
  readonly relation: Relation | null;
  readonly comparator: Comparator;
}

export class MatchBudgetExceeded extends Error {}

/** Octets compared or produced so far in one run (matching, comparing, expanding variables);
 *  shared by all tests and strings of the run. */
export class MatchBudget {
  used = 0;
  charge(n: number): void {
    this.used += n;
    if (this.used > LIMITS.sieve.maxMatchWork)
      throw new MatchBudgetExceeded('match too complex: the work limit of a run is exhausted');
  }
}

/** RFC 4790 §9.2: only A-Z fold. */
export function asciiLower(s: string): string {
  let out = '';
  let from = 0;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c >= 0x41 && c <= 0x5a) {
      out += s.slice(from, i) + String.fromCharCode(c + 32);
      from = i + 1;
    }
  }
  return from === 0 ? s : out + s.slice(from);
}

export function asciiUpper(s: string): string {
  let out = '';
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    out += c >= 0x61 && c <= 0x7a ? String.fromCharCode(c - 32) : s[i];
  }
  return out;
}

/** RFC 4790 §9.1: the leading digits as a number; none stands for positive infinity. */
function numeric(s: string): bigint | null {
  let end = 0;
  while (end < s.length && s.charCodeAt(end) >= 0x30 && s.charCodeAt(end) <= 0x39) end++;
  return end === 0 ? null : BigInt(s.slice(0, end));
}

/** -1, 0, 1 under the comparator (RFC 4790 §9: ordering). */
export function compare(a: string, b: string, comparator: Comparator): number {
  if (comparator === 'i;ascii-numeric') {
    const x = numeric(a);
    const y = numeric(b);
    if (x === null || y === null) return x === y ? 0 : x === null ? 1 : -1;
    return x < y ? -1 : x > y ? 1 : 0;
  }
  const x = comparator === 'i;ascii-casemap' ? asciiLower(a) : a;
  const y = comparator === 'i;ascii-casemap' ? asciiLower(b) : b;
  return Buffer.compare(Buffer.from(x, 'utf8'), Buffer.from(y, 'utf8'));
}

export function relate(order: number, relation: Relation): boolean {
  switch (relation) {
    case 'gt':
      return order > 0;
    case 'ge':
      return order >= 0;
    case 'lt':
      return order < 0;
    case 'le':
      return order <= 0;
    case 'eq':
      return order === 0;
    case 'ne':
      return order !== 0;
  }
}

/** One value against one key for :is, :contains, :matches and :value; the captures of a
 *  successful :matches (RFC 5229 §3.2: ${0} the value, then one per wildcard) are returned. */
export function matchOne(value: string, key: string, spec: MatchSpec, budget: MatchBudget): string[] | null | false {
  budget.charge(value.length + key.length);
  switch (spec.type) {
    case 'is':
      return compare(value, key, spec.comparator) === 0 ? null : false;
    case 'value':
      return relate(compare(value, key, spec.comparator), spec.relation ?? 'eq') ? null : false;
    case 'contains': {
      // RFC 5228 §2.7.1: the empty key is contained in every value.
      const fold = spec.comparator === 'i;ascii-casemap';
      return (fold ? asciiLower(value) : value).includes(fold ? asciiLower(key) : key) ? null : false;
    }
    case 'matches':
      return glob(value, key, spec.comparator === 'i;ascii-casemap', budget) ?? false;
    case 'count':
      return false; // handled over the whole list by the caller
  }
}

// RFC 4790 §9.2-9.3: i;octet and i;ascii-casemap work on octets, so '?' matches one octet of
// the UTF-8 value (as Pigeonhole); captures are decoded back to text.
type Piece = number; // an octet, or ANY for '?'
const ANY = -1;
const utf8 = new TextDecoder('utf-8', { fatal: false });

function foldBytes(b: Uint8Array): Uint8Array {
  const out = new Uint8Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    out[i] = c >= 0x41 && c <= 0x5a ? c + 32 : c;
  }
  return out;
}

/** The pattern's segments between its '*', each a list of octets or ANY (RFC 5228 §2.7.1:
 *  "\\" quotes the next character). */
function segments(pattern: Uint8Array): Piece[][] {
  const out: Piece[][] = [[]];
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i] as number;
    const seg = out[out.length - 1] as Piece[];
    if (c === 0x5c && i + 1 < pattern.length) seg.push(pattern[++i] as number);
    else if (c === 0x2a) out.push([]);
    else if (c === 0x3f) seg.push(ANY);
    else seg.push(c);
  }
  return out;
}

/** Whether seg matches text at `at`. */
function segAt(text: Uint8Array, at: number, seg: readonly Piece[], budget: MatchBudget): boolean {
  if (at + seg.length > text.length) return false;
  for (let k = 0; k < seg.length; k++) {
    const p = seg[k] as Piece;
    if (p !== ANY && p !== text[at + k]) {
      budget.charge(k + 1);
      return false;
    }
  }
  budget.charge(seg.length + 1);
  return true;
}

function captureAnys(orig: Uint8Array, at: number, seg: readonly Piece[], caps: string[]): void {
  for (let k = 0; k < seg.length; k++) if (seg[k] === ANY) caps.push(utf8.decode(orig.subarray(at + k, at + k + 1)));
}

/** RFC 5228 §2.7.1 :matches; returns the captures (${0} the value, then one per wildcard) or null. */
export function glob(value: string, pattern: string, fold: boolean, budget: MatchBudget): string[] | null {
  const rawPattern = Buffer.from(pattern, 'utf8');
  const segs = segments(fold ? foldBytes(rawPattern) : rawPattern);
  const orig = Buffer.from(value, 'utf8');
  const text = fold ? foldBytes(orig) : orig;
  budget.charge(1);
  const caps: string[] = [value];
  const first = segs[0] as Piece[];
  if (segs.length === 1) {
    if (first.length !== text.length || !segAt(text, 0, first, budget)) return null;
    captureAnys(orig, 0, first, caps);
    return caps;
  }
  if (!segAt(text, 0, first, budget)) return null;
  captureAnys(orig, 0, first, caps);
  let pos = first.length;
  const last = segs[segs.length - 1] as Piece[];
  const lastAt = text.length - last.length;
  if (lastAt < pos) return null;
  for (let s = 1; s < segs.length - 1; s++) {
    const seg = segs[s] as Piece[];
    let found = -1;
    for (let at = pos; at + seg.length <= lastAt; at++) {
      if (segAt(text, at, seg, budget)) {
        found = at;
        break;
      }
    }
    if (found < 0) return null;
    caps.push(utf8.decode(orig.subarray(pos, found)));
    captureAnys(orig, found, seg, caps);
    pos = found + seg.length;
  }
  if (!segAt(text, lastAt, last, budget)) return null;
  caps.push(utf8.decode(orig.subarray(pos, lastAt)));
  captureAnys(orig, lastAt, last, caps);
  return caps;
}

/** RFC 5229 §4.1 :quotewildcard. */
export function quoteWildcards(s: string): string {
  let out = '';
  for (const ch of s) out += ch === '*' || ch === '?' || ch === '\\' ? `\\${ch}` : ch;
  return out;
}
