// PostgreSQL, the shared database of several nodes (issue #18, docs/cluster.md; [database] url).
// One pool per process through `pg` (node-postgres); what every PostgreSQL-backed store of ours
// uses: queries with parameters only (never client input spliced into SQL), transactions that
// are retried on serialization failures and deadlocks, and versioned migrations per component
// (the directory, the queue, the mail index... each owns its list, as the SQLite databases do in
// core/sqlite.ts). Migrations run under an advisory lock so nodes starting together migrate
// once; a database migrated by a newer arcline than this one is refused, never used
// (docs/upgrading.md). int8 columns come back as numbers (UIDs, MODSEQs and times in
// microseconds stay below 2^53); numeric and other types as pg gives them.

import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { ArclineError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';

export interface PostgresOptions {
  readonly url: string;
  /** From [database] password_file; undefined: the URL's, ~/.pgpass or none. */
  readonly password?: string;
  readonly poolSize: number;
  readonly connectTimeoutMs: number;
  readonly statementTimeoutMs: number;
  /** Shown in pg_stat_activity: "arcline/<node>". */
  readonly applicationName: string;
  readonly log?: Logger;
}

/** What runs a query: the pool, or the client of a transaction. */
export interface Queryable {
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>>;
}

const INT8_OID = 20;
const types = {
  getTypeParser: ((oid: number, format?: 'text' | 'binary') =>
    oid === INT8_OID && format !== 'binary'
      ? (v: string) => Number(v)
      : pg.types.getTypeParser(oid, format)) as typeof pg.types.getTypeParser,
};

export interface TxOptions {
  readonly isolation?: 'serializable' | 'repeatable read';
}

/** A pooled connection held across calls (Postgres.acquire). */
export interface HeldConnection {
  readonly client: pg.PoolClient;
  /** The connection was lost (an 'error' event) or marked broken. */
  readonly lost: boolean;
  broken(): void;
  /** Back to the pool, or destroyed when lost or `destroy` (once; later calls do nothing). */
  release(destroy?: boolean): void;
}

/** SQLSTATEs after which the whole transaction is tried again. */
const RETRY_CODES = new Set(['40001', '40P01']);
const MAX_TX_ATTEMPTS = 8;
/** The first key of our advisory locks ("Arcl"); the second is hashtext(name). */
export const LOCK_CLASS = 0x4172636c;

/** One attempt of a transaction: done with fn's result, or not done (to be tried again). */
async function attempt<T>(
  client: pg.PoolClient,
  fn: (q: Queryable) => Promise<T>,
  opts: TxOptions,
  broken: () => void,
  last: boolean,
): Promise<{ done: true; r: T } | { done: false }> {
  try {
    await client.query(opts.isolation ? `BEGIN ISOLATION LEVEL ${opts.isolation.toUpperCase()}` : 'BEGIN');
    const r = await fn(client);
    await client.query('COMMIT');
    return { done: true, r };
  } catch (e) {
    await client.query('ROLLBACK').catch(broken);
    const code = (e as { code?: unknown }).code;
    if (!(typeof code === 'string' && RETRY_CODES.has(code)) || last) throw e;
    return { done: false };
  }
}

/** Attempts until one is done, at most MAX_TX_ATTEMPTS (the last one's failure is thrown). */
async function retried<T>(once: (last: boolean) => Promise<{ done: true; r: T } | { done: false }>): Promise<T> {
  for (let n = 1; ; n++) {
    const r = await once(n >= MAX_TX_ATTEMPTS);
    if (r.done) return r.r;
    // Jittered backoff, so transactions that collided do not collide again in step.
    await delay(Math.random() * 5 * 2 ** n);
  }
}

export class Postgres implements Queryable {
  readonly #pool: pg.Pool;
  #closed = false;

  private constructor(pool: pg.Pool) {
    this.#pool = pool;
  }

  /** Connections the pool opens at most ([database] pool_size). */
  get poolSize(): number {
    return this.#pool.options.max ?? 10;
  }

  /** Connects (once, to fail at start rather than at the first message) and checks the
   *  server's version: 13 or later (DROP DATABASE ... FORCE in tests, gen_random_uuid). */
  static async open(opts: PostgresOptions): Promise<Postgres> {
    const pool = new pg.Pool({
      connectionString: opts.url,
      ...(opts.password !== undefined ? { password: opts.password } : {}),
      max: opts.poolSize,
      connectionTimeoutMillis: opts.connectTimeoutMs,
      statement_timeout: opts.statementTimeoutMs,
      application_name: opts.applicationName,
      types,
    });
    // An idle client losing its connection must not crash the process: the pool drops it.
    pool.on('error', (e) => opts.log?.warn({ err: errorMessage(e) }, 'postgres: idle connection lost'));
    const db = new Postgres(pool);
    try {
      const r = await pool.query<{ v: string }>("SELECT current_setting('server_version_num') AS v");
      const version = Number(r.rows[0]?.v ?? 0);
      if (version < 130000) throw new ArclineError('CONFIG', `PostgreSQL 13 or later is needed (this is ${version})`);
    } catch (e) {
      await pool.end().catch(() => {});
      if (e instanceof ArclineError) throw e;
      throw new ArclineError('TEMPORARY', `cannot reach PostgreSQL at ${redact(opts.url)}: ${errorMessage(e)}`, {
        cause: e,
      });
    }
    return db;
  }

  query<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<pg.QueryResult<R>> {
    return this.#pool.query<R>(text, values);
  }

  /** Rows of one query. */
  async rows<R extends pg.QueryResultRow = pg.QueryResultRow>(text: string, values?: unknown[]): Promise<R[]> {
    return (await this.#pool.query<R>(text, values)).rows;
  }

  /** fn inside BEGIN … COMMIT on one client; on a serialization failure or a deadlock the
   *  whole of fn runs again (up to 8 times, after a jittered pause), so fn must have no effect
   *  outside the database before it returns. Any other error rolls back and is thrown. */
  tx<T>(fn: (q: Queryable) => Promise<T>, opts: TxOptions = {}): Promise<T> {
    return retried((last) => this.#held((client, broken) => attempt(client, fn, opts, broken, last)));
  }

  /** tx() on a connection the caller holds (acquire()), retried on it. */
  txOn<T>(held: HeldConnection, fn: (q: Queryable) => Promise<T>, opts: TxOptions = {}): Promise<T> {
    return retried((last) => attempt(held.client, fn, opts, () => held.broken(), last));
  }

  /** Holds a connection for fn (a session advisory lock, LISTEN). */
  withClient<T>(fn: (c: pg.PoolClient) => Promise<T>): Promise<T> {
    return this.#held((c) => fn(c));
  }

  /** A pooled connection held until its release() (a session advisory lock held across calls:
   *  store/index/postgres.ts lockMailbox). */
  async acquire(): Promise<HeldConnection> {
    const client = await this.#pool.connect();
    let lost = false;
    let released = false;
    const broken = () => {
      lost = true;
    };
    client.on('error', broken);
    return {
      client,
      get lost() {
        return lost;
      },
      broken,
      release(destroy = false) {
        if (released) return;
        released = true;
        client.off('error', broken);
        client.release(lost || destroy);
      },
    };
  }

  /** A pooled connection for fn, released after it; destroyed instead when it was lost (a
   *  connection lost between two statements, the server restarted or pg_terminate_backend, is
   *  reported on the client, not on a query: unheard it would end the process) or when fn
   *  calls `broken` (a ROLLBACK that failed). */
  async #held<T>(fn: (c: pg.PoolClient, broken: () => void) => Promise<T>): Promise<T> {
    const held = await this.acquire();
    try {
      return await fn(held.client, () => held.broken());
    } finally {
      held.release();
    }
  }

  /** Applies the migrations `component` lacks, in order, each in its own transaction with the
   *  version it makes, under an advisory lock (nodes starting together: one migrates, the others
   *  wait and find nothing left to do). Entry i makes version i + 1. A session lock on a pooled
   *  connection: the connection is released only after the unlock. */
  async migrate(component: string, migrations: readonly string[]): Promise<void> {
    await this.withClient(async (c) => {
      // One lock for every component: CREATE TABLE IF NOT EXISTS itself races between sessions.
      await c.query('SELECT pg_advisory_lock($1, hashtext($2))', [LOCK_CLASS, 'migrate']);
      try {
        await c.query(
          `CREATE TABLE IF NOT EXISTS arcline_schema (
             component TEXT PRIMARY KEY,
             version INTEGER NOT NULL,
             updated TIMESTAMPTZ NOT NULL DEFAULT now())`,
        );
        const version = async () =>
          Number(
            (await c.query<{ version: number }>('SELECT version FROM arcline_schema WHERE component = $1', [component]))
              .rows[0]?.version ?? 0,
          );
        const v0 = await version();
        if (v0 > migrations.length)
          throw new ArclineError(
            'CONFIG',
            `the PostgreSQL schema of ${component} has version ${v0}, newer than this arcline knows ` +
              `(${migrations.length}): it was upgraded by a newer version; run that version, or restore ` +
              'the backup taken before the upgrade (docs/upgrading.md)',
          );
        for (let v = v0; v < migrations.length; v++) {
          await c.query('BEGIN');
          try {
            await c.query(migrations[v] as string);
            await c.query(
              `INSERT INTO arcline_schema (component, version) VALUES ($1, $2)
               ON CONFLICT (component) DO UPDATE SET version = EXCLUDED.version, updated = now()`,
              [component, v + 1],
            );
            await c.query('COMMIT');
          } catch (e) {
            await c.query('ROLLBACK');
            throw e;
          }
        }
      } finally {
        await c.query('SELECT pg_advisory_unlock($1, hashtext($2))', [LOCK_CLASS, 'migrate']);
      }
    });
  }

  /** The schema version of a component (0: none yet). */
  async schemaVersion(component: string): Promise<number> {
    const exists = await this.rows("SELECT to_regclass('arcline_schema') IS NOT NULL AS e");
    if (!exists[0]?.e) return 0;
    const r = await this.rows<{ version: number }>('SELECT version FROM arcline_schema WHERE component = $1', [
      component,
    ]);
    return Number(r[0]?.version ?? 0);
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await this.#pool.end();
  }
}

/** The URL without its password, for messages and logs. */
export function redact(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return 'postgres://(unparsable URL)';
  }
}
