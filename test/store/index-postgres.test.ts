// The mail index contract (test/store/index-contract.ts) against PostgresMailIndex on one
// database for the file (each test in an account of its own), and what only a shared index
// does, with two PostgresMailIndex on two pools (two nodes): lockMailbox excludes across them,
// concurrent writes from stale counters (exactly one wins, the other gets CONFLICT), a write
// publishes (account, aseq) at its commit (db/notify.ts), a lost lock connection fails the
// next write with TEMPORARY.

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before } from 'node:test';
import { PostgresMailIndex } from '../../src/store/index/postgres.ts';
import { databaseForFile } from '../harness/postgres.ts';
import { indexContract } from './index-contract.ts';

const pg = databaseForFile(2);
let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-ixp-'));
});
after(() => rm(dir, { recursive: true, force: true }));

indexContract('postgres', async () => {
  const root = join(dir, 'mail');
  return { index: new PostgresMailIndex(pg.pools[0] as never, root), root, close: async () => {} };
});
