// Email/query's text conditions through the store's full-text index (Mailboxes.searchEmails,
// RFC 8621 §4.4.1; matching: docs/jmap-email.md "Search"). Each FilterCondition with text
// properties (text, from, to, cc, bcc, subject, body; `header` keeps the scan) is one index
// query (its properties must all hold). The index answers for the emails it has indexed; the
// emails appended since its position (`unindexed`) are still read and matched as before by
// email-query.ts, so the results are complete. When the filter requires a text condition
// (a condition alone, under AND, or every branch of an OR), only the emails the index found and
// that tail are looked at, not every email of the account: what makes a text search of a
// 100,000-email account possible.

import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import { searchTerms, searchTokens, termIn } from '../../core/search-terms.ts';
import type { Mailboxes, TextCondition, TextField } from '../../store/mailboxes.ts';
import type { Filter } from '../core/query.ts';

const INDEXED = new Set<string>(['text', 'from', 'to', 'cc', 'bcc', 'subject', 'body']);

export interface TextHits {
  /** The emails a match must be among; null: any email may match (a NOT, an OR with a
   *  branch without text). */
  readonly candidates: ReadonlySet<string> | null;
  /** Per FilterCondition with text properties: the indexed emails matching them all. */
  readonly leaves: ReadonlyMap<Filter, ReadonlySet<string>>;
  /** Emails the index has not indexed yet: matched by reading them. */
  readonly unindexed: ReadonlySet<string>;
}

const isOperator = (f: Filter): boolean => 'operator' in f && Array.isArray(f.conditions);

/** Asks the index for every condition of `filter` with text properties; null when it has none
 *  or the index cannot answer one (the caller reads every message, bounded). */
export async function searchText(
  mailboxes: Mailboxes,
  account: AccountId,
  filter: Filter | null,
): Promise<TextHits | null> {
  if (!filter) return null;
  const leaves = new Map<Filter, ReadonlySet<string>>();
  const unindexed = new Set<string>();
  const visit = async (f: Filter): Promise<boolean> => {
    if (isOperator(f)) {
      for (const c of f.conditions as Filter[]) if (!(await visit(c))) return false;
      return true;
    }
    const conds: TextCondition[] = Object.entries(f)
      .filter(([k, v]) => INDEXED.has(k) && typeof v === 'string')
      .map(([k, v]) => ({ field: k as TextField, value: v as string }));
    if (conds.length === 0) return true;
    const r = await mailboxes.searchEmails(account, conds);
    if (r === null) return false;
    leaves.set(f, new Set(r.ids));
    for (const id of r.unindexed) unindexed.add(id);
    return true;
  };
  if (!(await visit(filter)) || leaves.size === 0) return null;
  return { candidates: required(filter, leaves, unindexed), leaves, unindexed };
}

/** The emails every match of `f` is among, or null for any. */
function required(
  f: Filter,
  leaves: ReadonlyMap<Filter, ReadonlySet<string>>,
  unindexed: ReadonlySet<string>,
): Set<string> | null {
  if (!isOperator(f)) {
    const hit = leaves.get(f);
    return hit ? new Set([...hit, ...unindexed]) : null;
  }
  const subs = f.operator === 'NOT' ? [] : (f.conditions as Filter[]).map((c) => required(c, leaves, unindexed));
  if (f.operator === 'OR') {
    if (subs.length === 0 || subs.some((s) => s === null)) return null;
    return new Set(subs.flatMap((s) => [...(s as Set<string>)]));
  }
  const sets = subs.filter((x): x is Set<string> => x !== null);
  let out: Set<string> | null = null;
  for (const x of sets) {
    if (out === null) out = x;
    else for (const id of out) if (!x.has(id)) out.delete(id);
  }
  return out;
}

/** Whether the email matches the text property `k` of condition `f` by the index; null when
 *  the index does not say (not a text property, or an email it has not indexed yet). */
export function indexedAnswer(hits: TextHits, f: Filter, k: string, emailId: string): boolean | null {
  if (!INDEXED.has(k) || hits.unindexed.has(emailId)) return null;
  const leaf = hits.leaves.get(f);
  return leaf ? leaf.has(emailId) : null;
}

/** Whether reading the emails' text is needed for more than the unindexed tail. */
export function needsAllText(used: ReadonlySet<string>, sortsOnHeaders: boolean): boolean {
  return used.has('header') || used.has('hasAttachment') || sortsOnHeaders;
}

/** The scan's match of a text condition (emails the index has not indexed, or no index): every
 *  term of `value` in one of `fields`, by the index's rules (core/search-terms.ts). */
export function wordsMatch(value: string, fields: readonly string[]): boolean {
  const terms = searchTerms(value, Number.POSITIVE_INFINITY, LIMITS.search.maxTermChars) ?? [];
  if (terms.length === 0) return true;
  const tokens = fields.map(searchTokens);
  return terms.every((t) => tokens.some((tk) => termIn(t, tk)));
}
