// The Sieve interpreter (RFC 5228 §2.10, issue #16): runs a validated script against a message
// and returns the actions for delivery to carry out (src/sieve/run-types.ts). Commands here,
// tests in tests.ts. Bounded: steps, match work, variables, includes, actions (LIMITS.sieve);
// any bound exceeded or action conflict is a run-time error, after which the message is kept
// and no other action is taken (Pigeonhole's behaviour). It yields to the event loop every
// 1024 steps and never blocks it for long.

import { LIMITS } from '../../core/limits.ts';
import type { ArgumentNode, CommandNode, Script, TestNode } from '../ast.ts';
import type { SieveOutcome, SieveRunner } from '../run-types.ts';
import { SieveRuntimeError } from './actions.ts';
import { MatchBudgetExceeded } from './match.ts';
import { type Args, Scope, Signal, State, validAddress } from './state.ts';
import { applyModifiers, capValue, StringTooLong } from './strings.ts';
import { evalTest } from './tests.ts';

export { sieveMessage } from './message.ts';

/** RFC 5228: run `script` for one recipient. Never throws for a script's fault; a failing
 *  context lookup (duplicate store, mailbox list, include) propagates to the caller. */
export const runSieve: SieveRunner = async (script, msg, envelope, ctx) => {
  const st = new State(msg, envelope, ctx);
  try {
    await runScript(st, script, new Scope(script, new Map(), st.budget), 0);
  } catch (e) {
    if (e instanceof SieveRuntimeError || e instanceof MatchBudgetExceeded || e instanceof StringTooLong)
      return { actions: [], implicitKeep: { flags: null }, error: e.message, steps: st.steps };
    if (!(e instanceof Signal) || e.kind !== 'stop') throw e;
  }
  return outcome(st);
};

function outcome(st: State): SieveOutcome {
  const flags = st.validFlags(st.flags, true);
  return {
    actions: st.actions.actions,
    implicitKeep: st.actions.implicitKeep ? { flags: flags.length > 0 ? flags : null } : null,
    error: null,
    steps: st.steps,
  };
}

async function runScript(st: State, script: Script, scope: Scope, depth: number): Promise<void> {
  try {
    await block(st, script.commands, scope, depth);
  } catch (e) {
    if (e instanceof Signal && e.kind === 'return') return; // RFC 6609 §3.3
    throw e;
  }
}

async function block(st: State, commands: readonly CommandNode[], scope: Scope, depth: number): Promise<void> {
  // RFC 5228 §3.1: whether an if/elsif of the current chain has run its block.
  let chainTaken = true;
  for (const c of commands) {
    if (c.name === 'elsif' || c.name === 'else') {
      if (chainTaken) continue;
      await st.step();
      if (c.name === 'else' || (await evalTest(st, scope, c.tests[0] as TestNode))) {
        chainTaken = true;
        await block(st, c.block ?? [], scope, depth);
      }
      continue;
    }
    if (c.name === 'if') {
      await st.step();
      chainTaken = await evalTest(st, scope, c.tests[0] as TestNode);
      if (chainTaken) await block(st, c.block ?? [], scope, depth);
      continue;
    }
    chainTaken = true;
    await command(st, c, scope, depth);
  }
}

async function command(st: State, c: CommandNode, scope: Scope, depth: number): Promise<void> {
  await st.step();
  const a = scope.args(c);
  switch (c.name) {
    case 'require':
      return;
    case 'stop':
      throw new Signal('stop');
    case 'return':
      throw new Signal('return');
    case 'keep': // RFC 5228 §4.3, RFC 5232 §5
      st.actions.store('INBOX', flagsOf(st, scope, a.tags.get('flags')), false, false, true);
      return;
    case 'discard': // RFC 5228 §4.4
      st.actions.discard();
      return;
    case 'fileinto': // RFC 5228 §4.1, RFC 3894, RFC 5490 §3.2, RFC 5232 §5
      st.actions.store(
        scope.str(a.pos[0]),
        flagsOf(st, scope, a.tags.get('flags')),
        a.tags.has('create'),
        a.tags.has('copy'),
        false,
      );
      return;
    case 'redirect': {
      // RFC 5228 §4.2: an invalid address (made by variables) is a run-time error.
      const given = scope.str(a.pos[0]);
      const address = validAddress(given);
      if (address === null) throw new SieveRuntimeError(`specified redirect address '${given}' is invalid`);
      st.actions.redirect(address, a.tags.has('copy'));
      return;
    }
    case 'reject':
    case 'ereject': // RFC 5429
      st.actions.reject(scope.str(a.pos[0]), c.name === 'ereject');
      return;
    case 'setflag':
    case 'addflag':
    case 'removeflag':
      return flagCommand(st, scope, c.name, a.pos);
    case 'set': {
      // RFC 5229 §4
      const name = scope.str(a.pos[0]);
      const mods = new Set([...a.tags.keys()]);
      scope.setVar(name, capValue(applyModifiers(scope.str(a.pos[1]), mods)));
      return;
    }
    case 'global': // RFC 6609 §3.4
      for (const name of scope.list(a.pos[0])) scope.declareGlobal(name);
      return;
    case 'vacation':
      return vacation(st, scope, a);
    case 'include':
      return include(st, scope, a, depth);
    default:
      throw new SieveRuntimeError(`unknown command '${c.name}'`);
  }
}

