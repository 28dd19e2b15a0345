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

export class AccessStore {
  readonly #db: DatabaseSync;

  constructor(stateDir: string) {
    this.#db = openDatabase(join(stateDir, 'admin.db'), { migrations: MIGRATIONS });
  }

  /** Creates a token; the returned `token` is the only time its secret is seen. */
  create(opts: { role: Role; name?: string; kind?: 'api' | 'session'; ttlMs?: number }): {
    id: string;
    token: string;
    expires: Date | null;
  } {
    const name = (opts.name ?? '').trim();
    if (name.length > MAX_NAME || /[\p{Cc}]/u.test(name)) throw new ArclineError('INVALID', 'invalid token name');
    const id = randomBytes(8).toString('hex');
    const secret = randomBytes(32).toString('hex');
    const now = Date.now();
    const expires = opts.ttlMs ? now + opts.ttlMs : null;
    this.#db
      .prepare('INSERT INTO tokens (id, name, role, kind, hash, created, expires) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(id, name, formatRole(opts.role), opts.kind ?? 'api', sha256(secret).toString('hex'), now, expires);
    if (opts.kind === 'session')
      this.#db.prepare('DELETE FROM tokens WHERE expires IS NOT NULL AND expires < ?').run(now);
    return { id, token: `arc_${id}_${secret}`, expires: expires === null ? null : new Date(expires) };
  }

  /** The token a Bearer value names, or null (malformed, unknown, wrong secret, expired). */
  verify(bearer: string): TokenInfo | null {
    const m = TOKEN.exec(bearer);
    if (!m) return null;
    const row = this.#db.prepare('SELECT * FROM tokens WHERE id = ?').get(m[1] as string) as Row | undefined;
    if (!row) return null;
    const want = Buffer.from(String(row.hash), 'hex');
    if (!timingSafeEqual(want, sha256(m[2] as string))) return null;
    const now = Date.now();
    if (row.expires !== null && Number(row.expires) <= now) return null;
    // Coarse last-use time (one write a minute per token at most).
    if (row.last_used === null || now - Number(row.last_used) > 60_000) {
      this.#db.prepare('UPDATE tokens SET last_used = ? WHERE id = ?').run(now, row.id as string);
    }
    return tokenInfo(row);
  }

  /** True for a login session's token (POST /api/v1/login), false for an API token. */
  isSession(id: string): boolean {
    return this.#db.prepare("SELECT 1 FROM tokens WHERE id = ? AND kind = 'session'").get(id) !== undefined;
  }

  /** Ends every login session of a user (its password changed); returns how many. API tokens
   *  made for the user (`token add --role user:ADDR`) stay: an operator made them on purpose. */
  revokeSessions(user: string): number {
    return Number(
      this.#db.prepare("DELETE FROM tokens WHERE kind = 'session' AND role = ?").run(formatRole({ kind: 'user', user }))
        .changes,
    );
  }

  /** API tokens (not sessions), oldest first. */
  list(): TokenInfo[] {
    return (this.#db.prepare("SELECT * FROM tokens WHERE kind = 'api' ORDER BY created, id").all() as Row[]).map(
      tokenInfo,
    );
  }

  /** False when there was no such token. */
  delete(id: string): boolean {
    return Number(this.#db.prepare('DELETE FROM tokens WHERE id = ?').run(id).changes) > 0;
  }

  audit(e: Omit<AuditEntry, 'seq' | 'time'>): void {
    this.#db
      .prepare('INSERT INTO audit (time, actor, role, from_ip, action, target, result) VALUES (?, ?, ?, ?, ?, ?, ?)')
      .run(Date.now(), e.actor, e.role, e.from, e.action, e.target, e.result);
  }

  /** Newest first, at most `limit` entries older than `before` (a seq), containing `q` (in the
   *  actor, action or target, case-insensitive) when given. */
  auditLog(opts: { limit: number; before?: number; q?: string }): AuditEntry[] {
    const rows = this.#db
      .prepare(
        `SELECT * FROM audit WHERE seq < ? AND (? = '' OR instr(lower(actor || ' ' || action || ' ' || target), ?) > 0)
         ORDER BY seq DESC LIMIT ?`,
      )
      .all(opts.before ?? Number.MAX_SAFE_INTEGER, opts.q ?? '', (opts.q ?? '').toLowerCase(), opts.limit) as Row[];
    return rows.map((r) => ({
      seq: Number(r.seq),
      time: new Date(Number(r.time)),
      actor: String(r.actor),
      role: String(r.role),
      from: String(r.from_ip),
      action: String(r.action),
      target: String(r.target),
      result: String(r.result),
    }));
  }

  close(): void {
    this.#db.close();
  }
}

type Row = Record<string, unknown>;

function tokenInfo(r: Row): TokenInfo {
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
