// The tests of RFC 5228 §5 and its extensions: address, envelope, header, exists, size,
// allof/anyof/not, true/false, body (RFC 5173), string (RFC 5229 §5), hasflag (RFC 5232 §4),
// date/currentdate (RFC 5260), duplicate (RFC 7352), mailboxexists (RFC 5490 §3.1).

import { LIMITS } from '../../core/limits.ts';
import type { TestNode } from '../ast.ts';
import { bodyTexts } from './body.ts';
import { datePart, localOffset, parseDateTime, parseZone, type ZonedTime } from './date.ts';
import { type Comparator, compare, type MatchSpec, matchOne, type Relation, relate } from './match.ts';
import { type Address, headerValues, parseAddressList } from './message.ts';
import type { Args, Scope, State } from './state.ts';

export async function evalTest(st: State, scope: Scope, t: TestNode): Promise<boolean> {
  await st.step();
  const a = scope.args(t);
  switch (t.name) {
    case 'true':
      return true;
    case 'false':
      return false;
    case 'not':
      return !(await evalTest(st, scope, t.tests[0] as TestNode));
    case 'allof': // RFC 5228 §5.2: evaluated left to right, stops at the first false
      for (const sub of t.tests) if (!(await evalTest(st, scope, sub))) return false;
      return true;
    case 'anyof':
      for (const sub of t.tests) if (await evalTest(st, scope, sub)) return true;
      return false;
    case 'exists': // RFC 5228 §5.5
      return scope.list(a.pos[0]).every((n) => headerValues(st.msg, n).length > 0);
    case 'size': // RFC 5228 §5.9
      return a.tags.has('over') ? st.msg.size > Number(scope.str(a.pos[0])) : st.msg.size < Number(scope.str(a.pos[0]));
    case 'header': // RFC 5228 §5.7
      return compareValues(st, scope, a, indexed(st, scope, a), scope.list(a.pos[1]));
    case 'address': {
      // RFC 5228 §5.1: the addresses of the header fields, RFC 5260 §6 :index counts fields.
      const values: string[] = [];
      for (const v of indexed(st, scope, a)) {
        // Not an address list, or one without addresses (an empty group): :all sees the field
        // as it is (as Pigeonhole).
        const list = parseAddressList(v);
        if (list === null || list.length === 0) {
          if (addressPart(a) === 'all') values.push(v);
          continue;
        }
        for (const addr of list) pushPart(values, addr, addressPart(a));
      }
      return compareValues(st, scope, a, values, scope.list(a.pos[1]));
    }
    case 'envelope': {
      // RFC 5228 §5.4: the null reverse-path is the empty string.
      const values: string[] = [];
      for (const part of scope.list(a.pos[0])) {
        const p = part.toLowerCase();
        const raw =
          p === 'from' ? st.envelope.from : p === 'to' ? st.envelope.to : p === 'auth' ? st.envelope.auth : null;
        if (raw === null) continue;
        if (raw === '') {
          values.push('');
          continue;
        }
        const list = parseAddressList(raw);
        for (const addr of list ?? []) pushPart(values, addr, addressPart(a));
      }
      return compareValues(st, scope, a, values, scope.list(a.pos[1]));
    }
    case 'string': {
      // RFC 5229 §5: :count counts the non-empty strings.
      const source = scope.list(a.pos[0]);
      const values = matchSpec(scope, a).type === 'count' ? source.filter((s) => s !== '') : source;
      return compareValues(st, scope, a, values, scope.list(a.pos[1]));
    }
    case 'hasflag': {
      // RFC 5232 §4: the flags of the internal variable or of the named variables.
      const flags =
        a.pos.length === 2 ? st.splitFlags(scope.list(a.pos[0]).map((n) => scope.getVar(n))) : st.splitFlags(st.flags);
      return compareValues(st, scope, a, flags, scope.list(a.pos[a.pos.length - 1]));
    }
    case 'body': {
      // RFC 5173 §5: :text is the default transform.
      if (st.bodyCache === null) st.bodyCache = (await st.msg.raw()).subarray(0, LIMITS.sieve.maxBodyBytes);
      const transform = a.tags.has('raw') ? 'raw' : a.tags.has('content') ? 'content' : 'text';
      const texts = bodyTexts(st.bodyCache, transform, scope.list(a.tags.get('content')));
      // Pigeonhole's body test leaves the match variables as they were.
      return compareValues(st, scope, a, texts, scope.list(a.pos[0]), false);
    }
    case 'date': {
      // RFC 5260 §4: header, date part, keys; Received uses the date after its last ';'.
      const name = scope.str(a.pos[0]);
      const times: ZonedTime[] = [];
      for (let v of indexed(st, scope, a)) {
        if (name.toLowerCase() === 'received') v = v.slice(v.lastIndexOf(';') + 1);
        const t = parseDateTime(v);
        if (t !== null) times.push(t);
      }
      return dateCompare(st, scope, a, times, scope.str(a.pos[1]), scope.list(a.pos[2]));
    }
    case 'currentdate': // RFC 5260 §5
      return dateCompare(
        st,
        scope,
        a,
        [{ epoch: st.ctx.now.getTime(), offset: 0 }],
        scope.str(a.pos[0]),
        scope.list(a.pos[1]),
      );
    case 'duplicate':
      return duplicate(st, scope, a);
    case 'mailboxexists': // RFC 5490 §3.1
      for (const name of scope.list(a.pos[0])) if (!(await st.ctx.mailboxExists(name))) return false;
      return true;
    default:
      return false;
  }
}

