// A cursor over one framed command (framer.ts) for the recursive-descent parser (parse.ts).
// Grammar references are RFC 9051 §9 (formal syntax), which RFC 3501 §9 matches for what we
// read here. The end of line segment i is where literal i stands. Nesting depth is bounded.
// Every failure throws ParseError, which the session turns into a tagged BAD.

import type { Frame, Literal } from './framer.ts';

export class ParseError extends Error {}

const MAX_DEPTH = 16;

// atom-specials: "(" / ")" / "{" / SP / CTL / "%" / "*" / DQUOTE / "\" / "]"
function isAtomChar(c: number): boolean {
  return (
    c > 0x20 &&
    c < 0x7f &&
    c !== 0x28 &&
    c !== 0x29 &&
    c !== 0x7b &&
    c !== 0x25 &&
    c !== 0x2a &&
    c !== 0x22 &&
    c !== 0x5c &&
    c !== 0x5d
  );
}

export class Reader {
  readonly #frame: Frame;
  #part = 0;
  #pos = 0;
  #depth = 0;

  constructor(frame: Frame) {
    this.#frame = frame;
  }

  get #line(): Buffer {
    return this.#frame.parts[this.#part] as Buffer;
  }

  /** The next byte, or -1 at a literal / the end. */
  peek(): number {
    return this.#pos < this.#line.length ? (this.#line[this.#pos] as number) : -1;
  }

  atLiteral(): boolean {
    return this.#pos >= this.#line.length && this.#part < this.#frame.literals.length;
  }

  atEnd(): boolean {
    return this.#pos >= this.#line.length && this.#part >= this.#frame.literals.length;
  }

  end(): void {
    if (!this.atEnd()) throw new ParseError('Unexpected extra arguments');
  }

  sp(): void {
    if (this.peek() !== 0x20) throw new ParseError('Expected a space');
    this.#pos++;
  }

  /** Consumes `c` if it is next. */
  eat(c: number): boolean {
    if (this.peek() !== c) return false;
    this.#pos++;
    return true;
  }

  expect(c: number, what: string): void {
    if (!this.eat(c)) throw new ParseError(`Expected ${what}`);
  }

  /** Case-insensitive keyword match; consumes it when it matches and ends there. */
  keyword(word: string): boolean {
    const line = this.#line;
    const n = word.length;
    if (this.#pos + n > line.length) return false;
    if (
      line
        .subarray(this.#pos, this.#pos + n)
        .toString('latin1')
        .toUpperCase() !== word
    )
      return false;
    const next = this.#pos + n < line.length ? (line[this.#pos + n] as number) : -1;
    // A keyword ends where an atom would; "[" may follow directly (BODY[...], BINARY[...]).
    if (next !== -1 && isAtomChar(next) && next !== 0x5b) return false;
    this.#pos += n;
    return true;
  }

  /** 1*ATOM-CHAR; `extra` allows more characters (e.g. "]" for astring, "*%" for list). */
  atom(extra = ''): string {
    const line = this.#line;
    const start = this.#pos;
    while (this.#pos < line.length) {
      const c = line[this.#pos] as number;
      if (!(isAtomChar(c) || (extra !== '' && extra.includes(String.fromCharCode(c))))) break;
      this.#pos++;
    }
    if (this.#pos === start) throw new ParseError('Expected an atom');
    return line.subarray(start, this.#pos).toString('latin1');
  }

  /** A run of characters up to a space, ")" or the end: for numbers, sets, dates. */
  word(): string {
    const line = this.#line;
    const start = this.#pos;
    while (this.#pos < line.length) {
      const c = line[this.#pos] as number;
      if (c === 0x20 || c === 0x29 || c === 0x28) break;
      this.#pos++;
    }
    if (this.#pos === start) throw new ParseError('Expected an argument');
    return line.subarray(start, this.#pos).toString('latin1');
  }

  number(): number {
    const w = this.word();
    if (!/^\d{1,19}$/.test(w)) throw new ParseError(`Expected a number, got ${w.slice(0, 20)}`);
    const n = Number(w);
    if (!Number.isSafeInteger(n)) throw new ParseError('Number out of range');
    return n;
  }

  /** quoted = DQUOTE *QUOTED-CHAR DQUOTE, with \" and \\ escapes; UTF-8 allowed (RFC 9051). */
  quoted(): string {
    this.expect(0x22, 'a quoted string');
    const line = this.#line;
    const bytes: number[] = [];
    for (;;) {
      if (this.#pos >= line.length) throw new ParseError('Unterminated quoted string');
      const c = line[this.#pos++] as number;
      if (c === 0x22) break;
      if (c === 0x5c) {
        const e = line[this.#pos++];
        if (e !== 0x22 && e !== 0x5c) throw new ParseError('Bad escape in quoted string');
        bytes.push(e);
      } else if (c === 0x0d || c === 0x0a || c === 0) {
        throw new ParseError('Bad character in quoted string');
      } else {
        bytes.push(c);
      }
    }
    return Buffer.from(bytes).toString('utf8');
  }

  /** The literal at this position (the end of the current line segment). */
  literal(): Literal {
    if (!this.atLiteral()) throw new ParseError('Expected a literal');
    const lit = this.#frame.literals[this.#part] as Literal;
    this.#part++;
    this.#pos = 0;
    return lit;
  }

  /** string = quoted / literal, as text. */
  string(): string {
    if (this.peek() === 0x22) return this.quoted();
    const lit = this.literal();
    if (!Buffer.isBuffer(lit)) throw new ParseError('Literal too large here');
    if (lit.includes(0)) throw new ParseError('NUL in literal');
    return lit.toString('utf8');
  }

  /** astring = 1*ASTRING-CHAR / string. */
  astring(): string {
    if (this.peek() === 0x22 || this.atLiteral()) return this.string();
    return this.atom(']');
  }

  /** nstring = string / NIL. */
  nstring(): string | null {
    if (this.keyword('NIL')) return null;
    return this.string();
  }

  /** list-mailbox = 1*list-char / string (list-char adds "%", "*" and "]"). */
  listMailbox(): string {
    if (this.peek() === 0x22 || this.atLiteral()) return this.string();
    return this.atom('%*]');
  }

  /** "(" item *(SP item) ")"; `allowEmpty` for flag lists and the like. */
  list<T>(item: () => T, allowEmpty = false): T[] {
    this.expect(0x28, '"("');
    if (++this.#depth > MAX_DEPTH) throw new ParseError('Nested too deeply');
    const out: T[] = [];
    if (this.eat(0x29)) {
      this.#depth--;
      if (!allowEmpty) throw new ParseError('Empty list');
      return out;
    }
    for (;;) {
      out.push(item());
      if (this.eat(0x29)) break;
      this.sp();
    }
    this.#depth--;
    return out;
  }

  /** Runs `fn` one nesting level deeper (for recursive grammars such as search keys). */
  nested<T>(fn: () => T): T {
    if (++this.#depth > MAX_DEPTH) throw new ParseError('Nested too deeply');
    try {
      return fn();
    } finally {
      this.#depth--;
    }
  }
}
