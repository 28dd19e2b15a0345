// Sieve lexical analysis (RFC 5228 §8.1): a hand-written scanner, one pass, no regular
// expressions, every token bounded (LIMITS.sieve). Pure: text in, tokens out.

import { LIMITS } from '../core/limits.ts';
import { type Pos, SieveSyntaxError } from './ast.ts';

export type Token =
  | { readonly type: 'identifier'; readonly value: string; readonly pos: Pos }
  | { readonly type: 'tag'; readonly value: string; readonly pos: Pos }
  | { readonly type: 'number'; readonly value: number; readonly pos: Pos }
  | { readonly type: 'string'; readonly value: string; readonly multiline: boolean; readonly pos: Pos }
  | { readonly type: 'punct'; readonly value: '[' | ']' | '(' | ')' | '{' | '}' | ',' | ';'; readonly pos: Pos }
  | { readonly type: 'eof'; readonly pos: Pos };

const PUNCT = '[](){},;';

function isAlpha(c: number): boolean {
  return (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a);
}
function isDigit(c: number): boolean {
  return c >= 0x30 && c <= 0x39;
}
function isIdentChar(c: number): boolean {
  return isAlpha(c) || isDigit(c) || c === 0x5f;
}

/** Scans the whole script into tokens; throws SieveSyntaxError at the first lexical error. */
export function tokenize(text: string): Token[] {
  const next = lexer(text);
  const tokens: Token[] = [];
  for (;;) {
    const t = next();
    tokens.push(t);
    if (t.type === 'eof') return tokens;
  }
}

/** A scanner handing out one token per call (the parser stops at its first error without
 *  scanning the rest); after the end it keeps returning the eof token. */
