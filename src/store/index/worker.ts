// The index worker thread: owns the mail index database (db.ts) and runs every query of it, so
// the event loop never waits on SQLite — not on a query, not on the busy timeout while another
// process (the CLI, a backup) holds the write lock (issue #11, docs/architecture.md §7).
// Requests are handled one at a time, in the order they were posted; index/client.ts is the only
// sender. It runs two of these threads on the same database (WAL): one for writes, one for
// reads, so a write waiting for the lock does not hold up reads.

import { parentPort, workerData } from 'node:worker_threads';
import { maildirThreadSource } from '../maildir/thread-headers.ts';
import { serveLane } from '../worker-lane.ts';
import { MailIndex } from './db.ts';

export type IndexOp = Exclude<
  {
    [K in keyof MailIndex]: MailIndex[K] extends (...args: never[]) => unknown ? K : never;
  }[keyof MailIndex],
  'tx' | 'close'
>;

const port = parentPort;
if (!port) throw new Error('index/worker.ts runs as a worker thread');
const data = workerData as { path: string; root: string | null };
// The threading fields of messages the index is given without them are read from their files
// (index/threads.ts): here, off the event loop.
serveLane(
  port,
  data.path,
  (path) => new MailIndex(path, data.root === null ? null : maildirThreadSource(data.root)),
  'mail index',
);
