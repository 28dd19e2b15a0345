// The state of one run (steps, flags, includes, actions) and of one script in it (its
// capabilities, variables and match variables: RFC 5229 §3, RFC 6609 §3.4 globals).

import { LIMITS } from '../../core/limits.ts';
import type { ArgumentNode, CommandNode, Script, StringNode, TestNode } from '../ast.ts';
import type { SieveContext, SieveEnvelope, SieveMessage } from '../run-types.ts';
import { ActionSet, SieveRuntimeError } from './actions.ts';
import { MatchBudget } from './match.ts';
import { capValue, decodeEncodedCharacters, expandVariables } from './strings.ts';

/** stop (RFC 5228 §3.3) and return (RFC 6609 §3.3) unwind the interpreter. */
export class Signal {
  readonly kind: 'stop' | 'return';
  constructor(kind: 'stop' | 'return') {
    this.kind = kind;
  }
}

export interface Args {
  /** Tags given, with the argument that follows those that take one (else null). */
  readonly tags: Map<string, ArgumentNode | null>;
  readonly pos: ArgumentNode[];
}

/** Tags followed by an argument, over all commands and tests (specs.ts). */
const TAG_WITH_ARG = new Set([
  'comparator',
  'count',
  'value',
  'index',
  'zone',
  'days',
  'seconds',
  'subject',
  'from',
  'addresses',
  'handle',
  'header',
  'uniqueid',
  'content',
  'flags',
]);

const SYSTEM_FLAGS = new Map(
  ['\\Answered', '\\Flagged', '\\Deleted', '\\Seen', '\\Draft'].map((f) => [f.toLowerCase(), f]),
);

export class State {
  readonly actions = new ActionSet();
  readonly budget = new MatchBudget();
  steps = 0;
  /** RFC 5232 §3: the internal flags variable. */
  flags: string[] = [];
  includes = 0;
  readonly included = new Set<string>();
  readonly active: string[] = [];
  /** RFC 7352: results of duplicate tests of this run by handle and id. */
  readonly duplicates = new Map<string, boolean>();
  bodyCache: Buffer | null = null;
  readonly msg: SieveMessage;
  readonly envelope: SieveEnvelope;
  readonly ctx: SieveContext;

  constructor(msg: SieveMessage, envelope: SieveEnvelope, ctx: SieveContext) {
    this.msg = msg;
    this.envelope = envelope;
    this.ctx = ctx;
  }

  async step(): Promise<void> {
    if (++this.steps > LIMITS.sieve.maxSteps) throw new SieveRuntimeError('too many steps (script too complex)');
    if ((this.steps & 1023) === 0) await new Promise((r) => setImmediate(r));
  }

  /** RFC 5232 §3: a list of flag strings, each with flags separated by spaces, deduplicated
   *  (flags are case-insensitive). */
  splitFlags(list: readonly string[]): string[] {
    const out: string[] = [];
    const seen = new Set<string>();
    for (const s of list)
      for (const f of s.split(' ')) {
        if (f.length === 0 || seen.has(f.toLowerCase())) continue;
        seen.add(f.toLowerCase());
        out.push(f);
      }
    return out;
  }

  /** The flags an action can set: system flags in their usual spelling, unknown ones dropped;
   *  keywords as given, or for the implicit keep only IMAP atoms (RFC 3501 §9 flag-keyword) —
   *  both as Pigeonhole does. Delivery checks keywords again when it stores. */
  validFlags(flags: readonly string[], atomsOnly = false): string[] {
    const out: string[] = [];
    for (const f of flags) {
      if (f.startsWith('\\')) {
        const sys = SYSTEM_FLAGS.get(f.toLowerCase());
        if (sys !== undefined) out.push(sys);
      } else if (!atomsOnly || isAtom(f)) out.push(f);
    }
    return out;
  }
}

function isAtom(f: string): boolean {
  if (f.length === 0) return false;
  for (let i = 0; i < f.length; i++) {
    const c = f.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || '(){%*"\\]'.includes(f[i] as string)) return false;
  }
  return true;
}

