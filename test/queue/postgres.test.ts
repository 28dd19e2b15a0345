// The PostgreSQL queue (queue/postgres.ts) against the queue contract (contract.ts), with
// several nodes: each open() is a node with its own pool on one database and one spool
// directory (the shared volume).

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/core/log.ts';
import { PostgresQueue } from '../../src/queue/postgres.ts';
import { freshDatabase } from '../harness/postgres.ts';
import { queueContract } from './contract.ts';

queueContract(
  'postgres',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arcline-pgq-'));
    const db = await freshDatabase();
    const spoolDir = join(dir, 'spool');
    return {
      spoolDir,
      async open(opts = {}) {
        return PostgresQueue.open({
          db: await db.open(),
          spoolDir,
          node: opts.node ?? 'node-a',
          log: silentLogger(),
          ...(opts.leaseMs !== undefined ? { leaseMs: opts.leaseMs } : {}),
        });
      },
      orphanName: () => 'q0000000000000000a-node-a-00000000.eml',
      async cleanup() {
        await db.drop();
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  { shared: true },
);
