// The abuse defences' state, {state}/defense.db (docs/spam.md): the IP allow and deny lists the
// operator keeps (`arcline ip`, the admin API), the automatic bans (`arcline ban`) with their
// escalation level, and the networks owners logged in from (never banned, bans.ts).
// The CLI and the API write here while the server runs; every thread of the server reads through
// its own connection and notices a change by its version (access.ts: PRAGMA data_version here,
// a counter row on PostgreSQL, store-postgres.ts), so a change applies without a restart.
// `DefenseStore` is the contract (test/defense/store-contract.ts runs it against both); its
// methods are async because the PostgreSQL one of a cluster (issue #18) is.

import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { openDatabase, transaction } from '../core/sqlite.ts';
import type { Network } from './networks.ts';

const MIGRATIONS = [
  `CREATE TABLE networks (
     cidr TEXT PRIMARY KEY,
     list TEXT NOT NULL CHECK (list IN ('allow', 'deny')),
     comment TEXT NOT NULL DEFAULT '',
     created INTEGER NOT NULL,
     created_by TEXT NOT NULL DEFAULT ''
   );
   CREATE TABLE bans (
     network TEXT PRIMARY KEY,
     offence TEXT NOT NULL,
     detail TEXT NOT NULL DEFAULT '',
     banned INTEGER NOT NULL,
     expires INTEGER NOT NULL,
     level INTEGER NOT NULL,
     forget INTEGER NOT NULL
   );
   CREATE INDEX bans_forget ON bans (forget);
   CREATE TABLE known_clients (network TEXT PRIMARY KEY, last_login INTEGER NOT NULL);`,
];

export type ListName = 'allow' | 'deny';

export interface NetworkEntry {
  readonly cidr: string;
  readonly list: ListName;
  readonly comment: string;
  readonly created: number;
  readonly createdBy: string;
}

export interface BanEntry {
  /** The banned network (an IPv4 address /32 or an IPv6 /64). */
  readonly network: string;
  /** What it did: auth, protocol, unknown-recipient (defense/types.ts Offence). */
  readonly offence: string;
  /** One line for the operator: how many offences in what time. */
  readonly detail: string;
  readonly banned: number;
  readonly expires: number;
  /** 1 for a first ban; each ban within the memory period doubles the duration. */
  readonly level: number;
}

/** Longest comment kept on a list entry. */
export const MAX_COMMENT = 200;

/** The lists, bans and owner logins, wherever they are kept. */
export interface DefenseStore {
  /** Changes whenever another connection (the CLI, another thread, another node) committed a
   *  change of the lists or bans. */
  version(): Promise<number>;
  networks(): Promise<NetworkEntry[]>;
  /** Puts `net` on `list` (moving it from the other list); idempotent. True when something changed. */
  putNetwork(net: Network, list: ListName, comment: string, by: string, now?: number): Promise<boolean>;
  /** Removes `cidr` from whichever list holds it; false when none did. */
  deleteNetwork(cidr: string): Promise<boolean>;
  /** Bans in force at `now`, the latest to expire first. */
  bans(now?: number): Promise<BanEntry[]>;
  /** Bans `network` for `durationMs(level)`, the level one above its last ban still remembered;
   *  remembered until `memoryMs` after it expires. */
  ban(
    network: string,
    offence: string,
    detail: string,
    durationMs: (level: number) => number,
    memoryMs: number,
    now?: number,
  ): Promise<BanEntry>;
  /** Lifts the ban of `network` and forgets its level; false when it was not banned. */
  unban(network: string, now?: number): Promise<boolean>;
  /** An owner logged in from `network` at `now`. */
  knownClient(network: string, now?: number): Promise<void>;
  /** When an owner last logged in from `network` (0: never, or forgotten). */
  lastLogin(network: string): Promise<number>;
  /** Forgets bans past their memory and logins older than `knownBefore`. */
  sweep(now: number, knownBefore: number): Promise<void>;
  close(): void;
}

export class SqliteDefenseStore implements DefenseStore {
  readonly #db: DatabaseSync;

  constructor(stateDir: string) {
    this.#db = openDatabase(join(stateDir, 'defense.db'), { migrations: MIGRATIONS });
  }

