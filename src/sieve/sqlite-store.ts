// Sieve scripts and delivery's Sieve state in {state}/sieve.db (core/sqlite.ts: WAL, private
// files, versioned migrations). The server and the CLI open the same file; every operation is
// one short statement or one BEGIN IMMEDIATE transaction, so a CLI `arcline sieve put` and a
// ManageSieve PUTSCRIPT never see half of each other.
// The contract (store-types.ts) is pinned by test/sieve/store-contract.ts.

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { openDatabase, transaction } from '../core/sqlite.ts';
import { DEFAULT_SIEVE_QUOTA, quotaRefusal, type SieveStateKind, stateKey, stateValue } from './store-rules.ts';
import {
  type SieveQuota,
  type SieveScriptInfo,
  type SieveScripts,
  type SieveState,
  SieveStoreError,
  scriptNameProblem,
} from './store-types.ts';

export { DEFAULT_SIEVE_QUOTA };

const MIGRATIONS = [
  `CREATE TABLE script (
     account TEXT NOT NULL, name TEXT NOT NULL, content BLOB NOT NULL,
     active INTEGER NOT NULL DEFAULT 0, modified INTEGER NOT NULL,
     PRIMARY KEY (account, name)) WITHOUT ROWID;
   CREATE UNIQUE INDEX script_active ON script (account) WHERE active = 1;
   CREATE TABLE state (
     kind TEXT NOT NULL, account TEXT NOT NULL, key BLOB NOT NULL,
     at INTEGER NOT NULL, expires INTEGER NOT NULL,
     PRIMARY KEY (kind, account, key)) WITHOUT ROWID;
   CREATE INDEX state_expires ON state (expires);`,
];

type Kind = SieveStateKind;

type Statements = Record<
  | 'list'
  | 'get'
  | 'usage'
  | 'insert'
  | 'exists'
  | 'delete'
  | 'rename'
  | 'clearActive'
  | 'setActive'
  | 'active'
  | 'deleteScripts'
  | 'deleteState'
  | 'stateGet'
  | 'stateUpsert'
  | 'sweep',
  StatementSync
>;

export class SqliteSieveStore implements SieveScripts, SieveState {
  readonly #db: DatabaseSync;
  readonly #q: Statements;
  readonly #quota: SieveQuota;

