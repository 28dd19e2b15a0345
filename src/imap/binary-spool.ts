// APPEND of binary content (RFC 3516 §4.4) for a message too large to hold in memory: a streamed
// literal8 is spooled as sent (connection.ts) and converted here into a new spool, with the same
// bytes as encodeBinaryParts (binary-append.ts) and CrlfNormalizer give for the message held
// whole: every part whose Content-Transfer-Encoding is `binary` base64-encoded (RFC 2045 §6.8)
// with its header rewritten, every other byte as sent, line endings made CRLF.
//
// Two passes over the raw spool, chunk by chunk; the message is never held whole:
// 1. BinaryScan (pure, push-based) finds the binary leaves: where each header starts, where its
//    body starts and ends. One pass for every nesting level: a stack of the open multiparts and
//    message/rfc822 parts, each line checked against the open boundaries outermost first. That is
//    what encodeBinaryParts' recursion into part ranges amounts to: a delimiter of an outer
//    multipart ends every part inside it, and an inner one is never looked for outside its part.
//    Decisions it makes later (a part's end, the line break before a delimiter belonging to the
//    delimiter, RFC 2046 §5.1.1) need one line of lookahead at most: a header's empty line ends it
//    only if the next line does not end the part. Held: one header block (at most
//    LIMITS.imap.maxMimeHeaderBytes, beyond which the part is stored as sent, in both versions),
//    the first 74 bytes of the current line, the stack (LIMITS.imap.maxMimeDepth) and the list of
//    binary parts (LIMITS.imap.maxMimeParts).
// 2. encodeParts streams the bytes again: each binary part's header rewritten, its body encoded
//    in groups of 57 bytes (one 76-character line of base64), the rest passed through.
// test/imap/binary-spool.test.ts checks that both versions give the same bytes (property tests).

import { CrlfNormalizer } from '../core/crlf.ts';
import { headerValue } from '../mime/structure.ts';
import type { SpooledMessage, SpoolWriter } from '../store/types.ts';
import { BINARY_LIMITS, type BinaryLimits, contentType, rewriteHeader } from './binary-append.ts';

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const SP = 0x20;
const HT = 0x09;
/** "--", a boundary of at most 70 characters, "--": a delimiter line but its padding. */
const PREFIX = 2 + 70 + 2;
/** RFC 2045 §6.8: 57 bytes are one line of 76 base64 characters. */
const GROUP = 57;
const CRLF = Buffer.from('\r\n');
const LF_BYTE = Buffer.from('\n');
const EMPTY = Buffer.alloc(0);

/** A binary leaf: its header is msg[start, bodyStart), its body msg[bodyStart, end). */
export interface BinaryPart {
  readonly start: number;
  readonly bodyStart: number;
  readonly end: number;
  /** The body ends the message: its base64 gets a last CRLF (as encodeBinaryParts does). */
  readonly tail: boolean;
}

/** What an entity's header says, decided at its empty line, applied at the next line. */
type Plan =
  | { readonly kind: 'multipart'; readonly boundary: Buffer }
  | { readonly kind: 'message' | 'binary' | 'opaque' };

interface Entity {
  readonly kind: 'entity';
  readonly start: number;
  readonly depth: number;
  /** header: reading it; pending: its empty line was read (plan), the next line decides;
   *  binary: a binary leaf's body; container: its multipart or message is above it in the
   *  stack; opaque: its body is left as it is. */
  state: 'header' | 'pending' | 'binary' | 'container' | 'opaque';
  header: Buffer[];
  headerLen: number;
  bodyStart: number;
  plan: Plan | null;
}

interface Multipart {
  readonly kind: 'multipart';
  readonly boundary: Buffer;
  /** Depth of its body parts. */
  readonly depth: number;
  /** Where the body part being read starts; -1 in the preamble. */
  open: number;
}

function entity(start: number, depth: number, skipped: boolean): Entity {
  const state = skipped ? 'opaque' : 'header';
  return { kind: 'entity', start, depth, state, header: [], headerLen: 0, bodyStart: -1, plan: null };
}

/** Finds the binary leaves of a message fed in chunks split anywhere; the same parts, under the
 *  same limits, as encodeBinaryParts finds in the message held whole. */
