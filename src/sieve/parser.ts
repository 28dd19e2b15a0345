// Sieve grammar (RFC 5228 §8.2), recursive descent over the lexer's tokens. Pure and bounded:
// script size, nesting depth (blocks and tests together), nodes, string-list and argument
// counts are capped by LIMITS.sieve. Throws SieveSyntaxError at the first syntax error.

import { LIMITS } from '../core/limits.ts';
import {
  type ArgumentNode,
  type CommandNode,
  type Script,
  SieveSyntaxError,
  type StringNode,
  type TestNode,
} from './ast.ts';
import { lexer, type Token } from './lexer.ts';

const decoder = new TextDecoder('utf-8', { fatal: true });

/** Parses a script given as text or as its bytes (RFC 5228 §1: UTF-8). */
export function parseScript(source: string | Uint8Array): Script {
  let text: string;
  if (typeof source === 'string') {
    if (source.length > LIMITS.sieve.maxScriptBytes) throw new SieveSyntaxError(1, 1, 'script too large');
    text = source;
  } else {
    if (source.byteLength > LIMITS.sieve.maxScriptBytes) throw new SieveSyntaxError(1, 1, 'script too large');
    try {
      text = decoder.decode(source);
    } catch {
      throw new SieveSyntaxError(1, 1, 'script is not valid UTF-8');
    }
  }
  return new Parser(lexer(text)).script();
}

class Parser {
  private nodes = 0;
  private readonly scan: () => Token;
  private ahead: Token;

  constructor(scan: () => Token) {
    this.scan = scan;
    this.ahead = scan();
  }

  private peek(): Token {
    return this.ahead;
  }

  private next(): Token {
    const t = this.ahead;
    if (t.type !== 'eof') this.ahead = this.scan();
    return t;
  }

  private fail(t: Token, reason: string): never {
    throw new SieveSyntaxError(t.pos.line, t.pos.column, reason);
  }

  private count(t: Token, depth: number): void {
    if (++this.nodes > LIMITS.sieve.maxNodes) this.fail(t, 'script has too many commands and tests');
    if (depth > LIMITS.sieve.maxNesting) this.fail(t, 'nesting too deep');
  }

  script(): Script {
    const commands = this.commands(0);
    const t = this.peek();
    if (t.type !== 'eof') this.fail(t, `unexpected ${describe(t)}, expecting a command`);
    return { commands };
  }

  // commands = *command; ends at "}" or the end of the script.
  private commands(depth: number): CommandNode[] {
    const out: CommandNode[] = [];
    for (;;) {
      const t = this.peek();
      if (t.type === 'eof' || (t.type === 'punct' && t.value === '}')) return out;
      out.push(this.command(depth));
    }
  }

  // command = identifier arguments (";" / block)
  private command(depth: number): CommandNode {
    const t = this.next();
    if (t.type !== 'identifier') this.fail(t, `unexpected ${describe(t)}, expecting a command name`);
    this.count(t, depth);
    const { args, tests, testList } = this.arguments(depth, t.value);
    const end = this.next();
    if (end.type === 'punct' && end.value === ';')
      return { kind: 'command', name: t.value, args, tests, testList, block: null, pos: t.pos };
    if (end.type === 'punct' && end.value === '{') {
      const block = this.commands(depth + 1);
      const close = this.next();
      if (!(close.type === 'punct' && close.value === '}'))
        this.fail(close, `unexpected ${describe(close)}, expecting '}' to close the block of '${t.value}'`);
      return { kind: 'command', name: t.value, args, tests, testList, block, pos: t.pos };
    }
    return this.fail(end, `unexpected ${describe(end)}, expecting ';' or '{' after '${t.value}'`);
  }

  // arguments = *argument [ test / test-list ]
  private arguments(depth: number, owner: string): { args: ArgumentNode[]; tests: TestNode[]; testList: boolean } {
    const args: ArgumentNode[] = [];
    for (;;) {
      const t = this.peek();
      if (args.length > LIMITS.sieve.maxArguments) this.fail(t, `too many arguments for '${owner}'`);
      if (t.type === 'number') {
        this.next();
        args.push({ kind: 'number', value: t.value, pos: t.pos });
      } else if (t.type === 'tag') {
        this.next();
        args.push({ kind: 'tag', name: t.value, pos: t.pos });
      } else if (t.type === 'string') {
        this.next();
        args.push({ kind: 'stringlist', items: [stringNode(t)], bracketed: false, pos: t.pos });
      } else if (t.type === 'punct' && t.value === '[') {
        args.push(this.stringList());
      } else break;
    }
    const t = this.peek();
    if (t.type === 'identifier') return { args, tests: [this.test(depth + 1)], testList: false };
    if (t.type === 'punct' && t.value === '(') {
      this.next();
      const tests: TestNode[] = [this.test(depth + 1)];
      for (;;) {
        const s = this.next();
        if (s.type === 'punct' && s.value === ')') break;
        if (!(s.type === 'punct' && s.value === ','))
          this.fail(s, `unexpected ${describe(s)}, expecting ',' or ')' in a test list`);
        if (tests.length >= LIMITS.sieve.maxArguments) this.fail(s, 'test list too long');
        tests.push(this.test(depth + 1));
      }
      return { args, tests, testList: true };
    }
    return { args, tests: [], testList: false };
  }

  // string-list = "[" string *("," string) "]" / string
  private stringList(): ArgumentNode {
    const open = this.next();
    const items: StringNode[] = [];
    for (;;) {
      const s = this.next();
      if (s.type !== 'string') this.fail(s, `unexpected ${describe(s)}, expecting a string in a string list`);
      items.push(stringNode(s));
      if (items.length > LIMITS.sieve.maxStringListLength) this.fail(s, 'string list too long');
      const sep = this.next();
      if (sep.type === 'punct' && sep.value === ']') break;
      if (!(sep.type === 'punct' && sep.value === ','))
        this.fail(sep, `unexpected ${describe(sep)}, expecting ',' or ']' in a string list`);
    }
    return { kind: 'stringlist', items, bracketed: true, pos: open.pos };
  }

  // test = identifier arguments
  private test(depth: number): TestNode {
    const t = this.next();
    if (t.type !== 'identifier') this.fail(t, `unexpected ${describe(t)}, expecting a test name`);
    this.count(t, depth);
    const { args, tests, testList } = this.arguments(depth, t.value);
    return { kind: 'test', name: t.value, args, tests, testList, pos: t.pos };
  }
}

function stringNode(t: Token & { type: 'string' }): StringNode {
  return { kind: 'string', value: t.value, multiline: t.multiline, pos: t.pos };
}

function describe(t: Token): string {
  switch (t.type) {
    case 'eof':
      return 'end of script';
    case 'punct':
      return `'${t.value}'`;
    case 'identifier':
      return `identifier '${t.value}'`;
    case 'tag':
      return `tag ':${t.value}'`;
    case 'number':
      return 'number';
    case 'string':
      return 'string';
  }
}
