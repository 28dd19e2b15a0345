// Greylisting's state in {state}/greylist.db (core/sqlite.ts, WAL): the one-machine
// GreylistStorage (greylist.ts). Every inbound thread opens its own connection (opened at first
// use); one check is one short BEGIN IMMEDIATE transaction.

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { openDatabase, transaction } from '../core/sqlite.ts';
import type { ClientRow, GreylistEntry, GreylistKey, GreylistPlan, GreylistStorage, TripletRow } from './greylist.ts';
import type { GreylistAnswer } from './types.ts';

const MIGRATIONS = [
  `CREATE TABLE triplet (
     net TEXT NOT NULL, sender TEXT NOT NULL, recipient TEXT NOT NULL,
     first INTEGER NOT NULL, last INTEGER NOT NULL, passed INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (net, sender, recipient)) WITHOUT ROWID;
   CREATE INDEX triplet_last ON triplet (last);
   CREATE TABLE client (
     net TEXT PRIMARY KEY, passes INTEGER NOT NULL, last_pass INTEGER NOT NULL,
     last INTEGER NOT NULL) WITHOUT ROWID;`,
];

type Statements = Record<
  'triplet' | 'upsert' | 'client' | 'clientSeen' | 'clientPass' | 'sweepTriplets' | 'sweepClients' | 'list',
  StatementSync
>;

export class SqliteGreylistStorage implements GreylistStorage {
  readonly #path: string;
  #db: DatabaseSync | null = null;
  #q: Statements | null = null;

  constructor(path: string) {
    this.#path = path;
  }

  /** The statements, the database opened (and migrated) at first use. */
  #statements(): Statements {
    if (this.#q) return this.#q;
    const db = openDatabase(this.#path, { migrations: MIGRATIONS, pragmas: ['synchronous = NORMAL'] });
    this.#db = db;
    this.#q = {
      triplet: db.prepare('SELECT first, last, passed FROM triplet WHERE net = ? AND sender = ? AND recipient = ?'),
      upsert: db.prepare(
        `INSERT INTO triplet (net, sender, recipient, first, last, passed) VALUES (?, ?, ?, ?, ?, ?)
         ON CONFLICT (net, sender, recipient) DO UPDATE SET first = excluded.first, last = excluded.last,
         passed = excluded.passed`,
      ),
      client: db.prepare('SELECT passes, last_pass, last FROM client WHERE net = ?'),
      clientSeen: db.prepare('UPDATE client SET last = ? WHERE net = ?'),
      clientPass: db.prepare(
        `INSERT INTO client (net, passes, last_pass, last) VALUES (?, 1, ?, ?)
         ON CONFLICT (net) DO UPDATE SET passes = passes + 1, last_pass = excluded.last_pass, last = excluded.last`,
      ),
      sweepTriplets: db.prepare('DELETE FROM triplet WHERE last < ? OR (passed = 0 AND first < ?)'),
      sweepClients: db.prepare('DELETE FROM client WHERE last < ?'),
      list: db.prepare('SELECT net, sender, recipient, first, last, passed FROM triplet ORDER BY last DESC LIMIT ?'),
    };
    return this.#q;
  }

  async decide(
    k: GreylistKey,
    now: number,
    plan: (client: ClientRow | undefined, triplet: TripletRow | undefined) => GreylistPlan,
  ): Promise<GreylistAnswer> {
    const q = this.#statements();
    return transaction(this.#db as DatabaseSync, () => {
      const c = q.client.get(k.net) as { passes: number; last_pass: number; last: number } | undefined;
      const t = q.triplet.get(k.net, k.sender, k.recipient) as
        | { first: number; last: number; passed: number }
        | undefined;
      const p = plan(
        c && { passes: Number(c.passes), lastPass: Number(c.last_pass), last: Number(c.last) },
        t && { first: Number(t.first), last: Number(t.last), passed: t.passed === 1 },
      );
      if (p.triplet) q.upsert.run(k.net, k.sender, k.recipient, p.triplet.first, now, p.triplet.passed ? 1 : 0);
      if (p.client === 'pass') q.clientPass.run(k.net, now, now);
      else if (p.client === 'seen') q.clientSeen.run(now, k.net);
      return p.answer;
    });
  }

  async sweep(unseenBefore: number, unpassedBefore: number): Promise<number> {
    const q = this.#statements();
    const a = q.sweepTriplets.run(unseenBefore, unpassedBefore);
    const b = q.sweepClients.run(unseenBefore);
    return Number(a.changes) + Number(b.changes);
  }

  async list(limit: number): Promise<GreylistEntry[]> {
    type Row = Omit<GreylistEntry, 'passed'> & { passed: number };
    return (this.#statements().list.all(limit) as unknown as Row[]).map((r) => ({ ...r, passed: r.passed === 1 }));
  }

  async clear(): Promise<number> {
    this.#statements();
    const db = this.#db as DatabaseSync;
    return transaction(db, () => {
      const a = db.prepare('DELETE FROM triplet').run();
      const b = db.prepare('DELETE FROM client').run();
      return Number(a.changes) + Number(b.changes);
    });
  }

  async close(): Promise<void> {
    this.#db?.close();
    this.#db = null;
    this.#q = null;
  }
}
