// Semantic checks of a parsed Sieve script, as Pigeonhole's sievec does at compile time:
// `require` first and only known capabilities (RFC 5228 §3.2), known commands and tests with
// their argument shapes (§2.6, §2.7), elsif/else after if (§3.1), tests only where a command
// takes them. Pure; collects errors with line numbers (RFC 5804 §1.3) and never throws.

import { LIMITS } from '../core/limits.ts';
import {
  type ArgumentNode,
  type CommandNode,
  type Pos,
  type Script,
  type SieveError,
  SieveSyntaxError,
  type TestNode,
} from './ast.ts';
import { parseScript } from './parser.ts';
import { CAPABILITIES, COMMANDS, RELATIONS, type Shape, type Spec, type TagSpec, TESTS } from './specs.ts';

/** RFC 5228 §2.7.1 match types; :count and :value need relational (RFC 5231 §4). */
const MATCH_TYPES: Readonly<Record<string, string | undefined>> = {
  is: undefined,
  contains: undefined,
  matches: undefined,
  count: 'relational',
  value: 'relational',
};
/** RFC 5228 §2.7.4 address parts; :user and :detail need subaddress (RFC 5233 §4). */
const ADDRESS_PARTS: Readonly<Record<string, string | undefined>> = {
  all: undefined,
  localpart: undefined,
  domain: undefined,
  user: 'subaddress',
  detail: 'subaddress',
};
/** RFC 5228 §2.7.3: i;octet and i;ascii-casemap need no require; others do. */
const COMPARATORS: Readonly<Record<string, string | undefined>> = {
  'i;octet': undefined,
  'i;ascii-casemap': undefined,
  'i;ascii-numeric': 'comparator-i;ascii-numeric',
};

export interface CheckResult {
  readonly ok: boolean;
  readonly errors: readonly SieveError[];
  readonly script: Script | null;
}

/** Parses and validates; the errors are sorted by line. */
export function checkScript(source: string | Uint8Array): CheckResult {
  let script: Script;
  try {
    script = parseScript(source);
  } catch (e) {
    if (e instanceof SieveSyntaxError)
      return { ok: false, errors: [{ line: e.line, column: e.column, message: e.reason }], script: null };
    throw e;
  }
  const errors = validate(script);
  return { ok: errors.length === 0, errors, script };
}

export function validate(script: Script): SieveError[] {
  return new Validator().run(script);
}

class Validator {
  private readonly errors: SieveError[] = [];
  private readonly required = new Set<string>();

  run(script: Script): SieveError[] {
    let preamble = true;
    for (const c of script.commands) {
      if (c.name === 'require' && preamble) this.require(c);
      else preamble = false;
    }
    this.commands(script.commands, 0);
    return this.errors.sort((a, b) => a.line - b.line || a.column - b.column);
  }

  private error(pos: Pos, message: string): void {
    if (this.errors.length < LIMITS.sieve.maxErrors) this.errors.push({ line: pos.line, column: pos.column, message });
  }

  private require(c: CommandNode): void {
    const arg = c.args[0];
    if (c.args.length !== 1 || arg?.kind !== 'stringlist' || c.tests.length > 0 || c.block !== null) return; // reported by commands()
    for (const s of arg.items) {
      if (CAPABILITIES.has(s.value)) this.required.add(s.value);
      else this.error(s.pos, `require: unknown Sieve capability '${s.value}'`);
    }
  }

  private has(ext: string | undefined): boolean {
    return ext === undefined || this.required.has(ext);
  }

  private commands(list: readonly CommandNode[], depth: number): void {
    let preamble = depth === 0;
    let previous: string | null = null;
    for (const c of list) {
      if (c.name === 'require') {
        if (!preamble)
          this.error(c.pos, 'require commands can only be placed at top level at the beginning of the file');
      } else preamble = false;
      if ((c.name === 'elsif' || c.name === 'else') && previous !== 'if' && previous !== 'elsif')
        this.error(c.pos, `'${c.name}' must follow an 'if' or 'elsif' command`);
      previous = c.name;
      const spec = COMMANDS[c.name];
      if (spec === undefined || !this.has(spec.ext)) {
        this.error(c.pos, `unknown command '${c.name}'${spec?.ext ? ` (missing require "${spec.ext}")` : ''}`);
        continue;
      }
      if (spec.block && c.block === null) this.error(c.pos, `'${c.name}' needs a block`);
      if (!spec.block && c.block !== null) this.error(c.pos, `'${c.name}' takes no block`);
      this.node(c, spec, `command '${c.name}'`);
      if (c.block !== null) this.commands(c.block, depth + 1);
    }
  }

  private test(t: TestNode): void {
    const spec = TESTS[t.name];
    if (spec === undefined || !this.has(spec.ext)) {
      this.error(t.pos, `unknown test '${t.name}'${spec?.ext ? ` (missing require "${spec.ext}")` : ''}`);
      return;
    }
    this.node(t, spec, `test '${t.name}'`);
  }

