// Rate limits (docs/spam.md "Rate limits"), counted by rate-limiter-flexible's in-memory fixed
// windows:
// - new connections per minute per client network at three prefix lengths (IPv4 /32, /26, /21,
//   IPv6 /64, /56, /48 by default; mox's 300, 900, 2700), for SMTP, submission and IMAP together,
//   decided at accept (smtp/gate.ts, imap/server.ts): 421 4.7.0 / BYE, then close;
// - messages (at MAIL) and recipients (at RCPT) per authenticated user per hour and per day
//   (submission): 451 4.7.1;
// - outbound deliveries per destination domain per minute (queue/runner.ts): the message stays
//   queued and is tried again when the window ends, no attempt counted.
// Attempts over a limit count too (a client hammering a closed door keeps it closed). Trusted
// networks and the injected allow list are exempt. One instance lives in the main thread; the
// inbound SMTP threads ask it over the thread protocol (smtp/threads/), so a client's
// connections count once whichever thread the kernel gave them to.
//
// A cluster (issue #18, docs/cluster.md): openRateLimits with the node's PostgreSQL pool counts
// in the shared table rate_limits through rate-limiter-flexible's RateLimiterPostgres (one
// upsert per limit and event: a fixed window per key, its expiry from the writing node's clock),
// so a client spreading connections, or a user spreading messages, over the nodes meets one
// budget. A key at its limit is then refused from memory until its window ends (no database
// write per refused attempt: a flood does not become a flood of writes), and while PostgreSQL
// does not answer, each node counts alone in memory (the insurance limiter) rather than
// refusing everyone or letting everyone through.

import { RateLimiterMemory, RateLimiterPostgres, RateLimiterRes } from 'rate-limiter-flexible';
import type { Config } from '../config/schema.ts';
import type { NetworkLimit } from '../core/connection-limits.ts';
import { networkKey } from '../core/ip.ts';
import { rateLimited } from '../core/metrics.ts';
import type { Postgres } from '../db/postgres.ts';

export type RateLimitName =
  | 'connections_1'
  | 'connections_2'
  | 'connections_3'
  | 'messages_hour'
  | 'messages_day'
  | 'recipients_hour'
  | 'recipients_day'
  | 'outbound_domain';

const NAMES: readonly RateLimitName[] = [
  'connections_1',
  'connections_2',
  'connections_3',
  'messages_hour',
  'messages_day',
  'recipients_hour',
  'recipients_day',
  'outbound_domain',
];
// Every label exists from the start (0), so rate() works before the first refusal;
// concurrent_network is counted by the connection counters' refusals (smtp/gate.ts, imap/server.ts).
for (const limit of [...NAMES, 'concurrent_network']) rateLimited.inc({ limit }, 0);

const HOUR = 3600;
const DAY = 86_400;

interface Limiter {
  readonly name: RateLimitName;
  readonly limiter: RateLimiterMemory | RateLimiterPostgres;
}

/** The shared counters of a cluster: rate-limiter-flexible's own layout, made by our migration
 *  (keys are "<limit>:<key>", a user's address up to 320 octets: text, not its varchar(255)).
 *  UNLOGGED: no WAL, so no flush to wait for at each counted event; PostgreSQL empties it after
 *  a crash and standbys do not have it, which only restarts the windows. */
export const RATE_LIMIT_MIGRATIONS: readonly string[] = [
  `CREATE UNLOGGED TABLE rate_limits (key TEXT PRIMARY KEY, points INT4 NOT NULL DEFAULT 0, expire INT8);
   CREATE INDEX rate_limits_expire ON rate_limits (expire);`,
];

/** What RateLimiterPostgres calls ("pool" clients: query({ text, values, name })). */
type StoreClient = { query(q: { text: string; values?: unknown[] }): Promise<unknown> };

function makeLimiter(name: RateLimitName, points: number, duration: number, db?: StoreClient): Limiter | null {
  if (points <= 0) return null;
  const memory = new RateLimiterMemory({ points, duration, keyPrefix: name });
  if (!db) return { name, limiter: memory };
  return {
    name,
    limiter: new RateLimiterPostgres({
      storeClient: db,
      storeType: 'pool',
      tableName: 'rate_limits',
      tableCreated: true,
      points,
      duration,
      keyPrefix: name,
      inMemoryBlockOnConsumed: points,
      insuranceLimiter: memory,
    }),
  };
}

/** Consumes one point of each limiter for `key(l)`; the first one over its limit, or null. */
async function consumeAll(
  limiters: readonly Limiter[],
  key: (index: number) => string,
): Promise<{ name: RateLimitName; msBeforeNext: number } | null> {
  let over: { name: RateLimitName; msBeforeNext: number } | null = null;
  for (let i = 0; i < limiters.length; i++) {
    const l = limiters[i] as Limiter;
    try {
      await l.limiter.consume(key(i));
    } catch (e) {
      if (!(e instanceof RateLimiterRes)) throw e;
      over ??= { name: l.name, msBeforeNext: e.msBeforeNext };
    }
  }
  if (over) rateLimited.inc({ limit: over.name });
  return over;
}

