// The /query and /queryChanges frameworks (RFC 8620 §5.5, §5.6): arguments checked (filter
// trees bounded in depth, sort against the type's supported properties -> unsupportedSort,
// filter conditions by the type's check -> unsupportedFilter), and the window of a sorted id
// list cut by position or anchor/anchorOffset and limit (anchorNotFound). queryChanges
// compares the old and new sorted lists (kept by the type, or cannotCalculateChanges). Pure.

import { z } from 'zod';
import { LIMITS } from '../../core/limits.ts';
import { parseArgs } from './args.ts';
import { MethodError } from './errors.ts';
import { checkAccount, type MethodContext } from './registry.ts';

export interface Comparator {
  readonly property: string;
  readonly isAscending: boolean;
  readonly collation?: string;
  readonly [key: string]: unknown;
}

export type Filter =
  | { readonly operator: 'AND' | 'OR' | 'NOT'; readonly conditions: readonly Filter[] }
  | Record<string, unknown>;

const comparator = z.looseObject({
  property: z.string().max(256),
  isAscending: z.boolean().default(true),
  collation: z.string().max(256).optional(),
});

const common = {
  accountId: z.string(),
  filter: z.record(z.string(), z.unknown()).nullable().optional(),
  sort: z.array(comparator).max(16).nullable().optional(),
};

const queryArgs = z.object({
  ...common,
  position: z.number().int().default(0),
  anchor: z.string().max(256).nullable().optional(),
  anchorOffset: z.number().int().default(0),
  limit: z.number().int().min(0).nullable().optional(),
  calculateTotal: z.boolean().default(false),
});

/** The standard /queryChanges arguments (a type's own come on top: checkKnownArgs). */
export const QUERY_CHANGES_ARGS = [
  'accountId',
  'filter',
  'sort',
  'sinceQueryState',
  'maxChanges',
  'upToId',
  'calculateTotal',
] as const;

const queryChangesArgs = z.object({
  ...common,
  sinceQueryState: z.string(),
  maxChanges: z.number().int().positive().nullable().optional(),
  upToId: z.string().max(256).nullable().optional(),
  calculateTotal: z.boolean().default(false),
});

export interface QueryType {
  /** Properties that may be sorted on (and the collations, §2 collationAlgorithms). */
  readonly sortable: readonly string[];
  /** Throws unsupportedFilter (MethodError) for a FilterCondition it does not take. */
  checkCondition(condition: Record<string, unknown>): void;
}

/** A FilterOperator (§5.5) or a condition, its depth bounded. */
function checkFilter(f: Record<string, unknown>, type: QueryType, depth: number): void {
  if (depth > LIMITS.jmap.maxFilterDepth) throw new MethodError('unsupportedFilter', 'filter nested too deeply');
  if ('operator' in f) {
    const { operator, conditions } = f;
    if (
      (operator !== 'AND' && operator !== 'OR' && operator !== 'NOT') ||
      !Array.isArray(conditions) ||
      Object.keys(f).length !== 2
    )
      throw new MethodError('invalidArguments', 'a FilterOperator has operator AND/OR/NOT and conditions');
    for (const c of conditions) {
      if (typeof c !== 'object' || c === null || Array.isArray(c))
        throw new MethodError('invalidArguments', 'a filter condition is an object');
      checkFilter(c as Record<string, unknown>, type, depth + 1);
    }
    return;
  }
  type.checkCondition(f);
}

function checkSort(sort: readonly Comparator[], type: QueryType): void {
  for (const c of sort) {
    if (!type.sortable.includes(c.property)) throw new MethodError('unsupportedSort', `cannot sort by ${c.property}`);
    if (c.collation !== undefined && !COLLATIONS.includes(c.collation))
      throw new MethodError('unsupportedSort', `unknown collation ${c.collation}`);
  }
}

/** §2 collationAlgorithms (RFC 4790 registry names) the server supports. */
export const COLLATIONS: readonly string[] = ['i;ascii-numeric', 'i;ascii-casemap', 'i;unicode-casemap'];

export interface QueryRequest {
  readonly filter: Filter | null;
  readonly sort: readonly Comparator[];
  readonly position: number;
  readonly anchor: string | null;
  readonly anchorOffset: number;
  readonly limit: number | null;
  readonly calculateTotal: boolean;
  readonly rest: Record<string, unknown>;
}

export function parseQuery(args: Record<string, unknown>, ctx: MethodContext, type: QueryType): QueryRequest {
  const a = parseArgs(queryArgs, args);
  checkAccount(a.accountId, ctx);
  if (a.filter) checkFilter(a.filter, type, 0);
  const sort = (a.sort ?? []) as Comparator[];
  checkSort(sort, type);
  const { accountId: _a, filter: _f, sort: _s, position: _p, anchor: _n, anchorOffset: _o, limit: _l, ...rest } = args;
  const { calculateTotal: _c, ...others } = rest;
  return {
    filter: (a.filter ?? null) as Filter | null,
    sort,
    position: a.position,
    anchor: a.anchor ?? null,
    anchorOffset: a.anchorOffset,
    limit: a.limit ?? null,
    calculateTotal: a.calculateTotal,
    rest: others,
  };
}

