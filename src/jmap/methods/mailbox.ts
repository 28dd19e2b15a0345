// The Mail capability (RFC 8621 §1.3.1) and Mailbox/get, /changes, /query, /queryChanges
// (§2.1-§2.4); Mailbox/set is in mailbox-set.ts, Thread/* in thread.ts, the push of state
// changes in mail-push.ts. Everything goes through the store's Mailboxes seam, so IMAP and JMAP
// see one set of mailboxes.

import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Mailboxes } from '../../store/mailboxes.ts';
import { checkKnownArgs } from '../core/args.ts';
import { type ChangeEntry, changesResponse, foldChanges, parseChanges } from '../core/changes.ts';
import { MethodError } from '../core/errors.ts';
import { getResponse, parseGet } from '../core/get.ts';
import {
  type Comparator,
  type Filter,
  parseQuery,
  parseQueryChanges,
  QUERY_CHANGES_ARGS,
  type QueryChangesRequest,
  type QueryType,
  queryChangesResponse,
  queryResponse,
  queryWindow,
} from '../core/query.ts';
import type { MethodRegistry } from '../core/registry.ts';
import type { PushHub } from '../push.ts';
import { startMailPush } from './mail-push.ts';
import { registerMailboxSet } from './mailbox-set.ts';
import {
  COUNT_PROPERTIES,
  type JmapMailbox,
  journalSince,
  loadMailboxes,
  MAIL_CAPABILITY,
  MAILBOX_PROPERTIES,
  mailboxObject,
  stateOf,
} from './mailboxes.ts';
import { registerThreadMethods } from './thread.ts';

export interface MailDeps {
  readonly store: Mailboxes;
  readonly hub: PushHub;
  /** §1.3.1 maxSizeAttachmentsPerEmail: attachments are uploads ([jmap] max_size_upload). */
  readonly maxSizeAttachmentsPerEmail: number;
}

/** §1.3.1: the account's values of the Mail capability. */
export function mailAccountCapability(maxSizeAttachmentsPerEmail: number): Record<string, unknown> {
  return {
    maxMailboxesPerEmail: null,
    maxMailboxDepth: LIMITS.mailboxes.maxDepth,
    maxSizeMailboxName: LIMITS.jmap.maxSizeMailboxName,
    maxSizeAttachmentsPerEmail,
    // What Mailboxes.accountMessages sorts by (Email/query may add more).
    emailQuerySortOptions: ['receivedAt', 'size'],
    mayCreateTopLevelMailbox: true,
  };
}

/** Registers the Mail capability, Mailbox/* and Thread/*, and pushes the account's state
 *  changes to the hub while anyone listens. */
export function registerMailboxMethods(registry: MethodRegistry, deps: MailDeps): void {
  registry.capability(MAIL_CAPABILITY, {}, mailAccountCapability(deps.maxSizeAttachmentsPerEmail));
  const { store } = deps;

  // §2.1
  registry.method(MAIL_CAPABILITY, 'Mailbox/get', async (args, ctx) => {
    const req = parseGet(args, ctx, MAILBOX_PROPERTIES);
    checkKnownArgs(req.rest, []);
    // The state before the objects are read: a change meanwhile comes again in /changes
    // (harmless), never goes missing.
    const state = await stateOf(store, ctx.account);
    const all = await loadMailboxes(store, ctx.account);
    if (req.ids === null && all.length > ctx.limits.maxObjectsInGet)
      throw new MethodError('requestTooLarge', `more than ${ctx.limits.maxObjectsInGet} mailboxes`);
    const wanted = req.ids === null ? all : all.filter((m) => req.ids?.includes(m.id));
    const threads = req.properties.has('totalThreads') || req.properties.has('unreadThreads');
    const withCounts = threads || (COUNT_PROPERTIES.some((p) => req.properties.has(p)) && 'emails');
    const found = [];
    for (const m of wanted) found.push(await mailboxObject(store, ctx.account, m, withCounts));
    return getResponse(req, ctx, state, found);
  });

  // §2.2
  registry.method(MAIL_CAPABILITY, 'Mailbox/changes', async (args, ctx) => {
    const { sinceState, maxChanges } = parseChanges(args, ctx);
    const r = await mailboxChanges(store, ctx.account, sinceState, maxChanges);
    return { ...changesResponse(ctx, sinceState, r), updatedProperties: r.updatedProperties };
  });

  // §2.3
  registry.method(MAIL_CAPABILITY, 'Mailbox/query', async (args, ctx) => {
    const q = parseQuery(args, ctx, MAILBOX_QUERY);
    checkKnownArgs(q.rest, TREE_ARGS);
    const tree = treeArgs(q.rest);
    const state = await stateOf(store, ctx.account);
    const all = await loadMailboxes(store, ctx.account);
    const ids = queryMailboxes(all, q.filter, q.sort, tree);
    return queryResponse(ctx, state, true, queryWindow(ids, q, LIMITS.mailboxes.maxPerAccount + 1));
  });

  // §2.4 (RFC 8620 §5.6): the query state is the account state; the mailboxes changed since it
  // come from the journal (as for Mailbox/changes).
  registry.method(MAIL_CAPABILITY, 'Mailbox/queryChanges', async (args, ctx) => {
    const q = parseQueryChanges(args, ctx, MAILBOX_QUERY);
    checkKnownArgs(args, [...QUERY_CHANGES_ARGS, ...TREE_ARGS]);
    const tree = treeArgs(args);
    const r = await mailboxChanges(store, ctx.account, q.sinceQueryState, null);
    if (r.hasMoreChanges) throw new MethodError('cannotCalculateChanges', 'too many changes since that state');
    const all = await loadMailboxes(store, ctx.account);
    const ids = queryMailboxes(all, q.filter, q.sort, tree);
    const changed = [...r.created, ...r.updated.filter((id) => !r.countsOnly.has(id))];
    return queryChangesResponse(ctx, q.sinceQueryState, r.newState, changedInQuery(ids, changed, r.destroyed, q));
  });

  registerMailboxSet(registry, store);
  registerThreadMethods(registry, store);
  startMailPush(deps);
}