export interface RateLimitsOptions {
  /** Clients never limited: trusted networks, the IP allow list. */
  readonly exempt: (ip: string) => boolean;
  /** The shared counters of a cluster (openRateLimits); absent: this process's memory. */
  readonly store?: StoreClient;
}

/** The rate limits of `cfg`, counted in memory, or in the cluster's PostgreSQL when `db` is the
 *  node's pool (the table migrated here; the pool stays its owner's). */
export async function openRateLimits(
  cfg: Config['rate_limits'],
  o: RateLimitsOptions,
  db: Postgres | null,
): Promise<RateLimits> {
  if (!db) return new RateLimits(cfg, o);
  await db.migrate('rate_limits', RATE_LIMIT_MIGRATIONS);
  return new RateLimits(cfg, { ...o, store: { query: (q) => db.query(q.text, q.values) } });
}

export class RateLimits {
  readonly #exempt: (ip: string) => boolean;
  readonly #connections: { readonly l: Limiter; readonly v4: number; readonly v6: number }[] = [];
  readonly #messages: Limiter[];
  readonly #recipients: Limiter[];
  readonly #outbound: Limiter | null;

  constructor(cfg: Config['rate_limits'], o: RateLimitsOptions) {
    this.#exempt = o.exempt;
    const on = cfg.enabled;
    const present = (l: Limiter | null): l is Limiter => l !== null && on;
    const limiter = (name: RateLimitName, points: number, duration: number) =>
      makeLimiter(name, points, duration, o.store);
    for (let i = 0; i < 3; i++) {
      const l = limiter(NAMES[i] as RateLimitName, cfg.connections_per_minute[i] ?? 0, 60);
      if (present(l)) this.#connections.push({ l, v4: cfg.ipv4_prefixes[i] ?? 32, v6: cfg.ipv6_prefixes[i] ?? 64 });
    }
    this.#messages = [
      limiter('messages_hour', cfg.messages_per_hour, HOUR),
      limiter('messages_day', cfg.messages_per_day, DAY),
    ].filter(present);
    this.#recipients = [
      limiter('recipients_hour', cfg.recipients_per_hour, HOUR),
      limiter('recipients_day', cfg.recipients_per_day, DAY),
    ].filter(present);
    const out = limiter('outbound_domain', cfg.outbound_per_domain_per_minute, 60);
    this.#outbound = present(out) ? out : null;
  }

  /** A new connection from `ip` (any service): the limit it is over, or null. */
  async connection(ip: string): Promise<RateLimitName | null> {
    const c = this.#connections;
    if (c.length === 0 || this.#exempt(ip)) return null;
    const over = await consumeAll(
      c.map((x) => x.l),
      (i) => networkKey(ip, c[i]?.v4 ?? 32, c[i]?.v6 ?? 128),
    );
    return over?.name ?? null;
  }

  /** A message (MAIL) of an authenticated user connected from `ip`. */
  async message(user: string, ip: string): Promise<RateLimitName | null> {
    if (this.#messages.length === 0 || this.#exempt(ip)) return null;
    return (await consumeAll(this.#messages, () => user))?.name ?? null;
  }

  /** A recipient (RCPT) of an authenticated user connected from `ip`. */
  async recipient(user: string, ip: string): Promise<RateLimitName | null> {
    if (this.#recipients.length === 0 || this.#exempt(ip)) return null;
    return (await consumeAll(this.#recipients, () => user))?.name ?? null;
  }

  /** One delivery to `destination` (a domain, or the relay): 0 when it may go now, else the
   *  milliseconds until the window ends. */
  async outbound(destination: string): Promise<number> {
    if (!this.#outbound) return 0;
    const over = await consumeAll([this.#outbound], () => destination.toLowerCase());
    return over ? Math.max(1, over.msBeforeNext) : 0;
  }
}

/** The concurrency limits of the wider client networks ([rate_limits] concurrent_per_network at
 *  the second and third prefix lengths), for the connection counters (core/connection-limits.ts).
 *  A network's limit is never below the service's per-address limit (`perAddress`): an operator
 *  who lets one address (a big NAT) open 1000 connections means its network too. */
export function networkLimits(cfg: Config['rate_limits'], perAddress: number): NetworkLimit[] {
  if (!cfg.enabled) return [];
  return [1, 2]
    .map((i) => ({
      v4: cfg.ipv4_prefixes[i] ?? 32,
      v6: cfg.ipv6_prefixes[i] ?? 64,
      max: cfg.concurrent_per_network[i - 1] ?? 0,
    }))
    .filter((l) => l.max > 0)
    .map((l) => ({ ...l, max: Math.max(l.max, perAddress) }));
}
