// Email/query (RFC 8621 §4.4), Email/queryChanges (§4.5) and SearchSnippet/get (§5).
// The store's indexes answer what they can (no filter or inMailbox alone, sorted by receivedAt
// or size: Mailboxes.accountMessages, a page at the cost of one); anything else is a bounded
// scan: every Email of the account (at most LIMITS.jmapMail.maxQueryScan) located for the
// metadata conditions. Text conditions (text, from, to, cc, bcc, subject, body) go to the
// store's full-text index (email-search.ts: whole words and prefixes, docs/jmap-email.md
// "Search"), which also narrows the emails looked at to its matches when the filter requires
// one; the emails it has not indexed yet, `header` conditions and sorts on header fields read
// each message's headers and, for text and body, its body text (at most maxTextScan messages),
// matched by the same words (`header` as a case-insensitive substring); beyond,
// unsupportedFilter. The thread keyword conditions and collapseThreads are in
// email-query-threads.ts (collapsed pages of the indexed query: accountMessages
// collapseThreads). The text is read with mime/ (bodyText, as IMAP SEARCH reads it); IMAP's
// cached search fields are in imap/'s own format and not used.

import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import { bodyText } from '../../mime/body-text.ts';
import { parseStructure } from '../../mime/structure.ts';
import { baseSubject } from '../../mime/thread-key.ts';
import type { LocatedEmail, Mailboxes } from '../../store/mailboxes.ts';
import { MethodError } from '../core/errors.ts';
import {
  type Comparator,
  type Filter,
  parseQuery,
  parseQueryChanges,
  type QueryType,
  queryChangesResponse,
  queryResponse,
  queryWindow,
} from '../core/query.ts';
import type { MethodContext } from '../core/registry.ts';
import { hasAttachment } from '../mail/body.ts';
import { parseEmail } from '../mail/email.ts';
import { type EmailHeader, headerList, headerValueOf } from '../mail/headers.ts';
import { searchSnippet, snippetTerms } from '../mail/snippet.ts';
import { attachThreads, collapse, inThread, type ThreadKeywords, touchedEmails } from './email-query-threads.ts';
import {
  dateOrder,
  indexedAnswer,
  indexedMatches,
  mergeByDate,
  needsAllText,
  searchText,
  type TextHits,
  textOnly,
  wordsMatch,
} from './email-search.ts';
import { isEmailId, keywordsOf, openEmail } from './email-store.ts';
import { parseState, stateOf } from './mailboxes.ts';

const CONDITIONS = new Set([
  'inMailbox',
  'inMailboxOtherThan',
  'before',
  'after',
  'minSize',
  'maxSize',
  'allInThreadHaveKeyword',
  'someInThreadHaveKeyword',
  'noneInThreadHaveKeyword',
  'hasKeyword',
  'notKeyword',
  'hasAttachment',
  'text',
  'from',
  'to',
  'cc',
  'bcc',
  'subject',
  'body',
  'header',
]);
const TEXT = new Set(['text', 'from', 'to', 'cc', 'bcc', 'subject', 'body', 'header']);
const SORTABLE = [
  'receivedAt',
  'size',
  'from',
  'to',
  'subject',
  'sentAt',
  'hasKeyword',
  'allInThreadHaveKeyword',
  'someInThreadHaveKeyword',
];

/** §4.4.1 FilterCondition: known properties with values of the right type. */
function checkCondition(c: Record<string, unknown>): void {
  for (const [k, v] of Object.entries(c)) {
    if (!CONDITIONS.has(k)) throw new MethodError('unsupportedFilter', `unknown filter property ${k}`);
    const ok =
      k === 'inMailboxOtherThan'
        ? Array.isArray(v) && v.length <= 1000 && v.every((x) => typeof x === 'string' && x.length <= 256)
        : k === 'minSize' || k === 'maxSize'
          ? Number.isSafeInteger(v) && (v as number) >= 0
          : k === 'hasAttachment'
            ? typeof v === 'boolean'
            : k === 'header'
              ? Array.isArray(v) &&
                v.length >= 1 &&
                v.length <= 2 &&
                v.every((x) => typeof x === 'string' && x.length <= 1000)
              : k === 'before' || k === 'after'
                ? typeof v === 'string' && !Number.isNaN(Date.parse(v))
                : typeof v === 'string' && v.length <= 1000;
    if (!ok) throw new MethodError('invalidArguments', `bad value for filter property ${k}`);
  }
}