/** §2.2 from the account journal: mailbox entries create, rename (updated), subscribe (updated)
 *  and delete; message entries make their mailbox "updated" in its counts only, which
 *  updatedProperties says when nothing else changed. */
export async function mailboxChanges(
  store: Mailboxes,
  account: AccountId,
  sinceState: string,
  maxChanges: number | null,
): Promise<ReturnType<typeof foldChanges> & { updatedProperties: string[] | null; countsOnly: Set<string> }> {
  const { current, rows, more } = await journalSince(store, account, sinceState);
  // Entries of a name no mailbox has (a subscription to a missing name) are skipped.
  const known = new Set((await loadMailboxes(store, account)).map((m) => m.id));
  for (const r of rows) if (r.kind === 'mailbox-delete') known.add(r.mailboxId);
  const entries: ChangeEntry[] = [];
  const onlyCounts = new Map<string, boolean>();
  for (const r of rows) {
    if (!known.has(r.mailboxId)) continue;
    const kind = r.kind === 'mailbox-create' ? 'created' : r.kind === 'mailbox-delete' ? 'destroyed' : 'updated';
    entries.push({ state: String(r.aseq), id: r.mailboxId, kind });
    const countsOnly = r.kind === 'append' || r.kind === 'flags' || r.kind === 'expunge';
    onlyCounts.set(r.mailboxId, (onlyCounts.get(r.mailboxId) ?? true) && countsOnly);
  }
  const folded = foldChanges(entries, current, maxChanges);
  // A window cut at MAX_JOURNAL_READ ends at its last row (whether or not it showed).
  const lastRead = String(rows.at(-1)?.aseq ?? current);
  const r = more && !folded.hasMoreChanges ? { ...folded, newState: lastRead, hasMoreChanges: true } : folded;
  const countsOnly = new Set(r.updated.filter((id) => onlyCounts.get(id) === true));
  const onlyCountsChanged = r.updated.length > 0 && countsOnly.size === r.updated.length;
  return { ...r, updatedProperties: onlyCountsChanged ? [...COUNT_PROPERTIES] : null, countsOnly };
}

/** RFC 8620 §5.6 from what changed rather than the old results (which are not kept): every
 *  mailbox created, changed (other than in its counts, which no filter or sort reads) or
 *  destroyed since is in `removed` ("The server MAY include ids in removed that were not in the
 *  results before", and an id removed and added back is how a move is told); those of them in
 *  the results now are in `added` with their index; more than maxChanges in all →
 *  tooManyChanges. upToId is ignored: every Mailbox property a filter or sort reads can change
 *  (§5.6: "If they are not immutable, this argument is ignored"). */
export function changedInQuery(
  ids: readonly string[],
  changed: readonly string[],
  destroyed: readonly string[],
  q: Pick<QueryChangesRequest, 'maxChanges' | 'calculateTotal'>,
): { removed: string[]; added: { id: string; index: number }[]; total?: number } {
  const touched = new Set([...changed, ...destroyed]);
  const added: { id: string; index: number }[] = [];
  ids.forEach((id, index) => {
    if (touched.has(id)) added.push({ id, index });
  });
  const removed = [...touched];
  if (q.maxChanges !== null && removed.length + added.length > q.maxChanges)
    throw new MethodError('tooManyChanges', `more than ${q.maxChanges} changes`);
  return { removed, added, ...(q.calculateTotal ? { total: ids.length } : {}) };
}

