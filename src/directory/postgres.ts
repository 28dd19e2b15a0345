// The directory in PostgreSQL, shared by several nodes (issue #18, docs/cluster.md "PostgreSQL
// schema"). Same interfaces and rules as the SQLite one (sqlite.ts, rules.ts): keys stored
// normalised (lower case, punycode domains), so lookups are exact matches; text columns in the
// "C" collation, so lists come out in the byte order SQLite gives.
//
// The mail path (resolveRecipient, isLocalDomain, maySendAs, quota, allowsSender) answers from
// an in-memory copy of the directory kept fresh by LISTEN/NOTIFY (pg-snapshot.ts): a change on
// another node is seen within the notification's delay (milliseconds), and `sync()` waits for
// it when a caller must. The login path does not depend on it: loginName is pure normalisation
// (as in SQLite: it names an account whether or not it exists, so an unknown user costs the
// same hashing as a wrong password, auth/authenticator.ts), and passwordHash reads the
// database every time, so a user added or disabled on one node logs in, or not, on every other
// at once.
//
// Mutations validate first, then run in one transaction that bumps directory_version and sends
// the NOTIFY (delivered only on commit); the counter row serialises directory writers, so the
// checks inside the transaction see the others' commits. Unique and foreign-key violations that
// still slip through (a domain deleted meanwhile) become EXISTS / NOT_FOUND.

import { type Address, formatAddress, normalizeDomain, parseAddress, splitDetail } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import type { AccountId, DomainName } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { LruMap } from '../core/lru.ts';
import type { ConnectionSettings } from '../db/connect.ts';
import type { Postgres, Queryable } from '../db/postgres.ts';
import { type Expansion, expandRecipient } from './expand.ts';
import { type HashOptions, parseStoredHash } from './password.ts';
import { DIRECTORY_CHANNEL, DirectorySnapshot, notifyPayload } from './pg-snapshot.ts';
import {
  aliasDestinations,
  aliasRemovals,
  canonicalLogin,
  catchAllTarget,
  domainOrThrow,
  groupAliases,
  localAddressOrThrow,
  newPasswordHash,
  noDomain,
  quotaOrThrow,
  ROLE_ADDRESSES,
  senderAllowed,
  senderPattern,
  userInfo,
} from './rules.ts';
import type {
  AliasInfo,
  Directory,
  DirectoryAdmin,
  DomainInfo,
  Principal,
  RecipientResolution,
  UserInfo,
} from './types.ts';

