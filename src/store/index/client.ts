// The mail index as the server uses it: every query runs in an index worker thread
// (index/worker.ts) and comes back as a promise, so the event loop never waits on SQLite
// (issue #11, docs/architecture.md §7). Two threads share the database (WAL): writes go to one,
// in the order they were made, and resolve once committed (a caller that tells a client a UID
// or a MODSEQ awaits the write first); reads go to the other, so a write waiting for the lock
// (held by the CLI, a backup) holds up neither the reads nor the event loop. A read issued after
// a write resolved sees it.

import { ArclineError } from '../../core/errors.ts';
import { Lane, workerUrl } from '../worker-lane.ts';
import type { MailboxCatchUp, MailboxLock, MailIndexBackend, WriteExpect } from './backend.ts';
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
import type { IndexOp } from './worker.ts';

/** The lock of a mailbox in an index one process owns: nothing to take. */
const NO_LOCK: MailboxLock = { release: () => Promise.resolve() };

export class IndexClient implements MailIndexBackend {
  /** One process owns the SQLite index (the state directory's lock). */
  readonly shared = false;
  readonly #writer: Lane;
  readonly #reader: Lane;
  #closed = false;

  /** `root`: the Maildir root, where the index reads the threading fields of messages it is
   *  given without them (index/threads.ts); null: they are taken as absent. */
  constructor(path: string, root: string | null = null) {
    const url = workerUrl('worker', import.meta.url);
    this.#writer = new Lane(url, path, 'mail index', { root });
    this.#reader = new Lane(url, path, 'mail index', { root });
  }

  /** Opens (and migrates) the database now, not at the first query: the server calls it at
   *  start, so an index it cannot use (a newer schema) stops start-up with the reason. */
  open(): Promise<void> {
    return this.#writer.ready();
  }

  #write<K extends IndexOp>(op: K, ...args: Parameters<MailIndex[K]>): Promise<ReturnType<MailIndex[K]>> {
    if (this.#closed) return Promise.reject(new ArclineError('TEMPORARY', 'mail index is closed'));
    return this.#writer.call(op, args);
  }

  async #read<K extends IndexOp>(op: K, ...args: Parameters<MailIndex[K]>): Promise<ReturnType<MailIndex[K]>> {
    if (this.#closed) throw new ArclineError('TEMPORARY', 'mail index is closed');
    // The writer opens first: it creates and migrates the database the reader then opens.
    await this.#writer.ready();
    return this.#reader.call(op, args);
  }

  mailbox(account: string, name: string): Promise<MailboxRow | null> {
    return this.#read('mailbox', account, name);
  }
  /** One query through the reading thread (the readiness check). */
  async ping(): Promise<void> {
    await this.#read('mailbox', '', '');
  }
  mailboxes(account: string): Promise<MailboxRow[]> {
    return this.#read('mailboxes', account);
  }
  messageColumns(mailbox: number): Promise<MessageColumns> {
    return this.#read('messageColumns', mailbox);
  }
  cachedMany(mailbox: number, uids: readonly number[], field: CacheField): Promise<[number, string][]> {
    return this.#read('cachedMany', mailbox, uids, field);
  }
  vanishedSince(mailbox: number, modseq: number): Promise<number[]> {
    return this.#read('vanishedSince', mailbox, modseq);
  }
  changesSince(mailbox: number, modseq: number): Promise<JournalRow[] | null> {
    return this.#read('changesSince', mailbox, modseq);
  }
  accountMessages(account: string, q: MessageQuery): Promise<{ ids: string[]; total: number }> {
    return this.#read('accountMessages', account, q);
  }
  locate(account: string, ids: readonly string[]): Promise<LocatedRow[]> {
    return this.#read('locate', account, ids);
  }
  accounts(): Promise<string[]> {
    return this.#read('accounts');
  }
  threads(account: string, ids: readonly string[]): Promise<{ threadId: string; emailIds: string[] }[]> {
    return this.#read('threads', account, ids);
  }
  mailboxThreads(account: string, oid: string): Promise<{ total: number; unread: number }> {
    return this.#read('mailboxThreads', account, oid);
  }
  accountState(account: string): Promise<number> {
    return this.#read('accountState', account);
  }
  accountChangesSince(account: string, aseq: number, max: number): Promise<AccountChangeRow[] | null> {
    return this.#read('accountChangesSince', account, aseq, max);
  }

  createMailbox(...args: Parameters<MailIndex['createMailbox']>): Promise<MailboxRow> {
    return this.#write('createMailbox', ...args);
  }
  createMailboxes(...args: Parameters<MailIndex['createMailboxes']>): Promise<MailboxRow[]> {
    return this.#write('createMailboxes', ...args);
  }
  importMailbox(...args: Parameters<MailIndex['importMailbox']>): Promise<MailboxRow> {
    return this.#write('importMailbox', ...args);
  }
  deleteMailbox(id: number): Promise<void> {
    return this.#write('deleteMailbox', id);
  }
  renameMailbox(id: number, name: string): Promise<void> {
    return this.#write('renameMailbox', id, name);
  }
  setSubscribed(id: number, on: boolean): Promise<void> {
    return this.#write('setSubscribed', id, on);
  }
  setSortOrder(id: number, sortOrder: number): Promise<void> {
    return this.#write('setSortOrder', id, sortOrder);
  }
  write(mailbox: number, w: IndexWrite, expect?: WriteExpect): Promise<void> {
    return expect ? this.#write('write', mailbox, w, expect) : this.#write('write', mailbox, w);
  }
  catchUp(mailbox: number, modseq: number): Promise<MailboxCatchUp | null> {
    return this.#read('catchUp', mailbox, modseq);
  }
  lockMailbox(_mailbox: number): Promise<MailboxLock> {
    return Promise.resolve(NO_LOCK);
  }
  setCachedMany(mailbox: number, entries: readonly (readonly [number, CacheField, string])[]): Promise<void> {
    return this.#write('setCachedMany', mailbox, entries);
  }

  /** Closes the database and ends the threads once every earlier call is answered. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all([this.#writer.close(), this.#reader.close()]);
  }
}
