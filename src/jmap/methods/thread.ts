// Thread/get and Thread/changes (RFC 8621 §3). Until threads are stored, each Email is its own
// Thread (a server's choice, §3): threadId = "T" + the email id without its "M", emailIds
// [that email]. The Thread state is the account journal's position like the others.

import type { AccountId } from '../../core/ids.ts';
import type { AccountChange, Mailboxes } from '../../store/mailboxes.ts';
import { changesResponse, parseChanges } from '../core/changes.ts';
import { MethodError } from '../core/errors.ts';
import { getResponse, parseGet } from '../core/get.ts';
import type { MethodRegistry } from '../core/registry.ts';
import { journalSince, MAIL_CAPABILITY, stateOf } from './mailboxes.ts';

/** The Thread of an Email (each its own, for now). */
export const threadIdOf = (emailId: string): string => `T${emailId.slice(1)}`;
const emailIdOf = (threadId: string): string | null =>
  /^T[A-Za-z0-9_-]{1,254}$/.test(threadId) ? `M${threadId.slice(1)}` : null;

export function registerThreadMethods(registry: MethodRegistry, store: Mailboxes): void {
  // §3.1; ids null: every thread, requestTooLarge beyond maxObjectsInGet.
  registry.method(MAIL_CAPABILITY, 'Thread/get', async (args, ctx) => {
    const req = parseGet(args, ctx, ['id', 'emailIds']);
    const state = await stateOf(store, ctx.account);
    let emails = (req.ids ?? []).flatMap((t) => {
      const e = emailIdOf(t);
      return e ? [e] : [];
    });
    if (req.ids === null) {
      const max = ctx.limits.maxObjectsInGet;
      const all = await store.accountMessages(ctx.account, {
        sort: 'receivedAt',
        descending: true,
        position: 0,
        limit: max,
      });
      if (all.total > max) throw new MethodError('requestTooLarge', `more than ${max} threads`);
      emails = all.ids;
    }
    const found = (await store.locate(ctx.account, emails)).map((e) => ({
      id: threadIdOf(e.emailId),
      emailIds: [e.emailId],
    }));
    return getResponse(req, ctx, state, found);
  });

  // §3.2: a Thread is created with its Email and destroyed with it; it never changes.
  registry.method(MAIL_CAPABILITY, 'Thread/changes', async (args, ctx) => {
    const { sinceState, maxChanges } = parseChanges(args, ctx);
    const r = await emailChanges(store, ctx.account, sinceState, maxChanges);
    return changesResponse(ctx, sinceState, {
      ...r,
      created: r.created.map(threadIdOf),
      updated: [],
      destroyed: r.destroyed.map(threadIdOf),
    });
  });
}

/** The Emails created, updated and destroyed after `sinceState` (§4.3 semantics), from the
 *  account journal and where the emails are now: an email is new in the window when every
 *  copy it has now, and every copy expunged in the window, was appended in the window; gone
 *  when no copy is left. With more emails than `maxChanges`, the window is cut at a state
 *  (hasMoreChanges) and what it says of an email reflects its copies now. */
export async function emailChanges(
  store: Mailboxes,
  account: AccountId,
  sinceState: string,
  maxChanges: number | null,
): Promise<{ newState: string; hasMoreChanges: boolean; created: string[]; updated: string[]; destroyed: string[] }> {
  const { current, rows: all, more } = await journalSince(store, account, sinceState);
  let rows = all.filter((r) => r.emailId !== null);
  let hasMore = more;
  // Where the window ends when it is cut (at MAX_JOURNAL_READ rows, or below at maxChanges).
  let end = all.at(-1)?.aseq ?? 0;
  if (maxChanges !== null) {
    const seen = new Set<string>();
    for (let i = 0; i < rows.length; i++) {
      seen.add((rows[i] as AccountChange).emailId as string);
      if (seen.size > maxChanges) {
        rows = rows.slice(0, i);
        end = rows.at(-1)?.aseq ?? 0;
        hasMore = true;
        break;
      }
    }
  }
  const appended = new Set<string>();
  const byEmail = new Map<string, AccountChange[]>();
  for (const r of rows) {
    if (r.kind === 'append') appended.add(`${r.mailboxId}/${r.uid}`);
    byEmail.set(r.emailId as string, [...(byEmail.get(r.emailId as string) ?? []), r]);
  }
  const located = new Map((await store.locate(account, [...byEmail.keys()])).map((e) => [e.emailId, e]));
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
  // maxChanges below the first email's changes: nothing can be answered (§5.2).
  if (hasMore && end === 0) throw new MethodError('cannotCalculateChanges', 'maxChanges is too small');
  const newState = hasMore ? String(end) : current;
  return { newState, hasMoreChanges: hasMore, created, updated, destroyed };
}
