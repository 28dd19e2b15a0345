// The mail index as the server uses it: every query runs in an index worker thread
// (index/worker.ts) and comes back as a promise, so the event loop never waits on SQLite
// (issue #11, docs/architecture.md §7). Two threads share the database (WAL): writes go to one,
// in the order they were made, and resolve once committed (a caller that tells a client a UID
// or a MODSEQ awaits the write first); reads go to the other, so a write waiting for the lock
// (held by the CLI, a backup) holds up neither the reads nor the event loop. A read issued after
// a write resolved sees it.

import { Worker } from 'node:worker_threads';
import { ArclineError } from '../../core/errors.ts';
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
import type { IndexOp, IndexRequest, IndexResponse } from './worker.ts';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

/** One worker thread and the calls waiting for its answers. */
class Lane {
  readonly #path: string;
  readonly #root: string | null;
  #worker: Worker | null = null;
  #ready: Promise<void> | null = null;
  #next = 1;
  readonly #pending = new Map<number, Pending>();

  constructor(path: string, root: string | null) {
    this.#path = path;
    this.#root = root;
  }

  /** Starts the thread if needed; resolves once it has opened (and migrated) the database. */
  ready(): Promise<void> {
    if (this.#ready) return this.#ready;
    // worker.ts when run from source (type stripping), worker.js in the built dist/.
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    const w = new Worker(new URL(`./worker.${ext}`, import.meta.url), {
      workerData: { path: this.#path, root: this.#root },
    });
    this.#worker = w;
    let opened: (err?: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      opened = (err) => (err ? reject(err) : resolve());
    });
    w.on('message', (res: IndexResponse) => {
      if (res.id === 0) return opened(res.ok ? undefined : new ArclineError('TEMPORARY', `mail index: ${res.message}`));
      const p = this.#pending.get(res.id);
      if (!p) return;
      this.#pending.delete(res.id);
      if (this.#pending.size === 0) w.unref();
      if (res.ok) p.resolve(res.value);
      else p.reject(new ArclineError('TEMPORARY', `mail index: ${res.message}`));
    });
    const fail = (err: Error) => {
      // The thread died (it should not): fail what waits; the next call starts a new one.
      if (this.#worker !== w) return;
      this.#worker = null;
      this.#ready = null;
      const e = new ArclineError('TEMPORARY', `mail index: ${err.message}`);
      opened(e);
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`index worker exited (${code})`)));
    this.#ready = ready;
    ready.catch(() => {});
    return ready;
  }

  async call<T>(op: IndexRequest['op'], args: readonly unknown[]): Promise<T> {
    await this.ready();
    const w = this.#worker as Worker;
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      // An idle thread does not keep the process alive (the CLI, tests); pending calls do.
      if (this.#pending.size === 0) w.ref();
      this.#pending.set(id, { resolve: (v) => resolve(v as T), reject });
      w.postMessage({ id, op, args } satisfies IndexRequest);
    });
  }

  async close(): Promise<void> {
    const w = this.#worker;
    if (!w) return;
    await this.call('close', []).catch(() => {});
    this.#worker = null;
    await w.terminate();
  }
}

export class IndexClient {
  readonly #writer: Lane;
  readonly #reader: Lane;
  #closed = false;

  /** `root`: the Maildir root, where the index reads the threading fields of messages it is
   *  given without them (index/threads.ts); null: they are taken as absent. */
  constructor(path: string, root: string | null = null) {
    this.#writer = new Lane(path, root);
    this.#reader = new Lane(path, root);
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

  createMailbox(account: string, name: string, subscribed: boolean, minValidity = 0, oid = ''): Promise<MailboxRow> {
    return this.#write('createMailbox', account, name, subscribed, minValidity, oid);
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
  write(mailbox: number, w: IndexWrite): Promise<void> {
    return this.#write('write', mailbox, w);
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