const EMAIL_QUERY: QueryType = { sortable: SORTABLE, checkCondition };

/** What a condition or a sort needs to know of one Email, read once and kept for the query. */
interface Facts {
  readonly l: LocatedEmail;
  readonly keywords: Record<string, true>;
  thread?: ThreadKeywords;
  headers?: EmailHeader[] | null;
  body?: string | null;
  attachment?: boolean | null;
}

function conditions(f: Filter | null, out: Set<string>): Set<string> {
  if (!f) return out;
  if ('operator' in f && Array.isArray(f.conditions)) for (const c of f.conditions as Filter[]) conditions(c, out);
  else for (const k of Object.keys(f)) out.add(k);
  return out;
}

async function loadText(mailboxes: Mailboxes, account: AccountId, x: Facts, body: boolean, att: boolean) {
  if (x.headers !== undefined && (!body || x.body !== undefined) && (!att || x.attachment !== undefined)) return;
  const m = await openEmail(mailboxes, account, x.l);
  if (!m) {
    x.headers = null;
    x.body = null;
    x.attachment = null;
    return;
  }
  try {
    const root = await parseStructure(m.body, m.body.size);
    x.headers = headerList(root.header);
    // The text the index holds (LIMITS.search.maxTextChars, HTML as text), so both agree.
    if (body)
      x.body = (await bodyText(m.body, root, { maxChars: LIMITS.search.maxTextChars, html: true })).toLowerCase();
    if (att) x.attachment = hasAttachment((await parseEmail(m.body, m.body.size, () => '')).lists);
  } finally {
    await m.done();
  }
}

const lower = (v: unknown): string => (typeof v === 'string' ? v : JSON.stringify(v ?? '')).toLowerCase();

function addressText(headers: readonly EmailHeader[], field: string): string {
  const v = headerValueOf(headers, field) as { name: string | null; email: string }[] | null;
  return (v ?? [])
    .map((a) => `${a.name ?? ''} <${a.email}>`)
    .join(', ')
    .toLowerCase();
}

function matches(f: Filter, x: Facts, hits: TextHits | null = null): boolean {
  if ('operator' in f && Array.isArray(f.conditions)) {
    const cs = f.conditions as Filter[];
    if (f.operator === 'AND') return cs.every((c) => matches(c, x, hits));
    if (f.operator === 'OR') return cs.some((c) => matches(c, x, hits));
    return !cs.some((c) => matches(c, x, hits));
  }
  for (const [k, v] of Object.entries(f)) {
    const known = hits ? indexedAnswer(hits, f, k, x.l.emailId) : null;
    if (!(known ?? condition(k, v, x))) return false;
  }
  return true;
}

function condition(k: string, v: unknown, x: Facts): boolean {
  const mailboxIds = x.l.copies.map((c) => c.mailboxId);
  const h = x.headers ?? [];
  switch (k) {
    case 'inMailbox':
      return mailboxIds.includes(v as string);
    case 'inMailboxOtherThan':
      return mailboxIds.some((id) => !(v as string[]).includes(id));
    case 'before':
      return x.l.internalDate.getTime() < Date.parse(v as string);
    case 'after':
      return x.l.internalDate.getTime() >= Date.parse(v as string);
    case 'minSize':
      return x.l.size >= (v as number);
    case 'maxSize':
      return x.l.size < (v as number);
    case 'allInThreadHaveKeyword':
    case 'someInThreadHaveKeyword':
    case 'noneInThreadHaveKeyword':
      return inThread(k, v as string, x);
    case 'hasKeyword':
      return x.keywords[(v as string).toLowerCase()] === true;
    case 'notKeyword':
      return x.keywords[(v as string).toLowerCase()] !== true;
    case 'hasAttachment':
      return (x.attachment ?? false) === v;
    // Words and prefixes, as the full-text index matches (email-search.ts wordsMatch).
    case 'from':
    case 'to':
    case 'cc':
    case 'bcc':
      return wordsMatch(v as string, [addressText(h, k)]);
    case 'subject':
      return wordsMatch(v as string, [lower(headerValueOf(h, 'subject'))]);
    case 'body':
      return wordsMatch(v as string, [x.body ?? '']);
    case 'text': {
      const fields = ['from', 'to', 'cc', 'bcc'].map((f) => addressText(h, f));
      return wordsMatch(v as string, [...fields, lower(headerValueOf(h, 'subject')), x.body ?? '']);
    }
    case 'header': {
      const [name, value] = v as string[];
      const fields = h.filter((f) => f.name.toLowerCase() === (name as string).toLowerCase());
      if (value === undefined) return fields.length > 0;
      return fields.some((f) => f.value.replace(/\r?\n/g, '').toLowerCase().includes(value.toLowerCase()));
    }
    default:
      return false;
  }
}

