// What the blocklist monitor already told the postmaster (docs/spam.md "Blocklist monitoring";
// docs/cluster.md "ACME and the blocklist monitor across nodes"): the listings seen and
// reported, so that neither a restart nor, in a cluster, the monitor moving to another node
// (the leader task `blocklist`) tells again. Two sides behind one interface
// (test/defense/blocklist-state.test.ts runs the same cases against both):
// - a file for one node, {state}/blocklist.json (replaced atomically, as before);
// - PostgreSQL for a cluster (component `blocklist`, table `blocklist_listed`).
// Both keep at most LIMITS.monitor.maxRemembered listings.

import { readFile } from 'node:fs/promises';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import { writePrivateFileAtomic } from '../core/private-files.ts';
import type { Postgres } from '../db/postgres.ts';

export interface Listing {
  readonly zone: string;
  readonly address: string;
  readonly codes: readonly string[];
  readonly reason: string | null;
  /** When we first saw it (ISO 8601). */
  readonly since: string;
}

export interface BlocklistState {
  /** The remembered listings (at most LIMITS.monitor.maxRemembered). */
  load(): Promise<readonly Listing[]>;
  /** Remembers `add` (a listing already known keeps its first `since`) and forgets `remove`. */
  update(add: readonly Listing[], remove: readonly Pick<Listing, 'zone' | 'address'>[]): Promise<void>;
}

const keyOf = (l: Pick<Listing, 'zone' | 'address'>) => `${l.zone} ${l.address}`;

/** A listing read from outside (a file, a row): the fields checked, the rest dropped. */
export function listingFrom(x: unknown): Listing | null {
  const l = x as Partial<Listing> | null;
  if (typeof l?.zone !== 'string' || typeof l.address !== 'string' || typeof l.since !== 'string') return null;
  return {
    zone: l.zone,
    address: l.address,
    codes: Array.isArray(l.codes) ? l.codes.map(String) : [],
    reason: typeof l.reason === 'string' ? l.reason : null,
    since: l.since,
  };
}

/** One node: {state}/blocklist.json, `{ version: 1, listed: [...] }`. */
export class FileBlocklistState implements BlocklistState {
  readonly #file: string;
  readonly #onWarn: (msg: string) => void;

  constructor(file: string, onWarn: (msg: string) => void = () => {}) {
    this.#file = file;
    this.#onWarn = onWarn;
  }

  async load(): Promise<readonly Listing[]> {
    let text: string;
    try {
      text = await readFile(this.#file, 'utf8');
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT')
        this.#onWarn(`cannot read blocklist state: ${errorMessage(e)}`);
      return [];
    }
    try {
      const data = JSON.parse(text) as { listed?: unknown };
      const all = Array.isArray(data.listed) ? data.listed.slice(0, LIMITS.monitor.maxRemembered) : [];
      return all.map(listingFrom).filter((l): l is Listing => l !== null);
    } catch (e) {
      this.#onWarn(`blocklist state unreadable; starting afresh: ${errorMessage(e)}`);
      return [];
    }
  }

  async update(add: readonly Listing[], remove: readonly Pick<Listing, 'zone' | 'address'>[]): Promise<void> {
    const m = new Map((await this.load()).map((l) => [keyOf(l), l]));
    for (const r of remove) m.delete(keyOf(r));
    for (const l of add) if (!m.has(keyOf(l)) && m.size < LIMITS.monitor.maxRemembered) m.set(keyOf(l), l);
    const data = { version: 1, listed: [...m.values()] };
    await writePrivateFileAtomic(this.#file, `${JSON.stringify(data, null, 2)}\n`);
  }
}

export const BLOCKLIST_MIGRATIONS: readonly string[] = [
  `CREATE TABLE blocklist_listed (
     zone TEXT COLLATE "C" NOT NULL,
     address TEXT COLLATE "C" NOT NULL,
     codes TEXT NOT NULL,
     reason TEXT,
     since TEXT NOT NULL,
     PRIMARY KEY (zone, address));`,
];

/** A cluster: the table `blocklist_listed`, shared by whichever node runs the monitor. */
export class PostgresBlocklistState implements BlocklistState {
  readonly #db: Postgres;

  private constructor(db: Postgres) {
    this.#db = db;
  }

  /** Migrates the `blocklist` component; the pool stays the caller's. */
  static async open(db: Postgres): Promise<PostgresBlocklistState> {
    await db.migrate('blocklist', BLOCKLIST_MIGRATIONS);
    return new PostgresBlocklistState(db);
  }

  async load(): Promise<readonly Listing[]> {
    const rows = await this.#db.rows<{
      zone: string;
      address: string;
      codes: string;
      reason: string | null;
      since: string;
    }>('SELECT zone, address, codes, reason, since FROM blocklist_listed ORDER BY zone, address LIMIT $1', [
      LIMITS.monitor.maxRemembered,
    ]);
    return rows.map((r) => listingFrom({ ...r, codes: parseCodes(r.codes) })).filter((l): l is Listing => l !== null);
  }

  async update(add: readonly Listing[], remove: readonly Pick<Listing, 'zone' | 'address'>[]): Promise<void> {
    if (add.length === 0 && remove.length === 0) return;
    await this.#db.tx(async (q) => {
      for (const r of remove) {
        await q.query('DELETE FROM blocklist_listed WHERE zone = $1 AND address = $2', [r.zone, r.address]);
      }
      if (add.length === 0) return;
      const count = Number(
        (await q.query<{ n: number }>('SELECT count(*)::int8 AS n FROM blocklist_listed')).rows[0]?.n,
      );
      const room = Math.max(0, LIMITS.monitor.maxRemembered - count);
      // ON CONFLICT DO NOTHING: a listing another node already remembered keeps its `since`
      // (two nodes in the fencing window of a takeover, docs/cluster.md "Leader tasks").
      for (const l of add.slice(0, room)) {
        await q.query(
          `INSERT INTO blocklist_listed (zone, address, codes, reason, since) VALUES ($1, $2, $3, $4, $5)
           ON CONFLICT (zone, address) DO NOTHING`,
          [l.zone, l.address, JSON.stringify(l.codes), l.reason, l.since],
        );
      }
    });
  }
}

function parseCodes(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return [];
  }
}

/** The monitor's state: `{state}/blocklist.json`, or the shared PostgreSQL (`db`). */
export async function openBlocklistState(o: {
  readonly file: string;
  readonly db: Postgres | null;
  readonly onWarn?: (msg: string) => void;
}): Promise<BlocklistState> {
  if (o.db) return PostgresBlocklistState.open(o.db);
  return new FileBlocklistState(o.file, o.onWarn);
}