export class BinaryScan {
  readonly #limits: BinaryLimits;
  /** The entities and multiparts open at this point, outermost first (the root entity first). */
  readonly #levels: (Entity | Multipart)[];
  readonly #parts: BinaryPart[] = [];
  /** Entities looked at, as encodeBinaryParts counts them (the root is one). */
  #count = 1;
  /** Bytes fed so far. */
  #size = 0;
  /** The last byte fed (-1 at the start). */
  #last = -1;
  /** Whether the line before the current one ended in CRLF (the CR is part of the delimiter). */
  #prevCr = false;
  // The current line: where it starts, its length so far (LF included once read), its first
  // PREFIX bytes, whether it starts with "--" (0 unknown, 1 yes, 2 no), the offset of its last
  // byte other than SP, HT or CR when it does (counted up to PREFIX, beyond which it cannot be a
  // delimiter), and its bytes kept for a header (at most `#keep`).
  #lineStart = 0;
  #lineLen = 0;
  readonly #prefix = Buffer.alloc(PREFIX);
  #prefixLen = 0;
  #dashes = 0;
  #lastNonWs = -1;
  #kept: Buffer[] = [];
  #keptLen = 0;
  #keep: number;

  constructor(limits: BinaryLimits = BINARY_LIMITS) {
    this.#limits = limits;
    this.#levels = [entity(0, 0, this.#count > limits.maxParts)];
    this.#keep = limits.maxHeader + 1; // the root's header
  }