/** The value a comparator sorts by (§4.4.2). */
function sortKey(c: Comparator, x: Facts): string | number {
  const h = x.headers ?? [];
  switch (c.property) {
    case 'receivedAt':
      return x.l.internalDate.getTime();
    case 'size':
      return x.l.size;
    case 'from':
    case 'to': {
      const v = headerValueOf(h, c.property) as { name: string | null; email: string }[] | null;
      const a = v?.[0];
      return (a ? (a.name ?? a.email) : '').toLowerCase();
    }
    case 'subject':
      return baseSubject(String(headerValueOf(h, 'subject') ?? ''));
    case 'sentAt': {
      const d = headerValueOf(h, 'sentAt');
      return typeof d === 'string' ? Date.parse(d) : x.l.internalDate.getTime();
    }
    case 'hasKeyword':
      return typeof c.keyword === 'string' && x.keywords[c.keyword.toLowerCase()] ? 1 : 0;
    default:
      return typeof c.keyword === 'string' && inThread(c.property, c.keyword, x) ? 1 : 0;
  }
}

/** The whole sorted result of a query (its Email ids). */
async function runQuery(
  mailboxes: Mailboxes,
  account: AccountId,
  filter: Filter | null,
  sort: readonly Comparator[],
  collapseThreads = false,
): Promise<string[]> {
  const used = conditions(filter, new Set());
  const max = LIMITS.jmapMail.maxQueryScan;
  // In the index's order for the first comparator when it has one (ties by base), which the
  // stable sort below keeps: the same order as the indexed path of Email/query.
  const first = sort[0];
  const byIndex: { sort: 'receivedAt' | 'size'; descending: boolean } =
    first && (first.property === 'receivedAt' || first.property === 'size')
      ? { sort: first.property, descending: !first.isAscending }
      : { sort: 'receivedAt', descending: true };
  // Text conditions through the full-text index (email-search.ts): only its candidates read.
  const hits = await searchText(mailboxes, account, filter);
  // Text conditions alone, by date: the index's matches in order; only its unindexed tail read
  // (not when collapsing threads: that needs each email's thread, located below).
  const asc = dateOrder(sort);
  const ordered =
    hits && filter && asc !== null && !collapseThreads && textOnly(filter) ? indexedMatches(hits, filter, asc) : null;
  const tail = [...(hits?.unindexed ?? [])];
  const all = ordered
    ? { ids: tail, total: tail.length }
    : hits?.candidates
      ? { ids: [...hits.candidates], total: hits.candidates.size }
      : await mailboxes.accountMessages(account, { ...byIndex, position: 0, limit: max + 1 });
  if (all.total > max)
    throw new MethodError('unsupportedFilter', `this query scans every email; the account has more than ${max}`);
  const located = new Map<string, LocatedEmail>();
  for (let i = 0; i < all.ids.length; i += 500)
    for (const l of await mailboxes.locate(account, all.ids.slice(i, i + 500))) located.set(l.emailId, l);
  const facts: Facts[] = [];
  for (const id of all.ids) {
    const l = located.get(id);
    if (l) facts.push({ l, keywords: keywordsOf(l.copies.map((c) => c.flags)) });
  }
  attachThreads(facts);
  const body = used.has('text') || used.has('body');
  const att = used.has('hasAttachment');
  const headerSort = sort.some((c) => ['from', 'to', 'subject', 'sentAt'].includes(c.property));
  const text = [...used].some((k) => TEXT.has(k)) || att || headerSort;
  // With the index, only the emails it has not indexed yet are read (unless more is needed).
  const read = hits && !needsAllText(used, headerSort) ? facts.filter((x) => hits.unindexed.has(x.l.emailId)) : facts;
  if (text) {
    if (read.length > LIMITS.jmapMail.maxTextScan)
      throw new MethodError(
        'unsupportedFilter',
        `text conditions and header sorts read every email; the account has more than ${LIMITS.jmapMail.maxTextScan}`,
      );
    for (const x of read) await loadText(mailboxes, account, x, body, att);
  }
  const kept = filter ? facts.filter((x) => x.headers !== null && matches(filter, x, hits)) : facts;
  const order = sort.length > 0 ? sort : [{ property: 'receivedAt', isAscending: false }];
  const keys = new Map(kept.map((x) => [x, order.map((c) => sortKey(c, x))]));
  kept.sort((a, b) => {
    const ka = keys.get(a) as (string | number)[];
    const kb = keys.get(b) as (string | number)[];
    for (let i = 0; i < order.length; i++) {
      const x = ka[i] as string | number;
      const y = kb[i] as string | number;
      if (x !== y) return (x < y ? -1 : 1) * ((order[i] as Comparator).isAscending ? 1 : -1);
    }
    return 0;
  });
  if (ordered)
    return mergeByDate(
      ordered,
      kept.map((x) => ({ id: x.l.emailId, date: x.l.internalDate.getTime() })),
      !!asc,
    );
  return (collapseThreads ? collapse(kept) : kept).map((x) => x.l.emailId);
}

