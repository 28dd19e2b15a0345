// SMTP command lines (RFC 5321 §2.3.8, §4.1.1): pure, bounded framing of the bytes a client
// sends in command mode. A line ends at LF (a CR before it is dropped; RFC 5321 wants CRLF, and
// a bare LF in a *command* line is harmless: only DATA needs the strict rule, see data.ts).
// A line longer than the limit (RFC 5321 §4.5.3.1.4 says 512; LIMITS.smtp.maxCommandLength
// allows extensions) is reported once as too long and the rest of it, up to its LF, is
// discarded as it arrives: nothing is ever buffered beyond the limit for one line. Complete
// lines a pipelining client sent ahead (RFC 2920) wait here; the connection stops reading
// while more than a bound of them waits.
//
// No copies in the common case: a chunk that holds whole lines is kept as it came and lines are
// subarrays of it; only a partial line is joined with the next chunk.

const LF = 0x0a;
const CR = 0x0d;

/** What next() found: a complete line (without its CRLF), or a line that was too long. */
export type Framed = { readonly kind: 'line'; readonly line: Buffer } | { readonly kind: 'too-long' };

const TOO_LONG: Framed = { kind: 'too-long' };

export class LineFramer {
  readonly #max: number;
  /** Held bytes are #buf[#pos, #end). #buf is a received chunk as it came (#owned false) or a
   *  buffer of ours with room to append (#owned true). */
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #end = 0;
  #owned = false;
  /** Inside a line found too long: bytes are dropped up to its LF. */
  #discarding = false;

  /** `max`: the longest line, without its CRLF. */
  constructor(max: number) {
    this.#max = max;
  }

  /** Bytes held (complete lines waiting and a partial line). */
  get buffered(): number {
    return this.#end - this.#pos;
  }

  push(chunk: Buffer): void {
    if (chunk.length === 0) return;
    if (this.#discarding) {
      const lf = chunk.indexOf(LF);
      if (lf === -1) return;
      this.#discarding = false;
      chunk = chunk.subarray(lf + 1);
    }
    const held = this.#end - this.#pos;
    if (held === 0) {
      // Nothing held: keep the chunk as it came (no copy).
      this.#buf = chunk;
      this.#pos = 0;
      this.#end = chunk.length;
      this.#owned = false;
      return;
    }
    if (this.#owned && this.#end + chunk.length <= this.#buf.length) {
      chunk.copy(this.#buf, this.#end);
      this.#end += chunk.length;
      return;
    }
    // Room doubles: a client sending a byte per packet costs a copy of what is held only when
    // the room runs out (amortised linear), not at every byte.
    const next = Buffer.allocUnsafe(Math.max(256, 2 * (held + chunk.length)));
    this.#buf.copy(next, 0, this.#pos, this.#end);
    chunk.copy(next, held);
    this.#buf = next;
    this.#pos = 0;
    this.#end = held + chunk.length;
    this.#owned = true;
  }

  /** The next complete line, a too-long report, or null when no complete line is held. */
  next(): Framed | null {
    const buf = this.#buf;
    const start = this.#pos;
    const end0 = this.#end;
    if (start >= end0) return null;
    const found = buf.indexOf(LF, start);
    const lf = found >= end0 ? -1 : found;
    if (lf === -1) {
      if (end0 - start <= this.#max + 1) return null; // +1: a CR may still come
      // Too long without its end: drop what we have and the rest of the line as it arrives.
      this.#clear();
      this.#discarding = true;
      return TOO_LONG;
    }
    this.#pos = lf + 1;
    const end = lf > start && buf[lf - 1] === CR ? lf - 1 : lf;
    if (end - start > this.#max) return TOO_LONG;
    return { kind: 'line', line: buf.subarray(start, end) };
  }

  /** Takes every byte held (DATA starts, or STARTTLS discards them). */
  takeRest(): Buffer {
    const rest = this.#buf.subarray(this.#pos, this.#end);
    this.#clear();
    return rest;
  }

  #clear(): void {
    this.#buf = Buffer.alloc(0);
    this.#pos = 0;
    this.#end = 0;
    this.#owned = false;
  }
}
