// IMAP command framing (RFC 9051 §2.2, §4.3; RFC 3501 §7.5; LITERAL+ RFC 7888).
// Turns the client's byte stream into complete commands: the line segments of a command and
// the literals between them. Pure state machine, no I/O: the connection feeds chunks (split
// anywhere) and acts on the events returned.
//
// Bounds (every one answered before the bytes are read):
// - a line segment longer than maxLine -> fatal error (BYE): we cannot resynchronise;
// - a synchronizing literal {n} above its limit -> non-fatal: the client waits for our "+",
//   so we answer the command with an error and it never sends the data;
// - a non-synchronizing literal {n+} above its limit -> fatal: RFC 7888 §4 lets the server
//   close the connection, since the data is already on its way;
// - more than maxLiterals literals in one command -> fatal.
// APPEND literals (the messages) may be as large as maxAppend; every other literal is small.
// Small literals are collected in memory. An APPEND literal above `streamAbove` is not: its bytes
// leave as `literal-data` events (the session spools them through the store) and the frame holds
// a StreamedLiteral marker in its place, so a message never sits whole in memory here.

export interface FramerLimits {
  readonly maxLine: number;
  readonly maxLiteral: number;
  readonly maxAppend: number;
  readonly maxLiterals: number;
  /** APPEND literals larger than this are streamed out instead of collected. */
  readonly streamAbove: number;
}

export const DEFAULT_FRAMER_LIMITS: FramerLimits = {
  maxLine: 64 * 1024,
  maxLiteral: 256 * 1024,
  maxAppend: 50 * 1024 * 1024,
  maxLiterals: 1000,
  streamAbove: 64 * 1024,
};

/** Stands in a Frame for a literal whose bytes went out as `literal-data` events. */
export interface StreamedLiteral {
  readonly streamed: true;
  /** Index of the literal in its command, as in the events. */
  readonly index: number;
  readonly size: number;
}

export type Literal = Buffer | StreamedLiteral;

/** A complete command: parts[i] is followed by literals[i] (parts.length = literals.length + 1). */
export interface Frame {
  readonly parts: readonly Buffer[];
  readonly literals: readonly Literal[];
}

export type FramerEvent =
  | { readonly type: 'command'; readonly frame: Frame }
  /** A synchronizing literal was announced: send "+ ..." so the client sends it. */
  | { readonly type: 'continue' }
  /** Bytes of a streamed APPEND literal (see StreamedLiteral); `end` on the last chunk. */
  | { readonly type: 'literal-data'; readonly index: number; readonly chunk: Buffer; readonly end: boolean }
  /** The current command is refused; `tag` as far as it could be read. */
  | {
      readonly type: 'error';
      readonly tag: string | null;
      readonly fatal: boolean;
      readonly text: string;
      readonly code?: string;
    };

const CR = 0x0d;
const LF = 0x0a;

interface Pending {
  parts: Buffer[];
  literals: Literal[];
  /** Bytes of the line segment being read. */
  line: Buffer[];
  lineBytes: number;
  isAppend: boolean | null;
}

export class CommandFramer {
  readonly #limits: FramerLimits;
  #cmd: Pending = fresh();
  /** While reading a literal: its chunks (null when streamed) and the bytes still missing. */
  #literal: { chunks: Buffer[] | null; missing: number; index: number } | null = null;
  /** After a refused synchronizing literal, the rest of that line was already consumed. */
  #dead = false;

  constructor(limits: FramerLimits = DEFAULT_FRAMER_LIMITS) {
    this.#limits = limits;
  }

