// JmapState in {state}/jmap.db (core/sqlite.ts: WAL, private files, versioned migrations).
// Objects are JSON texts; each change bumps the type's counter in the same transaction and
// appends a row to the change log. The log is bounded per account and type
// (LIMITS.jmapState.maxChanges): a state older than the oldest kept row cannot be answered
// (changesSince null -> cannotCalculateChanges).

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { openDatabase, transaction } from '../core/sqlite.ts';
import {
  type JmapState,
  type JmapStateChange,
  type JmapStateType,
  type StoredPushSubscription,
  storedPushSubscription,
} from './types.ts';

const MIGRATIONS = [
  `CREATE TABLE object (
     account TEXT NOT NULL, type TEXT NOT NULL, id TEXT NOT NULL, data TEXT NOT NULL,
     created INTEGER NOT NULL,
     PRIMARY KEY (account, type, id)) WITHOUT ROWID;
   CREATE TABLE counter (
     account TEXT NOT NULL, type TEXT NOT NULL, value INTEGER NOT NULL, floor INTEGER NOT NULL,
     PRIMARY KEY (account, type)) WITHOUT ROWID;
   CREATE TABLE change (
     account TEXT NOT NULL, type TEXT NOT NULL, seq INTEGER NOT NULL, id TEXT NOT NULL,
     kind TEXT NOT NULL,
     PRIMARY KEY (account, type, seq)) WITHOUT ROWID;`,
  // PushSubscriptions (RFC 8620 §7.2), kept across restarts.
  `CREATE TABLE push_subscription (
     account TEXT NOT NULL, id TEXT NOT NULL, expires INTEGER NOT NULL, data TEXT NOT NULL,
     PRIMARY KEY (account, id)) WITHOUT ROWID;
   CREATE INDEX push_subscription_expires ON push_subscription(expires);`,
];

type Statements = Record<
  | 'get'
  | 'list'
  | 'insert'
  | 'replace'
  | 'delete'
  | 'counter'
  | 'bump'
  | 'log'
  | 'prune'
  | 'changes'
  | 'deleteObjects'
  | 'deleteCounters'
  | 'deleteChanges'
  | 'pushAll'
  | 'pushOf'
  | 'pushPut'
  | 'pushDelete'
  | 'pushExpired'
  | 'pushDeleteExpired'
  | 'pushDeleteAccount',
  StatementSync
>;

export class SqliteJmapState implements JmapState {
  readonly #db: DatabaseSync;
  readonly #q: Statements;

