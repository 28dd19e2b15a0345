// The ManageSieve wire (RFC 5804 §4), pure and bounded: CommandFramer turns the client's bytes
// into commands (a list of tokens) one at a time, and the response helpers write ours.
//
// - A command is one line, or several when it carries literals: `{n+}` (non-synchronizing) and
//   `{n}` CRLF, then n octets, then the line goes on (RFC 5804 §4 literal-c2s; ManageSieve has
//   no continuation request, so both forms arrive unasked and are read alike).
// - Bounds: a line (outside literals) is at most `maxLineBytes`, else the connection cannot be
//   trusted to be in step and the error is fatal; a literal is checked against `literalLimit()`
//   (which the session sets by state: small before login, the script size after) when its
//   announcement arrives, before any of its octets: over it is fatal too, and nothing of it is
//   read. All the literals of one command together stay under the same limit (plus one
//   pre-login literal of slack for names), so one command holds at most that much memory.
// - Tokenizing is one linear pass over each line; no regular expression sees client input.
// - CRLF ends a line; a bare LF is accepted (as Pigeonhole does), a lone CR is data.

export type Token =
  | { readonly kind: 'atom'; readonly value: string }
  | { readonly kind: 'number'; readonly value: number }
  /** A quoted string (unescaped) or a literal: its octets as sent. */
  | { readonly kind: 'string'; readonly value: Buffer; readonly literal: boolean };

export type FrameEvent =
  | { readonly kind: 'command'; readonly tokens: readonly Token[] }
  /** `fatal`: the stream is out of step (or the client oversteps a bound); say BYE. */
  | { readonly kind: 'error'; readonly text: string; readonly fatal: boolean; readonly code?: string };

export interface FramerLimits {
  readonly maxLineBytes: number;
  /** Tokens of one command, its name included. */
  readonly maxTokens: number;
  /** The largest literal now (asked when one is announced). */
  readonly literalLimit: () => number;
  /** Slack for the other literals of a command (a script name sent as a literal). */
  readonly literalSlack: number;
}

const SP = 0x20;
const DQUOTE = 0x22;
const BACKSLASH = 0x5c;
/** RFC 5804 §4 number: 0 to 4294967296. */
const MAX_NUMBER = 4_294_967_296;

function isAtomByte(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x2d || c === 0x5f;
}

function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}

type SegmentResult =
  | { readonly ok: true; readonly literal: number | null }
  | { readonly ok: false; readonly text: string; readonly literalAnnounced: boolean };

/** Tokenizes one line segment into `out`. `continuation`: the segment follows a literal, so it
 *  is empty or starts with SP. Returns the length of a literal announced at its end. */
export function tokenizeSegment(seg: Buffer, out: Token[], continuation: boolean, maxTokens: number): SegmentResult {
  const fail = (text: string): SegmentResult => ({
    ok: false,
    text,
    literalAnnounced: seg.length > 0 && seg[seg.length - 1] === 0x7d,
  });
  let i = 0;
  const n = seg.length;
  let first = !continuation && out.length === 0;
  while (i < n) {
    if (!first) {
      if (seg[i] !== SP) return fail('Expected a space between arguments');
      while (i < n && seg[i] === SP) i++;
      if (i === n) break; // trailing spaces
    }
    first = false;
    if (out.length >= maxTokens) return fail('Too many arguments');
    const c = seg[i] as number;
    if (c === DQUOTE) {
      // RFC 5804 §4: quoted = DQUOTE *QUOTED-CHAR DQUOTE; QUOTED-CHAR = SAFE-UTF8-CHAR / "\" QUOTED-SPECIALS
      const bytes: number[] = [];
      let j = i + 1;
      let closed = false;
      while (j < n) {
        const d = seg[j] as number;
        if (d === DQUOTE) {
          closed = true;
          break;
        }
        if (d === BACKSLASH) {
          const e = seg[j + 1];
          if (e !== DQUOTE && e !== BACKSLASH) return fail('Invalid escape in a quoted string');
          bytes.push(e);
          j += 2;
          continue;
        }
        if (d === 0) return fail('NUL in a quoted string');
        bytes.push(d);
        j++;
      }
      if (!closed) return fail('Unterminated quoted string');
      out.push({ kind: 'string', value: Buffer.from(bytes), literal: false });
      i = j + 1;
      continue;
    }
    if (c === 0x7b) {
      // RFC 5804 §4: literal-c2s = "{" number [ "+" ] "}" CRLF *OCTET, last thing on the line
      let j = i + 1;
      let len = 0;
      while (j < n && isDigit(seg[j] as number)) {
        len = len * 10 + ((seg[j] as number) - 0x30);
        if (len > MAX_NUMBER) return fail('Literal length out of range');
        j++;
      }
      if (j === i + 1) return fail('Invalid literal');
      if (seg[j] === 0x2b) j++;
      if (seg[j] !== 0x7d || j + 1 !== n) return fail('Invalid literal');
      return { ok: true, literal: len };
    }
    if (isDigit(c)) {
      let j = i;
      let v = 0;
      while (j < n && isDigit(seg[j] as number)) {
        v = v * 10 + ((seg[j] as number) - 0x30);
        if (v > MAX_NUMBER) return fail('Number out of range');
        j++;
      }
      if (j < n && seg[j] !== SP) return fail('Invalid number');
      out.push({ kind: 'number', value: v });
      i = j;
      continue;
    }
    if (isAtomByte(c)) {
      let j = i;
      while (j < n && isAtomByte(seg[j] as number)) j++;
      if (j < n && seg[j] !== SP) return fail('Invalid characters in a command');
      out.push({ kind: 'atom', value: seg.toString('latin1', i, j) });
      i = j;
      continue;
    }
    return fail('Invalid characters in a command');
  }
  return { ok: true, literal: null };
}

