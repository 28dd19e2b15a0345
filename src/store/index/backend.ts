// The mail index as the Maildir store uses it (docs/architecture.md §7): one asynchronous
// interface with two implementations,
//   - IndexClient (index/client.ts): SQLite in {state}/mailindex.db, run in worker threads; one
//     process owns it (the state directory's lock), so lockMailbox() only orders nothing;
//   - PostgresMailIndex (index/postgres.ts): the shared index of a cluster (issue #18,
//     docs/cluster.md): several nodes write the same mailboxes, so a mailbox's writers take its
//     lock across nodes, a write checks the counters it was computed from, and every commit that
//     moves an account's journal publishes (account, position) with NOTIFY (db/notify.ts).
// The contract both pass: test/store/index-contract.ts.

import type {
  AccountChangeRow,
  CacheField,
  IndexWrite,
  JournalRow,
  LocatedRow,
  MailboxRow,
  MailIndex,
  MessageColumns,
  MessageQuery,
} from './db.ts';

/** What changed in a mailbox after a MODSEQ (catchUp): what a node that did not make those
 *  changes needs to bring its view of the mailbox up to date. */
export interface MailboxCatchUp {
  /** The mailbox's entry now (counters), or null when it was deleted. */
  readonly row: MailboxRow | null;
  /** The messages whose row changed after the MODSEQ (appended or flags changed), UID order. */
  readonly changed: MessageColumns;
  /** UIDs expunged after the MODSEQ (from the journal), ascending. */
  readonly expunged: readonly number[];
}

/** The counters a write was computed from: a write whose mailbox moved on meanwhile (another
 *  node wrote it) fails with CONFLICT and changes nothing. */
export interface WriteExpect {
  readonly uidnext: number;
  readonly highestmodseq: number;
}

/** A mailbox's lock across every process writing the index (lockMailbox). */
export interface MailboxLock {
  release(): Promise<void>;
}

type Async<F> = F extends (...a: infer A) => infer R ? (...a: A) => Promise<R> : never;
type Op<K extends keyof MailIndex> = Async<MailIndex[K]>;

export interface MailIndexBackend {
  /** Opens (and migrates) the index now; an index it cannot use stops start-up. */
  open(): Promise<void>;
  /** One query (readiness). */
  ping(): Promise<void>;
  close(): Promise<void>;

  mailbox: Op<'mailbox'>;
  mailboxes: Op<'mailboxes'>;
  messageColumns: Op<'messageColumns'>;
  cachedMany: Op<'cachedMany'>;
  vanishedSince: Op<'vanishedSince'>;
  changesSince: Op<'changesSince'>;
  accountMessages: Op<'accountMessages'>;
  locate: Op<'locate'>;
  accounts: Op<'accounts'>;
  threads: Op<'threads'>;
  mailboxThreads: Op<'mailboxThreads'>;
  accountState: Op<'accountState'>;
  accountChangesSince: Op<'accountChangesSince'>;

  createMailbox: Op<'createMailbox'>;
  createMailboxes: Op<'createMailboxes'>;
  importMailbox: Op<'importMailbox'>;
  deleteMailbox: Op<'deleteMailbox'>;
  renameMailbox: Op<'renameMailbox'>;
  setSubscribed: Op<'setSubscribed'>;
  setSortOrder: Op<'setSortOrder'>;
  /** One change with its journal entries, in one transaction. With `expect`, refused with
   *  CONFLICT (nothing written) when the mailbox's counters are no longer those. */
  write(mailbox: number, w: IndexWrite, expect?: WriteExpect): Promise<void>;
  setCachedMany: Op<'setCachedMany'>;

  /** The mailbox's changes after `modseq` (see MailboxCatchUp); null when the journal no longer
   *  reaches back that far (the caller reloads the whole mailbox). */
  catchUp(mailbox: number, modseq: number): Promise<MailboxCatchUp | null>;
  /** Takes the mailbox's lock across processes, waiting for it; writes of this process to that
   *  mailbox until release() go through the lock's connection. SQLite: nothing to take. */
  lockMailbox(mailbox: number): Promise<MailboxLock>;
  /** Whether several processes share this index (PostgreSQL): mailboxes then catch up from the
   *  journal and lock across processes instead of trusting their memory. */
  readonly shared: boolean;
}

export type {
  AccountChangeRow,
  CacheField,
  IndexWrite,
  JournalRow,
  LocatedRow,
  MailboxRow,
  MessageColumns,
  MessageQuery,
};
