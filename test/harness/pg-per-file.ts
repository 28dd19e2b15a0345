// Fresh PostgreSQL databases (harness/postgres.ts) that are all dropped when the test file ends.

import { after } from 'node:test';
import { freshDatabase, type TestDatabase } from './postgres.ts';

const made: TestDatabase[] = [];
let registered = false;

/** A new database, dropped (with every handle on it) after this file's tests. */
export async function databaseForFile(): Promise<TestDatabase> {
  if (!registered) {
    registered = true;
    after(async () => {
      await Promise.all(made.map((d) => d.drop()));
    });
  }
  const t = await freshDatabase();
  made.push(t);
  return t;
}