export class CommandFramer {
  readonly #limits: FramerLimits;
  #buf: Buffer = Buffer.alloc(0);
  #pos = 0;
  #tokens: Token[] = [];
  #literal: { buf: Buffer; filled: number } | null = null;
  #afterLiteral = false;
  #literalBytes = 0;
  #dead = false;

  constructor(limits: FramerLimits) {
    this.#limits = limits;
  }

  /** True while a command is half-read (its command deadline runs). */
  get busy(): boolean {
    return this.#literal !== null || this.#tokens.length > 0 || this.#pos < this.#buf.length;
  }

  push(chunk: Buffer): void {
    if (this.#dead) return;
    if (this.#literal) {
      // Straight into the literal's own buffer: a script is copied once.
      const lit = this.#literal;
      const n = Math.min(chunk.length, lit.buf.length - lit.filled);
      chunk.copy(lit.buf, lit.filled, 0, n);
      lit.filled += n;
      chunk = chunk.subarray(n);
      if (chunk.length === 0) return;
    }
    const rest = this.#buf.length - this.#pos;
    this.#buf = rest === 0 ? chunk : Buffer.concat([this.#buf.subarray(this.#pos), chunk]);
    this.#pos = 0;
  }

  /** The next complete command or error, or null until more bytes arrive. */
  next(): FrameEvent | null {
    while (!this.#dead) {
      if (this.#literal) {
        const lit = this.#literal;
        const n = Math.min(this.#buf.length - this.#pos, lit.buf.length - lit.filled);
        this.#buf.copy(lit.buf, lit.filled, this.#pos, this.#pos + n);
        this.#pos += n;
        lit.filled += n;
        if (lit.filled < lit.buf.length) return null;
        this.#tokens.push({ kind: 'string', value: lit.buf, literal: true });
        this.#literal = null;
        this.#afterLiteral = true;
        continue;
      }
      const lf = this.#buf.indexOf(0x0a, this.#pos);
      if (lf < 0) {
        if (this.#buf.length - this.#pos > this.#limits.maxLineBytes) return this.#fatal('Line too long');
        if (this.#pos === this.#buf.length) {
          this.#buf = Buffer.alloc(0);
          this.#pos = 0;
        }
        return null;
      }
      let end = lf;
      if (end > this.#pos && this.#buf[end - 1] === 0x0d) end--;
      if (end - this.#pos > this.#limits.maxLineBytes) return this.#fatal('Line too long');
      const seg = this.#buf.subarray(this.#pos, end);
      this.#pos = lf + 1;
      const r = tokenizeSegment(seg, this.#tokens, this.#afterLiteral, this.#limits.maxTokens);
      this.#afterLiteral = false;
      if (!r.ok) {
        this.#reset();
        // A literal may follow that we cannot skip reliably: out of step.
        if (r.literalAnnounced) return this.#fatal(r.text);
        return { kind: 'error', text: r.text, fatal: false };
      }
      if (r.literal !== null) {
        const limit = this.#limits.literalLimit();
        if (r.literal > limit || this.#literalBytes + r.literal > limit + this.#limits.literalSlack) {
          this.#dead = true;
          return {
            kind: 'error',
            text: `Literal too large (over ${limit} octets)`,
            fatal: true,
            code: 'QUOTA/MAXSIZE',
          };
        }
        this.#literalBytes += r.literal;
        this.#literal = { buf: Buffer.allocUnsafe(r.literal), filled: 0 };
        continue;
      }
      const tokens = this.#tokens;
      this.#reset();
      if (tokens.length === 0) continue; // an empty line: nothing asked
      return { kind: 'command', tokens };
    }
    return null;
  }

  /** Forgets everything buffered (after STARTTLS: nothing sent in clear before the handshake
   *  may be taken as sent under TLS, RFC 5804 §2.2). */
  discard(): void {
    this.#buf = Buffer.alloc(0);
    this.#pos = 0;
    this.#reset();
  }

  #reset(): void {
    this.#tokens = [];
    this.#literal = null;
    this.#afterLiteral = false;
    this.#literalBytes = 0;
  }

  #fatal(text: string): FrameEvent {
    this.#dead = true;
    return { kind: 'error', text, fatal: true };
  }
}

// Responses (RFC 5804 §4: response-oknobye = ("OK" / "NO" / "BYE") [SP "(" resp-code ")"] [SP string] CRLF).

/** A string for the client: quoted when it can be (no CR, LF or NUL, not too long), else a
 *  literal `{n}` (literal-s2c). */
export function wireString(s: string | Buffer): string | Buffer[] {
  const b = typeof s === 'string' ? Buffer.from(s, 'utf8') : s;
  if (b.length <= 1024 && !b.includes(0x0d) && !b.includes(0x0a) && !b.includes(0)) {
    return `"${b.toString('utf8').replaceAll('\\', '\\\\').replaceAll('"', '\\"')}"`;
  }
  return [Buffer.from(`{${b.length}}\r\n`), b];
}

/** Concatenates text and wireString results into the bytes of one response. */
export function bytesOf(parts: readonly (string | Buffer | readonly (string | Buffer)[])[]): Buffer {
  const out: Buffer[] = [];
  for (const p of parts) {
    if (typeof p === 'string') out.push(Buffer.from(p, 'utf8'));
    else if (Buffer.isBuffer(p)) out.push(p);
    else for (const q of p) out.push(typeof q === 'string' ? Buffer.from(q, 'utf8') : q);
  }
  return Buffer.concat(out);
}

export function response(kind: 'OK' | 'NO' | 'BYE', code: string | null, text: string): Buffer {
  return bytesOf([kind, code ? ` (${code})` : '', text === '' ? '' : ' ', text === '' ? '' : wireString(text), '\r\n']);
}