function matchSpec(scope: Scope, a: Args): MatchSpec {
  const comparator = (
    a.tags.has('comparator') ? scope.str(a.tags.get('comparator')).toLowerCase() : 'i;ascii-casemap'
  ) as Comparator;
  for (const type of ['is', 'contains', 'matches', 'count', 'value'] as const)
    if (a.tags.has(type))
      return {
        type,
        relation: type === 'count' || type === 'value' ? (scope.str(a.tags.get(type)) as Relation) : null,
        comparator,
      };
  return { type: 'is', relation: null, comparator };
}

/** RFC 5228 §2.7: true when a value matches a key; a :matches success sets the match variables. */
function compareValues(
  st: State,
  scope: Scope,
  a: Args,
  values: readonly string[],
  keys: readonly string[],
  setsMatches = true,
): boolean {
  const spec = matchSpec(scope, a);
  if (spec.type === 'count') {
    const n = String(values.length);
    return keys.some((k) => relate(compare(n, k, spec.comparator), spec.relation ?? 'eq'));
  }
  for (const v of values)
    for (const k of keys) {
      const r = matchOne(v, k, spec, st.budget);
      if (r === false) continue;
      if (r !== null && setsMatches) scope.setMatches(r);
      return true;
    }
  return false;
}

/** The header values of the named fields; with :index N only the Nth (from the end with
 *  :last) of each name (RFC 5260 §6). */
function indexed(st: State, scope: Scope, a: Args): string[] {
  const index = a.tags.get('index');
  const n = index?.kind === 'number' ? index.value : 0;
  const out: string[] = [];
  for (const name of scope.list(a.pos[0])) {
    const values = headerValues(st.msg, name);
    if (n === 0) out.push(...values);
    else {
      const v = values[a.tags.has('last') ? values.length - n : n - 1];
      if (v !== undefined) out.push(v);
    }
  }
  return out;
}

type Part = 'all' | 'localpart' | 'domain' | 'user' | 'detail';

function addressPart(a: Args): Part {
  for (const p of ['localpart', 'domain', 'user', 'detail'] as const) if (a.tags.has(p)) return p;
  return 'all';
}

/** RFC 5228 §2.7.4 and RFC 5233 §4 (separator "+"): the part, or nothing when it is absent. */
function pushPart(out: string[], addr: Address, part: Part): void {
  const plus = addr.local.indexOf('+');
  switch (part) {
    case 'all':
      out.push(addr.domain === null ? addr.local : `${addr.local}@${addr.domain}`);
      return;
    case 'localpart':
      out.push(addr.local);
      return;
    case 'domain':
      if (addr.domain !== null) out.push(addr.domain);
      return;
    case 'user':
      out.push(plus < 0 ? addr.local : addr.local.slice(0, plus));
      return;
    case 'detail':
      if (plus >= 0) out.push(addr.local.slice(plus + 1));
      return;
  }
}

/** RFC 5260 §4.1: shown in :zone, the field's own zone (:originalzone) or the local zone. */
function dateCompare(
  st: State,
  scope: Scope,
  a: Args,
  times: readonly ZonedTime[],
  part: string,
  keys: readonly string[],
): boolean {
  const zoneArg = a.tags.get('zone');
  const fixed = zoneArg !== undefined ? parseZone(scope.str(zoneArg)) : null;
  if (zoneArg !== undefined && fixed === null) return false;
  const values: string[] = [];
  for (const t of times) {
    const offset = fixed ?? (a.tags.has('originalzone') ? t.offset : localOffset(t.epoch));
    const v = datePart({ epoch: t.epoch, offset }, part);
    if (v === null) return false;
    values.push(v);
  }
  return compareValues(st, scope, a, values, keys);
}

// RFC 7352 §3: duplicate [:handle] [:header / :uniqueid] [:seconds] [:last].
async function duplicate(st: State, scope: Scope, a: Args): Promise<boolean> {
  const handle = a.tags.has('handle') ? scope.str(a.tags.get('handle')) : '';
  let id: string | undefined;
  if (a.tags.has('uniqueid')) id = scope.str(a.tags.get('uniqueid'));
  else id = headerValues(st.msg, a.tags.has('header') ? scope.str(a.tags.get('header')) : 'message-id')[0];
  if (id === undefined || id === '') return false;
  const secondsArg = a.tags.get('seconds');
  const seconds =
    secondsArg?.kind === 'number'
      ? Math.min(secondsArg.value, LIMITS.sieve.duplicateMaxSeconds)
      : LIMITS.sieve.duplicateDefaultSeconds;
  const key = `${handle}\u0000${id}`;
  const known = st.duplicates.get(key);
  if (known !== undefined) return known;
  const seen = await st.ctx.duplicateSeen(handle, id, seconds);
  st.duplicates.set(key, seen);
  // Without :last an entry is not renewed while it lasts; with :last every message renews it.
  if (!seen || a.tags.has('last')) st.actions.track(handle, id, seconds);
  return seen;
}
