// EmailSubmission/get, /changes, /query, /queryChanges, /set (RFC 8621 §7), kept in JmapState.
// A submission is handed over when it is created (submission-send.ts): at once (undoStatus
// "final"), or, with the envelope's HOLDFOR/HOLDUNTIL (RFC 4865 FUTURERELEASE, within
// maxDelayedSend), as a scheduled queue entry (undoStatus "pending" until it is released; an
// update to "canceled" removes it from the queue, else cannotUnsend). deliveryStatus follows
// the queue's outcomes (submission-track.ts).

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { JmapState } from '../../jmapstate/types.ts';
import type { QueueId } from '../../queue/types.ts';
import type { Mailboxes } from '../../store/mailboxes.ts';
import { parseArgs, resolveId } from '../core/args.ts';
import { MethodError, type SetError, SetFailure } from '../core/errors.ts';
import { getResponse, parseGet } from '../core/get.ts';
import {
  type Filter,
  parseQuery,
  parseQueryChanges,
  type QueryType,
  queryChanges,
  queryChangesResponse,
  queryResponse,
  queryWindow,
} from '../core/query.ts';
import type { MethodContext, MethodRegistry } from '../core/registry.ts';
import { checkSettable, runSet } from '../core/set.ts';
import type { PushHub } from '../push.ts';
import { type Identities, SUBMISSION_CAPABILITY } from './identity.ts';
import { objectChanges } from './object-changes.ts';
import { destroyEmail, updateEmail } from './submission-email.ts';
import { type Envelope, type SendDeps, sendEmail } from './submission-send.ts';
import { type SubmissionQueue, type SubmissionTracker, submissionTag, type Track } from './submission-track.ts';

const PROPERTIES = [
  'id',
  'identityId',
  'emailId',
  'threadId',
  'envelope',
  'sendAt',
  'undoStatus',
  'deliveryStatus',
  'dsnBlobIds',
  'mdnBlobIds',
] as const;

const address = z.strictObject({
  email: z.string().min(1).max(LIMITS.srs.maxAddress),
  parameters: z.record(z.string().max(64), z.string().max(1000).nullable()).nullable().optional(),
});
const envelopeSchema = z.strictObject({
  mailFrom: address,
  rcptTo: z.array(address).max(LIMITS.jmapState.maxSubmissionRecipients + 1),
});
const createSchema = z.strictObject({
  identityId: z.string().max(256),
  emailId: z.string().max(256),
  envelope: envelopeSchema.nullable().optional(),
  undoStatus: z.enum(['pending', 'final']).optional(),
});

const setExtra = z.object({
  onSuccessUpdateEmail: z.record(z.string().max(256), z.record(z.string(), z.unknown())).nullable().optional(),
  onSuccessDestroyEmail: z.array(z.string().max(256)).nullable().optional(),
});

const ARRAY_CONDITIONS = ['identityIds', 'emailIds', 'threadIds'] as const;
const QUERY: QueryType = {
  sortable: ['emailId', 'threadId', 'sentAt'],
  checkCondition(c) {
    for (const [k, v] of Object.entries(c)) {
      const ok =
        ((ARRAY_CONDITIONS as readonly string[]).includes(k) &&
          Array.isArray(v) &&
          v.every((x) => typeof x === 'string')) ||
        (k === 'undoStatus' && typeof v === 'string') ||
        ((k === 'before' || k === 'after') && typeof v === 'string' && !Number.isNaN(Date.parse(v)));
      if (!ok) throw new MethodError('unsupportedFilter', `unsupported filter ${k}`);
    }
  },
};

type Submission = Record<string, unknown> & { id: string; emailId: string; threadId: string; sendAt: string };

/** §7.3 FilterCondition. */
function matches(s: Submission, f: Filter): boolean {
  if ('operator' in f && Array.isArray(f.conditions)) {
    const cs = f.conditions as Filter[];
    if (f.operator === 'AND') return cs.every((c) => matches(s, c));
    if (f.operator === 'OR') return cs.some((c) => matches(s, c));
    return !cs.some((c) => matches(s, c));
  }
  const c = f as Record<string, unknown>;
  const inList = (k: string, v: unknown) => !Array.isArray(c[k]) || (c[k] as unknown[]).includes(v);
  if (!inList('identityIds', s.identityId) || !inList('emailIds', s.emailId) || !inList('threadIds', s.threadId))
    return false;
  if (typeof c.undoStatus === 'string' && c.undoStatus !== s.undoStatus) return false;
  const at = Date.parse(s.sendAt);
  if (typeof c.before === 'string' && !(at < Date.parse(c.before))) return false;
  if (typeof c.after === 'string' && !(at >= Date.parse(c.after))) return false;
  return true;
}

