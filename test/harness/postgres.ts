// PostgreSQL for the tests (issue #18): each test file gets databases of its own, created on the
// server the machine runs (127.0.0.1:5432, trust authentication; .ci/run makes sure it runs) or
// the one ARCLINE_TEST_PG names (an admin URL: it must be allowed to CREATE DATABASE), and
// dropped afterwards (FORCE: connections left by a killed node are cut).

import { randomBytes } from 'node:crypto';
import { after, before } from 'node:test';
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

// One database for a whole test file (the stores' contract suites): created before the file's
// tests, dropped after, with `count` pools on it (the nodes of a cluster). Suites empty the
// tables they use between tests instead of creating a database each time.
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

// Fresh databases that are all dropped when the test file ends. The hook is registered when this
// module loads, on the file's root: registered at the first call instead, from inside a test, it
// was that test's hook (node:test attaches `after` to the test running), so the databases made
// by later tests were never dropped and their pools kept the process alive for their idle
// timeout (10 s).
const made: TestDatabase[] = [];
after(async () => {
  await Promise.all(made.splice(0).map((d) => d.drop()));
});

/** A new database, dropped (with every handle on it) after this file's tests. */
export async function freshDatabaseForFile(): Promise<TestDatabase> {
  const t = await freshDatabase();
  made.push(t);
  return t;
}

/** Runs `fn` with a connection to `t` as a new login role that is not arcline's (what another
 *  application on the same server could do); the role is dropped after. `db`: a handle of
 *  arcline's role on `t`. `name` makes the role unique per test file. */
export async function asOtherRole(
  t: TestDatabase,
  db: Postgres,
  name: string,
  fn: (c: pg.Client) => Promise<void>,
): Promise<void> {
  const role = `arcline_${name}_${process.pid}`;
  await db.query(`DROP ROLE IF EXISTS ${role}`);
  await db.query(`CREATE ROLE ${role} LOGIN`);
  try {
    const u = new URL(t.url);
    u.username = role;
    const c = new pg.Client({ connectionString: u.toString() });
    await c.connect();
    try {
      await fn(c);
    } finally {
      await c.end();
    }
  } finally {
    await db.query(`DROP ROLE ${role}`);
  }
}