  push(chunk: Buffer): void {
    let pos = 0;
    while (pos < chunk.length) {
      const nl = chunk.indexOf(LF, pos);
      const stop = nl < 0 ? chunk.length : nl;
      if (stop > pos) this.#segment(chunk.subarray(pos, stop));
      if (nl < 0) break;
      const before = nl > 0 ? (chunk[nl - 1] as number) : this.#last;
      this.#lineLen += 1; // the LF
      if (this.#keptLen < this.#keep) this.#kept.push(LF_BYTE);
      this.#line(true);
      this.#prevCr = before === CR;
      pos = nl + 1;
    }
    if (chunk.length > 0) this.#last = chunk[chunk.length - 1] as number;
    this.#size += chunk.length;
  }

  /** The binary leaves, in order; call once, after the last chunk. */
  end(): BinaryPart[] {
    if (this.#lineLen > 0) this.#line(false); // a last line without line break is a line too
    const top = this.#levels.at(-1);
    if (top?.kind === 'entity' && top.state === 'pending') this.#apply(top);
    this.#close(0, this.#size, true);
    return this.#parts;
  }

  /** Bytes of the current line (without its LF). */
  #segment(seg: Buffer): void {
    const base = this.#lineLen;
    this.#lineLen += seg.length;
    if (this.#prefixLen < PREFIX)
      this.#prefixLen += seg.copy(this.#prefix, this.#prefixLen, 0, PREFIX - this.#prefixLen);
    if (this.#dashes === 0 && this.#prefixLen >= 2) {
      this.#dashes = this.#prefix[0] === DASH && this.#prefix[1] === DASH ? 1 : 2;
      this.#lastNonWs = 1;
    }
    if (this.#dashes === 1) {
      for (let k = Math.max(0, 2 - base); k < seg.length && this.#lastNonWs < PREFIX; k++) {
        const c = seg[k];
        if (c !== SP && c !== HT && c !== CR) this.#lastNonWs = base + k;
      }
    }
    if (this.#keptLen < this.#keep) {
      const kept = Buffer.from(seg.subarray(0, this.#keep - this.#keptLen)); // a copy: bounded
      this.#kept.push(kept);
      this.#keptLen += kept.length;
    }
  }

  /** The current line is complete (`lf`: it ends with LF, counted in #lineLen). */
  #line(lf: boolean): void {
    const levels = this.#levels;
    const pos = this.#lineStart;
    const next = pos + this.#lineLen;
    const content = lf ? this.#lineLen - 1 : this.#lineLen;
    let hit = this.#match(0, content);
    const top = levels.at(-1);
    if (hit === null && top?.kind === 'entity' && top.state === 'pending') {
      // Not the end of its part: the empty line did end the header.
      const depth = levels.length;
      this.#apply(top);
      if (levels.length > depth && levels.at(-1)?.kind === 'multipart') hit = this.#match(depth, content);
    }
    if (hit) this.#delimiter(hit.level, hit.close, pos, next);
    else {
      const cur = levels.at(-1);
      if (cur?.kind === 'entity' && cur.state === 'header') this.#headerLine(cur, lf, content, next);
    }
    // The next line.
    this.#lineStart = next;
    this.#lineLen = 0;
    this.#prefixLen = 0;
    this.#dashes = 0;
    this.#lastNonWs = -1;
    this.#kept = [];
    this.#keptLen = 0;
    const now = levels.at(-1);
    this.#keep =
      now?.kind !== 'entity'
        ? 0
        : now.state === 'header'
          ? this.#limits.maxHeader + 1 - now.headerLen
          : now.state === 'pending' && now.plan?.kind === 'message'
            ? this.#limits.maxHeader + 1
            : 0;
  }

  /** The first open multipart from `from` on (outermost first) whose delimiter the current line
   *  is: RFC 2046 §5.1.1 "--boundary", or "--boundary--" for the last, then only white space. */
  #match(from: number, content: number): { level: number; close: boolean } | null {
    if (this.#dashes !== 1) return null;
    const p = this.#prefix;
    for (let i = from; i < this.#levels.length; i++) {
      const mp = this.#levels[i] as Entity | Multipart;
      if (mp.kind !== 'multipart') continue;
      const b = mp.boundary;
      if (content < b.length + 2 || p.compare(b, 0, b.length, 2, 2 + b.length) !== 0) continue;
      let k = 2 + b.length;
      const close = k + 1 < content && p[k] === DASH && p[k + 1] === DASH;
      if (close) k += 2;
      if (this.#lastNonWs < k) return { level: i, close };
    }
    return null;
  }

  /** A delimiter line of the multipart at `level`, at [pos, next). */
  #delimiter(level: number, close: boolean, pos: number, next: number): void {
    const mp = this.#levels[level] as Multipart;
    let end = pos;
    if (end > mp.open && mp.open >= 0) {
      end--; // the LF before the delimiter line belongs to it, and the CR before that LF
      if (end > mp.open && this.#prevCr) end--;
    }
    this.#close(level + 1, end, false);
    if (close) {
      this.#levels.length = level;
      (this.#levels[level - 1] as Entity).state = 'opaque'; // the epilogue
    } else {
      mp.open = next;
      this.#levels.push(entity(next, mp.depth, ++this.#count > this.#limits.maxParts));
    }
  }

  /** Ends every entity and multipart from `level` up at `end` (the end of the message: `eof`). */
  #close(level: number, end: number, eof: boolean): void {
    const levels = this.#levels;
    for (let i = levels.length - 1; i >= level; i--) {
      const l = levels[i] as Entity | Multipart;
      if (l.kind === 'multipart') {
        // A body part that starts at or after the end of its multipart's range (after a last
        // delimiter line, or an empty line) is not one: encodeBinaryParts never counts it.
        if (l.open >= end) this.#count--;
      } else if (l.state === 'binary') {
        const tail = eof && end > l.bodyStart;
        this.#parts.push({ start: l.start, bodyStart: l.bodyStart, end, tail });
      }
    }
    levels.length = Math.max(level, 0);
  }

  /** A line of the header being read (not a delimiter). */
  #headerLine(e: Entity, lf: boolean, content: number, next: number): void {
    e.headerLen += this.#lineLen;
    if (e.headerLen > this.#limits.maxHeader) {
      e.state = 'opaque'; // stored as sent
      e.header = [];
      return;
    }
    e.header.push(...this.#kept);
    if (!lf || !(content === 0 || (content === 1 && this.#prefix[0] === CR))) return;
    const header = Buffer.concat(e.header);
    e.header = [];
    e.bodyStart = next;
    e.state = 'pending';
    const { type, subtype, boundary } = contentType(headerValue(header, 'content-type'));
    if (e.depth >= this.#limits.maxDepth) e.plan = { kind: 'opaque' };
    else if (type === 'multipart') e.plan = boundary ? { kind: 'multipart', boundary } : { kind: 'opaque' };
    else if (type === 'message' && subtype === 'rfc822') e.plan = { kind: 'message' };
    else if (headerValue(header, 'content-transfer-encoding')?.toLowerCase() === 'binary') e.plan = { kind: 'binary' };
    else e.plan = { kind: 'opaque' };
  }

  /** The header of `e` ended: its body begins. */
  #apply(e: Entity): void {
    const plan = e.plan as Plan;
    e.plan = null;
    if (plan.kind === 'multipart') {
      e.state = 'container';
      this.#levels.push({ kind: 'multipart', boundary: plan.boundary, depth: e.depth + 1, open: -1 });
    } else if (plan.kind === 'message') {
      // RFC 2046 §5.2.1: the encapsulated message starts with its own header.
      e.state = 'container';
      this.#levels.push(entity(e.bodyStart, e.depth + 1, ++this.#count > this.#limits.maxParts));
    } else {
      e.state = plan.kind;
    }
  }
}

/** The message (its bytes in chunks) with the binary `parts` base64-encoded; line endings as sent. */
export async function* encodeParts(
  source: AsyncIterable<Buffer>,
  parts: readonly BinaryPart[],
): AsyncGenerator<Buffer> {
  let i = 0;
  let stage: 'copy' | 'header' | 'body' = 'copy';
  let header: Buffer[] = [];
  let carry = EMPTY; // body bytes short of a group
  let first = true; // no base64 line written yet for this part
  let out: Buffer[] = [];
  const lines = (bytes: Buffer) => {
    const text = bytes.toString('base64');
    const l: string[] = [];
    for (let k = 0; k < text.length; k += 76) l.push(text.slice(k, k + 76));
    out.push(Buffer.from(`${first ? '' : '\r\n'}${l.join('\r\n')}`, 'latin1'));
    first = false;
  };
  const body = (data: Buffer) => {
    let rest = data;
    if (carry.length > 0) {
      const need = GROUP - carry.length;
      if (rest.length < need) {
        carry = Buffer.concat([carry, rest]);
        return;
      }
      lines(Buffer.concat([carry, rest.subarray(0, need)]));
      rest = rest.subarray(need);
      carry = EMPTY;
    }
    const whole = rest.length - (rest.length % GROUP);
    if (whole > 0) lines(rest.subarray(0, whole));
    if (whole < rest.length) carry = Buffer.from(rest.subarray(whole));
  };
  /** Moves on at `at`: a header starts, a header ends (rewritten), a body ends. */
  const settle = (at: number) => {
    for (let p = parts[i]; p; p = parts[i]) {
      if (stage === 'copy' && at === p.start) stage = 'header';
      else if (stage === 'header' && at === p.bodyStart) {
        out.push(rewriteHeader(Buffer.concat(header)));
        header = [];
        stage = 'body';
        first = true;
      } else if (stage === 'body' && at === p.end) {
        if (carry.length > 0) lines(carry);
        carry = EMPTY;
        if (p.tail) out.push(CRLF);
        stage = 'copy';
        i++;
      } else return;
    }
  };
  let offset = 0;
  for await (const chunk of source) {
    for (let at = 0; at < chunk.length; ) {
      settle(offset + at);
      const p = parts[i];
      const limit = !p
        ? Number.POSITIVE_INFINITY
        : stage === 'copy'
          ? p.start
          : stage === 'header'
            ? p.bodyStart
            : p.end;
      const n = Math.min(chunk.length - at, limit - (offset + at));
      const piece = chunk.subarray(at, at + n);
      if (stage === 'copy') out.push(piece);
      else if (stage === 'header') header.push(Buffer.from(piece));
      else body(piece);
      at += n;
    }
    offset += chunk.length;
    settle(offset);
    if (out.length > 0) yield* out;
    out = [];
  }
  settle(offset);
  if (out.length > 0) yield* out;
}

/** RFC 3516 §4.4: the raw spooled message `raw` (a literal8) with its binary parts base64 and
 *  CRLF line endings, written to `out`. `raw` is left as it is (its owner disposes it). */
export async function encodeBinarySpool(raw: SpooledMessage, out: SpoolWriter): Promise<SpooledMessage> {
  try {
    const scan = new BinaryScan();
    for await (const chunk of raw.open() as AsyncIterable<Buffer>) scan.push(chunk);
    const parts = scan.end();
    const crlf = new CrlfNormalizer();
    for await (const piece of encodeParts(raw.open() as AsyncIterable<Buffer>, parts))
      await out.write(crlf.push(piece));
    await out.write(crlf.end());
    return await out.finish();
  } catch (e) {
    await out.abort();
    throw e;
  }
}
