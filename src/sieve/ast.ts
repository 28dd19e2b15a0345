// The typed syntax tree of a Sieve script (RFC 5228 §8.2). Every node carries the line and
// column (1-based, columns in UTF-16 code units) where it starts, for error messages that
// ManageSieve returns (RFC 5804 §1.3).

export interface Pos {
  readonly line: number;
  readonly column: number;
}

/** RFC 5228 §2.4.2: a quoted string or a multi-line `text:` string, escapes and dot-stuffing removed. */
export interface StringNode {
  readonly kind: 'string';
  readonly value: string;
  readonly multiline: boolean;
  readonly pos: Pos;
}

/** RFC 5228 §2.4.2.1: `[ "a", "b" ]`, or one string standing for a list of one. */
export interface StringListNode {
  readonly kind: 'stringlist';
  readonly items: readonly StringNode[];
  readonly bracketed: boolean;
  readonly pos: Pos;
}

/** RFC 5228 §2.4.1: the K/M/G quantifier already applied. */
export interface NumberNode {
  readonly kind: 'number';
  readonly value: number;
  readonly pos: Pos;
}

/** RFC 5228 §2.6.2: `:name`, stored without the colon, lower-cased. */
export interface TagNode {
  readonly kind: 'tag';
  readonly name: string;
  readonly pos: Pos;
}

export type ArgumentNode = StringListNode | NumberNode | TagNode;

/** RFC 5228 §2.6.3 test: identifier, arguments, then a test or test list (allof, anyof, not). */
export interface TestNode {
  readonly kind: 'test';
  /** Lower-cased (identifiers are case-insensitive, RFC 5228 §2.9). */
  readonly name: string;
  readonly args: readonly ArgumentNode[];
  readonly tests: readonly TestNode[];
  /** Whether the tests came in parentheses (a test list) or as one test. */
  readonly testList: boolean;
  readonly pos: Pos;
}

export interface CommandNode {
  readonly kind: 'command';
  readonly name: string;
  readonly args: readonly ArgumentNode[];
  readonly tests: readonly TestNode[];
  readonly testList: boolean;
  /** The `{ ... }` block, or null when the command ended with `;`. */
  readonly block: readonly CommandNode[] | null;
  readonly pos: Pos;
}

export interface Script {
  readonly commands: readonly CommandNode[];
}

/** One error of a script, as `line N: message` for people and ManageSieve. */
export interface SieveError {
  readonly line: number;
  readonly column: number;
  readonly message: string;
}

/** Thrown by the lexer and parser at the first syntax error (validate() collects, never throws). */
export class SieveSyntaxError extends Error {
  readonly line: number;
  readonly column: number;
  readonly reason: string;
  constructor(line: number, column: number, reason: string) {
    super(`line ${line}: ${reason}`);
    this.line = line;
    this.column = column;
    this.reason = reason;
  }
}

export function formatError(e: SieveError): string {
  return `line ${e.line}: error: ${e.message}`;
}