  // RFC 5228 §2.6: tagged arguments first, then positional ones, then tests.
  private node(n: CommandNode | TestNode, spec: Spec, what: string): void {
    const groups = new Map<string, string>();
    const seen = new Set<string>();
    const positional: ArgumentNode[] = [];
    const args = n.args;
    let comparator: string | undefined;
    let matchType: string | undefined;
    for (let i = 0; i < args.length; i++) {
      const a = args[i] as ArgumentNode;
      if (a.kind !== 'tag') {
        positional.push(a);
        continue;
      }
      if (positional.length > 0) {
        this.error(a.pos, `${what}: tagged argument ':${a.name}' after a positional argument`);
        return;
      }
      const tag = this.tagSpec(spec, a.name);
      if (tag === undefined) {
        this.error(a.pos, `${what}: unknown tagged argument ':${a.name}'`);
        return;
      }
      if (seen.has(a.name)) {
        this.error(a.pos, `${what}: tag ':${a.name}' given more than once`);
        return;
      }
      seen.add(a.name);
      if (tag.group !== undefined) {
        const other = groups.get(tag.group);
        if (other !== undefined) {
          this.error(a.pos, `${what}: tags ':${other}' and ':${a.name}' exclude each other`);
          return;
        }
        groups.set(tag.group, a.name);
      }
      if (tag.arg !== undefined) {
        const value = args[i + 1];
        if (value === undefined || !fits(value, tag.arg)) {
          this.error(a.pos, `${what}: tag ':${a.name}' needs a ${tag.arg} argument`);
          return;
        }
        i++;
        const literal = value.kind === 'stringlist' ? (value.items[0]?.value ?? '') : '';
        if (a.name === 'comparator') comparator = literal.toLowerCase();
        // RFC 5260 §6: field numbers start at 1.
        if (a.name === 'index' && value.kind === 'number' && value.value < 1) {
          this.error(value.pos, `${what}: the :index field number must be at least 1`);
          return;
        }
        if (a.name === 'count' || a.name === 'value') {
          if (!RELATIONS.has(literal)) {
            this.error(value.pos, `${what}: unknown relational operator '${literal}'`);
            return;
          }
        }
      }
      if (tag.group === 'match') matchType = a.name;
    }
    if (spec.requiredGroup !== undefined && !groups.has(spec.requiredGroup))
      this.error(n.pos, `${what}: one of the tags ${tagsOf(spec, spec.requiredGroup)} must be given`);
    if (seen.has('last') && spec.index && !seen.has('index'))
      this.error(n.pos, `${what}: the :last tag cannot be given without the :index tag`);
    if (comparator !== undefined) {
      if (!(comparator in COMPARATORS) || !this.has(COMPARATORS[comparator])) {
        this.error(n.pos, `${what}: unknown comparator '${comparator}'`);
        return;
      }
      // RFC 4790 §9.1: i;ascii-numeric offers equality and ordering, no substring match.
      if (comparator === 'i;ascii-numeric' && (matchType === 'contains' || matchType === 'matches'))
        this.error(n.pos, `${what}: the :${matchType} match type cannot be used with the comparator 'i;ascii-numeric'`);
    }
    const shapes = spec.positional.find(
      (p) => p.length === positional.length && p.every((s, k) => fits(positional[k] as ArgumentNode, s)),
    );
    if (shapes === undefined) {
      this.error(n.pos, `${what}: wrong arguments (expected ${spec.positional.map(describeShapes).join(' or ')})`);
      return;
    }
    this.literals(n, positional, what);
    if (spec.tests === undefined && n.tests.length > 0) this.error(n.pos, `${what} takes no test`);
    if (spec.tests === 'one' && (n.tests.length !== 1 || n.testList))
      this.error(n.pos, `${what} needs exactly one test`);
    if (spec.tests === 'list' && (n.tests.length === 0 || !n.testList))
      this.error(n.pos, `${what} needs a test list in parentheses`);
    for (const t of n.tests) this.test(t);
  }

  private tagSpec(spec: Spec, name: string): TagSpec | undefined {
    const own = spec.tags?.[name];
    if (own !== undefined) return this.has(own.ext) ? own : undefined;
    if (spec.match) {
      if (name === 'comparator') return { arg: 'string' };
      if (name in MATCH_TYPES && this.has(MATCH_TYPES[name]))
        return { group: 'match', ...(name === 'count' || name === 'value' ? { arg: 'string' as const } : {}) };
    }
    if (spec.addressPart && name in ADDRESS_PARTS && this.has(ADDRESS_PARTS[name])) return { group: 'addresspart' };
    if (spec.index && this.has('index')) {
      if (name === 'index') return { arg: 'number' };
      if (name === 'last') return {};
    }
    return undefined;
  }

