// PostgreSQL for the tests (issue #18): each test file gets databases of its own, created on the
// server the machine runs (127.0.0.1:5432, trust authentication; .ci/run makes sure it runs) or
// the one ARCLINE_TEST_PG names (an admin URL: it must be allowed to CREATE DATABASE), and
// dropped afterwards (FORCE: connections left by a killed node are cut).

import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { Postgres } from '../../src/db/postgres.ts';

export const ADMIN_URL = process.env.ARCLINE_TEST_PG ?? 'postgres://postgres@127.0.0.1:5432/postgres';

export interface TestDatabase {
  readonly url: string;
  readonly name: string;
  /** A Postgres handle on it (closed by drop). */
  open(): Promise<Postgres>;
  drop(): Promise<void>;
}

async function admin<T>(fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: ADMIN_URL, connectionTimeoutMillis: 5000 });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}

/** A new, empty database with a unique name. */
export async function freshDatabase(): Promise<TestDatabase> {
  const name = `arcline_t_${process.pid}_${randomBytes(4).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(ADMIN_URL);
  u.pathname = `/${name}`;
  const url = u.toString();
  const handles: Postgres[] = [];
  return {
    url,
    name,
    async open() {
      const db = await Postgres.open({
        url,
        poolSize: 4,
        connectTimeoutMs: 5000,
        statementTimeoutMs: 30_000,
        applicationName: 'arcline-test',
      });
      handles.push(db);
      return db;
    },
    async drop() {
      await Promise.all(handles.map((h) => h.close()));
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}
