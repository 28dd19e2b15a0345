// Who may use the admin HTTP API, and what they changed: API tokens, login sessions and the
// audit log, in {state}/admin.db (SQLite, shared by the server and the CLI like the directory).
//
// Tokens are `arc_<id>_<secret>`: id 16 hex digits (the row's key, shown in lists and logs),
// secret 256 random bits in hex. Only SHA-256(secret) is stored: for a secret of that entropy a
// fast hash is enough (nothing to brute-force), and it is compared in constant time. A session
// token (POST /api/v1/login) is the same thing with kind 'session' and an expiry.
//
// Roles: "admin" (everything), "readonly" (every read), "domain:D" (one domain's users, aliases,
// catch-all, DNS and DKIM), "user:ADDR" (self-service). Checks are in api/auth.ts.

import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { join } from 'node:path';
import type { DatabaseSync } from 'node:sqlite';
import { formatAddress, normalizeDomain, parseAddress } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import { openDatabase } from '../core/sqlite.ts';

export type Role =
  | { readonly kind: 'admin' }
  | { readonly kind: 'readonly' }
  | { readonly kind: 'domain'; readonly domain: string }
  | { readonly kind: 'user'; readonly user: string };

export interface TokenInfo {
  readonly id: string;
  readonly name: string;
  readonly role: Role;
  readonly kind: 'api' | 'session';
  readonly created: Date;
  readonly expires: Date | null;
  readonly lastUsed: Date | null;
}

