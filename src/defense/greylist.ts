// Greylisting (RFC 6647; postgrey's semantics, docs/spam.md "Greylisting"): the first message of
// an unknown triplet (client network, sender, recipient) is deferred with 451 4.7.1; a retry
// after `delay` passes. RFC 6647 §2.1: a legitimate MTA retries a temporary failure, much of the
// spamware does not.
//
// - The key (greylistKey): the client's network (IPv4 /24, IPv6 /64, as postgrey's
//   --lookup-by-subnet: a sender's pool retrying from a neighbouring address still matches), the
//   sender cleaned as postgrey's do_sender_substitutions (lower case, "+extension" stripped, a
//   BATV "prvs=tag=" prefix stripped, numbers standing alone in the local part replaced by "#",
//   so VERP senders keep one key), the recipient in lower case.
// - A triplet first seen more than `retry_window` ago that never passed starts over (postgrey
//   --retry-window); one not seen for `max_age` is forgotten (postgrey --max-age); the sweep
//   deletes both kinds hourly.
// - A client network whose mail passed `auto_allow_after` times (postgrey
//   --auto-whitelist-clients; one pass counted per LIMITS.defense.greylistPassIntervalMs, so one
//   message to many recipients counts once) is no longer greylisted while seen within max_age.
// - Never greylisted: `exempt(ip)` (trusted networks, the injected allow list) and clients the
//   allowlist (greylist-allowlist.ts) names by address or verified reverse name. Authenticated
//   (submission) clients never reach this: only port 25's RCPT stage asks.
// - State in {state}/greylist.db (core/sqlite.ts, WAL): every inbound thread opens its own
//   connection; one check is a read and a write of one row each in one short transaction.

import { join } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Config } from '../config/schema.ts';
import { networkKey } from '../core/ip.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { LruMap } from '../core/lru.ts';
import { openDatabase, transaction } from '../core/sqlite.ts';
import { GreylistAllowlist } from './greylist-allowlist.ts';
import type { GreylistAnswer, Greylister, GreylistTriplet } from './types.ts';

const D = LIMITS.defense;

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

/** postgrey's sender cleanup (do_sender_substitutions), lower-cased. Pure, linear. */
export function cleanSender(sender: string): string {
  const s = sender.toLowerCase().slice(0, D.greylistMaxAddress);
  const at = s.lastIndexOf('@');
  if (at < 0) return s;
  let user = s.slice(0, at);
  const domain = s.slice(at + 1);
  // BATV (prvs=tag-value=user): the tag changes with every message.
  const batv = /^prvs=[0-9a-z]+=/.exec(user);
  if (batv) user = user.slice(batv[0].length);
  const plus = user.indexOf('+');
  if (plus >= 0) user = user.slice(0, plus);
  user = user.replace(/\b\d+\b/g, '#');
  return `${user}@${domain}`;
}

export interface GreylistKey {
  readonly net: string;
  readonly sender: string;
  readonly recipient: string;
}

export function greylistKey(t: GreylistTriplet): GreylistKey {
  return {
    net: networkKey(t.ip, 24, 64),
    sender: cleanSender(t.sender),
    recipient: t.recipient.toLowerCase().slice(0, D.greylistMaxAddress),
  };
}

export interface GreylistOptions {
  readonly path: string;
  readonly enabled: boolean;
  readonly delayMs: number;
  readonly retryWindowMs: number;
  readonly maxAgeMs: number;
  readonly autoAllowAfter: number;
  readonly allowlist: GreylistAllowlist;
  /** Clients never greylisted: trusted networks, the IP allow list. */
  readonly exempt: (ip: string) => boolean;
  /** The client's forward-confirmed reverse name, when the triplet does not carry it. */
  readonly verifiedName?: (ip: string) => Promise<string | null>;
  readonly log: Logger;
  /** The clock (tests move it). */
  readonly now?: () => number;
}

type Statements = Record<
  'triplet' | 'upsert' | 'client' | 'clientSeen' | 'clientPass' | 'sweepTriplets' | 'sweepClients' | 'list',
  StatementSync
>;

interface TripletRow {
  first: number;
  last: number;
  passed: number;
}

interface ClientRow {
  passes: number;
  last_pass: number;
  last: number;
}

export interface GreylistEntry {
  readonly net: string;
  readonly sender: string;
  readonly recipient: string;
  readonly first: number;
  readonly last: number;
  readonly passed: boolean;
}

