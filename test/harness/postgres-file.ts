// One PostgreSQL database for a whole test file (issue #18 stores' contract suites): created
// before the file's tests, dropped after, with `count` pools on it (the nodes of a cluster).
// Suites empty the tables they use between tests instead of creating a database each time.

import { after, before } from 'node:test';
import type { Postgres } from '../../src/db/postgres.ts';
import { freshDatabase, type TestDatabase } from './postgres.ts';

export interface FileDatabase {
  /** The pools, once before() ran. */
  readonly pools: Postgres[];
  /** The database, once before() ran (more pools: open()). */
  db(): TestDatabase;
}

export function databaseForFile(count = 2): FileDatabase {
  let t: TestDatabase | null = null;
  const pools: Postgres[] = [];
  before(async () => {
    t = await freshDatabase();
    for (let i = 0; i < count; i++) pools.push(await t.open());
  });
  after(() => t?.drop());
  return {
    pools,
    db: () => {
      if (!t) throw new Error('databaseForFile: before() has not run');
      return t;
    },
  };
}
