// Thread/get and Thread/changes (RFC 8621 §3). Threads are the store's (Mailboxes.threads,
// LocatedEmail.threadId; the rule in docs/jmap-email.md "Threads"): an email's thread is given
// when it is first stored and never changes. A Thread is created with its first email, updated
// when an email joins or leaves it, destroyed with its last; the account journal records each
// entry's thread, so Thread/changes reads the same window as Email/changes. The Thread state is
// the account journal's position like the others.

import type { AccountId } from '../../core/ids.ts';
import type { AccountChange, LocatedEmail, Mailboxes } from '../../store/mailboxes.ts';
import { changesResponse, parseChanges } from '../core/changes.ts';
import { MethodError } from '../core/errors.ts';
import { getResponse, parseGet } from '../core/get.ts';
import type { MethodRegistry } from '../core/registry.ts';
import { journalSince, MAIL_CAPABILITY, stateOf } from './mailboxes.ts';

export function registerThreadMethods(registry: MethodRegistry, store: Mailboxes): void {
  // §3.1: emailIds oldest first (receivedAt); ids null: every thread, requestTooLarge beyond
  // maxObjectsInGet.
  registry.method(MAIL_CAPABILITY, 'Thread/get', async (args, ctx) => {
    const req = parseGet(args, ctx, ['id', 'emailIds']);
    const state = await stateOf(store, ctx.account);
    let ids = (req.ids ?? []).filter((t) => /^T[A-Za-z0-9_-]{1,254}$/.test(t));
    if (req.ids === null) {
      const max = ctx.limits.maxObjectsInGet;
      const q = { sort: 'receivedAt', descending: true, collapseThreads: true, position: 0, limit: max } as const;
      const all = await store.accountMessages(ctx.account, q);
      if (all.total > max) throw new MethodError('requestTooLarge', `more than ${max} threads`);
      ids = (await store.locate(ctx.account, all.ids)).map((l) => l.threadId);
    }
    const found = (await store.threads(ctx.account, ids)).map((t) => ({ id: t.threadId, emailIds: t.emailIds }));
    return getResponse(req, ctx, state, found);
  });

  // §3.2
  registry.method(MAIL_CAPABILITY, 'Thread/changes', async (args, ctx) => {
    const { sinceState, maxChanges } = parseChanges(args, ctx);
    return changesResponse(ctx, sinceState, await threadChanges(store, ctx.account, sinceState, maxChanges));
  });
}

interface Changes {
  newState: string;
  hasMoreChanges: boolean;
  created: string[];
  updated: string[];
  destroyed: string[];
}

/** The journal rows after `sinceState` about messages, cut (hasMoreChanges) before the row
 *  whose `key` would make more than `maxChanges` distinct keys. */
async function window(
  store: Mailboxes,
  account: AccountId,
  sinceState: string,
  maxChanges: number | null,
  key: (r: AccountChange) => string,
): Promise<{ current: string; rows: AccountChange[]; hasMore: boolean; end: number }> {
  const { current, rows: all, more } = await journalSince(store, account, sinceState);
  let rows = all.filter((r) => r.emailId !== null);
  let hasMore = more;
  // Where the window ends when it is cut (at MAX_JOURNAL_READ rows, or below at maxChanges).
  let end = all.at(-1)?.aseq ?? 0;
  if (maxChanges !== null) {
    const seen = new Set<string>();
    for (let i = 0; i < rows.length; i++) {
      seen.add(key(rows[i] as AccountChange));
      if (seen.size > maxChanges) {
        rows = rows.slice(0, i);
        end = rows.at(-1)?.aseq ?? 0;
        hasMore = true;
        break;
      }
    }
  }
  // maxChanges below the first object's changes: nothing can be answered (§5.2).
  if (hasMore && end === 0) throw new MethodError('cannotCalculateChanges', 'maxChanges is too small');
  return { current, rows, hasMore, end };
}

/** The Emails the rows created, updated and destroyed (§4.3 semantics), from the rows and
 *  where the emails are now: an email is new in the window when every copy it has now, and
 *  every copy expunged in the window, was appended in the window; gone when no copy is left. */
async function classify(store: Mailboxes, account: AccountId, rows: readonly AccountChange[]) {
  const appended = new Set<string>();
  const byEmail = new Map<string, AccountChange[]>();
  for (const r of rows) {
    if (r.kind === 'append') appended.add(`${r.mailboxId}/${r.uid}`);
    byEmail.set(r.emailId as string, [...(byEmail.get(r.emailId as string) ?? []), r]);
  }
  const located = new Map<string, LocatedEmail>(
    (await store.locate(account, [...byEmail.keys()])).map((e) => [e.emailId, e]),
  );
  const created: string[] = [];
  const updated: string[] = [];
  const destroyed: string[] = [];
  for (const [id, changes] of byEmail) {
    const now = located.get(id);
    const expungedHere = changes
      .filter((c) => c.kind === 'expunge')
      .every((c) => appended.has(`${c.mailboxId}/${c.uid}`));
    if (!now) {
      if (!expungedHere || !changes.some((c) => c.kind === 'append')) destroyed.push(id);
      continue;
    }
    const allNew = expungedHere && now.copies.every((c) => appended.has(`${c.mailboxId}/${c.uid}`));
    (allNew ? created : updated).push(id);
  }
  return { created, updated, destroyed, byEmail, located };
}

/** The Threads created, updated (an email joined or left) and destroyed after `sinceState`,
 *  from the emails created and destroyed in the same window and the threads' emails now: a
 *  thread had emails before when those it has now, less the ones created, plus the ones
 *  destroyed, are some. maxChanges counts threads. */
export async function threadChanges(
  store: Mailboxes,
  account: AccountId,
  sinceState: string,
  maxChanges: number | null,
): Promise<Changes> {
  // Entries from before threads were stored have no thread: their email stands for it.
  const w = await window(store, account, sinceState, maxChanges, (r) => r.threadId ?? `?${r.emailId}`);
  const c = await classify(store, account, w.rows);
  const threadOf = (email: string): string | null =>
    c.byEmail.get(email)?.findLast((r) => r.threadId !== null)?.threadId ?? c.located.get(email)?.threadId ?? null;
  const joined = new Map<string, number>();
  const left = new Map<string, number>();
  const count = (m: Map<string, number>, ids: readonly string[]) => {
    for (const id of ids) {
      const t = threadOf(id);
      if (t !== null) m.set(t, (m.get(t) ?? 0) + 1);
    }
  };
  count(joined, c.created);
  count(left, c.destroyed);
  const touched = [...new Set([...joined.keys(), ...left.keys()])];
  const size = new Map((await store.threads(account, touched)).map((t) => [t.threadId, t.emailIds.length]));
  const out: Changes = {
    newState: w.hasMore ? String(w.end) : w.current,
    hasMoreChanges: w.hasMore,
    created: [],
    updated: [],
    destroyed: [],
  };
  for (const t of touched) {
    const now = size.get(t) ?? 0;
    const before = now - (joined.get(t) ?? 0) + (left.get(t) ?? 0);
    if (now > 0 && before <= 0) out.created.push(t);
    else if (now > 0) out.updated.push(t);
    else if (before > 0) out.destroyed.push(t);
  }
  return out;
}