/** The query the indexes answer alone: no filter or inMailbox only, sorted by receivedAt or
 *  size (or not sorted), by position. */
function indexed(
  q: ReturnType<typeof parseQuery>,
): { mailboxId?: string; sort: 'receivedAt' | 'size'; descending: boolean } | null {
  if (q.anchor !== null || q.position < 0 || q.sort.length > 1) return null;
  const c = q.sort[0];
  if (c && c.property !== 'receivedAt' && c.property !== 'size') return null;
  const f = q.filter as Record<string, unknown> | null;
  if (f && (Object.keys(f).length !== 1 || typeof f.inMailbox !== 'string')) return null;
  return {
    ...(f ? { mailboxId: f.inMailbox as string } : {}),
    sort: (c?.property ?? 'receivedAt') as 'receivedAt' | 'size',
    descending: c ? !c.isAscending : true,
  };
}

/** §4.4 Email/query. queryState = the account state (Email/queryChanges reads the journal). */
export async function emailQuery(
  args: Record<string, unknown>,
  ctx: MethodContext,
  mailboxes: Mailboxes,
): Promise<Record<string, unknown>> {
  const q = parseQuery(args, ctx, EMAIL_QUERY);
  const { collapseThreads, ...unknown } = q.rest;
  if (collapseThreads !== undefined && typeof collapseThreads !== 'boolean')
    throw new MethodError('invalidArguments', 'collapseThreads is a boolean');
  if (Object.keys(unknown).length > 0)
    throw new MethodError('invalidArguments', `unknown argument ${Object.keys(unknown)[0]}`);
  const state = await stateOf(mailboxes, ctx.account);
  const maxLimit = LIMITS.jmapMail.maxQueryLimit;
  const fast = indexed(q);
  if (fast) {
    const limit = Math.min(q.limit ?? maxLimit, maxLimit);
    const page = await mailboxes.accountMessages(ctx.account, {
      ...fast,
      ...(collapseThreads ? { collapseThreads } : {}),
      position: q.position,
      limit,
    });
    return queryResponse(ctx, state, true, {
      position: Math.min(q.position, page.total),
      ids: page.ids,
      ...(q.calculateTotal ? { total: page.total } : {}),
      ...(q.limit === null || q.limit > maxLimit ? { limit } : {}),
    });
  }
  const ids = await runQuery(mailboxes, ctx.account, q.filter, q.sort, collapseThreads === true);
  return queryResponse(ctx, state, true, queryWindow(ids, q, maxLimit));
}

/** §4.5 Email/queryChanges, from the account journal (old results are not kept): every Email
 *  a journal entry after sinceQueryState touched is in `removed` (RFC 8620 §5.6 allows ids
 *  that may not have been in the old results), and those of them in the results now are in
 *  `added` with their index. The results now are the whole query (bounded as a scanned
 *  query: maxQueryScan); a state the journal no longer reaches, or too many entries since, is
 *  cannotCalculateChanges. */