/** The sorted ids of the query (creation order without a sort). */
function run(
  all: readonly Submission[],
  filter: Filter | null,
  sort: readonly { property: string; isAscending: boolean }[],
) {
  const list = all.filter((s) => filter === null || matches(s, filter));
  const key = (s: Submission, p: string) => String(p === 'sentAt' ? s.sendAt : s[p]);
  const order = list.map((s, i) => ({ s, i }));
  order.sort((a, b) => {
    for (const c of sort) {
      const x = key(a.s, c.property);
      const y = key(b.s, c.property);
      if (x !== y) return (x < y ? -1 : 1) * (c.isAscending ? 1 : -1);
    }
    return a.i - b.i;
  });
  return order.map((o) => o.s.id);
}

export interface SubmissionDeps {
  readonly state: JmapState;
  readonly hub: PushHub;
  readonly identities: Identities;
  readonly send: SendDeps;
  readonly accounts: Mailboxes;
  readonly queue: SubmissionQueue;
  readonly tracker: SubmissionTracker;
  /** [jmap] max_delayed_send (ms); 0: no delayed send. */
  readonly maxDelayedSendMs: number;
}

/** RFC 4865 §3-§4 (FUTURERELEASE) through the envelope's mailFrom parameters, RFC 8621 §7:
 *  the release time (ms), or null to send now (no hold, HOLDFOR=0, a HOLDUNTIL past). */
export function releaseTime(params: Record<string, string | null> | null, maxMs: number, now: number): number | null {
  const p = new Map(Object.entries(params ?? {}).map(([k, v]) => [k.toUpperCase(), v]));
  const holdFor = p.get('HOLDFOR');
  const holdUntil = p.get('HOLDUNTIL');
  if (holdFor === undefined && holdUntil === undefined) return null;
  const bad = (why: string) => new SetFailure('invalidProperties', why, ['envelope']);
  if (maxMs === 0) throw bad('delayed send is not offered here (maxDelayedSend 0)');
  if (holdFor !== undefined && holdUntil !== undefined) throw bad('HOLDFOR and HOLDUNTIL together');
  let at: number;
  if (holdFor !== undefined) {
    if (holdFor === null || !/^[0-9]{1,9}$/.test(holdFor)) throw bad('HOLDFOR is a number of seconds');
    at = now + Number(holdFor) * 1000;
  } else {
    // RFC 4865 §4: a date-time of RFC 3339, with its offset.
    const ok =
      typeof holdUntil === 'string' && /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$/i.test(holdUntil);
    at = ok ? Date.parse(holdUntil as string) : Number.NaN;
    if (!Number.isFinite(at)) throw bad('HOLDUNTIL is an RFC 3339 date-time');
  }
  if (at - now > maxMs) throw bad(`the release is more than ${Math.floor(maxMs / 1000)} s ahead (maxDelayedSend)`);
  return at > now ? at : null;
}

