// The index worker thread: owns the mail index database (db.ts) and runs every query of it, so
// the event loop never waits on SQLite — not on a query, not on the busy timeout while another
// process (the CLI, a backup) holds the write lock (issue #11, docs/architecture.md §7).
// Requests are handled one at a time, in the order they were posted; index/client.ts is the only
// sender. It runs two of these threads on the same database (WAL): one for writes, one for
// reads, so a write waiting for the lock does not hold up reads.

import { parentPort, workerData } from 'node:worker_threads';
import { maildirThreadSource } from '../maildir/thread-headers.ts';
import { MailIndex } from './db.ts';

export type IndexOp = Exclude<
  {
    [K in keyof MailIndex]: MailIndex[K] extends (...args: never[]) => unknown ? K : never;
  }[keyof MailIndex],
  'tx' | 'close'
>;

export interface IndexRequest {
  readonly id: number;
  readonly op: IndexOp | 'close';
  readonly args: readonly unknown[];
}

export type IndexResponse =
  | { readonly id: number; readonly ok: true; readonly value: unknown }
  | { readonly id: number; readonly ok: false; readonly message: string; readonly code?: string };

const port = parentPort;
if (!port) throw new Error('index/worker.ts runs as a worker thread');
let index: MailIndex | null = null;
let openError: Error | null = null;
try {
  const data = workerData as { path: string; root: string | null };
  // The threading fields of messages the index is given without them are read from their
  // files (index/threads.ts): here, off the event loop.
  index = new MailIndex(data.path, data.root === null ? null : maildirThreadSource(data.root));
} catch (e) {
  openError = e as Error;
}
// Opened (and migrated): the client may start the reading thread now.
port.postMessage({ id: 0, ok: openError === null, value: null, message: openError?.message ?? '' });

port.on('message', (req: IndexRequest) => {
  let res: IndexResponse;
  try {
    if (req.op === 'close') {
      index?.close();
      index = null;
      res = { id: req.id, ok: true, value: null };
    } else {
      if (!index) throw openError ?? new Error('mail index is closed');
      const fn = index[req.op] as (...a: unknown[]) => unknown;
      res = { id: req.id, ok: true, value: fn.apply(index, req.args as unknown[]) };
    }
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    res = { id: req.id, ok: false, message: err?.message ?? String(e), code: err?.code };
  }
  port.postMessage(res);
});
