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
// - State behind GreylistStorage: {state}/greylist.db (greylist-sqlite.ts, WAL; every inbound
//   thread opens its own connection) or the shared PostgreSQL of a cluster (greylist-postgres.ts,
//   issue #18: a triplet deferred on one node passes on another). One check is a read of two
//   rows and a write of one or two in one short transaction; the decision itself is the pure
//   greylistPlan below, the same for both.

import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import { networkKey } from '../core/ip.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { LruMap } from '../core/lru.ts';
import type { Postgres } from '../db/postgres.ts';
import { GreylistAllowlist } from './greylist-allowlist.ts';
import { SqliteGreylistStorage } from './greylist-sqlite.ts';
import type { GreylistAnswer, Greylister, GreylistTriplet } from './types.ts';

const D = LIMITS.defense;

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

/** A triplet's row as stored. */
export interface TripletRow {
  readonly first: number;
  readonly last: number;
  readonly passed: boolean;
}

/** A client network's row as stored. */
export interface ClientRow {
  readonly passes: number;
  readonly lastPass: number;
  readonly last: number;
}

/** What one check writes, decided from the rows it read (greylistPlan). */
export interface GreylistPlan {
  readonly answer: GreylistAnswer;
  /** The triplet row to write with last = now; null: the triplet is not touched. */
  readonly triplet: { readonly first: number; readonly passed: boolean } | null;
  /** 'pass': a pass counted (the row made when missing); 'seen': an existing row's last = now. */
  readonly client: 'pass' | 'seen' | null;
}

export interface GreylistEntry {
  readonly net: string;
  readonly sender: string;
  readonly recipient: string;
  readonly first: number;
  readonly last: number;
  readonly passed: boolean;
}

/** Where the triplets and client networks are kept (greylist-sqlite.ts, greylist-postgres.ts). */
export interface GreylistStorage {
  /** Reads the client's and the triplet's rows, asks `plan`, writes what it says: one
   *  transaction (plan may run again when PostgreSQL retries it: it must be pure). */
  decide(
    k: GreylistKey,
    now: number,
    plan: (client: ClientRow | undefined, triplet: TripletRow | undefined) => GreylistPlan,
  ): Promise<GreylistAnswer>;
  /** Deletes triplets unseen since `unseenBefore` or never passed and first seen before
   *  `unpassedBefore`, and client networks unseen since `unseenBefore`; how many rows. */
  sweep(unseenBefore: number, unpassedBefore: number): Promise<number>;
  /** The most recently seen triplets. */
  list(limit: number): Promise<GreylistEntry[]>;
  /** Forgets everything; how many rows. */
  clear(): Promise<number>;
  close(): Promise<void>;
}

export interface GreylistSettings {
  readonly delayMs: number;
  readonly retryWindowMs: number;
  readonly maxAgeMs: number;
  readonly autoAllowAfter: number;
}

/** The postgrey decision for one key at `now`, from its client network's and its own row. Pure. */
export function greylistPlan(
  o: GreylistSettings,
  now: number,
  c: ClientRow | undefined,
  row: TripletRow | undefined,
): GreylistPlan {
  if (c && o.autoAllowAfter > 0 && c.passes >= o.autoAllowAfter && now - c.last <= o.maxAgeMs) {
    return { answer: PASS, triplet: null, client: 'seen' };
  }
  let first = now;
  let passed = false;
  if (row && now - row.last <= o.maxAgeMs) {
    first = row.first;
    passed = row.passed;
    // postgrey: a first attempt not retried within the retry window starts over.
    if (!passed && now - first > o.retryWindowMs) first = now;
  }
  const wait = o.delayMs - (now - first);
  if (wait > 0) {
    return {
      answer: { kind: 'defer', retryInSeconds: Math.ceil(wait / 1000) },
      triplet: { first, passed: false },
      client: null,
    };
  }
  const counts = !c || now - c.lastPass >= D.greylistPassIntervalMs;
  return { answer: PASS, triplet: { first, passed: true }, client: counts ? 'pass' : 'seen' };
}