export async function emailQueryChanges(
  args: Record<string, unknown>,
  ctx: MethodContext,
  mailboxes: Mailboxes,
): Promise<Record<string, unknown>> {
  const { collapseThreads, ...rest } = args;
  const q = parseQueryChanges(rest, ctx, EMAIL_QUERY);
  const since = parseState(q.sinceQueryState);
  if (since === null) throw new MethodError('cannotCalculateChanges', 'unknown query state');
  await mailboxes.indexDeliveries(ctx.account);
  // The results and the journal read must agree: read again when a change came in between.
  for (let attempt = 0; attempt < 3; attempt++) {
    const max = LIMITS.jmapMail.maxChangesScan;
    const rows = await mailboxes.accountChangesSince(ctx.account, since, max + 1);
    if (rows === null || rows.length > max) throw new MethodError('cannotCalculateChanges', 'state too old');
    const state = String(rows.at(-1)?.aseq ?? since);
    const now = await runQuery(mailboxes, ctx.account, q.filter, q.sort, collapseThreads === true);
    if ((await stateOf(mailboxes, ctx.account)) !== state) continue;
    const changed = await touchedEmails(mailboxes, ctx.account, rows, collapseThreads === true);
    const index = new Map(now.map((id, i) => [id, i]));
    const upTo = q.upToId !== null ? (index.get(q.upToId) ?? now.length) : now.length;
    const added = changed
      .flatMap((id) => {
        const i = index.get(id);
        return i !== undefined && i <= upTo ? [{ id, index: i }] : [];
      })
      .sort((x, y) => x.index - y.index);
    if (q.maxChanges !== null && changed.length + added.length > q.maxChanges) throw new MethodError('tooManyChanges');
    return queryChangesResponse(ctx, q.sinceQueryState, state, {
      removed: changed,
      added,
      ...(q.calculateTotal ? { total: now.length } : {}),
    });
  }
  throw new MethodError('cannotCalculateChanges', 'the account keeps changing');
}

/** §5.1 SearchSnippet/get: the subject and a piece of the body with the filter's text, subject
 *  and body terms marked (mail/snippet.ts). */
export async function searchSnippetGet(
  args: Record<string, unknown>,
  ctx: MethodContext,
  mailboxes: Mailboxes,
): Promise<Record<string, unknown>> {
  const { filter, emailIds, accountId } = args;
  if (accountId !== ctx.accountId) throw new MethodError('accountNotFound');
  if (!Array.isArray(emailIds) || !emailIds.every((i) => typeof i === 'string'))
    throw new MethodError('invalidArguments', 'emailIds is a list of ids');
  if (emailIds.length > ctx.limits.maxObjectsInGet) throw new MethodError('requestTooLarge');
  if (filter !== undefined && filter !== null) {
    if (typeof filter !== 'object' || Array.isArray(filter)) throw new MethodError('invalidArguments', 'bad filter');
    parseQuery({ accountId, filter }, ctx, EMAIL_QUERY);
  }
  const texts: string[] = [];
  const walk = (f: Filter) => {
    if ('operator' in f && Array.isArray(f.conditions)) {
      if (f.operator !== 'NOT') for (const c of f.conditions as Filter[]) walk(c);
    } else {
      const c = f as Record<string, unknown>;
      for (const k of ['text', 'subject', 'body']) if (typeof c[k] === 'string') texts.push(c[k] as string);
    }
  };
  if (filter) walk(filter as Filter);
  const terms = snippetTerms(texts);
  const located = await mailboxes.locate(ctx.account, (emailIds as string[]).filter(isEmailId));
  const list: Record<string, unknown>[] = [];
  for (const l of located) {
    const m = await openEmail(mailboxes, ctx.account, l);
    if (!m) continue;
    try {
      const root = await parseStructure(m.body, m.body.size);
      const subject = headerValueOf(headerList(root.header), 'subject');
      const body = terms.length > 0 ? await bodyText(m.body, root) : null;
      list.push({ emailId: l.emailId, ...searchSnippet(terms, typeof subject === 'string' ? subject : null, body) });
    } finally {
      await m.done();
    }
  }
  const found = new Set(list.map((s) => s.emailId));
  const notFound = (emailIds as string[]).filter((id) => !found.has(id));
  return { accountId: ctx.accountId, list, notFound: notFound.length > 0 ? notFound : null };
}
