// The directory in SQLite (node:sqlite), in {state}/arcline.db. The server and the CLI open the
// same file at the same time: WAL mode lets readers proceed during a write, busy_timeout makes
// a writer wait for another. The lookups of the mail path (domain, user, alias, allowlist rows,
// recipient expansions) are cached in a bounded LRU that is only trusted while the database is
// unchanged: each call of the protocol side first runs `PRAGMA data_version`, whose value
// changes on this connection whenever another connection (the CLI, another process) committed
// (https://sqlite.org/pragma.html#pragma_data_version), and our own mutations clear the cache
// themselves (data_version does not move for them). So a CLI change applies to the next RCPT at
// once, and an RCPT costs one statement instead of five or six. Password hashes are not cached.
// All keys are stored normalised (lower-case local parts, punycode domains; see
// core/address.ts), so lookups are exact matches on indexed columns.
// Mutations validate everything first and run in one transaction: on error nothing changes.

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { type Address, formatAddress, normalizeDomain, parseAddress, splitDetail } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import type { AccountId, DomainName } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { LruMap } from '../core/lru.ts';
import { openDatabase, transaction } from '../core/sqlite.ts';
import { type Expansion, expandRecipient } from './expand.ts';
import { type HashOptions, parseStoredHash } from './password.ts';
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

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE domains (
     name TEXT PRIMARY KEY,
     catch_all TEXT,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE users (
     address TEXT PRIMARY KEY,
     domain TEXT NOT NULL REFERENCES domains(name),
     local TEXT NOT NULL,
     password_hash TEXT NOT NULL,
     quota_bytes INTEGER,
     created_at INTEGER NOT NULL
   ) STRICT;
   CREATE INDEX users_domain ON users(domain);
   CREATE TABLE aliases (
     source TEXT NOT NULL,
     destination TEXT NOT NULL,
     domain TEXT NOT NULL REFERENCES domains(name),
     PRIMARY KEY (source, destination)
   ) STRICT;
   CREATE INDEX aliases_domain ON aliases(domain);`,
  // Senders whose mail skips Junk filing for one user: an address, or a domain (and its subdomains).
  `CREATE TABLE allowed_senders (
     account TEXT NOT NULL REFERENCES users(address) ON DELETE CASCADE,
     pattern TEXT NOT NULL,
     PRIMARY KEY (account, pattern)
   ) STRICT;`,
  // A disabled user cannot log in (passwordHash answers null); mail to it is still accepted.
  'ALTER TABLE users ADD COLUMN disabled INTEGER NOT NULL DEFAULT 0;',
];

export interface SqliteDirectoryOptions {
  readonly path: string;
  readonly bcryptCost: number;
  /** Scheme of new hashes; bcrypt when not given. */
  readonly passwordScheme?: HashOptions['scheme'];
  readonly log: Logger;
}

type Row = Record<string, unknown>;

/** What the cache holds: a domain (catch-all or null; `false` = no such domain), a user (its
 *  quota; `false` = no such user), an alias's targets, a user's allowlist, an expansion. */
type Cached = { catchAll: string | null } | { quota: number | null } | false | readonly string[] | Expansion;

export class SqliteDirectory implements Directory, DirectoryAdmin {
  readonly #db: DatabaseSync;
  readonly #hashing: HashOptions;
  readonly #log: Logger;
  readonly #q: Statements;
  readonly #cache = new LruMap<string, Cached>(LIMITS.directory.cacheEntries);
  /** `PRAGMA data_version` when the cache was last known right. */
  #version = -1;
  /** When it was last read (performance.now()). */
  #checkedAt = Number.NEGATIVE_INFINITY;

  constructor(opts: SqliteDirectoryOptions) {
    this.#db = openDatabase(opts.path, { migrations: MIGRATIONS });
    this.#hashing = { scheme: opts.passwordScheme ?? 'bcrypt', bcryptCost: opts.bcryptCost };
    this.#log = opts.log;
    this.#q = prepareStatements(this.#db);
  }

  #tx<T>(fn: () => T): T {
    try {
      return transaction(this.#db, fn);
    } finally {
      this.#changed();
    }
  }

  // ---- the lookup cache (see the header comment) ----

  /** Drops the cache when another connection committed since it was last checked. Called once
   *  at the start of every cached read of the protocol side; the lookups that follow in the same
   *  synchronous call then see one state of the database. */
  #fresh(): void {
    // Under load several lookups fall in the same millisecond: they share one check (a commit
    // by another process is seen by the lookups that start a millisecond after it, the same as
    // if it had come a millisecond later).
    const now = performance.now();
    if (now - this.#checkedAt < LIMITS.directory.freshnessMs) return;
    this.#checkedAt = now;
    const v = Number((this.#q.dataVersion.get() as Row).data_version);
    if (v !== this.#version) {
      this.#cache.clear();
      this.#version = v;
    }
  }

  /** Our own commit: data_version does not change for it on this connection. */
  #changed(): void {
    this.#cache.clear();
    this.#checkedAt = Number.NEGATIVE_INFINITY;
  }

  #cached<T extends Cached>(key: string, load: () => T): T {
    const hit = this.#cache.get(key);
    if (hit !== undefined) return hit as T;
    const v = load();
    this.#cache.set(key, v);
    return v;
  }

  #domain(d: string): { catchAll: string | null } | false {
    return this.#cached(`d:${d}`, () => {
      const row = this.#q.domain.get(d) as Row | undefined;
      return row ? { catchAll: row.catch_all ? String(row.catch_all) : null } : false;
    });
  }

  #user(a: string): { quota: number | null } | false {
    return this.#cached(`u:${a}`, () => {
      const row = this.#q.user.get(a) as Row | undefined;
      if (!row) return false;
      return { quota: row.quota_bytes !== null && row.quota_bytes !== undefined ? Number(row.quota_bytes) : null };
    });
  }

  #aliasTargets(a: string): readonly string[] {
    return this.#cached(`a:${a}`, () =>
      Object.freeze((this.#q.aliasTargets.all(a) as Row[]).map((r) => String(r.destination))),
    );
  }

  // ---- Directory (protocol side) ----

  async isLocalDomain(domain: DomainName): Promise<boolean> {
    this.#fresh();
    return this.#domain(domain) !== false;
  }

  async resolveRecipient(addr: Address): Promise<RecipientResolution> {
    this.#fresh();
    if (this.#domain(addr.domain) === false) return { kind: 'unknown-domain' };
    const start = `${splitDetail(addr.local).base}@${addr.domain}`;
    const r = this.#cached(`r:${start}`, () => {
      const e = expandRecipient(start, this.#lookups(), true);
      return {
        accounts: Object.freeze(e.accounts),
        remote: Object.freeze(e.remote),
        warnings: e.warnings,
      } as Expansion;
    });
    for (const w of r.warnings) this.#log.warn({ rcpt: start }, w);
    if (r.accounts.length === 0 && r.remote.length === 0) return { kind: 'unknown-user' };
    return { kind: 'deliver', accounts: r.accounts, remote: r.remote };
  }

  #lookups() {
    return {
      isLocalDomain: (d: string) => this.#domain(d) !== false,
      isUser: (a: string) => this.#user(a) !== false,
      aliasTargets: (a: string) => this.#aliasTargets(a),
      catchAll: (d: string) => {
        const dom = this.#domain(d);
        return dom ? dom.catchAll : null;
      },
    };
  }

  loginName(username: string): AccountId | null {
    return canonicalLogin(username);
  }

  async passwordHash(account: AccountId): Promise<string | null> {
    const row = this.#q.user.get(account) as Row | undefined;
    // A disabled user is no login: as unknown to the authenticator (no other path logs in).
    return row && Number(row.disabled) === 0 ? String(row.password_hash) : null;
  }

  async postmasterDomain(preferred: readonly string[]): Promise<DomainName | null> {
    for (const p of preferred) {
      const d = normalizeDomain(p);
      if (d && this.#q.domain.get(d)) return d;
    }
    const oldest = this.#q.oldestDomain.get() as Row | undefined;
    return oldest ? (String(oldest.name) as DomainName) : null;
  }

  async maySendAs(who: Principal, from: Address): Promise<boolean> {
    this.#fresh();
    const base = `${splitDetail(from.local).base}@${from.domain}`;
    if (base === who.accountId) return true;
    // Only explicit aliases count: a catch-all must not let its owner send as anyone.
    return expandRecipient(base, this.#lookups(), false).accounts.includes(who.accountId);
  }

  async quota(account: AccountId): Promise<number | null> {
    this.#fresh();
    const user = this.#user(account);
    return user ? user.quota : null;
  }

  async allowsSender(account: AccountId, senders: readonly string[]): Promise<boolean> {
    this.#fresh();
    const patterns = this.#cached(`s:${account}`, () =>
      Object.freeze((this.#q.allowed.all(account) as Row[]).map((r) => String(r.pattern))),
    );
    return senderAllowed(patterns, senders);
  }

  /** Readiness (web/health.ts): the database answers a query (uncached). Throws otherwise. */
  ping(): void {
    this.#q.oldestDomain.get();
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }

  // ---- DirectoryAdmin (operators) ----

  async addDomain(name: string): Promise<DomainInfo> {
    const d = domainOrThrow(name);
    if (this.#q.domain.get(d)) throw new ArclineError('EXISTS', `domain ${d} already exists`);
    this.#q.addDomain.run(d, Date.now());
    this.#changed();
    return { name: d, catchAll: null, users: 0, aliases: 0 };
  }

  async deleteDomain(name: string): Promise<void> {
    const info = (await this.listDomains()).find((x) => x.name === domainOrThrow(name));
    if (!info) throw new ArclineError('NOT_FOUND', `no domain ${name}`);
    if (info.users > 0 || info.aliases > 0) {
      throw new ArclineError(
        'CONFLICT',
        `domain ${info.name} still has ${info.users} user(s) and ${info.aliases} alias(es); delete them first`,
      );
    }
    this.#q.delDomain.run(info.name);
    this.#changed();
  }

  async listDomains(): Promise<readonly DomainInfo[]> {
    return (this.#q.domains.all() as Row[]).map((r) => ({
      name: String(r.name) as DomainName,
      catchAll: r.catch_all ? String(r.catch_all) : null,
      users: Number(r.users),
      aliases: Number(r.aliases),
    }));
  }

  async checkNewUser(address: string): Promise<void> {
    this.#newUserAddress(address);
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
    const a = this.#newUserAddress(address);
    const parsed = parseStoredHash(opts.passwordHash);
    if ('problem' in parsed) throw new ArclineError('INVALID', `unsupported password hash: ${parsed.problem}`);
    const quota = quotaOrThrow(opts.quotaBytes ?? null);
    const now = Date.now();
    const id = formatAddress(a);
    this.#tx(() => {
      const first = (this.#q.usersIn.all(a.domain) as Row[]).length === 0;
      this.#q.addUser.run(id, a.domain, a.local, opts.passwordHash, quota, now);
      if (!first) return;
      for (const role of ROLE_ADDRESSES) {
        const addr = `${role}@${a.domain}`;
        if (addr === id || this.#q.user.get(addr) || (this.#q.aliasTargets.all(addr) as Row[]).length > 0) continue;
        this.#q.addAlias.run(addr, id, a.domain);
      }
    });
    return { accountId: id as AccountId, address: id, quotaBytes: quota, createdAt: new Date(now), enabled: true };
  }

  /** Parses and validates the address of a user to create. */
  #newUserAddress(address: string): Address {
    const a = this.#localAddress(address, 'user');
    if (this.#q.user.get(formatAddress(a))) throw new ArclineError('EXISTS', `user ${formatAddress(a)} already exists`);
    return a;
  }

  /** A valid address in an existing local domain whose local part is a safe mailbox name. */
  #localAddress(address: string, what: string): Address {
    const a = localAddressOrThrow(address, what);
    if (!this.#q.domain.get(a.domain)) throw noDomain(a.domain);
    return a;
  }

  async deleteUser(address: string): Promise<UserInfo> {
    const user = await this.#existingUser(address);
    this.#q.delUser.run(user.address);
    this.#changed();
    return user;
  }

  async setPassword(address: string, password: string): Promise<void> {
    const user = await this.#existingUser(address);
    this.#q.setHash.run(await newPasswordHash(password, this.#hashing), user.address);
    this.#changed();
  }

  async setQuota(address: string, quotaBytes: number | null): Promise<void> {
    const user = await this.#existingUser(address);
    this.#q.setQuota.run(quotaOrThrow(quotaBytes), user.address);
    this.#changed();
  }

  async setEnabled(address: string, enabled: boolean): Promise<void> {
    const user = await this.#existingUser(address);
    this.#q.setDisabled.run(enabled ? 0 : 1, user.address);
    this.#changed();
  }

  async getUser(address: string): Promise<UserInfo | null> {
    const a = parseAddress(address);
    const row = a ? (this.#q.user.get(formatAddress(a)) as Row | undefined) : undefined;
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
    this.#q.addAllowed.run(u.accountId, p);
    this.#changed();
    return p;
  }

  async deleteAllowedSender(user: string, pattern: string): Promise<void> {
    const u = await this.#existingUser(user);
    const r = this.#q.delAllowed.run(u.accountId, senderPattern(pattern));
    this.#changed();
    if (Number(r.changes) === 0) throw new ArclineError('NOT_FOUND', `${pattern} is not allowed for ${u.address}`);
  }

  async listAllowedSenders(user: string): Promise<readonly string[]> {
    const u = await this.#existingUser(user);
    return (this.#q.allowed.all(u.accountId) as Row[]).map((r) => String(r.pattern));
  }

  async listUsers(domain?: string): Promise<readonly UserInfo[]> {
    const rows = domain === undefined ? this.#q.users.all() : this.#q.usersIn.all(domainOrThrow(domain));
    return (rows as Row[]).map(userInfo);
  }

  async addAlias(source: string, destinations: readonly string[]): Promise<AliasInfo> {
    const src = this.#localAddress(source, 'alias');
    const dsts = aliasDestinations(destinations);
    const id = formatAddress(src);
    this.#tx(() => {
      for (const d of dsts) this.#q.addAlias.run(id, d, src.domain);
    });
    return { source: id, destinations: (this.#q.aliasTargets.all(id) as Row[]).map((r) => String(r.destination)) };
  }

  async deleteAlias(source: string, destinations?: readonly string[]): Promise<void> {
    const src = parseAddress(source);
    if (!src) throw new ArclineError('INVALID', `invalid alias address: ${JSON.stringify(source)}`);
    const id = formatAddress(src);
    const existing = new Set((this.#q.aliasTargets.all(id) as Row[]).map((r) => String(r.destination)));
    const dsts = aliasRemovals(id, existing, destinations);
    this.#tx(() => {
      if (dsts.length === 0) this.#q.delAliasAll.run(id);
      else for (const d of dsts) this.#q.delAlias.run(id, d);
    });
  }

  async listAliases(domain?: string): Promise<readonly AliasInfo[]> {
    const rows = (domain === undefined ? this.#q.aliases.all() : this.#q.aliasesIn.all(domainOrThrow(domain))) as Row[];
    return groupAliases(rows);
  }

  async setCatchAll(domain: string, target: string | null): Promise<void> {
    const d = domainOrThrow(domain);
    if (!this.#q.domain.get(d)) throw new ArclineError('NOT_FOUND', `no domain ${d}`);
    const value = catchAllTarget(target);
    this.#q.setCatchAll.run(value, d);
    this.#changed();
  }
}

function prepareStatements(db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    dataVersion: p('PRAGMA data_version'),
    domain: p('SELECT name, catch_all FROM domains WHERE name = ?'),
    oldestDomain: p('SELECT name FROM domains ORDER BY created_at, name LIMIT 1'),
    domains: p(`SELECT d.name, d.catch_all,
                  (SELECT count(*) FROM users u WHERE u.domain = d.name) AS users,
                  (SELECT count(DISTINCT source) FROM aliases a WHERE a.domain = d.name) AS aliases
                FROM domains d ORDER BY d.name`),
    addDomain: p('INSERT INTO domains (name, created_at) VALUES (?, ?)'),
    delDomain: p('DELETE FROM domains WHERE name = ?'),
    setCatchAll: p('UPDATE domains SET catch_all = ? WHERE name = ?'),
    user: p('SELECT address, password_hash, quota_bytes, created_at, disabled FROM users WHERE address = ?'),
    users: p('SELECT address, quota_bytes, created_at, disabled FROM users ORDER BY domain, local'),
    usersIn: p('SELECT address, quota_bytes, created_at, disabled FROM users WHERE domain = ? ORDER BY local'),
    addUser: p(
      'INSERT INTO users (address, domain, local, password_hash, quota_bytes, created_at) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    delUser: p('DELETE FROM users WHERE address = ?'),
    setHash: p('UPDATE users SET password_hash = ? WHERE address = ?'),
    setQuota: p('UPDATE users SET quota_bytes = ? WHERE address = ?'),
    setDisabled: p('UPDATE users SET disabled = ? WHERE address = ?'),
    aliasTargets: p('SELECT destination FROM aliases WHERE source = ? ORDER BY destination'),
    aliases: p('SELECT source, destination FROM aliases ORDER BY source, destination'),
    aliasesIn: p('SELECT source, destination FROM aliases WHERE domain = ? ORDER BY source, destination'),
    addAlias: p('INSERT OR IGNORE INTO aliases (source, destination, domain) VALUES (?, ?, ?)'),
    delAlias: p('DELETE FROM aliases WHERE source = ? AND destination = ?'),
    delAliasAll: p('DELETE FROM aliases WHERE source = ?'),
    allowed: p('SELECT pattern FROM allowed_senders WHERE account = ? ORDER BY pattern'),
    addAllowed: p('INSERT OR IGNORE INTO allowed_senders (account, pattern) VALUES (?, ?)'),
    delAllowed: p('DELETE FROM allowed_senders WHERE account = ? AND pattern = ?'),
  };
}

type Statements = ReturnType<typeof prepareStatements>;

export function openSqliteDirectory(opts: SqliteDirectoryOptions): SqliteDirectory {
  return new SqliteDirectory(opts);
}
