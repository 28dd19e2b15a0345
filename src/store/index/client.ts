// The mail index as the server uses it: every query runs in the index worker thread
// (index/worker.ts) and comes back as a promise, so the event loop never waits on SQLite
// (issue #11, docs/architecture.md §8). Calls are answered in the order they were made. Writes
// resolve once committed: a caller that tells a client a UID or a MODSEQ awaits the write first.

import { Worker } from 'node:worker_threads';
import { ArclineError } from '../../core/errors.ts';
import type { CacheField, IndexWrite, JournalRow, MailboxRow, MailIndex, MessageColumns } from './db.ts';
import type { IndexOp, IndexRequest, IndexResponse } from './worker.ts';

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class IndexClient {
  readonly #path: string;
  #worker: Worker | null = null;
  #next = 1;
  readonly #pending = new Map<number, Pending>();
  #closed = false;

  constructor(path: string) {
    this.#path = path;
  }

  #start(): Worker {
    if (this.#worker) return this.#worker;
    const w = new Worker(new URL('./worker.ts', import.meta.url), { workerData: { path: this.#path } });
    w.on('message', (res: IndexResponse) => {
      const p = this.#pending.get(res.id);
      if (!p) return;
      this.#pending.delete(res.id);
      if (res.ok) p.resolve(res.value);
      else p.reject(new ArclineError('TEMPORARY', `mail index: ${res.message}`));
    });
    const fail = (err: Error) => {
      // The thread died (it should not): fail what waits; the next call starts a new one.
      if (this.#worker === w) this.#worker = null;
      for (const p of this.#pending.values()) p.reject(new ArclineError('TEMPORARY', `mail index: ${err.message}`));
      this.#pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`index worker exited (${code})`)));
    // An idle worker does not keep the process alive (the CLI, tests); pending calls do.
    w.unref();
    this.#worker = w;
    return w;
  }

  #call<T>(op: IndexRequest['op'], ...args: unknown[]): Promise<T> {
    if (this.#closed) return Promise.reject(new ArclineError('TEMPORARY', 'mail index is closed'));
    const w = this.#start();
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      if (this.#pending.size === 0) w.ref();
      this.#pending.set(id, {
        resolve: (v) => {
          if (this.#pending.size === 0) w.unref();
          resolve(v as T);
        },
        reject: (e) => {
          if (this.#pending.size === 0) w.unref();
          reject(e);
        },
      });
      w.postMessage({ id, op, args } satisfies IndexRequest);
    });
  }

  #op<K extends IndexOp>(op: K, ...args: Parameters<MailIndex[K]>): Promise<ReturnType<MailIndex[K]>> {
    return this.#call(op, ...args);
  }

  mailbox(account: string, name: string): Promise<MailboxRow | null> {
    return this.#op('mailbox', account, name);
  }
  mailboxes(account: string): Promise<MailboxRow[]> {
    return this.#op('mailboxes', account);
  }
  createMailbox(account: string, name: string, subscribed: boolean, minValidity = 0): Promise<MailboxRow> {
    return this.#op('createMailbox', account, name, subscribed, minValidity);
  }
  deleteMailbox(id: number): Promise<void> {
    return this.#op('deleteMailbox', id);
  }
  renameMailbox(id: number, name: string): Promise<void> {
    return this.#op('renameMailbox', id, name);
  }
  setSubscribed(id: number, on: boolean): Promise<void> {
    return this.#op('setSubscribed', id, on);
  }
  messageColumns(mailbox: number): Promise<MessageColumns> {
    return this.#op('messageColumns', mailbox);
  }
  write(mailbox: number, w: IndexWrite): Promise<void> {
    return this.#op('write', mailbox, w);
  }
  cachedMany(mailbox: number, uids: readonly number[], field: CacheField): Promise<[number, string][]> {
    return this.#op('cachedMany', mailbox, uids, field);
  }
  setCachedMany(mailbox: number, entries: readonly (readonly [number, CacheField, string])[]): Promise<void> {
    return this.#op('setCachedMany', mailbox, entries);
  }
  vanishedSince(mailbox: number, modseq: number): Promise<number[]> {
    return this.#op('vanishedSince', mailbox, modseq);
  }
  changesSince(mailbox: number, modseq: number): Promise<JournalRow[] | null> {
    return this.#op('changesSince', mailbox, modseq);
  }

  /** Closes the database and ends the thread once every earlier call is answered. */
  async close(): Promise<void> {
    if (this.#closed) return;
    const w = this.#worker;
    if (w) {
      await this.#call('close').catch(() => {});
      this.#closed = true;
      await w.terminate();
    }
    this.#closed = true;
    this.#worker = null;
  }
}
