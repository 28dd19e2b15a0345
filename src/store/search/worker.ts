// The search worker thread: owns the search index database (db.ts) and runs its queries, so the
// event loop never waits on SQLite (docs/architecture.md §7). search/client.ts runs two, one
// writing (the indexer) and one reading (queries), on the same WAL database.

import { parentPort, workerData } from 'node:worker_threads';
import { serveLane } from '../worker-lane.ts';
import { SearchIndex } from './db.ts';

const port = parentPort;
if (!port) throw new Error('search/worker.ts runs as a worker thread');
serveLane(port, (workerData as { path: string }).path, (path) => new SearchIndex(path), 'search index');