export interface GreylistOptions extends GreylistSettings {
  readonly enabled: boolean;
  readonly allowlist: GreylistAllowlist;
  /** Clients never greylisted: trusted networks, the IP allow list. */
  readonly exempt: (ip: string) => boolean;
  /** The client's forward-confirmed reverse name, when the triplet does not carry it. */
  readonly verifiedName?: (ip: string) => Promise<string | null>;
  readonly log: Logger;
  /** The clock (tests move it). */
  readonly now?: () => number;
}

export class Greylist implements Greylister {
  readonly #o: GreylistOptions;
  readonly #storage: GreylistStorage;
  readonly #now: () => number;
  #sweeper: NodeJS.Timeout | null = null;
  #closed = false;

  constructor(o: GreylistOptions, storage: GreylistStorage) {
    this.#o = o;
    this.#storage = storage;
    this.#now = o.now ?? Date.now;
  }

  /** Starts the hourly sweep (and sweeps now). */
  open(): this {
    if (this.#sweeper || this.#closed) return this;
    const sweep = () => {
      this.sweep().catch((e: unknown) => this.#o.log.warn({ err: String(e) }, 'greylist sweep failed'));
    };
    sweep();
    this.#sweeper = setInterval(sweep, D.greylistSweepIntervalMs).unref();
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

  /** The postgrey decision for one key, in one transaction of the storage. */
  decide(k: GreylistKey): Promise<GreylistAnswer> {
    const now = this.#now();
    return this.#storage.decide(k, now, (c, row) => greylistPlan(this.#o, now, c, row));
  }

  /** Deletes what expired: triplets unseen for max_age or never passed within the retry window. */
  sweep(): Promise<number> {
    const now = this.#now();
    return this.#storage.sweep(now - this.#o.maxAgeMs, now - this.#o.retryWindowMs);
  }

  /** The most recently seen triplets (`arcline greylist list`). */
  list(limit = 1000): Promise<GreylistEntry[]> {
    return this.#storage.list(limit);
  }

  /** Forgets everything (`arcline greylist clear`); returns the rows deleted. */
  clear(): Promise<number> {
    return this.#storage.clear();
  }

  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#sweeper) clearInterval(this.#sweeper);
    this.#sweeper = null;
    await this.#storage.close();
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

/** Where greylisting's state lives: {state}/greylist.db, or the shared PostgreSQL when `db` is
 *  the node's pool (migrated here; the pool stays its owner's). */
export async function openGreylistStorage(config: Config, db: Postgres | null): Promise<GreylistStorage> {
  // Loaded only for a cluster: every inbound thread imports this module.
  if (db) return (await import('./greylist-postgres.ts')).PostgresGreylistStorage.open(db);
  return new SqliteGreylistStorage(join(config.storage.state, 'greylist.db'));
}

/** The greylister of `config` ([greylist]) on `storage` ({state}/greylist.db when omitted). */
export function createGreylister(config: Config, w: GreylistWiring, storage?: GreylistStorage): Greylist {
  const g = config.greylist;
  const log = w.log.child({ component: 'greylist' });
  const allowed = w.allowed;
  return new Greylist(
    {
      enabled: g.enabled,
      delayMs: g.delay,
      retryWindowMs: g.retry_window,
      maxAgeMs: g.max_age,
      autoAllowAfter: g.auto_allow_after,
      allowlist: new GreylistAllowlist({ file: g.allowlist_file, warn: (msg) => log.warn(msg) }),
      exempt: allowed ? (ip) => w.trusted(ip) || allowed(ip) : w.trusted,
      ...(w.verifiedName ? { verifiedName: w.verifiedName } : {}),
      log,
    },
    storage ?? new SqliteGreylistStorage(join(config.storage.state, 'greylist.db')),
  );
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