  constructor(path: string) {
    const db = openDatabase(path, { migrations: MIGRATIONS, pragmas: ['synchronous = NORMAL'] });
    this.#db = db;
    this.#q = {
      get: db.prepare('SELECT data FROM object WHERE account = ? AND type = ? AND id = ?'),
      list: db.prepare('SELECT data FROM object WHERE account = ? AND type = ? ORDER BY created, id'),
      insert: db.prepare('INSERT INTO object (account, type, id, data, created) VALUES (?, ?, ?, ?, ?)'),
      replace: db.prepare('UPDATE object SET data = ? WHERE account = ? AND type = ? AND id = ?'),
      delete: db.prepare('DELETE FROM object WHERE account = ? AND type = ? AND id = ?'),
      counter: db.prepare('SELECT value, floor FROM counter WHERE account = ? AND type = ?'),
      bump: db.prepare(
        `INSERT INTO counter (account, type, value, floor) VALUES (?, ?, 1, 0)
         ON CONFLICT (account, type) DO UPDATE SET value = value + 1 RETURNING value`,
      ),
      log: db.prepare('INSERT INTO change (account, type, seq, id, kind) VALUES (?, ?, ?, ?, ?)'),
      prune: db.prepare('DELETE FROM change WHERE account = ? AND type = ? AND seq <= ?'),
      changes: db.prepare('SELECT seq, id, kind FROM change WHERE account = ? AND type = ? AND seq > ? ORDER BY seq'),
      deleteObjects: db.prepare('DELETE FROM object WHERE account = ?'),
      deleteCounters: db.prepare('DELETE FROM counter WHERE account = ?'),
      deleteChanges: db.prepare('DELETE FROM change WHERE account = ?'),
      pushAll: db.prepare('SELECT account, id, expires, data FROM push_subscription ORDER BY account, id'),
      pushOf: db.prepare('SELECT account, id, expires, data FROM push_subscription WHERE account = ? ORDER BY id'),
      pushPut: db.prepare('INSERT OR REPLACE INTO push_subscription (account, id, expires, data) VALUES (?, ?, ?, ?)'),
      pushDelete: db.prepare('DELETE FROM push_subscription WHERE account = ? AND id = ?'),
      pushExpired: db.prepare('SELECT account, id FROM push_subscription WHERE expires <= ?'),
      pushDeleteExpired: db.prepare('DELETE FROM push_subscription WHERE expires <= ?'),
      pushDeleteAccount: db.prepare('DELETE FROM push_subscription WHERE account = ?'),
    };
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  #counter(account: AccountId, type: JmapStateType): { value: number; floor: number } {
    const r = this.#q.counter.get(account, type) as { value: number; floor: number } | undefined;
    return r ? { value: Number(r.value), floor: Number(r.floor) } : { value: 0, floor: 0 };
  }

  async state(account: AccountId, type: JmapStateType): Promise<string> {
    return String(this.#counter(account, type).value);
  }

  async get(account: AccountId, type: JmapStateType, id: string): Promise<Record<string, unknown> | null> {
    const r = this.#q.get.get(account, type, id) as { data: string } | undefined;
    return r ? (JSON.parse(r.data) as Record<string, unknown>) : null;
  }

  async list(account: AccountId, type: JmapStateType): Promise<readonly Record<string, unknown>[]> {
    const rows = this.#q.list.all(account, type) as { data: string }[];
    return rows.map((r) => JSON.parse(r.data) as Record<string, unknown>);
  }

  /** One change: the counter bumped, the change logged, the log kept within its bound. */
  #change(account: AccountId, type: JmapStateType, id: string, kind: JmapStateChange['kind']): string {
    const seq = Number((this.#q.bump.get(account, type) as { value: number }).value);
    this.#q.log.run(account, type, seq, id, kind);
    const floor = seq - LIMITS.jmapState.maxChanges;
    if (floor > 0 && seq % 100 === 0) {
      this.#q.prune.run(account, type, floor);
      this.#db.prepare('UPDATE counter SET floor = ? WHERE account = ? AND type = ?').run(floor, account, type);
    }
    return String(seq);
  }

  async put(account: AccountId, type: JmapStateType, id: string, data: Record<string, unknown>): Promise<string> {
    const json = JSON.stringify(data);
    return transaction(this.#db, () => {
      const exists = this.#q.get.get(account, type, id) !== undefined;
      const state = this.#change(account, type, id, exists ? 'updated' : 'created');
      // `created` is the state of the creation: list() keeps creation order.
      if (exists) this.#q.replace.run(json, account, type, id);
      else this.#q.insert.run(account, type, id, json, Number(state));
      return state;
    });
  }

  async destroy(account: AccountId, type: JmapStateType, id: string): Promise<string> {
    return transaction(this.#db, () => {
      if (Number(this.#q.delete.run(account, type, id).changes) === 0)
        return String(this.#counter(account, type).value);
      return this.#change(account, type, id, 'destroyed');
    });
  }

  async changesSince(
    account: AccountId,
    type: JmapStateType,
    since: string,
  ): Promise<readonly JmapStateChange[] | null> {
    if (!/^(0|[1-9][0-9]{0,15})$/.test(since)) return null;
    const n = Number(since);
    const c = this.#counter(account, type);
    if (n > c.value || n < c.floor) return null;
    const rows = this.#q.changes.all(account, type, n) as { seq: number; id: string; kind: string }[];
    return rows.map((r) => ({ state: String(r.seq), id: r.id, kind: r.kind as JmapStateChange['kind'] }));
  }

  async pushSubscriptions(account?: AccountId): Promise<readonly StoredPushSubscription[]> {
    const rows = (account === undefined ? this.#q.pushAll.all() : this.#q.pushOf.all(account)) as {
      account: string;
      id: string;
      expires: number;
      data: string;
    }[];
    return rows.map(storedPushSubscription);
  }

  async putPushSubscription(s: StoredPushSubscription): Promise<void> {
    this.#q.pushPut.run(s.account, s.id, s.expires, JSON.stringify(s.data));
  }

  async deletePushSubscription(account: AccountId, id: string): Promise<void> {
    this.#q.pushDelete.run(account, id);
  }

  async deleteExpiredPushSubscriptions(now: number): Promise<readonly { account: AccountId; id: string }[]> {
    return transaction(this.#db, () => {
      const gone = this.#q.pushExpired.all(now) as { account: AccountId; id: string }[];
      if (gone.length > 0) this.#q.pushDeleteExpired.run(now);
      return gone.map((r) => ({ account: r.account, id: r.id }));
    });
  }

  async deleteAccount(account: AccountId): Promise<void> {
    transaction(this.#db, () => {
      this.#q.pushDeleteAccount.run(account);
      this.#q.deleteObjects.run(account);
      this.#q.deleteCounters.run(account);
      this.#q.deleteChanges.run(account);
    });
  }
}
