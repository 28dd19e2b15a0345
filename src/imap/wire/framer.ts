// IMAP command framing (RFC 9051 §2.2, §4.3; RFC 3501 §7.5; LITERAL+ RFC 7888).
// Turns the client's byte stream into complete commands: the line segments of a command and
// the literals between them. Pure state machine, no I/O: the connection feeds chunks (split
// anywhere) and acts on the events returned. feed() stops after each complete command, so the
// connection applies its effects (login, STARTTLS, COMPRESS) before the next one is framed with
// the limits and policy of the new state.
//
// Bounds (every one answered before the bytes are read):
// - a line segment longer than maxLine, or a command whose lines and collected literals pass
//   maxCommandMemory -> fatal error (BYE): we cannot resynchronise;
// - a synchronizing literal {n} that is over a limit, or that the policy refuses (a command not
//   allowed in the current state, e.g. APPEND before login) -> non-fatal: RFC 9051 §7.5 lets the
//   server refuse it with a tagged NO/BAD instead of "+", and the client never sends the data;
// - a non-synchronizing literal {n+} that is refused -> fatal: RFC 7888 §4 lets the server
//   close the connection, since the data is already on its way;
// - more than maxLiterals literals in one command -> fatal.
// APPEND literals (the messages) may be as large as maxAppend; every other literal is small.
// Small literals are collected in memory. An APPEND literal above `streamAbove` is not: its bytes
// leave as `literal-data` events (the session spools them through the store) and the frame holds
// a StreamedLiteral marker in its place, so a message never sits whole in memory here. Both say
// whether the literal is a literal8 (`~{n}`, RFC 3516 §4.4: binary content, spooled raw and
// converted, imap/binary-spool.ts) or an ordinary literal (line endings normalised).

import { LIMITS } from '../../core/limits.ts';

export interface FramerLimits {
  readonly maxLine: number;
  readonly maxLiteral: number;
  readonly maxAppend: number;
  readonly maxLiterals: number;
  /** APPEND literals larger than this are streamed out instead of collected. */
  readonly streamAbove: number;
  /** Lines and collected literals of one command, plus streamed literals up to `spoolMemory`. */
  readonly maxCommandMemory: number;
  /** All literals of one command together, collected or streamed. */
  readonly maxCommandLiterals: number;
  /** A streamed literal up to this size stays in memory (in its spool) until the command ends. */
  readonly spoolMemory: number;
}

/** After login: the per-literal limits and the memory budget of LIMITS.imap. */
export const DEFAULT_FRAMER_LIMITS: FramerLimits = {
  maxLine: LIMITS.imap.maxLineBytes,
  maxLiteral: LIMITS.imap.maxLiteralBytes,
  maxAppend: LIMITS.smtp.defaultMaxMessageSize,
  maxLiterals: LIMITS.imap.maxLiterals,
  streamAbove: LIMITS.imap.streamAppendAbove,
  maxCommandMemory: LIMITS.imap.commandMemoryBytes,
  maxCommandLiterals: Math.max(LIMITS.imap.commandLiteralBytes, LIMITS.smtp.defaultMaxMessageSize),
  spoolMemory: LIMITS.store.spoolMemoryBytes,
};

/** Before login: one small budget for everything of a command, nothing streamed. */
export const PREAUTH_FRAMER_LIMITS: FramerLimits = {
  maxLine: Math.min(LIMITS.imap.maxLineBytes, LIMITS.imap.preauthCommandBytes),
  maxLiteral: LIMITS.imap.preauthCommandBytes,
  maxAppend: 0,
  maxLiterals: LIMITS.imap.maxLiterals,
  streamAbove: Number.MAX_SAFE_INTEGER,
  maxCommandMemory: LIMITS.imap.preauthCommandBytes,
  maxCommandLiterals: LIMITS.imap.preauthCommandBytes,
  spoolMemory: 0,
};

/** Decides whether the command named `name` (upper case; "UID FETCH" is "FETCH"; "" when the
 *  line has no command word) may carry a literal now: null, or the text of the refusal. An
 *  object (the session), not a closure: one fewer allocation per connection. */
export interface LiteralPolicy {
  literalRefusal(name: string): string | null;
}

const ANY_LITERAL: LiteralPolicy = { literalRefusal: () => null };