/** §5.5: the window of `ids` (the whole sorted result) the request asks for; `maxLimit` caps
 *  the limit (the response then says the limit used). */
export function queryWindow(
  ids: readonly string[],
  q: QueryRequest,
  maxLimit: number,
): { position: number; ids: string[]; total?: number; limit?: number } {
  let start: number;
  if (q.anchor !== null) {
    const at = ids.indexOf(q.anchor);
    if (at < 0) throw new MethodError('anchorNotFound');
    start = Math.max(0, at + q.anchorOffset);
  } else if (q.position < 0) start = Math.max(0, ids.length + q.position);
  else start = Math.min(q.position, ids.length);
  const limit = Math.min(q.limit ?? maxLimit, maxLimit);
  return {
    position: start,
    ids: ids.slice(start, start + limit),
    ...(q.calculateTotal ? { total: ids.length } : {}),
    ...(q.limit === null || q.limit > maxLimit ? { limit } : {}),
  };
}

/** The /query response (§5.5) from the window and the type's query state. */
export function queryResponse(
  ctx: MethodContext,
  queryState: string,
  canCalculateChanges: boolean,
  window: ReturnType<typeof queryWindow>,
): Record<string, unknown> {
  return { accountId: ctx.accountId, queryState, canCalculateChanges, ...window };
}

export interface QueryChangesRequest {
  readonly filter: Filter | null;
  readonly sort: readonly Comparator[];
  readonly sinceQueryState: string;
  readonly maxChanges: number | null;
  readonly upToId: string | null;
  readonly calculateTotal: boolean;
}

export function parseQueryChanges(
  args: Record<string, unknown>,
  ctx: MethodContext,
  type: QueryType,
): QueryChangesRequest {
  const a = parseArgs(queryChangesArgs, args);
  checkAccount(a.accountId, ctx);
  if (a.filter) checkFilter(a.filter, type, 0);
  const sort = (a.sort ?? []) as Comparator[];
  checkSort(sort, type);
  return {
    filter: (a.filter ?? null) as Filter | null,
    sort,
    sinceQueryState: a.sinceQueryState,
    maxChanges: a.maxChanges ?? null,
    upToId: a.upToId ?? null,
    calculateTotal: a.calculateTotal,
  };
}

/** §5.6 from the old and the new sorted result: ids kept in the same relative order (a longest
 *  increasing run of their old positions) are unchanged; every other id of the old list is
 *  removed, every other id of the new list added at its index. With upToId, stops after that
 *  id of the new list. `old` null (the type no longer knows that query state) →
 *  cannotCalculateChanges; more than maxChanges → tooManyChanges. */
export function queryChanges(
  old: readonly string[] | null,
  now: readonly string[],
  q: QueryChangesRequest,
): { removed: string[]; added: { id: string; index: number }[]; total?: number } {
  if (old === null) throw new MethodError('cannotCalculateChanges');
  const oldIndex = new Map(old.map((id, i) => [id, i]));
  let upTo = now.length;
  if (q.upToId !== null) {
    const at = now.indexOf(q.upToId);
    if (at >= 0) upTo = at + 1;
  }
  const head = now.slice(0, upTo);
  const kept = longestIncreasing(head.map((id) => oldIndex.get(id) ?? -1));
  const keptIds = new Set([...kept].map((i) => head[i] as string));
  // Every old id not kept is removed (those added again at a new index too, §5.6).
  const removed = old.filter((id) => !keptIds.has(id));
  const added = head.flatMap((id, index) => (keptIds.has(id) ? [] : [{ id, index }]));
  if (q.maxChanges !== null && removed.length + added.length > q.maxChanges) throw new MethodError('tooManyChanges');
  return { removed, added, ...(q.calculateTotal ? { total: now.length } : {}) };
}

/** Indexes (into `xs`) of a longest strictly increasing subsequence of the non-negative values,
 *  O(n log n). */
function longestIncreasing(xs: readonly number[]): Set<number> {
  const tails: number[] = []; // index into xs of the smallest tail of each length
  const prev = new Array<number>(xs.length).fill(-1);
  for (let i = 0; i < xs.length; i++) {
    const x = xs[i] as number;
    if (x < 0) continue;
    let lo = 0;
    let hi = tails.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if ((xs[tails[mid] as number] as number) < x) lo = mid + 1;
      else hi = mid;
    }
    prev[i] = lo > 0 ? (tails[lo - 1] as number) : -1;
    tails[lo] = i;
  }
  const out = new Set<number>();
  let k = tails.length > 0 ? (tails[tails.length - 1] as number) : -1;
  while (k >= 0) {
    out.add(k);
    k = prev[k] as number;
  }
  return out;
}

/** The /queryChanges response (§5.6). */
export function queryChangesResponse(
  ctx: MethodContext,
  oldQueryState: string,
  newQueryState: string,
  r: ReturnType<typeof queryChanges>,
): Record<string, unknown> {
  return { accountId: ctx.accountId, oldQueryState, newQueryState, ...r };
}