/** The schema of the component "directory" (db.migrate); entry i makes version i + 1. */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE directory_domains (
     name TEXT COLLATE "C" PRIMARY KEY,
     catch_all TEXT COLLATE "C",
     created_at BIGINT NOT NULL
   );
   CREATE TABLE directory_users (
     address TEXT COLLATE "C" PRIMARY KEY,
     domain TEXT COLLATE "C" NOT NULL REFERENCES directory_domains(name),
     local TEXT COLLATE "C" NOT NULL,
     password_hash TEXT NOT NULL,
     quota_bytes BIGINT,
     created_at BIGINT NOT NULL,
     disabled BOOLEAN NOT NULL DEFAULT false
   );
   CREATE INDEX directory_users_domain ON directory_users(domain);
   CREATE TABLE directory_aliases (
     source TEXT COLLATE "C" NOT NULL,
     destination TEXT COLLATE "C" NOT NULL,
     domain TEXT COLLATE "C" NOT NULL REFERENCES directory_domains(name),
     PRIMARY KEY (source, destination)
   );
   CREATE INDEX directory_aliases_domain ON directory_aliases(domain);
   CREATE TABLE directory_allowed_senders (
     account TEXT COLLATE "C" NOT NULL REFERENCES directory_users(address) ON DELETE CASCADE,
     pattern TEXT COLLATE "C" NOT NULL,
     PRIMARY KEY (account, pattern)
   );
   CREATE TABLE directory_version (
     one BOOLEAN PRIMARY KEY DEFAULT true CHECK (one),
     v BIGINT NOT NULL
   );
   INSERT INTO directory_version (v) VALUES (0);`,
];

export interface PostgresDirectoryOptions {
  readonly db: Postgres;
  /** The LISTEN connection's settings (the same server and role as the pool). */
  readonly listen: ConnectionSettings;
  readonly bcryptCost: number;
  readonly passwordScheme?: HashOptions['scheme'];
  readonly log: Logger;
  /** Close the pool with the directory (openDirectory's own pool). */
  readonly ownsDb?: boolean;
}

type Row = Record<string, unknown>;

const USER_COLUMNS = 'address, quota_bytes, created_at, disabled';

export class PostgresDirectory implements Directory, DirectoryAdmin {
  readonly #db: Postgres;
  readonly #hashing: HashOptions;
  readonly #log: Logger;
  readonly #ownsDb: boolean;
  readonly #snap: DirectorySnapshot;
  /** Recipient expansions over the copy; emptied whenever the copy changes. */
  readonly #expansions: LruMap<string, Expansion>;
  #closing: Promise<void> | null = null;

  private constructor(opts: PostgresDirectoryOptions, snap: DirectorySnapshot, expansions: LruMap<string, Expansion>) {
    this.#expansions = expansions;
    this.#db = opts.db;
    this.#hashing = { scheme: opts.passwordScheme ?? 'bcrypt', bcryptCost: opts.bcryptCost };
    this.#log = opts.log;
    this.#ownsDb = opts.ownsDb ?? false;
    this.#snap = snap;
  }

  /** Migrates the schema, LISTENs and loads the copy. */
  static async open(opts: PostgresDirectoryOptions): Promise<PostgresDirectory> {
    await opts.db.migrate('directory', MIGRATIONS);
    const expansions = new LruMap<string, Expansion>(LIMITS.directory.cacheEntries);
    const snap = await DirectorySnapshot.open(opts.db, opts.listen, opts.log, () => expansions.clear());
    return new PostgresDirectory(opts, snap, expansions);
  }

  /** Resolves once this node's copy reflects every change committed anywhere before the call
   *  (the lookups that follow see them). */
  sync(): Promise<void> {
    return this.#snap.sync();
  }

  /** The version of the directory this node's copy reflects (tests, diagnostics). */
  get version(): number {
    return this.#snap.version;
  }

  // ---- Directory (protocol side): the in-memory copy ----

  async isLocalDomain(domain: DomainName): Promise<boolean> {
    return this.#snap.domains.has(domain);
  }

  async resolveRecipient(addr: Address): Promise<RecipientResolution> {
    if (!this.#snap.domains.has(addr.domain)) return { kind: 'unknown-domain' };
    const start = `${splitDetail(addr.local).base}@${addr.domain}`;
    let r = this.#expansions.get(start);
    if (!r) {
      const e = expandRecipient(start, this.#lookups(), true);
      r = { accounts: Object.freeze(e.accounts), remote: Object.freeze(e.remote), warnings: e.warnings } as Expansion;
      this.#expansions.set(start, r);
    }
    for (const w of r.warnings) this.#log.warn({ rcpt: start }, w);
    if (r.accounts.length === 0 && r.remote.length === 0) return { kind: 'unknown-user' };
    return { kind: 'deliver', accounts: r.accounts, remote: r.remote };
  }

  #lookups() {
    const s = this.#snap;
    return {
      isLocalDomain: (d: string) => s.domains.has(d),
      isUser: (a: string) => s.users.has(a),
      aliasTargets: (a: string) => s.aliases.get(a) ?? [],
      catchAll: (d: string) => s.domains.get(d)?.catchAll ?? null,
    };
  }

  loginName(username: string): AccountId | null {
    return canonicalLogin(username);
  }

  async passwordHash(account: AccountId): Promise<string | null> {
    const rows = await this.#db.rows<{ password_hash: string; disabled: boolean }>(
      'SELECT password_hash, disabled FROM directory_users WHERE address = $1',
      [account],
    );
    // A disabled user is no login: as unknown to the authenticator.
    const row = rows[0];
    return row && !row.disabled ? row.password_hash : null;
  }

  async postmasterDomain(preferred: readonly string[]): Promise<DomainName | null> {
    for (const p of preferred) {
      const d = normalizeDomain(p);
      if (d && this.#snap.domains.has(d)) return d;
    }
    const rows = await this.#db.rows<{ name: string }>(
      'SELECT name FROM directory_domains ORDER BY created_at, name LIMIT 1',
    );
    return (rows[0]?.name as DomainName | undefined) ?? null;
  }

  async maySendAs(who: Principal, from: Address): Promise<boolean> {
    const base = `${splitDetail(from.local).base}@${from.domain}`;
    if (base === who.accountId) return true;
    // Only explicit aliases count: a catch-all must not let its owner send as anyone.
    return expandRecipient(base, this.#lookups(), false).accounts.includes(who.accountId);
  }

  async quota(account: AccountId): Promise<number | null> {
    return this.#snap.users.get(account)?.quota ?? null;
  }

  async allowsSender(account: AccountId, senders: readonly string[]): Promise<boolean> {
    return senderAllowed(this.#snap.allowed.get(account) ?? [], senders);
  }

  /** Readiness (web/health.ts): the database answers a query. Throws otherwise. */
  async ping(): Promise<void> {
    await this.#db.query('SELECT 1');
  }

  /** Stops listening (and closes the pool when it is ours); `closed()` waits for it. */
  close(): void {
    this.#closing ??= this.#snap.close().then(() => (this.#ownsDb ? this.#db.close() : undefined));
  }

  async closed(): Promise<void> {
    this.close();
    await this.#closing;
  }

  // ---- DirectoryAdmin (operators) ----

  /** Runs fn in a transaction that bumps the version and NOTIFYs the keys; then reloads them
   *  here before returning, so our own change is seen by the next lookup on this node. */
  async #change<T>(keys: readonly string[], fn: (q: Queryable) => Promise<T>): Promise<T> {
    const r = await this.#db
      .tx(async (q) => {
        const v = await q.query<{ v: number }>('UPDATE directory_version SET v = v + 1 RETURNING v');
        const out = await fn(q);
        await q.query('SELECT pg_notify($1, $2)', [DIRECTORY_CHANNEL, notifyPayload(Number(v.rows[0]?.v), keys)]);
        return out;
      })
      .catch((e: unknown) => Promise.reject(constraintError(e)));
    await this.#snap.refresh(keys);
    return r;
  }

  async #domainExists(q: Queryable, d: string): Promise<boolean> {
    return (await q.query('SELECT 1 FROM directory_domains WHERE name = $1', [d])).rows.length > 0;
  }

  async #userRow(q: Queryable, address: string): Promise<Row | undefined> {
    return (await q.query(`SELECT ${USER_COLUMNS} FROM directory_users WHERE address = $1`, [address])).rows[0];
  }

  async #aliasTargets(q: Queryable, source: string): Promise<string[]> {
    const r = await q.query<{ destination: string }>(
      'SELECT destination FROM directory_aliases WHERE source = $1 ORDER BY destination',
      [source],
    );
    return r.rows.map((x) => x.destination);
  }

  async addDomain(name: string): Promise<DomainInfo> {
    const d = domainOrThrow(name);
    await this.#change([`d:${d}`], async (q) => {
      const r = await q.query(
        'INSERT INTO directory_domains (name, created_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING',
        [d, Date.now()],
      );
      if (r.rowCount === 0) throw new ArclineError('EXISTS', `domain ${d} already exists`);
    });
    return { name: d, catchAll: null, users: 0, aliases: 0 };
  }

  async deleteDomain(name: string): Promise<void> {
    const d = domainOrThrow(name);
    await this.#change([`d:${d}`], async (q) => {
      const info = (await this.#domains(q, d))[0];
      if (!info) throw new ArclineError('NOT_FOUND', `no domain ${name}`);
      if (info.users > 0 || info.aliases > 0) {
        throw new ArclineError(
          'CONFLICT',
          `domain ${info.name} still has ${info.users} user(s) and ${info.aliases} alias(es); delete them first`,
        );
      }
      await q.query('DELETE FROM directory_domains WHERE name = $1', [d]);
    });
  }

  async listDomains(): Promise<readonly DomainInfo[]> {
    return this.#domains(this.#db);
  }

  async #domains(q: Queryable, only?: string): Promise<DomainInfo[]> {
    const r = await q.query(
      `SELECT d.name, d.catch_all,
         (SELECT count(*) FROM directory_users u WHERE u.domain = d.name) AS users,
         (SELECT count(DISTINCT source) FROM directory_aliases a WHERE a.domain = d.name) AS aliases
       FROM directory_domains d WHERE ($1::text IS NULL OR d.name = $1) ORDER BY d.name`,
      [only ?? null],
    );
    return r.rows.map((x) => ({
      name: String(x.name) as DomainName,
      catchAll: x.catch_all ? String(x.catch_all) : null,
      users: Number(x.users),
      aliases: Number(x.aliases),
    }));
  }

  async checkNewUser(address: string): Promise<void> {
    await this.#newUserAddress(this.#db, address);
  }

  async addUser(address: string, opts: { password: string; quotaBytes?: number | null }): Promise<UserInfo> {
    await this.checkNewUser(address); // validate before spending time on the hash
    const hash = await newPasswordHash(opts.password, this.#hashing);
    return this.addUserWithHash(address, { passwordHash: hash, quotaBytes: opts.quotaBytes ?? null });
  }

  async addUserWithHash(
    address: string,
    opts: { passwordHash: string; quotaBytes?: number | null },
  ): Promise<UserInfo> {
    const a = await this.#newUserAddress(this.#db, address);
    const parsed = parseStoredHash(opts.passwordHash);
    if ('problem' in parsed) throw new ArclineError('INVALID', `unsupported password hash: ${parsed.problem}`);
    const quota = quotaOrThrow(opts.quotaBytes ?? null);
    const now = Date.now();
    const id = formatAddress(a);
    const roles = ROLE_ADDRESSES.map((role) => `${role}@${a.domain}`);
    await this.#change([`u:${id}`, ...roles.map((r) => `a:${r}`)], async (q) => {
      await this.#newUserAddress(q, address); // again, inside the serialised transaction
      const first =
        (await q.query('SELECT 1 FROM directory_users WHERE domain = $1 LIMIT 1', [a.domain])).rows.length === 0;
      await q.query(
        `INSERT INTO directory_users (address, domain, local, password_hash, quota_bytes, created_at)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [id, a.domain, a.local, opts.passwordHash, quota, now],
      );
      if (!first) return;
      for (const addr of roles) {
        if (addr === id || (await this.#userRow(q, addr)) || (await this.#aliasTargets(q, addr)).length > 0) continue;
        await q.query('INSERT INTO directory_aliases (source, destination, domain) VALUES ($1, $2, $3)', [
          addr,
          id,
          a.domain,
        ]);
      }
    });
    return { accountId: id as AccountId, address: id, quotaBytes: quota, createdAt: new Date(now), enabled: true };
  }

  /** Parses and validates the address of a user to create. */
  async #newUserAddress(q: Queryable, address: string): Promise<Address> {
    const a = await this.#localAddress(q, address, 'user');
    if (await this.#userRow(q, formatAddress(a)))
      throw new ArclineError('EXISTS', `user ${formatAddress(a)} already exists`);
    return a;
  }

  /** A valid address in an existing local domain whose local part is a safe mailbox name. */
  async #localAddress(q: Queryable, address: string, what: string): Promise<Address> {
    const a = localAddressOrThrow(address, what);
    if (!(await this.#domainExists(q, a.domain))) throw noDomain(a.domain);
    return a;
  }

  async deleteUser(address: string): Promise<UserInfo> {
    const user = await this.#existingUser(address);
    return this.#change([`u:${user.address}`], async (q) => {
      const r = await q.query(`DELETE FROM directory_users WHERE address = $1 RETURNING ${USER_COLUMNS}`, [
        user.address,
      ]);
      if (!r.rows[0]) throw new ArclineError('NOT_FOUND', `no user ${address}`);
      return userInfo(r.rows[0]);
    });
  }

  async setPassword(address: string, password: string): Promise<void> {
    const user = await this.#existingUser(address);
    const hash = await newPasswordHash(password, this.#hashing);
    await this.#updateUser(user.address, 'password_hash = $2', hash);
  }

  async setQuota(address: string, quotaBytes: number | null): Promise<void> {
    const user = await this.#existingUser(address);
    await this.#updateUser(user.address, 'quota_bytes = $2', quotaOrThrow(quotaBytes));
  }

  async setEnabled(address: string, enabled: boolean): Promise<void> {
    const user = await this.#existingUser(address);
    await this.#updateUser(user.address, 'disabled = $2', !enabled);
  }

  /** `set` is one of the fixed assignments above, never client input. */
  async #updateUser(account: string, set: string, value: unknown): Promise<void> {
    await this.#change([`u:${account}`], async (q) => {
      const r = await q.query(`UPDATE directory_users SET ${set} WHERE address = $1`, [account, value]);
      if (r.rowCount === 0) throw new ArclineError('NOT_FOUND', `no user ${account}`);
    });
  }

  async getUser(address: string): Promise<UserInfo | null> {
    const a = parseAddress(address);
    const row = a ? await this.#userRow(this.#db, formatAddress(a)) : undefined;
    return row ? userInfo(row) : null;
  }

  async #existingUser(address: string): Promise<UserInfo> {
    const u = await this.getUser(address);
    if (!u) throw new ArclineError('NOT_FOUND', `no user ${address}`);
    return u;
  }

  async addAllowedSender(user: string, pattern: string): Promise<string> {
    const u = await this.#existingUser(user);
    const p = senderPattern(pattern);
    await this.#change([`u:${u.accountId}`], (q) =>
      q.query('INSERT INTO directory_allowed_senders (account, pattern) VALUES ($1, $2) ON CONFLICT DO NOTHING', [
        u.accountId,
        p,
      ]),
    );
    return p;
  }

  async deleteAllowedSender(user: string, pattern: string): Promise<void> {
    const u = await this.#existingUser(user);
    const p = senderPattern(pattern);
    await this.#change([`u:${u.accountId}`], async (q) => {
      const r = await q.query('DELETE FROM directory_allowed_senders WHERE account = $1 AND pattern = $2', [
        u.accountId,
        p,
      ]);
      if (r.rowCount === 0) throw new ArclineError('NOT_FOUND', `${pattern} is not allowed for ${u.address}`);
    });
  }

  async listAllowedSenders(user: string): Promise<readonly string[]> {
    const u = await this.#existingUser(user);
    const r = await this.#db.rows<{ pattern: string }>(
      'SELECT pattern FROM directory_allowed_senders WHERE account = $1 ORDER BY pattern',
      [u.accountId],
    );
    return r.map((x) => x.pattern);
  }

  async listUsers(domain?: string): Promise<readonly UserInfo[]> {
    const rows =
      domain === undefined
        ? await this.#db.rows(`SELECT ${USER_COLUMNS} FROM directory_users ORDER BY domain, local`)
        : await this.#db.rows(`SELECT ${USER_COLUMNS} FROM directory_users WHERE domain = $1 ORDER BY local`, [
            domainOrThrow(domain),
          ]);
    return rows.map(userInfo);
  }

  async addAlias(source: string, destinations: readonly string[]): Promise<AliasInfo> {
    const src = await this.#localAddress(this.#db, source, 'alias');
    const dsts = aliasDestinations(destinations);
    const id = formatAddress(src);
    return this.#change([`a:${id}`], async (q) => {
      for (const d of dsts) {
        await q.query(
          'INSERT INTO directory_aliases (source, destination, domain) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING',
          [id, d, src.domain],
        );
      }
      return { source: id, destinations: await this.#aliasTargets(q, id) };
    });
  }

  async deleteAlias(source: string, destinations?: readonly string[]): Promise<void> {
    const src = parseAddress(source);
    if (!src) throw new ArclineError('INVALID', `invalid alias address: ${JSON.stringify(source)}`);
    const id = formatAddress(src);
    await this.#change([`a:${id}`], async (q) => {
      const dsts = aliasRemovals(id, new Set(await this.#aliasTargets(q, id)), destinations);
      if (dsts.length === 0) await q.query('DELETE FROM directory_aliases WHERE source = $1', [id]);
      else
        await q.query('DELETE FROM directory_aliases WHERE source = $1 AND destination = ANY($2::text[])', [id, dsts]);
    });
  }

  async listAliases(domain?: string): Promise<readonly AliasInfo[]> {
    const rows =
      domain === undefined
        ? await this.#db.rows('SELECT source, destination FROM directory_aliases ORDER BY source, destination')
        : await this.#db.rows(
            'SELECT source, destination FROM directory_aliases WHERE domain = $1 ORDER BY source, destination',
            [domainOrThrow(domain)],
          );
    return groupAliases(rows);
  }

  async setCatchAll(domain: string, target: string | null): Promise<void> {
    const d = domainOrThrow(domain);
    if (!(await this.#domainExists(this.#db, d))) throw new ArclineError('NOT_FOUND', `no domain ${d}`);
    const value = catchAllTarget(target);
    await this.#change([`d:${d}`], async (q) => {
      const r = await q.query('UPDATE directory_domains SET catch_all = $1 WHERE name = $2', [value, d]);
      if (r.rowCount === 0) throw new ArclineError('NOT_FOUND', `no domain ${d}`);
    });
  }
}

/** A constraint another writer's commit broke under us, as the operator's error. */
function constraintError(e: unknown): unknown {
  const code = (e as { code?: unknown }).code;
  const detail = (e as { detail?: unknown }).detail;
  if (code === '23505') return new ArclineError('EXISTS', `already exists (${String(detail ?? '')})`, { cause: e });
  if (code === '23503')
    return new ArclineError('NOT_FOUND', `no longer exists (${String(detail ?? '')})`, { cause: e });
  return e;
}
