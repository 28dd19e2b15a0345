// Grammar pieces several commands share (RFC 9051 §9): sequence sets (with RFC 5182 "$"),
// flags, and space-separated lists.

import type { SequenceSet } from './command.ts';
import { ParseError, type Reader } from './reader.ts';

export function sequenceSet(r: Reader): SequenceSet {
  // RFC 5182 §2.1: "$" is the result saved by SEARCH RETURN (SAVE).
  if (r.peek() === 0x24) {
    r.eat(0x24);
    return { ranges: [], saved: true };
  }
  const text = r.word();
  const ranges: [number | '*', number | '*'][] = [];
  for (const item of text.split(',')) {
    const m = /^(\d+|\*)(?::(\d+|\*))?$/.exec(item);
    if (!m) throw new ParseError(`Invalid sequence set ${text.slice(0, 40)}`);
    const a = seqNumber(m[1] as string);
    ranges.push([a, m[2] === undefined ? a : seqNumber(m[2])]);
    if (ranges.length > 10_000) throw new ParseError('Sequence set too long');
  }
  return { ranges };
}

function seqNumber(s: string): number | '*' {
  if (s === '*') return '*';
  const n = Number(s);
  if (n < 1 || n > 0xffffffff) throw new ParseError('Sequence number out of range');
  return n;
}

/** flag = "\" atom / atom (system flags and keywords, RFC 9051 §2.3.2). */
export function flag(r: Reader): string {
  if (r.eat(0x5c)) {
    if (r.eat(0x2a)) return '\\*';
    return `\\${r.atom()}`;
  }
  return r.atom();
}

export function spaceSeparated<T>(r: Reader, item: () => T): T[] {
  const out = [item()];
  while (r.eat(0x20)) out.push(item());
  return out;
}