// §2.3 Mailbox/query.

const MAILBOX_QUERY: QueryType = {
  sortable: ['sortOrder', 'name'],
  checkCondition(c) {
    for (const [k, v] of Object.entries(c)) {
      const ok =
        k === 'parentId' || k === 'role'
          ? v === null || typeof v === 'string'
          : k === 'name'
            ? typeof v === 'string'
            : (k === 'hasAnyRole' || k === 'isSubscribed') && typeof v === 'boolean';
      if (!ok) throw new MethodError('unsupportedFilter', `unsupported condition ${k}`);
    }
  },
};

/** §2.3: Mailbox/query's own arguments (taken by Mailbox/queryChanges too, which repeats the
 *  query). */
const TREE_ARGS = ['sortAsTree', 'filterAsTree'];

interface TreeArgs {
  readonly sortAsTree: boolean;
  readonly filterAsTree: boolean;
}

function treeArgs(rest: Record<string, unknown>): TreeArgs {
  const { sortAsTree = false, filterAsTree = false } = rest;
  if (typeof sortAsTree !== 'boolean' || typeof filterAsTree !== 'boolean')
    throw new MethodError('invalidArguments', 'sortAsTree and filterAsTree are booleans');
  return { sortAsTree, filterAsTree };
}

function matches(m: JmapMailbox, f: Filter): boolean {
  if ('operator' in f && Array.isArray(f.conditions)) {
    const cs = f.conditions as Filter[];
    if (f.operator === 'AND') return cs.every((c) => matches(m, c));
    if (f.operator === 'OR') return cs.some((c) => matches(m, c));
    return !cs.some((c) => matches(m, c));
  }
  const c = f as Record<string, unknown>;
  if ('parentId' in c && m.parentId !== c.parentId) return false;
  if (typeof c.name === 'string' && !m.name.toLowerCase().includes(c.name.toLowerCase())) return false;
  if ('role' in c && m.role !== c.role) return false;
  if (typeof c.hasAnyRole === 'boolean' && (m.role !== null) !== c.hasAnyRole) return false;
  if (typeof c.isSubscribed === 'boolean' && m.isSubscribed !== c.isSubscribed) return false;
  return true;
}

function compare(a: JmapMailbox, b: JmapMailbox, sort: readonly Comparator[]): number {
  for (const c of sort) {
    let d: number;
    if (c.property === 'sortOrder') d = a.sortOrder - b.sortOrder;
    else if (c.collation === 'i;ascii-numeric' || c.collation === 'i;ascii-casemap')
      d = cmp(a.name.toLowerCase(), b.name.toLowerCase()) || cmp(a.name, b.name);
    else d = a.name.localeCompare(b.name, 'und', { sensitivity: 'base' }) || cmp(a.name, b.name);
    if (d !== 0) return c.isAscending ? d : -d;
  }
  return 0;
}

const cmp = (a: string, b: string) => (a < b ? -1 : a > b ? 1 : 0);

/** The ids of the mailboxes matching `filter` in `sort` order; §2.3 sortAsTree puts each
 *  mailbox right after its parent (siblings in sort order) and filterAsTree keeps a mailbox
 *  only when its ancestors match too. */
function queryMailboxes(
  all: readonly JmapMailbox[],
  filter: Filter | null,
  sort: readonly Comparator[],
  tree: TreeArgs,
): string[] {
  const sorted = [...all].sort((a, b) => compare(a, b, sort));
  let ordered = sorted;
  if (tree.sortAsTree) {
    const children = new Map<string | null, JmapMailbox[]>();
    for (const m of sorted) children.set(m.parentId, [...(children.get(m.parentId) ?? []), m]);
    ordered = [];
    const visit = (parent: string | null) => {
      for (const m of children.get(parent) ?? []) {
        ordered.push(m);
        visit(m.id);
      }
    };
    visit(null);
  }
  const byId = new Map(all.map((m) => [m.id, m]));
  const ok = (m: JmapMailbox) => filter === null || matches(m, filter);
  const keep = (m: JmapMailbox): boolean => {
    if (!ok(m)) return false;
    if (!tree.filterAsTree || m.parentId === null) return true;
    const parent = byId.get(m.parentId);
    return parent ? keep(parent) : true;
  };
  return ordered.filter(keep).map((m) => m.id);
}
