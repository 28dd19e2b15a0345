// The abuse defences' state on the shared PostgreSQL (issue #18, docs/cluster.md "Shared
// state"): the IP lists, the bans and the owner logins of every node in one place, so a ban one
// node writes refuses the client at every node, and `arcline ip deny` on any node applies to
// all. The same contract as the SQLite store.ts (test/defense/store-contract.ts).
//
// What plays PRAGMA data_version's part: a one-row counter (defense_version) that every write
// of the lists or bans increments in its own transaction. Taking that row first also puts the
// cluster's list and ban writes in one order (they are rare: an operator's edit, a ban), so a
// ban's level is read and written without a race. Each thread's AccessView polls the counter
// (LIMITS.defense.pollMs, 1 s) and reloads lists and bans when it moved: a ban written on one
// node refuses the client on the others within about a second.

import type { Postgres, Queryable } from '../db/postgres.ts';
import type { Network } from './networks.ts';
import {
  type BanEntry,
  ban,
  type DefenseStore,
  type ListName,
  MAX_COMMENT,
  type NetworkEntry,
  networkEntry,
  nextBan,
} from './store.ts';

export const DEFENSE_MIGRATIONS: readonly string[] = [
  `CREATE TABLE defense_networks (
     cidr TEXT COLLATE "C" PRIMARY KEY,
     list TEXT NOT NULL CHECK (list IN ('allow', 'deny')),
     comment TEXT NOT NULL DEFAULT '',
     created INT8 NOT NULL,
     created_by TEXT NOT NULL DEFAULT '');
   CREATE TABLE defense_bans (
     network TEXT PRIMARY KEY,
     offence TEXT NOT NULL,
     detail TEXT NOT NULL DEFAULT '',
     banned INT8 NOT NULL,
     expires INT8 NOT NULL,
     level INT4 NOT NULL,
     forget INT8 NOT NULL);
   CREATE INDEX defense_bans_forget ON defense_bans (forget);
   CREATE INDEX defense_bans_expires ON defense_bans (expires);
   CREATE TABLE defense_known_clients (network TEXT PRIMARY KEY, last_login INT8 NOT NULL);
   CREATE INDEX defense_known_clients_last ON defense_known_clients (last_login);
   CREATE TABLE defense_version (id INT4 PRIMARY KEY CHECK (id = 1), v INT8 NOT NULL);
   INSERT INTO defense_version VALUES (1, 0);`,
];

export class PostgresDefenseStore implements DefenseStore {
  readonly #db: Postgres;

  private constructor(db: Postgres) {
    this.#db = db;
  }

  /** Migrates the `defense` component; the pool stays the caller's. */
  static async open(db: Postgres): Promise<PostgresDefenseStore> {
    await db.migrate('defense', DEFENSE_MIGRATIONS);
    return new PostgresDefenseStore(db);
  }

  /** fn in a transaction that first moves the version (and so waits for other list and ban writes). */
  #write<T>(fn: (q: Queryable) => Promise<T>): Promise<T> {
    return this.#db.tx(async (q) => {
      await q.query('UPDATE defense_version SET v = v + 1 WHERE id = 1');
      return fn(q);
    });
  }

  async version(): Promise<number> {
    const r = await this.#db.rows<{ v: number }>('SELECT v FROM defense_version WHERE id = 1');
    return Number(r[0]?.v ?? 0);
  }

  async networks(): Promise<NetworkEntry[]> {
    return (await this.#db.rows('SELECT * FROM defense_networks ORDER BY list, cidr')).map(networkEntry);
  }

  putNetwork(net: Network, list: ListName, comment: string, by: string, now = Date.now()): Promise<boolean> {
    const text = comment.slice(0, MAX_COMMENT);
    return this.#db.tx(async (q) => {
      const old = await q.query<{ list: string; comment: string }>(
        'SELECT list, comment FROM defense_networks WHERE cidr = $1',
        [net.cidr],
      );
      const o = old.rows[0];
      if (o && o.list === list && o.comment === comment) return false;
      await q.query('UPDATE defense_version SET v = v + 1 WHERE id = 1');
      await q.query(
        `INSERT INTO defense_networks (cidr, list, comment, created, created_by) VALUES ($1, $2, $3, $4, $5)
         ON CONFLICT (cidr) DO UPDATE SET list = EXCLUDED.list, comment = EXCLUDED.comment`,
        [net.cidr, list, text, now, by],
      );
      return true;
    });
  }

  deleteNetwork(cidr: string): Promise<boolean> {
    return this.#write(
      async (q) => ((await q.query('DELETE FROM defense_networks WHERE cidr = $1', [cidr])).rowCount ?? 0) > 0,
    );
  }

  async bans(now = Date.now()): Promise<BanEntry[]> {
    return (await this.#db.rows('SELECT * FROM defense_bans WHERE expires > $1 ORDER BY expires DESC', [now])).map(ban);
  }

  ban(
    network: string,
    offence: string,
    detail: string,
    durationMs: (level: number) => number,
    memoryMs: number,
    now = Date.now(),
  ): Promise<BanEntry> {
    return this.#write(async (q) => {
      const old = await q.query<{ level: number; forget: number }>(
        'SELECT level, forget FROM defense_bans WHERE network = $1',
        [network],
      );
      const { entry, forget } = nextBan(old.rows[0], network, offence, detail, durationMs, memoryMs, now);
      await q.query(
        `INSERT INTO defense_bans (network, offence, detail, banned, expires, level, forget)
         VALUES ($1, $2, $3, $4, $5, $6, $7)
         ON CONFLICT (network) DO UPDATE SET offence = EXCLUDED.offence, detail = EXCLUDED.detail,
           banned = EXCLUDED.banned, expires = EXCLUDED.expires, level = EXCLUDED.level, forget = EXCLUDED.forget`,
        [network, offence, detail, now, entry.expires, entry.level, forget],
      );
      return entry;
    });
  }

  unban(network: string, now = Date.now()): Promise<boolean> {
    return this.#write(async (q) => {
      const gone = await q.query<{ expires: number }>('DELETE FROM defense_bans WHERE network = $1 RETURNING expires', [
        network,
      ]);
      return gone.rows.some((r) => Number(r.expires) > now);
    });
  }

  async knownClient(network: string, now = Date.now()): Promise<void> {
    await this.#db.query(
      `INSERT INTO defense_known_clients (network, last_login) VALUES ($1, $2)
       ON CONFLICT (network) DO UPDATE SET last_login = GREATEST(defense_known_clients.last_login, EXCLUDED.last_login)`,
      [network, now],
    );
  }

  async lastLogin(network: string): Promise<number> {
    const r = await this.#db.rows<{ last_login: number }>(
      'SELECT last_login FROM defense_known_clients WHERE network = $1',
      [network],
    );
    return Number(r[0]?.last_login ?? 0);
  }

  /** Bans past their memory expired long ago: no view holds them, the version stays. */
  async sweep(now: number, knownBefore: number): Promise<void> {
    await this.#db.query('DELETE FROM defense_bans WHERE forget <= $1', [now]);
    await this.#db.query('DELETE FROM defense_known_clients WHERE last_login < $1', [knownBefore]);
  }

  /** The pool is shared with the other stores: its owner closes it. */
  close(): void {}
}