/** Stands in a Frame for a literal whose bytes went out as `literal-data` events. */
export interface StreamedLiteral {
  readonly streamed: true;
  /** Index of the literal in its command, as in the events. */
  readonly index: number;
  readonly size: number;
  /** Sent as a literal8 (`~{n}`, RFC 3516 §4.4). */
  readonly binary: boolean;
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
  /** Bytes of a streamed APPEND literal (see StreamedLiteral); `end` on the last chunk; `binary`
   *  for a literal8 (`~{n}`), on every chunk. */
  | {
      readonly type: 'literal-data';
      readonly index: number;
      readonly chunk: Buffer;
      readonly end: boolean;
      readonly binary: boolean;
    }
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

interface ReadingLiteral {
  buf: Buffer | null;
  missing: number;
  readonly index: number;
  /** A literal8 (`~{n}`). */
  readonly binary: boolean;
}

interface Pending {
  parts: Buffer[];
  literals: Literal[];
  /** Bytes of the line segment being read. */
  line: Buffer[];
  lineBytes: number;
  /** Bytes held for this command: finished line segments and collected literals. */
  memory: number;
  /** Announced bytes of every literal of this command. */
  literalBytes: number;
  name: string | null;
}

export class CommandFramer {
  #limits: FramerLimits;
  #policy: LiteralPolicy;
  /** The command being read; null between commands (an idle connection holds nothing). */
  #cmd: Pending | null = null;
  /** While reading a literal: its buffer (null when streamed, allocated once at its announced
   *  size, within the budget) and the bytes still missing. */
  #literal: ReadingLiteral | null = null;
  /** After a fatal error nothing more is read. */
  #dead = false;
  #literalBytesRead = 0;

  constructor(limits: FramerLimits = DEFAULT_FRAMER_LIMITS, policy: LiteralPolicy = ANY_LITERAL) {
    this.#limits = limits;
    this.#policy = policy;
  }

  /** New limits from the next literal or line on (the connection switches at login). */
  set limits(limits: FramerLimits) {
    this.#limits = limits;
  }

  /** Whether part of a command was read and the rest is awaited. */
  get busy(): boolean {
    const c = this.#cmd;
    return this.#literal !== null || (c !== null && (c.parts.length > 0 || c.lineBytes > 0));
  }

  /** Literal bytes read so far, in all (the connection credits them against its deadline). */
  get literalBytesRead(): number {
    return this.#literalBytesRead;
  }

