// Sieve scripts and delivery's Sieve state on PostgreSQL (issue #18, docs/cluster.md "Shared
// state"): the same contract as sqlite-store.ts (test/sieve/store-contract.ts runs against
// both), for several nodes sharing one database. Scripts are bytea, byte for byte; names are
// COLLATE "C" so list() orders them by code point as SQLite's BINARY does. Writes to one
// account's scripts take a transaction-scoped advisory lock on the account, so a quota check and
// the write it allows are one step even when two nodes PUTSCRIPT at once (a row lock cannot
// guard a script that does not exist yet). State keys are SHA-256 hashes, as in SQLite.

import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { LOCK_CLASS, type Postgres, type Queryable } from '../db/postgres.ts';
import { DEFAULT_SIEVE_QUOTA, quotaRefusal, type SieveStateKind, stateKey, stateValue } from './store-rules.ts';
import {
  type SieveQuota,
  type SieveScriptInfo,
  type SieveScripts,
  type SieveState,
  SieveStoreError,
  scriptNameProblem,
} from './store-types.ts';

export const SIEVE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE sieve_script (
     account TEXT NOT NULL, name TEXT COLLATE "C" NOT NULL, content BYTEA NOT NULL,
     active BOOLEAN NOT NULL DEFAULT false, modified INT8 NOT NULL,
     PRIMARY KEY (account, name));
   CREATE UNIQUE INDEX sieve_script_active ON sieve_script (account) WHERE active;
   CREATE TABLE sieve_state (
     kind TEXT NOT NULL, account TEXT NOT NULL, key BYTEA NOT NULL,
     at INT8 NOT NULL, expires INT8 NOT NULL,
     PRIMARY KEY (kind, account, key));
   CREATE INDEX sieve_state_expires ON sieve_state (expires);
   CREATE INDEX sieve_state_account ON sieve_state (account);`,
];

const NONEXISTENT = 'There is no script by that name';

export class PostgresSieveStore implements SieveScripts, SieveState {
  readonly #db: Postgres;
  readonly #quota: SieveQuota;

  private constructor(db: Postgres, quota: SieveQuota) {
    this.#db = db;
    this.#quota = quota;
  }

  /** Migrates the `sieve` component and returns the store; the pool stays the caller's. */
  static async open(db: Postgres, quota: SieveQuota = DEFAULT_SIEVE_QUOTA): Promise<PostgresSieveStore> {
    await db.migrate('sieve', SIEVE_MIGRATIONS);
    return new PostgresSieveStore(db, quota);
  }

  get quota(): SieveQuota {
    return this.#quota;
  }

  /** The pool is shared with the other stores: its owner closes it. */
  close(): void {}

  async list(account: AccountId): Promise<readonly SieveScriptInfo[]> {
    const rows = await this.#db.rows<{ name: string; active: boolean; size: number }>(
      'SELECT name, active, octet_length(content) AS size FROM sieve_script WHERE account = $1 ORDER BY name',
      [account],
    );
    return rows.map((r) => ({ name: r.name, active: r.active, size: Number(r.size) }));
  }

  async get(account: AccountId, name: string): Promise<Buffer | null> {
    const rows = await this.#db.rows<{ content: Buffer }>(
      'SELECT content FROM sieve_script WHERE account = $1 AND name = $2',
      [account, name],
    );
    return rows[0]?.content ?? null;
  }

  /** fn in a transaction holding the account's script lock. */
  #locked<T>(account: AccountId, fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.#db.tx(async (q) => {
      await q.query('SELECT pg_advisory_xact_lock($1, hashtext($2))', [LOCK_CLASS, `sieve:${account}`]);
      return fn(q);
    });
  }

  async #exists(q: Queryable, account: AccountId, name: string): Promise<{ active: boolean } | undefined> {
    const r = await q.query<{ active: boolean }>('SELECT active FROM sieve_script WHERE account = $1 AND name = $2', [
      account,
      name,
    ]);
    return r.rows[0];
  }

  async #space(q: Queryable, account: AccountId, name: string, size: number): Promise<SieveStoreError | null> {
    const u = await q.query<{ n: number; bytes: string }>(
      `SELECT count(*)::int8 AS n, coalesce(sum(octet_length(content)), 0)::int8 AS bytes
       FROM sieve_script WHERE account = $1 AND name <> $2`,
      [account, name],
    );
    const row = u.rows[0];
    const replacing = (await this.#exists(q, account, name)) !== undefined;
    return quotaRefusal(this.#quota, size, { n: Number(row?.n ?? 0), bytes: Number(row?.bytes ?? 0) }, replacing);
  }

  async haveSpace(account: AccountId, name: string, size: number): Promise<SieveStoreError | null> {
    const problem = scriptNameProblem(name, LIMITS.sieve.maxScriptNameBytes);
    if (problem) return new SieveStoreError('BADNAME', problem);
    return this.#space(this.#db, account, name, size);
  }

  async put(account: AccountId, name: string, bytes: Uint8Array): Promise<void> {
    checkName(name);
    const content = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    await this.#locked(account, async (q) => {
      const refusal = await this.#space(q, account, name, bytes.byteLength);
      if (refusal) throw refusal;
      await q.query(
        `INSERT INTO sieve_script (account, name, content, modified) VALUES ($1, $2, $3, $4)
         ON CONFLICT (account, name) DO UPDATE SET content = EXCLUDED.content, modified = EXCLUDED.modified`,
        [account, name, content, Date.now()],
      );
    });
  }

  async delete(account: AccountId, name: string): Promise<void> {
    await this.#locked(account, async (q) => {
      const row = await this.#exists(q, account, name);
      if (!row) throw new SieveStoreError('NONEXISTENT', NONEXISTENT);
      // RFC 5804 §2.10: "the server MUST NOT allow the client to delete an active script".
      if (row.active) throw new SieveStoreError('ACTIVE', 'You may not delete an active script');
      await q.query('DELETE FROM sieve_script WHERE account = $1 AND name = $2', [account, name]);
    });
  }

  async rename(account: AccountId, from: string, to: string): Promise<void> {
    checkName(to);
    await this.#locked(account, async (q) => {
      if (!(await this.#exists(q, account, from))) throw new SieveStoreError('NONEXISTENT', NONEXISTENT);
      if (from === to) return;
      if (await this.#exists(q, account, to))
        throw new SieveStoreError('ALREADYEXISTS', 'A script by that name exists');
      await q.query('UPDATE sieve_script SET name = $1, modified = $2 WHERE account = $3 AND name = $4', [
        to,
        Date.now(),
        account,
        from,
      ]);
    });
  }

  async setActive(account: AccountId, name: string | null): Promise<void> {
    await this.#locked(account, async (q) => {
      if (name !== null && !(await this.#exists(q, account, name))) {
        throw new SieveStoreError('NONEXISTENT', NONEXISTENT);
      }
      await q.query('UPDATE sieve_script SET active = false WHERE account = $1 AND active', [account]);
      if (name !== null) {
        await q.query('UPDATE sieve_script SET active = true WHERE account = $1 AND name = $2', [account, name]);
      }
    });
  }

  async active(account: AccountId): Promise<{ name: string; content: Buffer } | null> {
    const rows = await this.#db.rows<{ name: string; content: Buffer }>(
      'SELECT name, content FROM sieve_script WHERE account = $1 AND active',
      [account],
    );
    const r = rows[0];
    return r ? { name: r.name, content: r.content } : null;
  }

  async deleteAccount(account: AccountId): Promise<number> {
    return this.#locked(account, async (q) => {
      await q.query('DELETE FROM sieve_state WHERE account = $1', [account]);
      return (await q.query('DELETE FROM sieve_script WHERE account = $1', [account])).rowCount ?? 0;
    });
  }

  async #recent(kind: SieveStateKind, account: AccountId, handle: string, value: string, seconds: number, now: Date) {
    const t = now.getTime();
    const rows = await this.#db.rows<{ at: number }>(
      'SELECT at FROM sieve_state WHERE kind = $1 AND account = $2 AND key = $3 AND expires > $4',
      [kind, account, stateKey(handle, stateValue(kind, value)), t],
    );
    const at = rows[0]?.at;
    return at !== undefined && Number(at) > t - seconds * 1000;
  }

  async #record(kind: SieveStateKind, account: AccountId, handle: string, value: string, seconds: number, now: Date) {
    const t = now.getTime();
    await this.#db.query(
      `INSERT INTO sieve_state (kind, account, key, at, expires) VALUES ($1, $2, $3, $4, $5)
       ON CONFLICT (kind, account, key) DO UPDATE SET at = EXCLUDED.at, expires = EXCLUDED.expires`,
      [kind, account, stateKey(handle, stateValue(kind, value)), t, t + Math.max(0, seconds) * 1000],
    );
  }

  vacationRecent(account: AccountId, handle: string, sender: string, seconds: number, now: Date): Promise<boolean> {
    return this.#recent('vacation', account, handle, sender, seconds, now);
  }

  vacationRecord(account: AccountId, handle: string, sender: string, seconds: number, now: Date): Promise<void> {
    return this.#record('vacation', account, handle, sender, seconds, now);
  }

  duplicateSeen(account: AccountId, handle: string, id: string, seconds: number, now: Date): Promise<boolean> {
    return this.#recent('duplicate', account, handle, id, seconds, now);
  }

  duplicateTrack(account: AccountId, handle: string, id: string, seconds: number, now: Date): Promise<void> {
    return this.#record('duplicate', account, handle, id, seconds, now);
  }

  async sweep(now: Date): Promise<number> {
    return (await this.#db.query('DELETE FROM sieve_state WHERE expires <= $1', [now.getTime()])).rowCount ?? 0;
  }
}

function checkName(name: string): void {
  const problem = scriptNameProblem(name, LIMITS.sieve.maxScriptNameBytes);
  if (problem) throw new SieveStoreError('BADNAME', problem);
}