/** RFC 5232 §5: :flags, else the internal variable's current value. */
function flagsOf(st: State, scope: Scope, arg: ArgumentNode | null | undefined): string[] | null {
  const flags = st.validFlags(arg === undefined ? st.flags : st.splitFlags(scope.list(arg)));
  return flags.length > 0 ? flags : null;
}

// RFC 5232 §3: setflag/addflag/removeflag [<variablename>] <list-of-flags>.
function flagCommand(st: State, scope: Scope, name: string, pos: Args['pos']): void {
  const variable = pos.length === 2 ? scope.str(pos[0]) : null;
  const given = st.splitFlags(scope.list(pos[pos.length - 1]));
  const current = variable === null ? st.flags : st.splitFlags([scope.getVar(variable)]);
  let next: string[];
  if (name === 'setflag') next = st.splitFlags(given);
  else if (name === 'addflag') next = st.splitFlags([...current, ...given]);
  else {
    const drop = new Set(given.map((f) => f.toLowerCase()));
    next = current.filter((f) => !drop.has(f.toLowerCase()));
  }
  if (variable === null) st.flags = next;
  else scope.setVar(variable, capValue(next.join(' ')));
}

// RFC 5230 §4, RFC 6131: the vacation action; whether it is sent is decided by delivery.
function vacation(st: State, scope: Scope, a: Args): void {
  const tag = (n: string) => a.tags.get(n) ?? undefined;
  const reason = scope.str(a.pos[0]);
  const days = tag('days');
  const secs = tag('seconds');
  let seconds = LIMITS.sieve.vacationDefaultSeconds;
  if (secs?.kind === 'number') seconds = secs.value;
  else if (days?.kind === 'number') seconds = days.value * 86_400;
  seconds = Math.max(seconds, LIMITS.sieve.vacationMinSeconds);
  const subject = tag('subject');
  const from = tag('from');
  const handle = tag('handle');
  const mime = a.tags.has('mime');
  const fromValue = from ? scope.str(from) : null;
  // RFC 5230 §4.2: the default handle, built from the literal arguments as Pigeonhole does.
  const defaultHandle = () =>
    `${scope.literal(a.pos[0])}${subject ? scope.literal(subject) : '<default-subject>'}${from ? scope.literal(from) : '<default-from>'}${mime ? '<MIME>' : '<NO-MIME>'}`;
  st.actions.vacation({
    kind: 'vacation',
    to: st.envelope.from,
    seconds,
    subject: subject ? scope.str(subject) : null,
    from: fromValue,
    reason,
    mime,
    handle: handle ? scope.str(handle) : defaultHandle(),
    addresses: tag('addresses') ? scope.list(tag('addresses')) : [],
  });
}

// RFC 6609 §3.2: include [:personal / :global] [:once] [:optional] <name>.
async function include(st: State, scope: Scope, a: Args, depth: number): Promise<void> {
  const name = scope.str(a.pos[0]);
  const location = a.tags.has('global') ? 'global' : 'personal';
  const key = `${location}:${name}`;
  if (a.tags.has('once') && st.included.has(key)) return;
  if (st.active.includes(key)) throw new SieveRuntimeError(`circular include of script '${name}'`);
  if (depth + 1 > LIMITS.sieve.maxIncludeDepth) throw new SieveRuntimeError('include nesting too deep');
  if (++st.includes > LIMITS.sieve.maxIncludes) throw new SieveRuntimeError('too many includes');
  const script = await st.ctx.include(name, location);
  if (script === null) {
    if (a.tags.has('optional')) return;
    throw new SieveRuntimeError(`included ${location} script '${name}' does not exist`);
  }
  st.included.add(key);
  st.active.push(key);
  try {
    await runScript(st, script, new Scope(script, scope.globals, st.budget), depth + 1);
  } finally {
    st.active.pop();
  }
}
