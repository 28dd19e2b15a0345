// The thread parts of Email/query (RFC 8621 §4.4.1, §4.4.3): the conditions and sorts over a
// whole thread's keywords (allInThreadHaveKeyword, someInThreadHaveKeyword,
// noneInThreadHaveKeyword), collapseThreads, and what Email/queryChanges must report when
// results are collapsed. A scanned query (email-query.ts runQuery) has every Email of the
// account, so each thread's keywords are counted over all of its emails, whatever the filter.

import type { AccountId } from '../../core/ids.ts';
import type { AccountChange, LocatedEmail, Mailboxes } from '../../store/mailboxes.ts';

/** How many emails of a thread there are, and how many have each keyword. */
export interface ThreadKeywords {
  size: number;
  readonly counts: Map<string, number>;
}

/** What the thread conditions need of one Email (email-query.ts Facts). */
export interface ThreadFacts {
  readonly l: LocatedEmail;
  readonly keywords: Record<string, true>;
  thread?: ThreadKeywords;
}

/** Counts the keywords of each thread over `facts` (every Email of the account) and gives each
 *  Email its thread's counts. */
export function attachThreads(facts: readonly ThreadFacts[]): void {
  const threads = new Map<string, ThreadKeywords>();
  for (const x of facts) {
    let t = threads.get(x.l.threadId);
    if (!t) {
      t = { size: 0, counts: new Map() };
      threads.set(x.l.threadId, t);
    }
    t.size++;
    for (const k of Object.keys(x.keywords)) t.counts.set(k, (t.counts.get(k) ?? 0) + 1);
    x.thread = t;
  }
}

/** allInThreadHaveKeyword, someInThreadHaveKeyword, noneInThreadHaveKeyword (§4.4.1). */
export function inThread(condition: string, keyword: string, x: ThreadFacts): boolean {
  const t = x.thread ?? { size: 1, counts: new Map(Object.keys(x.keywords).map((k) => [k, 1])) };
  const n = t.counts.get(keyword.toLowerCase()) ?? 0;
  if (condition === 'allInThreadHaveKeyword') return n === t.size;
  if (condition === 'someInThreadHaveKeyword') return n > 0;
  return n === 0;
}

/** §4.4.3 collapseThreads: of the sorted Emails, the first of each thread. */
export function collapse<T extends { readonly l: LocatedEmail }>(sorted: readonly T[]): T[] {
  const seen = new Set<string>();
  return sorted.filter((x) => {
    if (seen.has(x.l.threadId)) return false;
    seen.add(x.l.threadId);
    return true;
  });
}

/** The Emails Email/queryChanges reports as removed (RFC 8620 §5.6: ids that may not have been
 *  in the old results are allowed): those the journal rows touched and, when the results are
 *  collapsed, every Email now in a thread the rows touched (its representative may change). */
export async function touchedEmails(
  mailboxes: Mailboxes,
  account: AccountId,
  rows: readonly AccountChange[],
  collapsed: boolean,
): Promise<string[]> {
  const ids = new Set(rows.flatMap((r) => (r.emailId !== null ? [r.emailId] : [])));
  if (collapsed) {
    const threads = new Set(rows.flatMap((r) => (r.threadId !== null ? [r.threadId] : [])));
    for (const l of await mailboxes.locate(account, [...ids])) threads.add(l.threadId);
    for (const t of await mailboxes.threads(account, [...threads])) for (const id of t.emailIds) ids.add(id);
  }
  return [...ids];
}