  /** Changes when another connection (the CLI, another thread) committed (PRAGMA data_version). */
  async version(): Promise<number> {
    return Number((this.#db.prepare('PRAGMA data_version').get() as { data_version: number }).data_version);
  }

  async networks(): Promise<NetworkEntry[]> {
    return (this.#db.prepare('SELECT * FROM networks ORDER BY list, cidr').all() as Row[]).map(networkEntry);
  }

  /** Puts `net` on `list` (moving it from the other list); idempotent. True when something changed. */
  async putNetwork(net: Network, list: ListName, comment: string, by: string, now = Date.now()): Promise<boolean> {
    return transaction(this.#db, () => {
      const old = this.#db.prepare('SELECT list, comment FROM networks WHERE cidr = ?').get(net.cidr) as
        | Row
        | undefined;
      if (old && old.list === list && old.comment === comment) return false;
      this.#db
        .prepare(
          `INSERT INTO networks (cidr, list, comment, created, created_by) VALUES (?, ?, ?, ?, ?)
           ON CONFLICT (cidr) DO UPDATE SET list = excluded.list, comment = excluded.comment`,
        )
        .run(net.cidr, list, comment.slice(0, MAX_COMMENT), now, by);
      return true;
    });
  }

  /** Removes `cidr` from whichever list holds it; false when none did. */
  async deleteNetwork(cidr: string): Promise<boolean> {
    return Number(this.#db.prepare('DELETE FROM networks WHERE cidr = ?').run(cidr).changes) > 0;
  }

  /** Bans in force at `now`, the latest to expire first. */
  async bans(now = Date.now()): Promise<BanEntry[]> {
    return (this.#db.prepare('SELECT * FROM bans WHERE expires > ? ORDER BY expires DESC').all(now) as Row[]).map(ban);
  }

  /** Bans `network` for `durationMs(level)`, the level one above its last ban still remembered;
   *  remembered until `memoryMs` after it expires. */
  async ban(
    network: string,
    offence: string,
    detail: string,
    durationMs: (level: number) => number,
    memoryMs: number,
    now = Date.now(),
  ): Promise<BanEntry> {
    return transaction(this.#db, () => {
      const old = this.#db.prepare('SELECT level, forget FROM bans WHERE network = ?').get(network) as
        | { level: number; forget: number }
        | undefined;
      const { entry, forget } = nextBan(old, network, offence, detail, durationMs, memoryMs, now);
      this.#db
        .prepare(
          `INSERT INTO bans (network, offence, detail, banned, expires, level, forget) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (network) DO UPDATE SET offence = excluded.offence, detail = excluded.detail,
             banned = excluded.banned, expires = excluded.expires, level = excluded.level, forget = excluded.forget`,
        )
        .run(network, offence, detail, now, entry.expires, entry.level, forget);
      return entry;
    });
  }

  /** Lifts the ban of `network` and forgets its level; false when it was not banned. */
  async unban(network: string, now = Date.now()): Promise<boolean> {
    return transaction(this.#db, () => {
      const active = this.#db.prepare('SELECT 1 FROM bans WHERE network = ? AND expires > ?').get(network, now);
      this.#db.prepare('DELETE FROM bans WHERE network = ?').run(network);
      return active !== undefined;
    });
  }

  /** An owner logged in from `network` at `now`. */
  async knownClient(network: string, now = Date.now()): Promise<void> {
    this.#db
      .prepare(
        `INSERT INTO known_clients (network, last_login) VALUES (?, ?)
         ON CONFLICT (network) DO UPDATE SET last_login = excluded.last_login`,
      )
      .run(network, now);
  }

  /** When an owner last logged in from `network` (0: never, or forgotten). */
  async lastLogin(network: string): Promise<number> {
    const r = this.#db.prepare('SELECT last_login FROM known_clients WHERE network = ?').get(network) as
      | Row
      | undefined;
    return r ? Number(r.last_login) : 0;
  }

  /** Forgets bans past their memory and logins older than `knownBefore`. */
  async sweep(now: number, knownBefore: number): Promise<void> {
    this.#db.prepare('DELETE FROM bans WHERE forget <= ?').run(now);
    this.#db.prepare('DELETE FROM known_clients WHERE last_login < ?').run(knownBefore);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

type Row = Record<string, unknown>;

/** A row of the networks table as a NetworkEntry (both implementations). */
/** The ban that `network`'s new offence earns (both stores, in their write transaction): one
 *  level above its last ban while that is still remembered (`old`, its level and until when it
 *  is remembered), else level 1; remembered until `memoryMs` after it expires (`forget`). */
export function nextBan(
  old: { level: unknown; forget: unknown } | undefined,
  network: string,
  offence: string,
  detail: string,
  durationMs: (level: number) => number,
  memoryMs: number,
  now: number,
): { entry: BanEntry; forget: number } {
  const level = old && Number(old.forget) > now ? Number(old.level) + 1 : 1;
  const expires = now + durationMs(level);
  return { entry: { network, offence, detail, banned: now, expires, level }, forget: expires + memoryMs };
}

export function networkEntry(r: Row): NetworkEntry {
  return {
    cidr: String(r.cidr),
    list: r.list as ListName,
    comment: String(r.comment),
    created: Number(r.created),
    createdBy: String(r.created_by),
  };
}

/** A row of the bans table as a BanEntry (both implementations). */
export function ban(r: Row): BanEntry {
  return {
    network: String(r.network),
    offence: String(r.offence),
    detail: String(r.detail),
    banned: Number(r.banned),
    expires: Number(r.expires),
    level: Number(r.level),
  };
}