export class Scope {
  readonly caps: ReadonlySet<string>;
  readonly variables = new Map<string, string>();
  readonly globals: Map<string, string>;
  private readonly declared = new Set<string>();
  private matches: string[] = [];
  private readonly literals = new WeakMap<StringNode, string>();

  private readonly budget: MatchBudget;

  constructor(script: Script, globals: Map<string, string>, budget: MatchBudget) {
    this.budget = budget;
    const caps = new Set<string>();
    for (const c of script.commands) {
      if (c.name !== 'require') break;
      const list = c.args[0];
      if (list?.kind === 'stringlist') for (const s of list.items) caps.add(s.value);
    }
    this.caps = caps;
    this.globals = globals;
  }

  args(n: CommandNode | TestNode): Args {
    const tags = new Map<string, ArgumentNode | null>();
    const pos: ArgumentNode[] = [];
    for (let i = 0; i < n.args.length; i++) {
      const a = n.args[i] as ArgumentNode;
      if (a.kind !== 'tag') pos.push(a);
      else if (TAG_WITH_ARG.has(a.name)) tags.set(a.name, n.args[++i] ?? null);
      else tags.set(a.name, null);
    }
    return { tags, pos };
  }

  /** A string literal after RFC 5228 §2.4.2.4 encoded characters, before variables. */
  literalOf(s: StringNode): string {
    if (!this.caps.has('encoded-character')) return s.value;
    let v = this.literals.get(s);
    if (v === undefined) {
      v = decodeEncodedCharacters(s.value);
      this.literals.set(s, v);
    }
    return v;
  }

  literal(a: ArgumentNode | null | undefined): string {
    return a?.kind === 'stringlist' && a.items[0] ? this.literalOf(a.items[0]) : '';
  }

  expand(s: StringNode): string {
    const v = this.literalOf(s);
    if (!this.caps.has('variables')) return v;
    const out = expandVariables(
      v,
      (name) => this.getVar(name),
      (n) => this.matches[n] ?? '',
    );
    // Expanded text counts against the run's work budget ("${a}${a}..." multiplies a value).
    if (out !== v) this.budget.charge(out.length);
    return out;
  }

  str(a: ArgumentNode | null | undefined): string {
    if (a?.kind === 'number') return String(a.value);
    return a?.kind === 'stringlist' && a.items[0] ? this.expand(a.items[0]) : '';
  }

  list(a: ArgumentNode | null | undefined): string[] {
    return a?.kind === 'stringlist' ? a.items.map((s) => this.expand(s)) : [];
  }

  private table(name: string): Map<string, string> {
    return this.declared.has(name) ? this.globals : this.variables;
  }

  getVar(name: string): string {
    const n = name.toLowerCase();
    return this.table(n).get(n) ?? '';
  }

  setVar(name: string, value: string): void {
    const n = name.toLowerCase();
    const t = this.table(n);
    if (!t.has(n) && t.size >= LIMITS.sieve.maxVariables) throw new SieveRuntimeError('too many variables');
    t.set(n, value);
  }

  declareGlobal(name: string): void {
    this.declared.add(name.toLowerCase());
  }

  /** RFC 5229 §3.2: a successful :matches sets ${0}..${9}, when variables is required. */
  setMatches(caps: readonly string[]): void {
    if (this.caps.has('variables'))
      this.matches = caps.slice(0, LIMITS.sieve.maxMatchVariables).map((c) => capValue(c));
  }
}

/** The address of "addr", "<addr>" or "Name <addr>" when it is local@domain, else null. */
export function validAddress(s: string): string | null {
  let t = s.trim();
  if (t.endsWith('>')) {
    const open = t.lastIndexOf('<');
    if (open < 0) return null;
    t = t.slice(open + 1, -1).trim();
  }
  const at = t.lastIndexOf('@');
  if (at <= 0 || at === t.length - 1) return null;
  for (let i = 0; i < t.length; i++) {
    const c = t.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x3e || c === 0x28 || c === 0x29 || c === 0x2c) return null;
  }
  return t;
}
