// The in-memory copy of the directory a PostgreSQL node answers the mail path from
// (postgres.ts; docs/cluster.md "PostgreSQL schema"). Several nodes share one database; each
// keeps every domain, user (quota), alias and allowlist here, so an RCPT costs no round trip.
//
// Freshness: every change (postgres.ts #change) bumps the counter of directory_version and, in
// the same transaction, sends `NOTIFY arcline_directory` with that version and the keys it
// touched ("d:domain", "u:address", "a:alias source"). The counter row serialises the writers,
// so versions are in commit order, which is the order PostgreSQL delivers notifications in.
// Each node LISTENs on a connection of its own (not the pool's) and reloads the keys named; a
// version that skips one, a payload it cannot read, a lost connection (after LISTEN again) and a
// timer (LIMITS.directory.pgFullReloadMs) reload everything, in a REPEATABLE READ transaction
// that also reads the version it reflects. Every reload runs through one chain, one at a time,
// so a reload's answer never lands after a later one's. `sync()` waits until the copy reflects
// the version the database has now: a read that must see a change just committed elsewhere.

import { setTimeout as delay } from 'node:timers/promises';
import pg from 'pg';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { ConnectionSettings } from '../db/connect.ts';
import type { Postgres, Queryable } from '../db/postgres.ts';

export const DIRECTORY_CHANNEL = 'arcline_directory';

export interface Snapshot {
  readonly domains: ReadonlyMap<string, { readonly catchAll: string | null }>;
  readonly users: ReadonlyMap<string, { readonly quota: number | null }>;
  readonly aliases: ReadonlyMap<string, readonly string[]>;
  readonly allowed: ReadonlyMap<string, readonly string[]>;
}

/** The payload of a NOTIFY: the version the change made and the keys it touched. */
export function notifyPayload(version: number, keys: readonly string[]): string {
  return JSON.stringify({ v: version, k: keys });
}

function parsePayload(text: string): { v: number; k: string[] } | null {
  try {
    const p = JSON.parse(text) as { v?: unknown; k?: unknown };
    if (typeof p.v !== 'number' || !Array.isArray(p.k) || !p.k.every((k) => typeof k === 'string')) return null;
    return { v: p.v, k: p.k as string[] };
  } catch {
    return null;
  }
}

export class DirectorySnapshot implements Snapshot {
  readonly domains = new Map<string, { catchAll: string | null }>();
  readonly users = new Map<string, { quota: number | null }>();
  readonly aliases = new Map<string, readonly string[]>();
  readonly allowed = new Map<string, readonly string[]>();
  readonly #db: Postgres;
  readonly #conn: ConnectionSettings;
  readonly #log: Logger;
  readonly #onChange: () => void;
  /** The version the copy reflects at least (advanced in order, by the LISTEN stream or a full
   *  reload; never by our own refresh, which reloads only the keys it changed). */
  #applied = 0;
  #chain: Promise<void> = Promise.resolve();
  #client: pg.Client | null = null;
  #closed = false;
  readonly #stop = new AbortController();
  #waiters: { version: number; resolve: () => void }[] = [];
  #timers: NodeJS.Timeout[] = [];
  /** Resolves the current connection's "lost" promise (the reconnect loop waits on it). */
  #drop: (() => void) | null = null;

  private constructor(db: Postgres, conn: ConnectionSettings, log: Logger, onChange: () => void) {
    this.#db = db;
    this.#conn = conn;
    this.#log = log;
    this.#onChange = onChange;
  }

