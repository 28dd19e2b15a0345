// One worker thread owning a SQLite database and the calls waiting for its answers: the pattern
// of the mail index (index/client.ts) and the search index (search/client.ts). Requests are
// answered in the order they were posted (the worker handles one at a time); message 0 is the
// worker's "opened" (or its failure to open). An idle thread does not keep the process alive.

import { Worker } from 'node:worker_threads';
import { ArclineError } from '../core/errors.ts';

/** What a lane posts; `op` names a method of the worker's database object. */
export interface LaneRequest {
  readonly id: number;
  readonly op: string;
  readonly args: readonly unknown[];
}

export type LaneResponse =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly message: string; readonly code?: string };

type Pending = { resolve: (v: unknown) => void; reject: (e: Error) => void };

export class Lane {
  readonly #url: URL;
  readonly #path: string;
  readonly #label: string;
  readonly #extra: Record<string, unknown>;
  #worker: Worker | null = null;
  #ready: Promise<void> | null = null;
  #next = 1;
  readonly #pending = new Map<number, Pending>();

  /** `url`: the worker module; `label`: how its errors are named ("mail index"); `extra`: more
   *  workerData for the worker module (structured-cloneable). */
  constructor(url: URL, path: string, label: string, extra: Record<string, unknown> = {}) {
    this.#url = url;
    this.#path = path;
    this.#label = label;
    this.#extra = extra;
  }

  /** Starts the thread if needed; resolves once it has opened (and migrated) the database. */
  ready(): Promise<void> {
    if (this.#ready) return this.#ready;
    const w = new Worker(this.#url, { workerData: { ...this.#extra, path: this.#path } });
    this.#worker = w;
    let opened: (err?: Error) => void = () => {};
    const ready = new Promise<void>((resolve, reject) => {
      opened = (err) => (err ? reject(err) : resolve());
    });
    w.on('message', (res: LaneResponse) => {
      if (res.id === 0)
        return opened(res.ok ? undefined : new ArclineError('TEMPORARY', `${this.#label}: ${res.message}`));
      const p = this.#pending.get(res.id);
      if (!p) return;
      this.#pending.delete(res.id);
      if (this.#pending.size === 0) w.unref();
      if (res.ok) p.resolve(res.value);
      // A refusal the caller acts on keeps its code (the index's CONFLICT: backend.ts write).
      else
        p.reject(
          new ArclineError(res.code === 'CONFLICT' ? 'CONFLICT' : 'TEMPORARY', `${this.#label}: ${res.message}`),
        );
    });
    const fail = (err: Error) => {
      // The thread died (it should not): fail what waits; the next call starts a new one.
      if (this.#worker !== w) return;
      this.#worker = null;
      this.#ready = null;
      const e = new ArclineError('TEMPORARY', `${this.#label}: ${err.message}`);
      opened(e);
      for (const p of this.#pending.values()) p.reject(e);
      this.#pending.clear();
    };
    w.on('error', fail);
    w.on('exit', (code) => fail(new Error(`worker exited (${code})`)));
    this.#ready = ready;
    ready.catch(() => {});
    return ready;
  }

  async call<T>(op: string, args: readonly unknown[]): Promise<T> {
    await this.ready();
    const w = this.#worker as Worker;
    const id = this.#next++;
    return new Promise<T>((resolve, reject) => {
      // An idle thread does not keep the process alive (the CLI, tests); pending calls do.
      if (this.#pending.size === 0) w.ref();
      this.#pending.set(id, { resolve: (v) => resolve(v as T), reject });
      w.postMessage({ id, op, args } satisfies LaneRequest);
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

/** The worker side: opens `open(path)` and answers each request with the method it names. */
export function serveLane<T extends { close(): void }>(
  port: import('node:worker_threads').MessagePort,
  path: string,
  open: (path: string) => T,
  label: string,
): void {
  let db: T | null = null;
  let openError: Error | null = null;
  try {
    db = open(path);
  } catch (e) {
    openError = e as Error;
  }
  // Opened (and migrated): the client may start a reading thread now.
  port.postMessage({ id: 0, ok: openError === null, value: null, message: openError?.message ?? '' });
  port.on('message', (req: LaneRequest) => {
    let res: LaneResponse;
    try {
      if (req.op === 'close') {
        db?.close();
        db = null;
        res = { id: req.id, ok: true, value: null };
      } else {
        if (!db) throw openError ?? new Error(`${label} is closed`);
        const fn = (db as unknown as Record<string, (...a: unknown[]) => unknown>)[req.op];
        if (typeof fn !== 'function') throw new Error(`unknown operation ${req.op}`);
        res = { id: req.id, ok: true, value: fn.apply(db, req.args as unknown[]) };
      }
    } catch (e) {
      const err = e as NodeJS.ErrnoException;
      res = { id: req.id, ok: false, message: err?.message ?? String(e), code: err?.code };
    }
    port.postMessage(res);
  });
}

/** The URL of a worker module next to `base` (worker.ts from source, worker.js in dist/). */
export function workerUrl(name: string, base: string): URL {
  const ext = base.endsWith('.ts') ? 'ts' : 'js';
  return new URL(`./${name}.${ext}`, base);
}