  /** Feeds bytes; stops after the first complete command or a fatal error. Returns the events
   *  and how many bytes of `chunk` were used; feed the rest after acting on the events. */
  feed(chunk: Buffer): { events: FramerEvent[]; used: number } {
    const events: FramerEvent[] = [];
    let pos = 0;
    while (pos < chunk.length && !this.#dead) {
      if (this.#literal) {
        pos += this.#literalBytes(chunk, pos, events);
        continue;
      }
      const nl = chunk.indexOf(LF, pos);
      const end = nl < 0 ? chunk.length : nl + 1;
      const piece = chunk.subarray(pos, end);
      pos = end;
      this.#cmd ??= fresh();
      const cmd = this.#cmd;
      cmd.lineBytes += piece.length;
      cmd.line.push(piece);
      if (cmd.lineBytes > this.#limits.maxLine + 2) {
        events.push(this.#fail(true, 'Command line too long'));
        break;
      }
      if (cmd.memory + cmd.lineBytes > this.#limits.maxCommandMemory + 2) {
        events.push(this.#fail(true, 'Command too large', 'LIMIT'));
        break;
      }
      if (nl >= 0) {
        const ev = this.#endOfLine();
        if (ev) events.push(ev);
        if (ev?.type === 'command' || (ev?.type === 'error' && ev.fatal)) break;
      }
    }
    return { events, used: pos };
  }

  /** Feeds all of `chunk` (several commands); for tests and tools that act on nothing. */
  push(chunk: Buffer): FramerEvent[] {
    const events: FramerEvent[] = [];
    let rest = chunk;
    while (rest.length > 0 && !this.#dead) {
      const r = this.feed(rest);
      events.push(...r.events);
      rest = rest.subarray(r.used);
    }
    return events;
  }

  #literalBytes(chunk: Buffer, pos: number, events: FramerEvent[]): number {
    const lit = this.#literal as ReadingLiteral;
    const take = Math.min(lit.missing, chunk.length - pos);
    const data = chunk.subarray(pos, pos + take);
    const end = lit.missing === take;
    if (lit.buf) data.copy(lit.buf, lit.buf.length - lit.missing);
    else events.push({ type: 'literal-data', index: lit.index, chunk: data, end, binary: lit.binary });
    lit.missing -= take;
    this.#literalBytesRead += take;
    if (lit.missing === 0) {
      if (lit.buf) (this.#cmd as Pending).literals.push(lit.buf);
      this.#literal = null;
    }
    return take;
  }

  /** Called with a complete line segment (ending in LF) in #cmd.line. */
  #endOfLine(): FramerEvent | null {
    const cmd = this.#cmd as Pending;
    let line = Buffer.concat(cmd.line);
    cmd.line = [];
    cmd.lineBytes = 0;
    line = line.subarray(0, line.length - (line.length >= 2 && line[line.length - 2] === CR ? 2 : 1));
    const lit = literalAtEnd(line);
    if (!lit) {
      cmd.parts.push(line);
      const frame = { parts: cmd.parts, literals: cmd.literals };
      this.#cmd = null;
      return { type: 'command', frame };
    }
    cmd.parts.push(line.subarray(0, lit.start));
    cmd.memory += lit.start;
    cmd.name ??= commandName(cmd.parts[0] ?? Buffer.alloc(0));
    if (cmd.literals.length + 1 > this.#limits.maxLiterals) return this.#fail(true, 'Too many literals');
    const refusal = this.#refusal(cmd, lit.size);
    if (refusal) {
      if (lit.nonSync) return this.#fail(true, refusal.text, refusal.code);
      const ev = this.#fail(false, refusal.text, refusal.code);
      this.#cmd = null;
      return ev;
    }
    const index = cmd.literals.length;
    const streamed = cmd.name === 'APPEND' && lit.size > this.#limits.streamAbove;
    cmd.literalBytes += lit.size;
    if (!streamed || lit.size <= this.#limits.spoolMemory) cmd.memory += lit.size;
    if (lit.size === 0) {
      cmd.literals.push(Buffer.alloc(0));
    } else if (streamed) {
      cmd.literals.push({ streamed: true, index, size: lit.size, binary: lit.binary });
      this.#literal = { buf: null, missing: lit.size, index, binary: lit.binary };
    } else {
      this.#literal = { buf: Buffer.allocUnsafe(lit.size), missing: lit.size, index, binary: lit.binary };
    }
    return lit.nonSync ? null : { type: 'continue' };
  }

  /** Why a literal of `size` announced for `cmd` is refused, or null. */
  #refusal(cmd: Pending, size: number): { text: string; code?: string } | null {
    const limits = this.#limits;
    const name = cmd.name ?? '';
    const refused = this.#policy.literalRefusal(name);
    if (refused !== null) return { text: refused };
    const append = name === 'APPEND';
    // RFC 7888 §4 / RFC 7889: TOOBIG for an APPEND message, plain refusal otherwise.
    if (size > (append ? limits.maxAppend : limits.maxLiteral)) {
      return append ? { text: 'Message too large', code: 'TOOBIG' } : { text: 'Literal too large' };
    }
    const streamed = append && size > limits.streamAbove;
    const held = !streamed || size <= limits.spoolMemory ? size : 0;
    if (cmd.literalBytes + size > limits.maxCommandLiterals || cmd.memory + held > limits.maxCommandMemory) {
      return { text: 'Command too large', code: 'LIMIT' };
    }
    return null;
  }

  #fail(fatal: boolean, text: string, code?: string): FramerEvent {
    const cmd = this.#cmd;
    const tag = cmd ? tagOf(cmd.parts[0] ?? Buffer.concat(cmd.line)) : null;
    if (fatal) {
      this.#dead = true;
      this.#cmd = null;
      this.#literal = null;
    }
    return code ? { type: 'error', tag, fatal, text, code } : { type: 'error', tag, fatal, text };
  }
}

function fresh(): Pending {
  return { parts: [], literals: [], line: [], lineBytes: 0, memory: 0, literalBytes: 0, name: null };
}

/** `{123}` or `{123+}` (LITERAL+), also `~{123}` (literal8, RFC 3516) at the end of a line. */
function literalAtEnd(line: Buffer): { start: number; size: number; nonSync: boolean; binary: boolean } | null {
  if (line.length < 3 || line[line.length - 1] !== 0x7d) return null;
  let i = line.length - 2;
  const nonSync = line[i] === 0x2b;
  if (nonSync) i--;
  const digitsEnd = i + 1;
  while (i >= 0 && (line[i] as number) >= 0x30 && (line[i] as number) <= 0x39) i--;
  if (i < 0 || line[i] !== 0x7b || digitsEnd - (i + 1) === 0 || digitsEnd - (i + 1) > 12) return null;
  const size = Number(line.subarray(i + 1, digitsEnd).toString('latin1'));
  const binary = i > 0 && line[i - 1] === 0x7e;
  return { start: binary ? i - 1 : i, size, nonSync, binary };
}

function tagOf(first: Buffer): string | null {
  const sp = first.indexOf(0x20);
  const tag = first.subarray(0, sp < 0 ? Math.min(first.length, 64) : Math.min(sp, 64)).toString('latin1');
  return /^[\x21-\x7e]+$/.test(tag) && !/[(){%*"\\\]+]/.test(tag) ? tag : null;
}

/** The word after the tag, upper case ("UID FETCH" gives FETCH); "" when there is none. Reads
 *  at most the first 64 bytes. */
export function commandName(first: Buffer): string {
  const words = first.subarray(0, 64).toString('latin1').toUpperCase().split(' ');
  const name = words[1] ?? '';
  return name === 'UID' ? (words[2] ?? '') : name;
}