export function registerSubmission(registry: MethodRegistry, deps: SubmissionDeps): void {
  const { state } = deps;
  const list = async (account: AccountId) => (await state.list(account, 'EmailSubmission')) as Submission[];
  const current = (account: AccountId) => state.state(account, 'EmailSubmission');

  registry.method(SUBMISSION_CAPABILITY, 'EmailSubmission/get', async (args, ctx) => {
    const req = parseGet(args, ctx, PROPERTIES);
    const all = await list(ctx.account);
    if (req.ids === null && all.length > ctx.limits.maxObjectsInGet)
      throw new MethodError('requestTooLarge', `more than ${ctx.limits.maxObjectsInGet} submissions`);
    const found = req.ids === null ? all : all.filter((s) => req.ids?.includes(s.id));
    return getResponse(req, ctx, await current(ctx.account), found);
  });

  registry.method(SUBMISSION_CAPABILITY, 'EmailSubmission/changes', (args, ctx) =>
    objectChanges(state, 'EmailSubmission', args, ctx),
  );

  registry.method(SUBMISSION_CAPABILITY, 'EmailSubmission/query', async (args, ctx) => {
    const q = parseQuery(args, ctx, QUERY);
    const ids = run(await list(ctx.account), q.filter, q.sort);
    return queryResponse(ctx, await current(ctx.account), true, queryWindow(ids, q, ctx.limits.maxObjectsInGet));
  });

  // §5.6: a submission's filter and sort properties are fixed once made but for undoStatus
  // (pending -> final or canceled), so the old result is the current one without those created
  // since; a destroy since of an older one loses its old position, and an update since may have
  // moved one in or out of an undoStatus filter: cannotCalculateChanges.
  registry.method(SUBMISSION_CAPABILITY, 'EmailSubmission/queryChanges', async (args, ctx) => {
    const q = parseQueryChanges(args, ctx, QUERY);
    const changes = await state.changesSince(ctx.account, 'EmailSubmission', q.sinceQueryState);
    const now = run(await list(ctx.account), q.filter, q.sort);
    let old: string[] | null = null;
    if (changes !== null) {
      const created = new Set(changes.filter((c) => c.kind === 'created').map((c) => c.id));
      const byStatus = q.filter !== null && JSON.stringify(q.filter).includes('"undoStatus"');
      const lost = changes.some(
        (c) => (c.kind === 'destroyed' || (byStatus && c.kind === 'updated')) && !created.has(c.id),
      );
      old = lost ? null : now.filter((id) => !created.has(id));
    }
    return queryChangesResponse(ctx, q.sinceQueryState, await current(ctx.account), queryChanges(old, now, q));
  });

  registry.method(SUBMISSION_CAPABILITY, 'EmailSubmission/set', async (args, ctx) => {
    const { onSuccessUpdateEmail, onSuccessDestroyEmail, ...setArgs } = args;
    const extra = parseArgs(setExtra, { onSuccessUpdateEmail, onSuccessDestroyEmail });
    const emailStateBefore = String(await deps.accounts.accountState(ctx.account));
    const res = await runSet(setArgs, ctx, {
      state: () => current(ctx.account),
      create: (object) => create(deps, ctx, object),
      // §7.5: only undoStatus "canceled" may be set, while the submission is pending.
      update: async (id, patch) => {
        if (!(await state.get(ctx.account, 'EmailSubmission', id))) throw new SetFailure('notFound');
        if (patch.undoStatus !== 'canceled' || Object.keys(patch).length !== 1)
          throw new SetFailure('invalidProperties', 'only undoStatus may be changed', Object.keys(patch));
        await deps.tracker.exclusive(() => cancel(deps, ctx.account, id));
        return null;
      },
      destroy: async (id) => {
        if (!(await state.get(ctx.account, 'EmailSubmission', id))) throw new SetFailure('notFound');
        await state.destroy(ctx.account, 'EmailSubmission', id);
      },
    });
    if (res.oldState !== res.newState) deps.hub.publish(ctx.account, { EmailSubmission: String(res.newState) });
    await implicitEmailSet(deps, ctx, res, extra, emailStateBefore);
    return res;
  });
}

async function create(deps: SubmissionDeps, ctx: MethodContext, object: Record<string, unknown>) {
  checkSettable(object, ['identityId', 'emailId', 'envelope', 'undoStatus']);
  const parsed = createSchema.safeParse(object);
  if (!parsed.success) {
    const props = [...new Set(parsed.error.issues.map((i) => String(i.path[0] ?? '')))];
    throw new SetFailure('invalidProperties', parsed.error.issues[0]?.message, props);
  }
  const o = parsed.data;
  const identityId = resolveId(o.identityId, ctx.createdIds);
  const identity = identityId === null ? null : await deps.identities.get(ctx.account, identityId);
  if (!identity) throw new SetFailure('invalidProperties', `no identity ${o.identityId}`, ['identityId']);
  const emailId = resolveId(o.emailId, ctx.createdIds);
  if (emailId === null) throw new SetFailure('invalidProperties', `nothing was created as ${o.emailId}`, ['emailId']);
  const envelope: Envelope | null = o.envelope
    ? {
        mailFrom: { email: o.envelope.mailFrom.email, parameters: o.envelope.mailFrom.parameters ?? null },
        rcptTo: o.envelope.rcptTo.map((r) => ({ email: r.email, parameters: r.parameters ?? null })),
      }
    : null;
  const thread = (await deps.accounts.locate(ctx.account, [emailId]))[0]?.threadId ?? null;
  const now = Date.now();
  const releaseAt = releaseTime(envelope?.mailFrom.parameters ?? null, deps.maxDelayedSendMs, now);
  const sid = `S${randomBytes(15).toString('base64url')}`;
  const tag = submissionTag(ctx.account, sid);
  const sent = await sendEmail(deps.send, ctx.account, emailId, envelope, { tag, releaseAt });
  const track: Track = { queueIds: [...sent.queueIds], queued: sent.queued, addr: {} };
  const submission = {
    id: sid,
    identityId: identity.id,
    emailId,
    threadId: thread,
    envelope: sent.envelope,
    sendAt: new Date(releaseAt ?? now).toISOString().replace(/\.[0-9]+Z$/, 'Z'),
    undoStatus: releaseAt === null ? 'final' : 'pending',
    deliveryStatus: sent.deliveryStatus,
    dsnBlobIds: [],
    mdnBlobIds: [],
    _track: track,
  };
  // In the tracker's chain: a queue event for this record waits for it (submission-track.ts).
  await deps.tracker.exclusive(() => deps.state.put(ctx.account, 'EmailSubmission', submission.id, submission));
  await deps.tracker.created(tag);
  const { id, threadId, envelope: env, sendAt, undoStatus, deliveryStatus } = submission;
  return { id, threadId, sendAt, undoStatus, deliveryStatus, ...(o.envelope ? {} : { envelope: env }) };
}