export function lexer(text: string): () => Token {
  let i = 0;
  let produced = 0;
  let pending: Token | undefined;
  let line = 1;
  let lineStart = 0;
  const n = text.length;
  const pos = (at: number): Pos => ({ line, column: at - lineStart + 1 });
  const fail = (at: number, reason: string): never => {
    throw new SieveSyntaxError(line, at - lineStart + 1, reason);
  };
  const newline = (at: number): void => {
    line++;
    lineStart = at + 1;
  };
  const maxTokens = LIMITS.sieve.maxNodes * 8;
  const emit = (t: Token): void => {
    pending = t;
  };

  return () => {
    if (++produced > maxTokens) fail(i, 'script has too many tokens');
    const t = scan();
    return t;
  };

  function scan(): Token {
    while (i < n) {
      const c = text.charCodeAt(i);
      if (c === 0x20 || c === 0x09 || c === 0x0d) {
        i++;
        continue;
      }
      if (c === 0x0a) {
        newline(i);
        i++;
        continue;
      }
      // RFC 5228 §2.3: hash comments run to the end of the line.
      if (c === 0x23) {
        while (i < n && text.charCodeAt(i) !== 0x0a) i++;
        continue;
      }
      // RFC 5228 §2.3: bracketed comments do not nest.
      if (c === 0x2f && text.charCodeAt(i + 1) === 0x2a) {
        const start = pos(i);
        i += 2;
        for (;;) {
          if (i >= n) throw new SieveSyntaxError(start.line, start.column, 'unterminated bracket comment');
          const d = text.charCodeAt(i);
          if (d === 0x2a && text.charCodeAt(i + 1) === 0x2f) {
            i += 2;
            break;
          }
          if (d === 0x0a) newline(i);
          i++;
        }
        continue;
      }
      const at = pos(i);
      if (PUNCT.includes(text[i] as string)) {
        i++;
        return { type: 'punct', value: text[i - 1] as '[', pos: at };
      }
      // RFC 5228 §2.4.1: number = 1*DIGIT [ QUANTIFIER ].
      if (isDigit(c)) {
        let value = 0;
        while (i < n && isDigit(text.charCodeAt(i))) {
          value = value * 10 + (text.charCodeAt(i) - 0x30);
          if (value > Number.MAX_SAFE_INTEGER) fail(i, 'number too large');
          i++;
        }
        const q = text[i];
        const mult =
          q === 'K' || q === 'k' ? 1024 : q === 'M' || q === 'm' ? 1024 ** 2 : q === 'G' || q === 'g' ? 1024 ** 3 : 1;
        if (mult !== 1) i++;
        value *= mult;
        if (value > Number.MAX_SAFE_INTEGER) fail(i, 'number too large');
        if (i < n && isIdentChar(text.charCodeAt(i))) fail(i, 'invalid character after number');
        return { type: 'number', value, pos: at };
      }
      // RFC 5228 §2.6.2: tag = ":" identifier.
      if (c === 0x3a) {
        i++;
        const start = i;
        if (i >= n || !(isAlpha(text.charCodeAt(i)) || text.charCodeAt(i) === 0x5f))
          fail(i, "':' must be followed by a tag name");
        while (i < n && isIdentChar(text.charCodeAt(i))) i++;
        if (i - start > 128) fail(start, 'tag name too long');
        return { type: 'tag', value: text.slice(start, i).toLowerCase(), pos: at };
      }
      if (isAlpha(c) || c === 0x5f) {
        const start = i;
        while (i < n && isIdentChar(text.charCodeAt(i))) i++;
        if (i - start > 128) fail(start, 'identifier too long');
        const word = text.slice(start, i).toLowerCase();
        // RFC 5228 §2.4.2: multi-line = "text:" *(SP / HTAB) (hash-comment / CRLF) ... "." CRLF
        if (word === 'text' && text.charCodeAt(i) === 0x3a) {
          i = multiline(i + 1, at);
          return take();
        }
        return { type: 'identifier', value: word, pos: at };
      }
      if (c === 0x22) {
        i = quoted(i + 1, at);
        return take();
      }
      fail(i, `unexpected character ${JSON.stringify(text[i])}`);
    }
    return { type: 'eof', pos: pos(i) };
  }

  function take(): Token {
    const t = pending as Token;
    pending = undefined;
    return t;
  }

  // RFC 5228 §2.4.2: a backslash quotes the next character; "\\" and "\"" matter, any other
  // escaped character stands for itself (§2.4.2, undefined escapes).
  function quoted(from: number, at: Pos): number {
    let j = from;
    const parts: string[] = [];
    let runStart = j;
    let length = 0;
    for (;;) {
      if (j >= n) throw new SieveSyntaxError(at.line, at.column, 'unterminated quoted string');
      const d = text.charCodeAt(j);
      if (d === 0x22) break;
      if (d === 0x5c) {
        parts.push(text.slice(runStart, j));
        j++;
        if (j >= n) throw new SieveSyntaxError(at.line, at.column, 'unterminated quoted string');
        if (text.charCodeAt(j) === 0x0a) newline(j);
        runStart = j;
      } else if (d === 0x0a) newline(j);
      j++;
      if (++length > LIMITS.sieve.maxStringLength) fail(j, 'string too long');
    }
    parts.push(text.slice(runStart, j));
    emit({ type: 'string', value: parts.join(''), multiline: false, pos: at });
    return j + 1;
  }

  function multiline(from: number, at: Pos): number {
    let j = from;
    while (j < n && (text.charCodeAt(j) === 0x20 || text.charCodeAt(j) === 0x09)) j++;
    if (text.charCodeAt(j) === 0x23) while (j < n && text.charCodeAt(j) !== 0x0a) j++;
    else if (text.charCodeAt(j) === 0x0d) j++;
    if (j >= n || text.charCodeAt(j) !== 0x0a) fail(j, "'text:' must be followed by the end of the line");
    newline(j);
    j++;
    const lines: string[] = [];
    let length = 0;
    for (;;) {
      if (j >= n)
        throw new SieveSyntaxError(at.line, at.column, "unterminated 'text:' string (no line with a single '.')");
      let end = j;
      while (end < n && text.charCodeAt(end) !== 0x0a) end++;
      let content = text.slice(j, end);
      if (content.endsWith('\r')) content = content.slice(0, -1);
      if (end < n) newline(end);
      j = end + 1;
      if (content === '.') break;
      // Dot-stuffing: a line starting with "." had one more added.
      if (content.startsWith('.')) content = content.slice(1);
      length += content.length + 2;
      if (length > LIMITS.sieve.maxStringLength) fail(j, 'string too long');
      lines.push(`${content}\r\n`);
      if (end >= n)
        throw new SieveSyntaxError(at.line, at.column, "unterminated 'text:' string (no line with a single '.')");
    }
    emit({ type: 'string', value: lines.join(''), multiline: true, pos: at });
    return j;
  }
}
