// JmapState on PostgreSQL (issue #18, docs/cluster.md "Shared state"): the same contract as
// sqlite-store.ts (test/jmapstate/contract.ts runs against both), for several nodes sharing one
// database. Objects are JSON texts (as in SQLite: what was put comes back as it was); each change
// bumps the (account, type) counter first, which row-locks it for the transaction, so the
// changes of one type of one account are numbered and logged one at a time whichever node makes
// them, and a /changes reader never sees a state whose log row is missing (one commit). The log
// is bounded as in SQLite (LIMITS.jmapState.maxChanges; below the floor: cannotCalculateChanges).

import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Postgres, Queryable } from '../db/postgres.ts';
import {
  type JmapState,
  type JmapStateChange,
  type JmapStateType,
  type StoredPushSubscription,
  storedPushSubscription,
} from './types.ts';

export const JMAP_STATE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE jmap_object (
     account TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
     created INT8 NOT NULL,
     PRIMARY KEY (account, type, id));
   CREATE TABLE jmap_counter (
     account TEXT NOT NULL, type TEXT NOT NULL, value INT8 NOT NULL, floor INT8 NOT NULL,
     PRIMARY KEY (account, type));
   CREATE TABLE jmap_change (
     account TEXT NOT NULL, type TEXT NOT NULL, seq INT8 NOT NULL, id TEXT NOT NULL,
     kind TEXT NOT NULL,
     PRIMARY KEY (account, type, seq));`,
  // PushSubscriptions kept across restarts (RFC 8620 §7.2; as sqlite-store.ts's migration 2).
  `CREATE TABLE jmap_push_subscription (
     account TEXT NOT NULL, id TEXT NOT NULL, expires INT8 NOT NULL, data TEXT NOT NULL,
     PRIMARY KEY (account, id));
   CREATE INDEX jmap_push_subscription_expires ON jmap_push_subscription (expires);`,
];

/** Pruning runs on every this many changes (as SQLite). */
const PRUNE_EVERY = 100;

export class PostgresJmapState implements JmapState {
  readonly #db: Postgres;

  private constructor(db: Postgres) {
    this.#db = db;
  }

  /** Migrates the `jmapstate` component; the pool stays the caller's. */
  static async open(db: Postgres): Promise<PostgresJmapState> {
    await db.migrate('jmapstate', JMAP_STATE_MIGRATIONS);
    return new PostgresJmapState(db);
  }

  /** The pool is shared with the other stores: its owner closes it. */
  close(): void {}

  async #counter(q: Queryable, account: AccountId, type: JmapStateType, lock = false) {
    const r = await q.query<{ value: number; floor: number }>(
      `SELECT value, floor FROM jmap_counter WHERE account = $1 AND type = $2${lock ? ' FOR UPDATE' : ''}`,
      [account, type],
    );
    const row = r.rows[0];
    return row ? { value: Number(row.value), floor: Number(row.floor) } : { value: 0, floor: 0 };
  }

  async state(account: AccountId, type: JmapStateType): Promise<string> {
    return String((await this.#counter(this.#db, account, type)).value);
  }

  async get(account: AccountId, type: JmapStateType, id: string): Promise<Record<string, unknown> | null> {
    const rows = await this.#db.rows<{ data: string }>(
      'SELECT data FROM jmap_object WHERE account = $1 AND type = $2 AND id = $3',
      [account, type, id],
    );
    const r = rows[0];
    return r ? (JSON.parse(r.data) as Record<string, unknown>) : null;
  }

  async list(account: AccountId, type: JmapStateType): Promise<readonly Record<string, unknown>[]> {
    const rows = await this.#db.rows<{ data: string }>(
      'SELECT data FROM jmap_object WHERE account = $1 AND type = $2 ORDER BY created, id COLLATE "C"',
      [account, type],
    );
    return rows.map((r) => JSON.parse(r.data) as Record<string, unknown>);
  }

  /** The next state of the type (the counter row stays locked until the transaction ends). */
  async #bump(q: Queryable, account: AccountId, type: JmapStateType): Promise<number> {
    const r = await q.query<{ value: number }>(
      `INSERT INTO jmap_counter (account, type, value, floor) VALUES ($1, $2, 1, 0)
       ON CONFLICT (account, type) DO UPDATE SET value = jmap_counter.value + 1 RETURNING value`,
      [account, type],
    );
    return Number(r.rows[0]?.value);
  }

  /** Logs change `seq` and keeps the log within its bound. */
  async #log(q: Queryable, account: AccountId, type: JmapStateType, seq: number, id: string, kind: string) {
    await q.query('INSERT INTO jmap_change (account, type, seq, id, kind) VALUES ($1, $2, $3, $4, $5)', [
      account,
      type,
      seq,
      id,
      kind,
    ]);
    const floor = seq - LIMITS.jmapState.maxChanges;
    if (floor > 0 && seq % PRUNE_EVERY === 0) {
      await q.query('DELETE FROM jmap_change WHERE account = $1 AND type = $2 AND seq <= $3', [account, type, floor]);
      await q.query('UPDATE jmap_counter SET floor = $1 WHERE account = $2 AND type = $3', [floor, account, type]);
    }
  }

  async put(account: AccountId, type: JmapStateType, id: string, data: Record<string, unknown>): Promise<string> {
    const json = JSON.stringify(data);
    return this.#db.tx(async (q) => {
      const seq = await this.#bump(q, account, type);
      // `created` is the state of the creation: list() keeps creation order.
      const r = await q.query<{ inserted: boolean }>(
        `INSERT INTO jmap_object (account, type, id, data, created) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (account, type, id) DO UPDATE SET data = EXCLUDED.data
         RETURNING (xmax = 0) AS inserted`,
        [account, type, id, json, seq],
      );
      await this.#log(q, account, type, seq, id, r.rows[0]?.inserted ? 'created' : 'updated');
      return String(seq);
    });
  }

  async destroy(account: AccountId, type: JmapStateType, id: string): Promise<string> {
    return this.#db.tx(async (q) => {
      // The counter first, as put takes it: two writers never wait for each other crosswise.
      const c = await this.#counter(q, account, type, true);
      const gone = await q.query('DELETE FROM jmap_object WHERE account = $1 AND type = $2 AND id = $3', [
        account,
        type,
        id,
      ]);
      if ((gone.rowCount ?? 0) === 0) return String(c.value);
      const seq = await this.#bump(q, account, type);
      await this.#log(q, account, type, seq, id, 'destroyed');
      return String(seq);
    });
  }

  async changesSince(
    account: AccountId,
    type: JmapStateType,
    since: string,
  ): Promise<readonly JmapStateChange[] | null> {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(since)) return null;
    const n = Number(since);
    // One snapshot for the counter and the log (a change committing between two reads would
    // otherwise show in the log beyond the counter read).
    return this.#db.tx(
      async (q) => {
        const c = await this.#counter(q, account, type);
        if (n > c.value || n < c.floor) return null;
        const r = await q.query<{ seq: number; id: string; kind: string }>(
          'SELECT seq, id, kind FROM jmap_change WHERE account = $1 AND type = $2 AND seq > $3 ORDER BY seq',
          [account, type, n],
        );
        return r.rows.map((x) => ({ state: String(x.seq), id: x.id, kind: x.kind as JmapStateChange['kind'] }));
      },
      { isolation: 'repeatable read' },
    );
  }

  async deleteAccount(account: AccountId): Promise<void> {
    await this.#db.tx(async (q) => {
      for (const table of ['jmap_object', 'jmap_counter', 'jmap_change', 'jmap_push_subscription']) {
        await q.query(`DELETE FROM ${table} WHERE account = $1`, [account]);
      }
    });
  }

  async pushSubscriptions(account?: AccountId): Promise<readonly StoredPushSubscription[]> {
    const rows = await this.#db.rows<{ account: string; id: string; expires: number; data: string }>(
      account === undefined
        ? 'SELECT account, id, expires, data FROM jmap_push_subscription ORDER BY account COLLATE "C", id COLLATE "C"'
        : 'SELECT account, id, expires, data FROM jmap_push_subscription WHERE account = $1 ORDER BY id COLLATE "C"',
      account === undefined ? [] : [account],
    );
    return rows.map(storedPushSubscription);
  }

  async putPushSubscription(s: StoredPushSubscription): Promise<void> {
    await this.#db.query(
      `INSERT INTO jmap_push_subscription (account, id, expires, data) VALUES ($1, $2, $3, $4)
       ON CONFLICT (account, id) DO UPDATE SET expires = EXCLUDED.expires, data = EXCLUDED.data`,
      [s.account, s.id, s.expires, JSON.stringify(s.data)],
    );
  }

  async deletePushSubscription(account: AccountId, id: string): Promise<void> {
    await this.#db.query('DELETE FROM jmap_push_subscription WHERE account = $1 AND id = $2', [account, id]);
  }

  async deleteExpiredPushSubscriptions(now: number): Promise<readonly { account: AccountId; id: string }[]> {
    const rows = await this.#db.rows<{ account: string; id: string }>(
      'DELETE FROM jmap_push_subscription WHERE expires <= $1 RETURNING account, id',
      [now],
    );
    return rows.map((r) => ({ account: r.account as AccountId, id: r.id }));
  }
}
