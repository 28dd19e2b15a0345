// The AdminAccess contract on SQLite ({state}/admin.db) and on PostgreSQL (admin/access-pg.ts).

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AccessStore } from '../../src/admin/access.ts';
import { PostgresAccessStore } from '../../src/admin/access-pg.ts';
import { freshDatabaseForFile } from '../harness/postgres.ts';
import { runAccessContract } from './access-contract.ts';

runAccessContract('sqlite', async () => {
  const state = await mkdtemp(join(tmpdir(), 'arcline-access-'));
  return { access: new AccessStore(state), other: async () => new AccessStore(state) };
});

runAccessContract('postgres', async () => {
  const t = await freshDatabaseForFile();
  return {
    access: await PostgresAccessStore.open(await t.open()),
    other: async () => PostgresAccessStore.open(await t.open()),
  };
});
