// Greylisting's state on the shared PostgreSQL (issue #18, docs/cluster.md "Shared state"): the
// GreylistStorage of a cluster, so a triplet deferred by one node passes on another after the
// delay, and a client network auto-allowed on one is allowed on all. One check is one
// transaction that takes an advisory lock on the client network (every row a check touches is
// that network's: its client row and its triplets; a row lock cannot guard a row not yet made,
// and row locks taken on the client and triplet rows in turn deadlocked under a burst of one
// triplet from two nodes), reads both rows in one statement, asks the pure greylistPlan and
// writes: checks of one client network take turns across the cluster, others run side by side.

import { LOCK_CLASS, type Postgres } from '../db/postgres.ts';
import type { ClientRow, GreylistEntry, GreylistKey, GreylistPlan, GreylistStorage, TripletRow } from './greylist.ts';
import type { GreylistAnswer } from './types.ts';

export const GREYLIST_MIGRATIONS: readonly string[] = [
  `CREATE TABLE greylist_triplet (
     net TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,
     first INT8 NOT NULL, last INT8 NOT NULL, passed BOOLEAN NOT NULL DEFAULT false,
     PRIMARY KEY (net, sender, recipient));
   CREATE INDEX greylist_triplet_last ON greylist_triplet (last);
   CREATE INDEX greylist_triplet_unpassed ON greylist_triplet (first) WHERE NOT passed;
   CREATE TABLE greylist_client (
     net TEXT PRIMARY KEY, passes INT8 NOT NULL, last_pass INT8 NOT NULL, last INT8 NOT NULL);
   CREATE INDEX greylist_client_last ON greylist_client (last);`,
];

export class PostgresGreylistStorage implements GreylistStorage {
  readonly #db: Postgres;

  private constructor(db: Postgres) {
    this.#db = db;
  }

  /** Migrates the `greylist` component; the pool stays the caller's. */
  static async open(db: Postgres): Promise<PostgresGreylistStorage> {
    await db.migrate('greylist', GREYLIST_MIGRATIONS);
    return new PostgresGreylistStorage(db);
  }

  decide(
    k: GreylistKey,
    now: number,
    plan: (client: ClientRow | undefined, triplet: TripletRow | undefined) => GreylistPlan,
  ): Promise<GreylistAnswer> {
    return this.#db.tx(async (q) => {
      // Its own statement: a statement's snapshot is taken before the lock would be granted.
      // No wait for the WAL flush at commit: a crash of PostgreSQL may forget the last checks,
      // which costs a client one more deferral, never a message (most of a check's time was
      // that flush).
      await q.query("SELECT set_config('synchronous_commit', 'off', true), pg_advisory_xact_lock($1, hashtext($2))", [
        LOCK_CLASS,
        `greylist:${k.net}`,
      ]);
      const r = await q.query<{
        passes: number | null;
        last_pass: number;
        clast: number;
        first: number | null;
        last: number;
        passed: boolean;
      }>(
        `SELECT c.passes, c.last_pass, c.last AS clast, t.first, t.last, t.passed FROM (SELECT 1) one
         LEFT JOIN greylist_client c ON c.net = $1
         LEFT JOIN greylist_triplet t ON t.net = $1 AND t.sender = $2 AND t.recipient = $3`,
        [k.net, k.sender, k.recipient],
      );
      const x = r.rows[0];
      const p = plan(
        x?.passes != null ? { passes: x.passes, lastPass: x.last_pass, last: x.clast } : undefined,
        x?.first != null ? { first: x.first, last: x.last, passed: x.passed } : undefined,
      );
      if (p.triplet) {
        await q.query(
          `INSERT INTO greylist_triplet (net, sender, recipient, first, last, passed) VALUES ($1, $2, $3, $4, $5, $6)
           ON CONFLICT (net, sender, recipient) DO UPDATE SET first = EXCLUDED.first, last = EXCLUDED.last,
           passed = EXCLUDED.passed`,
          [k.net, k.sender, k.recipient, p.triplet.first, now, p.triplet.passed],
        );
      }
      if (p.client === 'pass') {
        await q.query(
          `INSERT INTO greylist_client (net, passes, last_pass, last) VALUES ($1, 1, $2, $2)
           ON CONFLICT (net) DO UPDATE SET passes = greylist_client.passes + 1, last_pass = EXCLUDED.last_pass,
           last = EXCLUDED.last`,
          [k.net, now],
        );
      } else if (p.client === 'seen') {
        await q.query('UPDATE greylist_client SET last = $1 WHERE net = $2', [now, k.net]);
      }
      return p.answer;
    });
  }

  async sweep(unseenBefore: number, unpassedBefore: number): Promise<number> {
    const a = await this.#db.query('DELETE FROM greylist_triplet WHERE last < $1 OR (NOT passed AND first < $2)', [
      unseenBefore,
      unpassedBefore,
    ]);
    const b = await this.#db.query('DELETE FROM greylist_client WHERE last < $1', [unseenBefore]);
    return (a.rowCount ?? 0) + (b.rowCount ?? 0);
  }

  async list(limit: number): Promise<GreylistEntry[]> {
    return this.#db.rows<GreylistEntry>(
      'SELECT net, sender, recipient, first, last, passed FROM greylist_triplet ORDER BY last DESC LIMIT $1',
      [limit],
    );
  }

  clear(): Promise<number> {
    return this.#db.tx(async (q) => {
      const a = await q.query('DELETE FROM greylist_triplet');
      const b = await q.query('DELETE FROM greylist_client');
      return (a.rowCount ?? 0) + (b.rowCount ?? 0);
    });
  }

  /** The pool is shared with the other stores: its owner closes it. */
  async close(): Promise<void> {}
}