  // Checks of literal values sievec makes at compile time.
  private literals(n: CommandNode | TestNode, positional: ArgumentNode[], what: string): void {
    const first = positional[0];
    const str = (a: ArgumentNode | undefined): string | undefined =>
      a?.kind === 'stringlist' && !a.bracketed ? a.items[0]?.value : undefined;
    if (n.name === 'set' && n.kind === 'command') {
      const name = str(first);
      if (name !== undefined && !isVariableName(name))
        this.error(first?.pos ?? n.pos, `${what}: invalid variable name '${name}'`);
    }
    // RFC 5232 §3-4 and RFC 6609 §3.4: the variable-name forms need variables.
    const needsVariables =
      n.name === 'global' ||
      (['setflag', 'addflag', 'removeflag', 'hasflag'].includes(n.name) && positional.length === 2);
    if (needsVariables && !this.has('variables')) this.error(n.pos, `${what}: this form needs require "variables"`);
    // RFC 5228 §5.1: address tests only address headers; §5.4: envelope parts "from" and "to"
    // (and "auth", RFC 4954, as Pigeonhole).
    if (n.kind === 'test' && (n.name === 'address' || n.name === 'envelope') && first?.kind === 'stringlist') {
      const allowed = n.name === 'address' ? ADDRESS_HEADERS : ENVELOPE_PARTS;
      for (const item of first.items)
        if (!item.value.includes('${') && !allowed.has(item.value.toLowerCase()))
          this.error(item.pos, `${what}: '${item.value}' is not allowed here`);
    }
    // RFC 5230 §4.4: :from is an address (a name and angle brackets allowed).
    if (n.name === 'vacation') {
      const tags = n.args;
      for (let k = 0; k + 1 < tags.length; k++) {
        const tag = tags[k] as ArgumentNode;
        const from = str(tags[k + 1]);
        if (
          tag.kind === 'tag' &&
          tag.name === 'from' &&
          from !== undefined &&
          !from.includes('${') &&
          !looksLikeAddress(addressOf(from))
        )
          this.error(tag.pos, `${what}: invalid :from address '${from}'`);
      }
    }
    // RFC 5228 §4.2: the redirect address must be a valid address (sievec checks literals).
    if (n.name === 'redirect' && n.kind === 'command') {
      const to = str(first);
      if (to !== undefined && !(to.includes('${') && this.has('variables')) && !looksLikeAddress(addressOf(to)))
        this.error(first?.pos ?? n.pos, `${what}: invalid redirect address '${to}'`);
    }
  }
}

function fits(a: ArgumentNode, shape: Shape): boolean {
  if (shape === 'number') return a.kind === 'number';
  if (shape === 'string') return a.kind === 'stringlist' && !a.bracketed;
  return a.kind === 'stringlist';
}

function describeShapes(p: readonly Shape[]): string {
  return p.length === 0 ? 'none' : p.join(', ');
}

function tagsOf(spec: Spec, group: string): string {
  return Object.entries(spec.tags ?? {})
    .filter(([, t]) => t.group === group)
    .map(([k]) => `:${k}`)
    .join(', ');
}

/** RFC 5229 §3: a plain identifier (namespaces are not offered); no match variables. */
function isVariableName(name: string): boolean {
  if (name.length === 0 || name.length > 128) return false;
  const c0 = name.charCodeAt(0);
  if (c0 >= 0x30 && c0 <= 0x39) return false;
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    const ok = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c === 0x5f;
    if (!ok) return false;
  }
  return true;
}

/** local@domain with both parts present and no white space (RFC 5322 §3.4.1, loosely). */
function looksLikeAddress(a: string): boolean {
  const at = a.lastIndexOf('@');
  if (at <= 0 || at === a.length - 1) return false;
  for (let i = 0; i < a.length; i++) {
    const c = a.charCodeAt(i);
    if (c <= 0x20 || c === 0x7f || c === 0x3c || c === 0x3e) return false;
  }
  return true;
}

/** The address inside `Name <addr>` or `<addr>`, else the text itself. */
function addressOf(s: string): string {
  const t = s.trim();
  if (!t.endsWith('>')) return t;
  const open = t.lastIndexOf('<');
  return open < 0 ? t : t.slice(open + 1, -1);
}

/** Headers the address test accepts (Pigeonhole's list, RFC 5228 §5.1). */
const ADDRESS_HEADERS: ReadonlySet<string> = new Set([
  'from',
  'sender',
  'reply-to',
  'to',
  'cc',
  'bcc',
  'resent-from',
  'resent-sender',
  'resent-to',
  'resent-cc',
  'resent-bcc',
  'return-receipt-to',
  'errors-to',
  'delivered-to',
  'x-original-to',
]);
const ENVELOPE_PARTS: ReadonlySet<string> = new Set(['from', 'to', 'auth']);
