// The abuse defences' state, {state}/defense.db (docs/spam.md): the IP allow and deny lists the
// operator keeps (`arcline ip`, the admin API), the automatic bans (`arcline ban`) with their
// escalation level, and the networks owners logged in from (never banned, bans.ts).
// The CLI and the API write here while the server runs; every thread of the server reads through
// its own connection and notices a change by PRAGMA data_version (access.ts), so a change
// applies without a restart.

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

export class DefenseStore {
  readonly #db: DatabaseSync;

  constructor(stateDir: string) {
    this.#db = openDatabase(join(stateDir, 'defense.db'), { migrations: MIGRATIONS });
  }

  /** Changes when another connection (the CLI, another thread) committed (PRAGMA data_version). */
  version(): number {
    return Number((this.#db.prepare('PRAGMA data_version').get() as { data_version: number }).data_version);
  }

  networks(): NetworkEntry[] {
    return (this.#db.prepare('SELECT * FROM networks ORDER BY list, cidr').all() as Row[]).map((r) => ({
      cidr: String(r.cidr),
      list: r.list as ListName,
      comment: String(r.comment),
      created: Number(r.created),
      createdBy: String(r.created_by),
    }));
  }

  /** Puts `net` on `list` (moving it from the other list); idempotent. True when something changed. */
  putNetwork(net: Network, list: ListName, comment: string, by: string, now = Date.now()): boolean {
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
  deleteNetwork(cidr: string): boolean {
    return Number(this.#db.prepare('DELETE FROM networks WHERE cidr = ?').run(cidr).changes) > 0;
  }

  /** Bans in force at `now`, the latest to expire first. */
  bans(now = Date.now()): BanEntry[] {
    return (this.#db.prepare('SELECT * FROM bans WHERE expires > ? ORDER BY expires DESC').all(now) as Row[]).map(ban);
  }

  /** Bans `network` for `durationMs(level)`, the level one above its last ban still remembered;
   *  remembered until `memoryMs` after it expires. */
  ban(
    network: string,
    offence: string,
    detail: string,
    durationMs: (level: number) => number,
    memoryMs: number,
    now = Date.now(),
  ): BanEntry {
    return transaction(this.#db, () => {
      const old = this.#db.prepare('SELECT level, forget FROM bans WHERE network = ?').get(network) as Row | undefined;
      const level = old && Number(old.forget) > now ? Number(old.level) + 1 : 1;
      const expires = now + durationMs(level);
      this.#db
        .prepare(
          `INSERT INTO bans (network, offence, detail, banned, expires, level, forget) VALUES (?, ?, ?, ?, ?, ?, ?)
           ON CONFLICT (network) DO UPDATE SET offence = excluded.offence, detail = excluded.detail,
             banned = excluded.banned, expires = excluded.expires, level = excluded.level, forget = excluded.forget`,
        )
        .run(network, offence, detail, now, expires, level, expires + memoryMs);
      return { network, offence, detail, banned: now, expires, level };
    });
  }

  /** Lifts the ban of `network` and forgets its level; false when it was not banned. */
  unban(network: string, now = Date.now()): boolean {
    return transaction(this.#db, () => {
      const active = this.#db.prepare('SELECT 1 FROM bans WHERE network = ? AND expires > ?').get(network, now);
      this.#db.prepare('DELETE FROM bans WHERE network = ?').run(network);
      return active !== undefined;
    });
  }

  /** An owner logged in from `network` at `now`. */
  knownClient(network: string, now = Date.now()): void {
    this.#db
      .prepare(
        `INSERT INTO known_clients (network, last_login) VALUES (?, ?)
         ON CONFLICT (network) DO UPDATE SET last_login = excluded.last_login`,
      )
      .run(network, now);
  }

  /** When an owner last logged in from `network` (0: never, or forgotten). */
  lastLogin(network: string): number {
    const r = this.#db.prepare('SELECT last_login FROM known_clients WHERE network = ?').get(network) as
      | Row
      | undefined;
    return r ? Number(r.last_login) : 0;
  }

  /** Forgets bans past their memory and logins older than `knownBefore`. */
  sweep(now: number, knownBefore: number): void {
    this.#db.prepare('DELETE FROM bans WHERE forget <= ?').run(now);
    this.#db.prepare('DELETE FROM known_clients WHERE last_login < ?').run(knownBefore);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

type Row = Record<string, unknown>;

function ban(r: Row): BanEntry {
  return {
    network: String(r.network),
    offence: String(r.offence),
    detail: String(r.detail),
    banned: Number(r.banned),
    expires: Number(r.expires),
    level: Number(r.level),
  };
}