export interface AuditEntry {
  readonly seq: number;
  readonly time: Date;
  readonly actor: string;
  readonly role: string;
  readonly from: string;
  readonly action: string;
  readonly target: string;
  readonly result: string;
}

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE tokens (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     role TEXT NOT NULL,
     kind TEXT NOT NULL,
     hash TEXT NOT NULL,
     created INTEGER NOT NULL,
     expires INTEGER,
     last_used INTEGER
   ) STRICT;
   CREATE TABLE audit (
     seq INTEGER PRIMARY KEY AUTOINCREMENT,
     time INTEGER NOT NULL,
     actor TEXT NOT NULL,
     role TEXT NOT NULL,
     from_ip TEXT NOT NULL,
     action TEXT NOT NULL,
     target TEXT NOT NULL,
     result TEXT NOT NULL
   ) STRICT;`,
];

const TOKEN = /^arc_([0-9a-f]{16})_([0-9a-f]{64})$/;
const MAX_NAME = 100;

/** "admin", "readonly", "domain:D", "user:ADDR" -> a Role (names normalised); INVALID otherwise. */
export function parseRole(text: string): Role {
  if (text === 'admin' || text === 'readonly') return { kind: text };
  if (text.startsWith('domain:')) {
    const d = normalizeDomain(text.slice('domain:'.length));
    if (d) return { kind: 'domain', domain: d };
  }
  if (text.startsWith('user:')) {
    const a = parseAddress(text.slice('user:'.length));
    if (a) return { kind: 'user', user: formatAddress(a) };
  }
  throw new ArclineError(
    'INVALID',
    `invalid role ${JSON.stringify(text)}: admin, readonly, domain:DOMAIN or user:ADDRESS`,
  );
}

export function formatRole(r: Role): string {
  return r.kind === 'domain' ? `domain:${r.domain}` : r.kind === 'user' ? `user:${r.user}` : r.kind;
}

const sha256 = (s: string): Buffer => createHash('sha256').update(s).digest();

/** Tokens, sessions and the audit log, as the API, JMAP and the CLI use them: SQLite here
 *  (AccessStore, {state}/admin.db), PostgreSQL in access-pg.ts (several nodes share one). Both
 *  pass test/admin/access-contract.ts. */
export interface AdminAccess {
  /** Creates a token; the returned `token` is the only time its secret is seen. */
  create(opts: NewToken): Promise<{ id: string; token: string; expires: Date | null }>;
  /** The token a Bearer value names, or null (malformed, unknown, wrong secret, expired). */
  verify(bearer: string): Promise<TokenInfo | null>;
  /** True for a login session's token (POST /api/v1/login), false for an API token. */
  isSession(id: string): Promise<boolean>;
  /** Ends every login session of a user (its password changed); returns how many. API tokens
   *  made for the user (`token add --role user:ADDR`) stay: an operator made them on purpose. */
  revokeSessions(user: string): Promise<number>;
  /** API tokens (not sessions), oldest first. */
  list(): Promise<TokenInfo[]>;
  /** False when there was no such token. */
  delete(id: string): Promise<boolean>;
  audit(e: Omit<AuditEntry, 'seq' | 'time'>): Promise<void>;
  /** Newest first, at most `limit` entries older than `before` (a seq), containing `q` (in the
   *  actor, action or target, case-insensitive) when given. */
  auditLog(opts: { limit: number; before?: number; q?: string }): Promise<AuditEntry[]>;
  close(): void;
}

export interface NewToken {
  readonly role: Role;
  readonly name?: string;
  readonly kind?: 'api' | 'session';
  readonly ttlMs?: number;
}

/** A new token's parts (the secret only ever leaves in `token`); INVALID for a bad name. */
export function newToken(opts: NewToken, now: number) {
  const name = (opts.name ?? '').trim();
  if (name.length > MAX_NAME || /[\p{Cc}]/u.test(name)) throw new ArclineError('INVALID', 'invalid token name');
  const id = randomBytes(8).toString('hex');
  const secret = randomBytes(32).toString('hex');
  return {
    id,
    name,
    token: `arc_${id}_${secret}`,
    role: formatRole(opts.role),
    kind: opts.kind ?? 'api',
    hash: sha256(secret).toString('hex'),
    expires: opts.ttlMs ? now + opts.ttlMs : null,
  };
}

/** The id and the secret's hash of a Bearer value, or null when it is not one of ours. */
export function bearerParts(bearer: string): { id: string; hash: Buffer } | null {
  const m = TOKEN.exec(bearer);
  return m ? { id: m[1] as string, hash: sha256(m[2] as string) } : null;
}

/** True when the stored hash (hex) is the presented one (constant time). */
export function hashMatches(storedHex: string, presented: Buffer): boolean {
  const want = Buffer.from(storedHex, 'hex');
  return want.length === presented.length && timingSafeEqual(want, presented);
}

/** Coarse last-use time: one write a minute per token at most. */
export const LAST_USED_GRANULARITY_MS = 60_000;

export class AccessStore implements AdminAccess {
  readonly #db: DatabaseSync;

  constructor(stateDir: string) {
    this.#db = openDatabase(join(stateDir, 'admin.db'), { migrations: MIGRATIONS });
  }

  async create(opts: NewToken): Promise<{ id: string; token: string; expires: Date | null }> {
    const now = Date.now();
    const t = newToken(opts, now);
    this.#db
      .prepare('INSERT INTO tokens (id, name, role, kind, hash, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(t.id, t.name, t.role, t.kind, t.hash, now, t.expires);
    if (opts.kind === 'session')
      this.#db.prepare('DELETE FROM tokens WHERE expires IS NOT NULL AND expires < ?').run(now);
    return { id: t.id, token: t.token, expires: t.expires === null ? null : new Date(t.expires) };
  }

  async verify(bearer: string): Promise<TokenInfo | null> {
    const b = bearerParts(bearer);
    if (!b) return null;
    const row = this.#db.prepare('SELECT * FROM tokens WHERE id = ?').get(b.id) as Row | undefined;
    if (!row || !hashMatches(String(row.hash), b.hash)) return null;
    const now = Date.now();
    if (row.expires !== null && Number(row.expires) <= now) return null;
    if (row.last_used === null || now - Number(row.last_used) > LAST_USED_GRANULARITY_MS) {
      this.#db.prepare('UPDATE tokens SET last_used = ? WHERE id = ?').run(now, row.id as string);
    }
    return tokenInfo(row);
  }

  async isSession(id: string): Promise<boolean> {
    return this.#db.prepare("SELECT 1 FROM tokens WHERE id = ? AND kind = 'session'").get(id) !== undefined;
  }

  async revokeSessions(user: string): Promise<number> {
    return Number(
      this.#db.prepare("DELETE FROM tokens WHERE kind = 'session' AND role = ?").run(formatRole({ kind: 'user', user }))
        .changes,
    );
  }

  async list(): Promise<TokenInfo[]> {
    return (this.#db.prepare("SELECT * FROM tokens WHERE kind = 'api' ORDER BY created, id").all() as Row[]).map(
      tokenInfo,
    );
  }

  async delete(id: string): Promise<boolean> {
    return Number(this.#db.prepare('DELETE FROM tokens WHERE id = ?').run(id).changes) > 0;
  }

  async audit(e: Omit<AuditEntry, 'seq' | 'time'>): Promise<void> {
    this.#db
      .prepare('INSERT INTO audit (time, actor, role, from_ip, action, target, result) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(Date.now(), e.actor, e.role, e.from, e.action, e.target, e.result);
  }

  async auditLog(opts: { limit: number; before?: number; q?: string }): Promise<AuditEntry[]> {
    const rows = this.#db
      .prepare(
        `SELECT * FROM audit WHERE seq < ? AND (? = '' OR instr(lower(actor || ' ' || action || ' ' || target), ?) > 0)
         ORDER BY seq DESC LIMIT ?`,
      )
      .all(opts.before ?? Number.MAX_SAFE_INTEGER, opts.q ?? '', (opts.q ?? '').toLowerCase(), opts.limit) as Row[];
    return rows.map(auditEntry);
  }

  close(): void {
    this.#db.close();
  }
}

type Row = Record<string, unknown>;

/** An audit row (seq, time in ms, actor, role, from_ip, action, target, result). */
export function auditEntry(r: Row): AuditEntry {
  return {
    seq: Number(r.seq),
    time: new Date(Number(r.time)),
    actor: String(r.actor),
    role: String(r.role),
    from: String(r.from_ip),
    action: String(r.action),
    target: String(r.target),
    result: String(r.result),
  };
}

/** A token row (times in ms, or null). */
export function tokenInfo(r: Row): TokenInfo {
  return {
    id: String(r.id),
    name: String(r.name),
    role: parseRole(String(r.role)),
    kind: r.kind === 'session' ? 'session' : 'api',
    created: new Date(Number(r.created)),
    expires: r.expires === null ? null : new Date(Number(r.expires)),
    lastUsed: r.last_used === null ? null : new Date(Number(r.last_used)),
  };
}

/** Checks that a role names what exists (a domain of ours, a user) before a token is made for it. */
export async function checkRoleTarget(
  role: Role,
  ops: { listDomains(): Promise<readonly { name: string }[]>; getUser(a: string): Promise<unknown> },
): Promise<void> {
  if (role.kind === 'domain' && !(await ops.listDomains()).some((d) => d.name === role.domain)) {
    throw new ArclineError('NOT_FOUND', `no domain ${role.domain}`);
  }
  if (role.kind === 'user' && !(await ops.getUser(role.user)))
    throw new ArclineError('NOT_FOUND', `no user ${role.user}`);
}