export class SqliteGreylister implements Greylister {
  readonly #o: GreylistOptions;
  readonly #now: () => number;
  #db: DatabaseSync | null = null;
  #q: Statements | null = null;
  #sweeper: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(o: GreylistOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
  }

  /** Opens the database (at first use otherwise) and starts the hourly sweep. */
  open(): this {
    if (this.#db) return this;
    const db = openDatabase(this.#o.path, { migrations: MIGRATIONS, pragmas: ['synchronous = NORMAL'] });
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
    this.sweep();
    this.#sweeper = setInterval(() => this.sweep(), D.greylistSweepIntervalMs).unref();
    return this;
  }

  async check(t: GreylistTriplet, opts?: { readonly force?: boolean }): Promise<GreylistAnswer> {
    const o = this.#o;
    if ((!o.enabled && !opts?.force) || this.#closed) return PASS;
    if (o.exempt(t.ip)) return PASS;
    const name = t.hostname !== undefined ? t.hostname : ((await o.verifiedName?.(t.ip)) ?? null);
    if (await o.allowlist.allows(t.ip, name)) return PASS;
    return this.decide(greylistKey(t));
  }

  /** The postgrey decision for one key, in one transaction (synchronous; a few row reads). */
  decide(k: GreylistKey): GreylistAnswer {
    const o = this.#o;
    const q = this.#statements();
    const now = this.#now();
    const db = this.#db as DatabaseSync;
    return transaction(db, () => {
      const c = q.client.get(k.net) as ClientRow | undefined;
      if (c && o.autoAllowAfter > 0 && c.passes >= o.autoAllowAfter && now - c.last <= o.maxAgeMs) {
        q.clientSeen.run(now, k.net);
        return PASS;
      }
      const row = q.triplet.get(k.net, k.sender, k.recipient) as TripletRow | undefined;
      let first = now;
      let passed = 0;
      if (row && now - row.last <= o.maxAgeMs) {
        first = row.first;
        passed = row.passed;
        // postgrey: a first attempt not retried within the retry window starts over.
        if (passed === 0 && now - first > o.retryWindowMs) first = now;
      }
      const wait = o.delayMs - (now - first);
      if (wait > 0) {
        q.upsert.run(k.net, k.sender, k.recipient, first, now, 0);
        return { kind: 'defer', retryInSeconds: Math.ceil(wait / 1000) };
      }
      q.upsert.run(k.net, k.sender, k.recipient, first, now, 1);
      if (!c || now - c.last_pass >= D.greylistPassIntervalMs) q.clientPass.run(k.net, now, now);
      else q.clientSeen.run(now, k.net);
      return PASS;
    });
  }

  #statements(): Statements {
    this.open();
    return this.#q as Statements;
  }

  /** Deletes what expired: triplets unseen for max_age or never passed within the retry window. */
  sweep(): number {
    if (!this.#db) return 0;
    const now = this.#now();
    const q = this.#statements();
    const a = q.sweepTriplets.run(now - this.#o.maxAgeMs, now - this.#o.retryWindowMs);
    const b = q.sweepClients.run(now - this.#o.maxAgeMs);
    return Number(a.changes) + Number(b.changes);
  }

  /** The most recently seen triplets (`arcline greylist list`). */
  list(limit = 1000): GreylistEntry[] {
    type Row = Omit<GreylistEntry, 'passed'> & { passed: number };
    return (this.#statements().list.all(limit) as unknown as Row[]).map((r) => ({
      ...r,
      passed: r.passed === 1,
    }));
  }

  /** Forgets everything (`arcline greylist clear`); returns the rows deleted. */
  clear(): number {
    this.open();
    const db = this.#db as DatabaseSync;
    return transaction(db, () => {
      const a = db.prepare('DELETE FROM triplet').run();
      const b = db.prepare('DELETE FROM client').run();
      return Number(a.changes) + Number(b.changes);
    });
  }

  close(): void {
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = null;
    this.#db?.close();
    this.#db = null;
  }
}

const PASS: GreylistAnswer = Object.freeze({ kind: 'pass' as const });

/** What building a greylister needs besides the configuration. */
export interface GreylistWiring {
  readonly log: Logger;
  /** Trusted networks ([hygiene] trusted_networks). */
  readonly trusted: (ip: string) => boolean;
  /** The IP allow list (the lead wires it); none when absent. */
  readonly allowed?: (ip: string) => boolean;
  readonly verifiedName?: (ip: string) => Promise<string | null>;
}

/** The greylister of `config` ([greylist]); its database opens at the first check. */
export function createGreylister(config: Config, w: GreylistWiring): SqliteGreylister {
  const g = config.greylist;
  const log = w.log.child({ component: 'greylist' });
  const allowed = w.allowed;
  return new SqliteGreylister({
    path: join(config.storage.state, 'greylist.db'),
    enabled: g.enabled,
    delayMs: g.delay,
    retryWindowMs: g.retry_window,
    maxAgeMs: g.max_age,
    autoAllowAfter: g.auto_allow_after,
    allowlist: new GreylistAllowlist({ file: g.allowlist_file, warn: (msg) => log.warn(msg) }),
    exempt: allowed ? (ip) => w.trusted(ip) || allowed(ip) : w.trusted,
    ...(w.verifiedName ? { verifiedName: w.verifiedName } : {}),
    log,
  });
}

/** A forward-confirmed reverse name (as RFC 8601 §2.7.3 "iprev"): a PTR name whose A/AAAA
 *  records hold the address; null when there is none, DNS fails or takes longer than
 *  LIMITS.defense.greylistNameLookupMs. Remembered per address for
 *  LIMITS.defense.greylistNameCacheMs, so a message to many recipients looks up once. */
export function verifiedReverse(r: {
  reverse(ip: string): Promise<string[]>;
  resolve4(name: string): Promise<string[]>;
  resolve6(name: string): Promise<string[]>;
}): (ip: string) => Promise<string | null> {
  const cache = new LruMap<string, { until: number; name: Promise<string | null> }>(D.greylistNameCacheEntries);
  const lookup = async (ip: string): Promise<string | null> => {
    try {
      const want = networkKey(ip, 32, 128);
      const v6 = !want.includes('.');
      for (const name of (await r.reverse(ip)).slice(0, 3)) {
        const addrs = await (v6 ? r.resolve6(name) : r.resolve4(name)).catch(() => [] as string[]);
        if (addrs.some((a) => networkKey(a, 32, 128) === want)) return name.toLowerCase();
      }
    } catch {
      // no PTR, or DNS failed: no name
    }
    return null;
  };
  return (ip) => {
    const now = Date.now();
    const hit = cache.get(ip);
    if (hit && hit.until > now) return hit.name;
    const name = new Promise<string | null>((resolve) => {
      const t = setTimeout(() => resolve(null), D.greylistNameLookupMs);
      t.unref();
      lookup(ip).then((n) => {
        clearTimeout(t);
        resolve(n);
      });
    });
    cache.set(ip, { until: now + D.greylistNameCacheMs, name });
    return name;
  };
}
