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
  /** The internal date (ms) of every email the index found. */
  readonly dates: ReadonlyMap<string, number>;
  /** Emails the index holds whose last copy went since its position. */
  readonly gone: ReadonlySet<string>;
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
  const dates = new Map<string, number>();
  const gone = new Set<string>();
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
    for (const [i, id] of r.ids.entries()) dates.set(id, r.receivedAt[i] as number);
    for (const id of r.unindexed) unindexed.add(id);
    for (const id of r.gone) gone.add(id);
    return true;
  };
  if (!(await visit(filter)) || leaves.size === 0) return null;
  return { candidates: required(filter, leaves, unindexed), leaves, unindexed, dates, gone };
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

/** A filter of text conditions only, under AND and OR: the index alone decides for the emails
 *  it has indexed (no message read, nothing located). */
export function textOnly(f: Filter): boolean {
  if (isOperator(f)) return f.operator !== 'NOT' && (f.conditions as Filter[]).every(textOnly);
  return Object.keys(f).every((k) => INDEXED.has(k));
}

/** For a textOnly filter sorted by receivedAt (or not sorted: newest first): the indexed
 *  matches (the unindexed tail left out) in that order, with their dates, without locating
 *  them; a 100,000-email account's common word costs a sort of ids, not 100,000 lookups. */
export function indexedMatches(hits: TextHits, f: Filter, ascending: boolean): { id: string; date: number }[] {
  const holds = (g: Filter, id: string): boolean => {
    if (!isOperator(g)) return hits.leaves.get(g)?.has(id) ?? true;
    const cs = g.conditions as Filter[];
    return g.operator === 'AND' ? cs.every((c) => holds(c, id)) : cs.some((c) => holds(c, id));
  };
  const out: { id: string; date: number }[] = [];
  for (const [id, date] of hits.dates) {
    if (!hits.unindexed.has(id) && !hits.gone.has(id) && holds(f, id)) out.push({ id, date });
  }
  const dir = ascending ? 1 : -1;
  return out.sort((a, b) => (a.date - b.date || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0)) * dir);
}

/** Two lists in the same receivedAt order merged (the tail's matches into the index's). */
export function mergeByDate(
  a: readonly { id: string; date: number }[],
  b: readonly { id: string; date: number }[],
  ascending: boolean,
): string[] {
  const seen = new Set(a.map((x) => x.id));
  const all = [...a, ...b.filter((x) => !seen.has(x.id))];
  const dir = ascending ? 1 : -1;
  return all.sort((x, y) => (x.date - y.date || (x.id < y.id ? -1 : x.id > y.id ? 1 : 0)) * dir).map((x) => x.id);
}

/** Whether the sort is by receivedAt alone (or none: newest first): its direction, else null. */
export function dateOrder(sort: readonly { property: string; isAscending: boolean }[]): boolean | null {
  if (sort.length === 0) return false;
  return sort.length === 1 && sort[0]?.property === 'receivedAt' ? sort[0].isAscending : null;
}
