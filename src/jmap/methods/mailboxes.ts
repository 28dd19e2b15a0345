// The account's mailboxes as JMAP Mailbox objects (RFC 8621 §2), read through the store's
// Mailboxes seam: IMAP names ("." the hierarchy separator) become a tree of `name` (the last
// level) and `parentId` (the nearest superior that is a mailbox: a \Noselect level that is no
// mailbox is no Mailbox object, its name stays in the child's), special-use attributes become
// roles, and the counts come from the mailbox's messages and the store's threads
// (Mailboxes.mailboxThreads).

import type { AccountId } from '../../core/ids.ts';
import type { AccountChange, Mailboxes, MailboxListEntry } from '../../store/mailboxes.ts';
import { HIERARCHY } from '../../store/names.ts';
import { MethodError } from '../core/errors.ts';

export const MAIL_CAPABILITY = 'urn:ietf:params:jmap:mail';

export interface JmapMailbox {
  readonly id: string;
  /** The IMAP name (not a JMAP property). */
  readonly fullName: string;
  readonly name: string;
  readonly parentId: string | null;
  readonly role: string | null;
  readonly sortOrder: number;
  readonly isSubscribed: boolean;
  readonly hasChildren: boolean;
}

export const MAILBOX_PROPERTIES = [
  'id',
  'name',
  'parentId',
  'role',
  'sortOrder',
  'totalEmails',
  'unreadEmails',
  'totalThreads',
  'unreadThreads',
  'myRights',
  'isSubscribed',
] as const;

export const COUNT_PROPERTIES = ['totalEmails', 'unreadEmails', 'totalThreads', 'unreadThreads'] as const;

/** §2: the role of an RFC 6154 special use ("\\Sent" -> "sent"); INBOX is "inbox". */
export function roleOf(entry: Pick<MailboxListEntry, 'name' | 'specialUse'>): string | null {
  if (entry.name === 'INBOX') return 'inbox';
  return entry.specialUse ? entry.specialUse.slice(1).toLowerCase() : null;
}

/** The special use that gives `role` ("sent" -> "\\Sent"). */
export function specialUseOf(role: string): string {
  return `\\${role.slice(0, 1).toUpperCase()}${role.slice(1)}`;
}

/** Every mailbox of the account (those with an id), in list order (INBOX first). */
export async function loadMailboxes(store: Mailboxes, account: AccountId): Promise<JmapMailbox[]> {
  const entries = (await store.list(account, { ids: true })).filter((e) => e.id !== undefined && !e.nonexistent);
  const ids = new Map(entries.map((e) => [e.name, e.id as string]));
  const withChildren = new Set<string>();
  const out = entries.map((e) => {
    let parentId: string | null = null;
    let name = e.name;
    for (let i = e.name.lastIndexOf(HIERARCHY); i > 0; i = e.name.lastIndexOf(HIERARCHY, i - 1)) {
      const parent = ids.get(e.name.slice(0, i));
      if (parent) {
        parentId = parent;
        name = e.name.slice(i + 1);
        withChildren.add(parent);
        break;
      }
    }
    const sortOrder = e.sortOrder ?? 0;
    return {
      id: e.id as string,
      fullName: e.name,
      name,
      parentId,
      role: roleOf(e),
      sortOrder,
      isSubscribed: e.subscribed,
    };
  });
  return out.map((m) => ({ ...m, hasChildren: withChildren.has(m.id) }));
}

/** §2.1 myRights: the owner may do everything, except delete or rename INBOX. */
export function myRights(m: JmapMailbox): Record<string, boolean> {
  const inbox = m.fullName === 'INBOX';
  return {
    mayReadItems: true,
    mayAddItems: true,
    mayRemoveItems: true,
    maySetSeen: true,
    maySetKeywords: true,
    mayCreateChild: true,
    mayRename: !inbox,
    mayDelete: !inbox,
    maySubmit: true,
  };
}

export interface Counts {
  readonly totalEmails: number;
  readonly unreadEmails: number;
  readonly totalThreads: number;
  readonly unreadThreads: number;
}

/** §2.1 counts: the mailbox's messages and the unread ones, without $seen and $draft (a
 *  message marked \Deleted is still an Email of the mailbox until it is expunged); the threads
 *  with an email there, and with an unread one there (the simplest rule §2.1 allows). */
export async function countsOf(
  store: Mailboxes,
  account: AccountId,
  fullName: string,
  id: string,
  threads = true,
): Promise<Counts> {
  const mbox = await store.open(account, fullName);
  try {
    const status = await mbox.sync();
    let unread = 0;
    // §2.1 unreadEmails: neither $seen nor $draft.
    for (const m of status.messages) if (!m.flags.includes('\\Seen') && !m.flags.includes('\\Draft')) unread++;
    const total = status.messages.length;
    // Kept per mailbox by the index (docs/benchmarks.md "Thread counts kept"): one row read.
    const t = threads ? await store.mailboxThreads(account, id) : { total: 0, unread: 0 };
    return { totalEmails: total, unreadEmails: unread, totalThreads: t.total, unreadThreads: t.unread };
  } finally {
    store.release(account, mbox);
  }
}

/** The Mailbox object with every property (counts only when `withCounts`; 'emails': the
 *  thread counts are not asked for and left 0). */
export async function mailboxObject(
  store: Mailboxes,
  account: AccountId,
  m: JmapMailbox,
  withCounts: boolean | 'emails',
): Promise<Record<string, unknown>> {
  const counts = withCounts ? await countsOf(store, account, m.fullName, m.id, withCounts === true) : {};
  return {
    id: m.id,
    name: m.name,
    parentId: m.parentId,
    role: m.role,
    sortOrder: m.sortOrder,
    ...counts,
    myRights: myRights(m),
    isSubscribed: m.isSubscribed,
  };
}

/** JMAP state strings are the account journal's position (docs/jmap-mailbox.md), with every
 *  delivery made so far in it. */
export async function stateOf(store: Mailboxes, account: AccountId): Promise<string> {
  await store.indexDeliveries(account);
  return String(await store.accountState(account));
}

/** A state string back to the journal position; null for one this server never gave. */
export function parseState(state: string): number | null {
  if (!/^(?:0|[1-9][0-9]{0,15})$/.test(state)) return null;
  const n = Number(state);
  return Number.isSafeInteger(n) ? n : null;
}

/** At most this many journal entries are read for one /changes (a longer window answers
 *  hasMoreChanges and the client asks again from the newState it got). */
const MAX_JOURNAL_READ = 50_000;

/** The account journal entries after `sinceState` (at most MAX_JOURNAL_READ, and whether more
 *  follow), or cannotCalculateChanges. */
export async function journalSince(
  store: Mailboxes,
  account: AccountId,
  sinceState: string,
): Promise<{ current: string; rows: AccountChange[]; more: boolean }> {
  const since = parseState(sinceState);
  if (since === null) throw new MethodError('cannotCalculateChanges', 'not a state of this server');
  const current = await stateOf(store, account);
  const rows = await store.accountChangesSince(account, since, MAX_JOURNAL_READ + 1);
  if (rows === null) throw new MethodError('cannotCalculateChanges', 'the journal no longer reaches that state');
  const more = rows.length > MAX_JOURNAL_READ;
  return { current, rows: more ? rows.slice(0, MAX_JOURNAL_READ) : rows, more };
}
