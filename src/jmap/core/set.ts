// The /set framework (RFC 8620 §5.3): arguments checked (creates + updates + destroys bounded
// by maxObjectsInSet -> requestTooLarge), ifInState (-> stateMismatch), then every create,
// update and destroy in that order, each on its own: a handler throws SetFailure for one
// object and the others go on. Creation ids are recorded for the rest of the request (§3.3)
// and "#creationId" ids in update and destroy resolved. Type handlers get PatchObjects as
// sent and apply them with pointer.ts applyPatch against their object.

import { z } from 'zod';
import { parseArgs, resolveId } from './args.ts';
import { MethodError, type SetError, SetFailure } from './errors.ts';
import { checkAccount, type MethodContext } from './registry.ts';

const object = z.record(z.string(), z.unknown());
/** The standard /set arguments (a type's own come on top: checkKnownArgs). */
export const SET_ARGS = ['accountId', 'ifInState', 'create', 'update', 'destroy'] as const;
const setArgs = z.object({
  accountId: z.string(),
  ifInState: z.string().nullable().optional(),
  create: z.record(z.string().max(256), object).nullable().optional(),
  update: z.record(z.string().max(256), object).nullable().optional(),
  destroy: z.array(z.string().max(256)).nullable().optional(),
});

export interface SetHandlers {
  /** The type's current state string. */
  state(): Promise<string> | string;
  /** Creates one object; returns the properties the server set or changed (with `id`). */
  create?(object: Record<string, unknown>, creationId: string): Promise<Record<string, unknown>>;
  /** Applies a PatchObject to one object; returns the properties the server changed beyond
   *  the patch, or null. SetFailure('notFound') for an unknown id. */
  update?(id: string, patch: Record<string, unknown>): Promise<Record<string, unknown> | null>;
  /** Destroys one object. SetFailure('notFound') for an unknown id. */
  destroy?(id: string): Promise<void>;
}

/** A SetFailure is that object's SetError; anything else ends the call: serverFail when
 *  nothing was changed yet, else serverPartialFail (RFC 8620 §3.6.2: "Some, but not all,
 *  expected changes described by the method occurred"), the cause kept for the log. */
const failure = (e: unknown, changed: boolean): SetError => {
  if (e instanceof SetFailure) return e.error;
  if (changed && !(e instanceof MethodError))
    throw new MethodError('serverPartialFail', 'the call failed after some of its changes were made', {}, e);
  throw e;
};

const orNull = <T extends object>(o: T): T | null => (Object.keys(o).length > 0 ? o : null);

/** Runs a /set call through `h` and builds its response. */
export async function runSet(
  args: Record<string, unknown>,
  ctx: MethodContext,
  h: SetHandlers,
): Promise<Record<string, unknown>> {
  const a = parseArgs(setArgs, args);
  checkAccount(a.accountId, ctx);
  const creates = Object.entries(a.create ?? {});
  const updates = Object.entries(a.update ?? {});
  const destroys = a.destroy ?? [];
  if (creates.length + updates.length + destroys.length > ctx.limits.maxObjectsInSet)
    throw new MethodError('requestTooLarge', `more than ${ctx.limits.maxObjectsInSet} objects`);
  const oldState = await h.state();
  if (a.ifInState !== undefined && a.ifInState !== null && a.ifInState !== oldState)
    throw new MethodError('stateMismatch');

  const created: Record<string, unknown> = {};
  const notCreated: Record<string, SetError> = {};
  for (const [cid, obj] of creates) {
    try {
      if (!h.create) throw new SetFailure('forbidden', 'objects of this type cannot be created');
      const made = await h.create(obj, cid);
      created[cid] = made;
      ctx.createdIds.set(cid, String(made.id));
    } catch (e) {
      notCreated[cid] = failure(e, Object.keys(created).length > 0);
    }
  }

  const destroyIds = new Set(destroys.map((d) => resolveId(d, ctx.createdIds)));
  const updated: Record<string, unknown> = {};
  const notUpdated: Record<string, SetError> = {};
  for (const [key, patch] of updates) {
    const id = resolveId(key, ctx.createdIds);
    try {
      if (id === null) throw new SetFailure('notFound', `nothing was created as ${key}`);
      if (destroyIds.has(id)) throw new SetFailure('willDestroy');
      if (!h.update) throw new SetFailure('forbidden', 'objects of this type cannot be changed');
      updated[id] = await h.update(id, patch);
    } catch (e) {
      notUpdated[id ?? key] = failure(e, Object.keys(created).length + Object.keys(updated).length > 0);
    }
  }

  const destroyed: string[] = [];
  const notDestroyed: Record<string, SetError> = {};
  for (const key of destroys) {
    const id = resolveId(key, ctx.createdIds);
    try {
      if (id === null) throw new SetFailure('notFound', `nothing was created as ${key}`);
      if (!h.destroy) throw new SetFailure('forbidden', 'objects of this type cannot be destroyed');
      await h.destroy(id);
      destroyed.push(id);
    } catch (e) {
      notDestroyed[id ?? key] = failure(
        e,
        Object.keys(created).length + Object.keys(updated).length + destroyed.length > 0,
      );
    }
  }

  return {
    accountId: ctx.accountId,
    oldState,
    newState: await h.state(),
    created: orNull(created),
    updated: orNull(updated),
    destroyed: destroyed.length > 0 ? destroyed : null,
    notCreated: orNull(notCreated),
    notUpdated: orNull(notUpdated),
    notDestroyed: orNull(notDestroyed),
  };
}

/** invalidProperties for the properties of `object` a client may not set (server-set ones,
 *  unknown ones): a check for create handlers. */
export function checkSettable(object: Record<string, unknown>, settable: readonly string[]): void {
  const bad = Object.keys(object).filter((k) => !settable.includes(k));
  if (bad.length > 0) throw new SetFailure('invalidProperties', 'these properties may not be set', bad);
}