  /** Feeds bytes; returns what happened, in order. After a fatal error, stop feeding. */
  push(chunk: Buffer): FramerEvent[] {
    const events: FramerEvent[] = [];
    let pos = 0;
    while (pos < chunk.length && !this.#dead) {
      if (this.#literal) {
        const lit = this.#literal;
        const take = Math.min(lit.missing, chunk.length - pos);
        const data = chunk.subarray(pos, pos + take);
        lit.missing -= take;
        pos += take;
        if (lit.chunks) lit.chunks.push(data);
        else events.push({ type: 'literal-data', index: lit.index, chunk: data, end: lit.missing === 0 });
        if (lit.missing === 0) {
          if (lit.chunks) this.#cmd.literals.push(Buffer.concat(lit.chunks));
          this.#literal = null;
        }
        continue;
      }
      const nl = chunk.indexOf(LF, pos);
      const end = nl < 0 ? chunk.length : nl + 1;
      const piece = chunk.subarray(pos, end);
      pos = end;
      this.#cmd.lineBytes += piece.length;
      this.#cmd.line.push(piece);
      if (this.#cmd.lineBytes > this.#limits.maxLine + 2) {
        events.push(this.#fail(true, 'Command line too long'));
        break;
      }
      if (nl >= 0) {
        const ev = this.#endOfLine();
        if (ev) events.push(ev);
        if (ev?.type === 'error' && ev.fatal) break;
      }
    }
    return events;
  }

  /** Called with a complete line segment (ending in LF) in #cmd.line. */
  #endOfLine(): FramerEvent | null {
    const cmd = this.#cmd;
    let line = Buffer.concat(cmd.line);
    cmd.line = [];
    cmd.lineBytes = 0;
    line = line.subarray(0, line.length - (line.length >= 2 && line[line.length - 2] === CR ? 2 : 1));
    const lit = literalAtEnd(line);
    if (!lit) {
      cmd.parts.push(line);
      const frame = { parts: cmd.parts, literals: cmd.literals };
      this.#cmd = fresh();
      return { type: 'command', frame };
    }
    cmd.parts.push(line.subarray(0, lit.start));
    if (cmd.isAppend === null) cmd.isAppend = isAppend(cmd.parts[0] ?? Buffer.alloc(0));
    if (cmd.literals.length + 1 > this.#limits.maxLiterals) return this.#fail(true, 'Too many literals');
    const max = cmd.isAppend ? this.#limits.maxAppend : this.#limits.maxLiteral;
    if (lit.size > max) {
      // RFC 7888 §4 / RFC 9051 §7.1: TOOBIG for an APPEND, plain refusal otherwise.
      const text = cmd.isAppend ? 'Message too large' : 'Literal too large';
      const code = cmd.isAppend ? 'TOOBIG' : undefined;
      if (lit.nonSync) return this.#fail(true, text, code);
      const ev = this.#fail(false, text, code);
      this.#cmd = fresh();
      return ev;
    }
    const index = cmd.literals.length;
    if (lit.size === 0) {
      cmd.literals.push(Buffer.alloc(0));
    } else if (cmd.isAppend && lit.size > this.#limits.streamAbove) {
      cmd.literals.push({ streamed: true, index, size: lit.size });
      this.#literal = { chunks: null, missing: lit.size, index };
    } else {
      this.#literal = { chunks: [], missing: lit.size, index };
    }
    return lit.nonSync ? null : { type: 'continue' };
  }

  #fail(fatal: boolean, text: string, code?: string): FramerEvent {
    const tag = tagOf(this.#cmd.parts[0] ?? Buffer.concat(this.#cmd.line));
    if (fatal) this.#dead = true;
    return code ? { type: 'error', tag, fatal, text, code } : { type: 'error', tag, fatal, text };
  }
}

function fresh(): Pending {
  return { parts: [], literals: [], line: [], lineBytes: 0, isAppend: null };
}

/** `{123}` or `{123+}` (LITERAL+), also `~{123}` (literal8, RFC 3516) at the end of a line. */
function literalAtEnd(line: Buffer): { start: number; size: number; nonSync: boolean } | null {
  if (line.length < 3 || line[line.length - 1] !== 0x7d) return null;
  let i = line.length - 2;
  const nonSync = line[i] === 0x2b;
  if (nonSync) i--;
  const digitsEnd = i + 1;
  while (i >= 0 && (line[i] as number) >= 0x30 && (line[i] as number) <= 0x39) i--;
  if (i < 0 || line[i] !== 0x7b || digitsEnd - (i + 1) === 0 || digitsEnd - (i + 1) > 12) return null;
  const size = Number(line.subarray(i + 1, digitsEnd).toString('latin1'));
  const start = i > 0 && line[i - 1] === 0x7e ? i - 1 : i;
  return { start, size, nonSync };
}

function tagOf(first: Buffer): string | null {
  const sp = first.indexOf(0x20);
  const tag = first.subarray(0, sp < 0 ? Math.min(first.length, 64) : Math.min(sp, 64)).toString('latin1');
  return /^[\x21-\x7e]+$/.test(tag) && !/[(){%*"\\\]+]/.test(tag) ? tag : null;
}

/** Whether a command's first segment is "tag APPEND ..." or "tag UID ..." etc. (only APPEND
 *  carries message literals). */
function isAppend(first: Buffer): boolean {
  const m = /^\S+ (\S+)/.exec(first.subarray(0, 64).toString('latin1'));
  return (m?.[1] ?? '').toUpperCase() === 'APPEND';
}
