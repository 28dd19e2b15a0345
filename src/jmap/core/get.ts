// The /get framework (RFC 8620 §5.1): arguments checked (ids bounded by maxObjectsInGet ->
// requestTooLarge; properties known), "#creationId" ids resolved, the response built with the
// requested properties only (id always), and the ids not found listed. Pure.

import { z } from 'zod';
import { parseArgs, resolveId } from './args.ts';
import { MethodError } from './errors.ts';
import { checkAccount, type MethodContext } from './registry.ts';

const getArgs = z.object({
  accountId: z.string(),
  ids: z.array(z.string().max(256)).nullable().optional(),
  properties: z.array(z.string().max(256)).nullable().optional(),
});

export interface GetRequest {
  /** The ids asked for (creation ids resolved; unresolvable ones are in `unresolved`), or null
   *  for all objects. */
  readonly ids: readonly string[] | null;
  /** "#creationId" ids that name nothing created in this request: notFound as they are. */
  readonly unresolved: readonly string[];
  readonly properties: ReadonlySet<string>;
  /** The other arguments (type-specific ones, e.g. Email/get's bodyProperties). */
  readonly rest: Record<string, unknown>;
}

/** Checks the standard arguments of a /get; `known` are the type's properties. With ids null
 *  (all objects) the type itself answers requestTooLarge when it has more than maxObjectsInGet. */
export function parseGet(args: Record<string, unknown>, ctx: MethodContext, known: readonly string[]): GetRequest {
  const a = parseArgs(getArgs, args);
  checkAccount(a.accountId, ctx);
  if (a.ids && a.ids.length > ctx.limits.maxObjectsInGet)
    throw new MethodError('requestTooLarge', `more than ${ctx.limits.maxObjectsInGet} ids`);
  const props = a.properties ?? known;
  for (const p of props) if (!known.includes(p)) throw new MethodError('invalidArguments', `unknown property ${p}`);
  const ids: string[] = [];
  const unresolved: string[] = [];
  for (const id of a.ids ?? []) {
    const r = resolveId(id, ctx.createdIds);
    if (r === null) unresolved.push(id);
    else if (!ids.includes(r)) ids.push(r);
  }
  const { accountId: _a, ids: _i, properties: _p, ...rest } = args;
  return { ids: a.ids ? ids : null, unresolved, properties: new Set([...props, 'id']), rest };
}

/** The /get response: `found` are the objects (with all properties) for the ids that exist. */
export function getResponse(
  req: GetRequest,
  ctx: MethodContext,
  state: string,
  found: readonly Record<string, unknown>[],
): Record<string, unknown> {
  const seen = new Set<string>();
  const list = found.map((o) => {
    seen.add(String(o.id));
    return pick(o, req.properties);
  });
  const notFound = [...req.unresolved, ...(req.ids ?? []).filter((id) => !seen.has(id))];
  return { accountId: ctx.accountId, state, list, notFound };
}

/** Only the properties in `props` (those the object has). */
export function pick(o: Record<string, unknown>, props: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const p of props) if (Object.hasOwn(o, p)) out[p] = o[p];
  return out;
}