  /** LISTENs, loads everything, then keeps both up until close(). Throws when the first
   *  connection fails (a node does not start without its directory). */
  static async open(db: Postgres, conn: ConnectionSettings, log: Logger, onChange: () => void) {
    const s = new DirectorySnapshot(db, conn, log, onChange);
    const { lost } = await s.#connect();
    void s.#keepListening(lost);
    s.#timers = [
      setInterval(
        () => void s.#serial(() => s.#fullReload()).catch(s.#warn('full reload')),
        LIMITS.directory.pgFullReloadMs,
      ),
      setInterval(() => void s.#check(), LIMITS.directory.pgListenCheckMs),
    ];
    for (const t of s.#timers) t.unref();
    return s;
  }

  /** The version this copy reflects (tests, metrics). */
  get version(): number {
    return this.#applied;
  }

  /** True while the LISTEN connection is up. */
  get listening(): boolean {
    return this.#client !== null;
  }

  /** Resolves once the copy reflects every change committed before the call. Waits for the
   *  notifications on their way; reloads everything when they do not come in time. */
  async sync(): Promise<void> {
    const want = await currentVersion(this.#db);
    if (this.#applied >= want) return;
    const reached = new Promise<void>((resolve) => this.#waiters.push({ version: want, resolve }));
    const late = delay(LIMITS.directory.pgSyncWaitMs, 'late', { signal: this.#stop.signal, ref: false }).catch(
      () => 'late',
    );
    if ((await Promise.race([reached, late])) === 'late') await this.#serial(() => this.#fullReload());
  }

  /** Reloads the keys our own change touched, before the change is reported done. */
  refresh(keys: readonly string[]): Promise<void> {
    return this.#serial(() => this.#reloadKeys(this.#db, keys));
  }

  close(): Promise<void> {
    this.#closed = true;
    this.#stop.abort();
    for (const t of this.#timers) clearInterval(t);
    for (const w of this.#waiters) w.resolve();
    this.#waiters = [];
    const c = this.#client;
    this.#client = null;
    this.#drop?.();
    return c ? c.end().catch(() => {}) : Promise.resolve();
  }

  #warn(what: string) {
    return (e: unknown) => this.#log.warn({ err: errorMessage(e) }, `directory: ${what} failed`);
  }

  /** One reload at a time, in the order asked. */
  #serial(fn: () => Promise<void>): Promise<void> {
    const run = this.#chain.then(fn);
    this.#chain = run.catch(() => {});
    return run;
  }

  /** Opens the LISTEN connection and loads everything; returns a promise that resolves when
   *  that connection is lost. */
  async #connect(): Promise<{ lost: Promise<void> }> {
    const c = new pg.Client({
      connectionString: this.#conn.url,
      ...(this.#conn.password !== undefined ? { password: this.#conn.password } : {}),
      connectionTimeoutMillis: this.#conn.connectTimeoutMs,
      application_name: `${this.#conn.applicationName}/directory-listen`,
      keepAlive: true,
    });
    const lost = new Promise<void>((resolve) => {
      this.#drop = resolve;
      c.on('error', (e) => {
        this.#log.warn({ err: errorMessage(e) }, 'directory: LISTEN connection lost');
        resolve();
      });
      c.on('end', () => resolve());
    });
    c.on('notification', (n) => {
      if (n.channel === DIRECTORY_CHANNEL) void this.#notified(n.payload ?? '').catch(this.#warn('reload'));
    });
    try {
      await c.connect();
      await c.query(`LISTEN ${DIRECTORY_CHANNEL}`);
      // After LISTEN: a change committed from now on is notified, one before is in the reload.
      await this.#serial(() => this.#fullReload());
    } catch (e) {
      await c.end().catch(() => {});
      throw e;
    }
    if (this.#closed) {
      await c.end().catch(() => {});
    } else {
      this.#client = c;
    }
    return { lost };
  }

  async #keepListening(lost: Promise<void>): Promise<void> {
    let pause: number = LIMITS.directory.pgReconnectMinMs;
    for (;;) {
      await lost;
      const old = this.#client;
      this.#client = null;
      old?.end().catch(() => {});
      if (this.#closed) return;
      for (;;) {
        try {
          await delay(pause, undefined, { signal: this.#stop.signal });
        } catch {
          return; // closed
        }
        try {
          ({ lost } = await this.#connect());
          this.#log.info({}, 'directory: LISTEN connection back, directory reloaded');
          pause = LIMITS.directory.pgReconnectMinMs;
          break;
        } catch (e) {
          this.#warn('reconnecting the LISTEN connection')(e);
          pause = Math.min(pause * 2, LIMITS.directory.pgReconnectMaxMs);
        }
      }
    }
  }

  /** A connection that stopped answering (no RST ever came) counts as lost. */
  async #check(): Promise<void> {
    const c = this.#client;
    if (!c) return;
    const timeout = delay(LIMITS.directory.pgListenTimeoutMs, 'timeout', {
      signal: this.#stop.signal,
      ref: false,
    }).catch(() => 'closed');
    const r = await Promise.race([
      c.query('SELECT 1').then(
        () => 'ok',
        () => 'failed',
      ),
      timeout,
    ]);
    if (r !== 'ok' && r !== 'closed' && this.#client === c) {
      this.#log.warn({ result: r }, 'directory: LISTEN connection does not answer; reconnecting');
      this.#drop?.();
    }
  }

  async #notified(payload: string): Promise<void> {
    const p = parsePayload(payload);
    await this.#serial(async () => {
      // A version skipped (or a payload we cannot read): reload everything rather than guess.
      if (!p || p.v > this.#applied + 1) return this.#fullReload();
      await this.#reloadKeys(this.#db, p.k);
      this.#advance(p.v);
    });
  }

  #advance(version: number): void {
    if (version <= this.#applied) return;
    this.#applied = version;
    const done = this.#waiters.filter((w) => w.version <= version);
    this.#waiters = this.#waiters.filter((w) => w.version > version);
    for (const w of done) w.resolve();
  }

  async #reloadKeys(q: Queryable, keys: readonly string[]): Promise<void> {
    for (const key of keys) {
      const id = key.slice(2);
      if (key.startsWith('d:')) {
        const r = await q.query<{ catch_all: string | null }>(
          'SELECT catch_all FROM directory_domains WHERE name = $1',
          [id],
        );
        const row = r.rows[0];
        if (row) this.domains.set(id, { catchAll: row.catch_all });
        else this.domains.delete(id);
      } else if (key.startsWith('u:')) {
        const r = await q.query<{ quota_bytes: number | null }>(
          'SELECT quota_bytes FROM directory_users WHERE address = $1',
          [id],
        );
        const row = r.rows[0];
        if (row) this.users.set(id, { quota: row.quota_bytes });
        else this.users.delete(id);
        const allowed = await q.query<{ pattern: string }>(
          'SELECT pattern FROM directory_allowed_senders WHERE account = $1 ORDER BY pattern',
          [id],
        );
        setList(
          this.allowed,
          id,
          allowed.rows.map((x) => x.pattern),
        );
      } else if (key.startsWith('a:')) {
        const r = await q.query<{ destination: string }>(
          'SELECT destination FROM directory_aliases WHERE source = $1 ORDER BY destination',
          [id],
        );
        setList(
          this.aliases,
          id,
          r.rows.map((x) => x.destination),
        );
      }
    }
    this.#onChange();
  }

  async #fullReload(): Promise<void> {
    const loaded = await this.#db.tx(
      async (q) => {
        const version = Number((await q.query<{ v: number }>('SELECT v FROM directory_version')).rows[0]?.v ?? 0);
        const domains = (await q.query('SELECT name, catch_all FROM directory_domains')).rows;
        const users = (await q.query('SELECT address, quota_bytes FROM directory_users')).rows;
        const aliases = (
          await q.query('SELECT source, destination FROM directory_aliases ORDER BY source, destination')
        ).rows;
        const allowed = (
          await q.query('SELECT account, pattern FROM directory_allowed_senders ORDER BY account, pattern')
        ).rows;
        return { version, domains, users, aliases, allowed };
      },
      { isolation: 'repeatable read' },
    );
    this.domains.clear();
    for (const r of loaded.domains) this.domains.set(String(r.name), { catchAll: r.catch_all ?? null });
    this.users.clear();
    for (const r of loaded.users) this.users.set(String(r.address), { quota: r.quota_bytes ?? null });
    fillLists(this.aliases, loaded.aliases, 'source', 'destination');
    fillLists(this.allowed, loaded.allowed, 'account', 'pattern');
    this.#onChange();
    this.#advance(loaded.version);
  }
}

/** The version of the latest change committed. */
export async function currentVersion(q: Queryable): Promise<number> {
  return Number((await q.query<{ v: number }>('SELECT v FROM directory_version')).rows[0]?.v ?? 0);
}

function setList(map: Map<string, readonly string[]>, key: string, list: string[]): void {
  if (list.length > 0) map.set(key, Object.freeze(list));
  else map.delete(key);
}

function fillLists(map: Map<string, readonly string[]>, rows: pg.QueryResultRow[], key: string, value: string): void {
  map.clear();
  const lists = new Map<string, string[]>();
  for (const r of rows) {
    const k = String(r[key]);
    const list = lists.get(k) ?? [];
    list.push(String(r[value]));
    lists.set(k, list);
  }
  for (const [k, list] of lists) map.set(k, Object.freeze(list));
}