/** §7 undoStatus "canceled": a pending (delayed) submission leaves the queue. cannotUnsend
 *  once it was released. The onSuccess* changes were made when it was created (§7.5: they
 *  follow the create's success, not the sending), so a client that undoes a send restores
 *  its draft itself, as with any JMAP server. */
async function cancel(deps: SubmissionDeps, account: AccountId, id: string): Promise<void> {
  const s = await deps.state.get(account, 'EmailSubmission', id);
  if (!s) throw new SetFailure('notFound');
  const track = s._track as Track | undefined;
  if (s.undoStatus !== 'pending' || !track) throw new SetFailure('cannotUnsend', 'the message has been sent');
  let canceled = false;
  for (const q of track.queueIds) canceled = (await deps.queue.cancel(q as QueueId)) || canceled;
  if (!canceled) throw new SetFailure('cannotUnsend', 'the message is being sent');
  await deps.state.put(account, 'EmailSubmission', id, { ...s, undoStatus: 'canceled', _track: track });
}

/** §7.5: after the creates, the onSuccess* changes of the successful ones as an implicit
 *  Email/set response (submission-email.ts). */
async function implicitEmailSet(
  deps: SubmissionDeps,
  ctx: MethodContext,
  res: Record<string, unknown>,
  extra: z.infer<typeof setExtra>,
  oldState: string,
): Promise<void> {
  const update = extra.onSuccessUpdateEmail ?? {};
  const destroy = extra.onSuccessDestroyEmail ?? [];
  if (Object.keys(update).length === 0 && destroy.length === 0) return;
  const created = (res.created ?? {}) as Record<string, { id: string }>;
  /** "#creationId" of a submission created now, or its id → the submission's emailId. */
  const emailOf = async (ref: string): Promise<string | null> => {
    const id = ref.startsWith('#') ? created[ref.slice(1)]?.id : ref;
    if (!id) return null;
    if (!ref.startsWith('#') && !Object.values(created).some((c) => c.id === id)) return null;
    const s = await deps.state.get(ctx.account, 'EmailSubmission', id);
    return s ? String(s.emailId) : null;
  };
  const updated: Record<string, null> = {};
  const notUpdated: Record<string, SetError> = {};
  const destroyed: string[] = [];
  const notDestroyed: Record<string, SetError> = {};
  for (const [ref, patch] of Object.entries(update)) {
    const emailId = await emailOf(ref);
    if (emailId === null) continue; // that submission failed: nothing to do (§7.5)
    try {
      await updateEmail(deps.accounts, ctx.account, emailId, patch);
      updated[emailId] = null;
    } catch (e) {
      if (!(e instanceof SetFailure)) throw e;
      notUpdated[emailId] = e.error;
    }
  }
  for (const ref of destroy) {
    const emailId = await emailOf(ref);
    if (emailId === null) continue;
    try {
      await destroyEmail(deps.accounts, ctx.account, emailId);
      destroyed.push(emailId);
    } catch (e) {
      if (!(e instanceof SetFailure)) throw e;
      notDestroyed[emailId] = e.error;
    }
  }
  const orNull = <T extends object>(o: T) => (Object.keys(o).length > 0 ? o : null);
  const newState = String(await deps.accounts.accountState(ctx.account));
  ctx.followUps.push([
    'Email/set',
    {
      accountId: ctx.accountId,
      oldState,
      newState,
      created: null,
      updated: orNull(updated),
      destroyed: destroyed.length > 0 ? destroyed : null,
      notCreated: null,
      notUpdated: orNull(notUpdated),
      notDestroyed: orNull(notDestroyed),
    },
    ctx.callId,
  ]);
  if (newState !== oldState) deps.hub.publish(ctx.account, { Email: newState, Mailbox: newState });
}