  constructor(path: string, quota: SieveQuota = DEFAULT_SIEVE_QUOTA) {
    this.#quota = quota;
    const db = openDatabase(path, { migrations: MIGRATIONS, pragmas: ['synchronous = NORMAL'] });
    this.#db = db;
    this.#q = {
      list: db.prepare('SELECT name, active, length(content) AS size FROM script WHERE account = ? ORDER BY name'),
      get: db.prepare('SELECT content FROM script WHERE account = ? AND name = ?'),
      usage: db.prepare(
        'SELECT count(*) AS n, coalesce(sum(length(content)), 0) AS bytes FROM script WHERE account = ? AND name != ?',
      ),
      insert: db.prepare(
        `INSERT INTO script (account, name, content, modified) VALUES (?, ?, ?, ?)
         ON CONFLICT (account, name) DO UPDATE SET content = excluded.content, modified = excluded.modified`,
      ),
      exists: db.prepare('SELECT active FROM script WHERE account = ? AND name = ?'),
      delete: db.prepare('DELETE FROM script WHERE account = ? AND name = ?'),
      rename: db.prepare('UPDATE script SET name = ?, modified = ? WHERE account = ? AND name = ?'),
      clearActive: db.prepare('UPDATE script SET active = 0 WHERE account = ? AND active = 1'),
      setActive: db.prepare('UPDATE script SET active = 1 WHERE account = ? AND name = ?'),
      active: db.prepare('SELECT name, content FROM script WHERE account = ? AND active = 1'),
      deleteScripts: db.prepare('DELETE FROM script WHERE account = ?'),
      deleteState: db.prepare('DELETE FROM state WHERE account = ?'),
      stateGet: db.prepare('SELECT at FROM state WHERE kind = ? AND account = ? AND key = ? AND expires > ?'),
      stateUpsert: db.prepare(
        `INSERT INTO state (kind, account, key, at, expires) VALUES (?, ?, ?, ?, ?)
         ON CONFLICT (kind, account, key) DO UPDATE SET at = excluded.at, expires = excluded.expires`,
      ),
      sweep: db.prepare('DELETE FROM state WHERE expires <= ?'),
    };
  }

  get quota(): SieveQuota {
    return this.#quota;
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  async list(account: AccountId): Promise<readonly SieveScriptInfo[]> {
    const rows = this.#q.list.all(account) as { name: string; active: number; size: number }[];
    return rows.map((r) => ({ name: r.name, active: r.active === 1, size: Number(r.size) }));
  }

  async get(account: AccountId, name: string): Promise<Buffer | null> {
    const row = this.#q.get.get(account, name) as { content: Uint8Array } | undefined;
    return row ? Buffer.from(row.content) : null;
  }

  #checkName(name: string): void {
    const problem = scriptNameProblem(name, LIMITS.sieve.maxScriptNameBytes);
    if (problem) throw new SieveStoreError('BADNAME', problem);
  }

  /** The quota refusal for `size` octets under `name` (replacing a script of that name), or
   *  null. Read inside the caller's transaction when it writes. */
  #space(account: AccountId, name: string, size: number): SieveStoreError | null {
    const u = this.#q.usage.get(account, name) as { n: number; bytes: number };
    const replacing = this.#q.exists.get(account, name) !== undefined;
    return quotaRefusal(this.#quota, size, { n: Number(u.n), bytes: Number(u.bytes) }, replacing);
  }

  async haveSpace(account: AccountId, name: string, size: number): Promise<SieveStoreError | null> {
    const problem = scriptNameProblem(name, LIMITS.sieve.maxScriptNameBytes);
    if (problem) return new SieveStoreError('BADNAME', problem);
    return this.#space(account, name, size);
  }

  async put(account: AccountId, name: string, bytes: Uint8Array): Promise<void> {
    this.#checkName(name);
    transaction(this.#db, () => {
      const refusal = this.#space(account, name, bytes.byteLength);
      if (refusal) throw refusal;
      this.#q.insert.run(account, name, bytes, Date.now());
    });
  }

  async delete(account: AccountId, name: string): Promise<void> {
    transaction(this.#db, () => {
      const row = this.#q.exists.get(account, name) as { active: number } | undefined;
      if (!row) throw new SieveStoreError('NONEXISTENT', 'There is no script by that name');
      // RFC 5804 §2.10: "the server MUST NOT allow the client to delete an active script".
      if (row.active === 1) throw new SieveStoreError('ACTIVE', 'You may not delete an active script');
      this.#q.delete.run(account, name);
    });
  }

  async rename(account: AccountId, from: string, to: string): Promise<void> {
    this.#checkName(to);
    transaction(this.#db, () => {
      if (!this.#q.exists.get(account, from))
        throw new SieveStoreError('NONEXISTENT', 'There is no script by that name');
      if (from === to) return;
      if (this.#q.exists.get(account, to)) throw new SieveStoreError('ALREADYEXISTS', 'A script by that name exists');
      this.#q.rename.run(to, Date.now(), account, from);
    });
  }

  async setActive(account: AccountId, name: string | null): Promise<void> {
    transaction(this.#db, () => {
      if (name !== null && !this.#q.exists.get(account, name)) {
        throw new SieveStoreError('NONEXISTENT', 'There is no script by that name');
      }
      this.#q.clearActive.run(account);
      if (name !== null) this.#q.setActive.run(account, name);
    });
  }

  async active(account: AccountId): Promise<{ name: string; content: Buffer } | null> {
    const row = this.#q.active.get(account) as { name: string; content: Uint8Array } | undefined;
    return row ? { name: row.name, content: Buffer.from(row.content) } : null;
  }

  async deleteAccount(account: AccountId): Promise<number> {
    return transaction(this.#db, () => {
      this.#q.deleteState.run(account);
      return Number(this.#q.deleteScripts.run(account).changes);
    });
  }

  #recent(kind: Kind, account: AccountId, handle: string, value: string, seconds: number, now: Date): boolean {
    const row = this.#q.stateGet.get(kind, account, stateKey(handle, value), now.getTime()) as
      | { at: number }
      | undefined;
    return row !== undefined && Number(row.at) > now.getTime() - seconds * 1000;
  }

  #record(kind: Kind, account: AccountId, handle: string, value: string, seconds: number, now: Date): void {
    const t = now.getTime();
    this.#q.stateUpsert.run(kind, account, stateKey(handle, value), t, t + Math.max(0, seconds) * 1000);
  }

  async vacationRecent(account: AccountId, handle: string, sender: string, seconds: number, now: Date) {
    return this.#recent('vacation', account, handle, stateValue('vacation', sender), seconds, now);
  }

  async vacationRecord(account: AccountId, handle: string, sender: string, seconds: number, now: Date) {
    this.#record('vacation', account, handle, stateValue('vacation', sender), seconds, now);
  }

  async duplicateSeen(account: AccountId, handle: string, id: string, seconds: number, now: Date) {
    return this.#recent('duplicate', account, handle, id, seconds, now);
  }

  async duplicateTrack(account: AccountId, handle: string, id: string, seconds: number, now: Date) {
    this.#record('duplicate', account, handle, id, seconds, now);
  }

  async sweep(now: Date): Promise<number> {
    return Number(this.#q.sweep.run(now.getTime()).changes);
  }
}
