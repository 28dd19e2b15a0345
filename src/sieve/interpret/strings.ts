// String values at run time: encoded characters (RFC 5228 §2.4.2.4), variable references
// (RFC 5229 §3), the modifiers of `set` (RFC 5229 §4.1) and the size cap of a value. Pure and
// linear in the length of the string.

import { LIMITS } from '../../core/limits.ts';
import { asciiLower, asciiUpper, quoteWildcards } from './match.ts';

const utf8 = new TextDecoder('utf-8', { fatal: false });

function isHex(c: string): boolean {
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F');
}

/** Replaces each "${inner}" for which `replace` returns text; the others stay literal. Linear:
 *  the closing brace found is reused for every "${" before it. */
function replaceReferences(
  s: string,
  replace: (inner: string) => string | null,
  max = Number.POSITIVE_INFINITY,
): string {
  if (!s.includes('${')) return s;
  let out = '';
  let i = 0;
  let close = -1;
  for (;;) {
    const at = s.indexOf('${', i);
    if (at < 0) return out + s.slice(i);
    out += s.slice(i, at);
    if (close < at + 2 && close !== -2) close = s.indexOf('}', at + 2);
    if (close === -1) close = -2; // no brace after this point: nothing more to replace
    const decoded = close < 0 ? null : replace(s.slice(at + 2, close));
    if (decoded === null) {
      out += '${';
      i = at + 2;
    } else {
      out += decoded;
      i = close + 1;
      if (out.length > max) throw new StringTooLong();
    }
  }
}

/** An expanded string longer than LIMITS.sieve.maxStringLength. */
export class StringTooLong extends Error {
  constructor() {
    super('string too long after variable expansion');
  }
}

/** RFC 5228 §2.4.2.4: "${hex:41 42}" and "${unicode:41}" in a string literal, applied once
 *  to the literal (before variables). A malformed sequence stays as it is. */
export function decodeEncodedCharacters(s: string): string {
  return replaceReferences(s, (inner) => {
    const colon = inner.indexOf(':');
    const kind = colon > 0 ? inner.slice(0, colon).toLowerCase() : '';
    return kind === 'hex' || kind === 'unicode' ? decodeSequence(kind, inner.slice(colon + 1)) : null;
  });
}

function decodeSequence(kind: 'hex' | 'unicode', body: string): string | null {
  const items = body.split(/[ \t\r\n]+/).filter((x) => x.length > 0);
  for (const it of items) if (![...it].every(isHex) || it.length > 8) return null;
  if (kind === 'hex') {
    if (items.some((x) => x.length > 2)) return null;
    return utf8.decode(Buffer.from(items.map((x) => Number.parseInt(x, 16))));
  }
  let out = '';
  for (const it of items) {
    const cp = Number.parseInt(it, 16);
    if (cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return null;
    out += String.fromCodePoint(cp);
  }
  return out;
}

function isIdentifier(name: string): boolean {
  if (name.length === 0) return false;
  const c0 = name.charCodeAt(0);
  if (c0 >= 0x30 && c0 <= 0x39) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (!((c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f)) return false;
  }
  return true;
}

/** RFC 5229 §3: "${name}" and "${N}" replaced; a reference to an unset variable is empty, an
 *  invalid one (a namespace, bad characters) stays literal. Throws StringTooLong beyond
 *  LIMITS.sieve.maxStringLength. */
export function expandVariables(s: string, lookup: (name: string) => string, matchVar: (n: number) => string): string {
  return replaceReferences(
    s,
    (name) => {
      if (name.length > 0 && [...name].every((c) => c >= '0' && c <= '9'))
        return matchVar(Number(name.length > 4 ? '99999' : name));
      return isIdentifier(name) ? lookup(name.toLowerCase()) : null;
    },
    LIMITS.sieve.maxStringLength,
  );
}

/** Cuts a value to LIMITS.sieve.maxVariableSize octets at a character boundary. */
export function capValue(v: string): string {
  if (v.length * 3 <= LIMITS.sieve.maxVariableSize) return v;
  const bytes = Buffer.from(v, 'utf8');
  if (bytes.length <= LIMITS.sieve.maxVariableSize) return v;
  let end = LIMITS.sieve.maxVariableSize;
  while (end > 0 && ((bytes[end] as number) & 0xc0) === 0x80) end--;
  return bytes.subarray(0, end).toString('utf8');
}

/** RFC 5229 §4.1: modifiers applied from the highest precedence down (40 :lower/:upper, 30
 *  :lowerfirst/:upperfirst, 20 :quotewildcard, 10 :length). Case mapping is ASCII, as Pigeonhole. */
export function applyModifiers(value: string, mods: ReadonlySet<string>): string {
  let v = value;
  if (mods.has('lower')) v = asciiLower(v);
  if (mods.has('upper')) v = asciiUpper(v);
  if (mods.has('lowerfirst') && v.length > 0) v = asciiLower(v.slice(0, 1)) + v.slice(1);
  if (mods.has('upperfirst') && v.length > 0) v = asciiUpper(v.slice(0, 1)) + v.slice(1);
  if (mods.has('quotewildcard')) v = quoteWildcards(v);
  if (mods.has('length')) v = String([...v].length);
  return v;
}
