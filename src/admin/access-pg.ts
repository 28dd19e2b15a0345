// Admin API tokens, login sessions and the audit log in PostgreSQL (issue #18, docs/cluster.md
// "PostgreSQL schema"): the same AdminAccess as the SQLite AccessStore (access.ts, whose rules
// it shares: token format, hashing, constant-time comparison, coarse last-use), so a token made
// on one node, or by the CLI, is honoured by every node, and a session ended on one is ended on
// all. No cache: every verify reads the row (a revoked token stops at once everywhere).

import type { Postgres } from '../db/postgres.ts';
import {
  type AdminAccess,
  type AuditEntry,
  auditEntry,
  bearerParts,
  formatRole,
  hashMatches,
  LAST_USED_GRANULARITY_MS,
  type NewToken,
  newToken,
  type TokenInfo,
  tokenInfo,
} from './access.ts';

/** The schema of the component "admin" (db.migrate). */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE admin_tokens (
     id TEXT PRIMARY KEY,
     name TEXT NOT NULL,
     role TEXT NOT NULL,
     kind TEXT NOT NULL,
     hash TEXT NOT NULL,
     created BIGINT NOT NULL,
     expires BIGINT,
     last_used BIGINT
   );
   CREATE INDEX admin_tokens_kind_role ON admin_tokens(kind, role);
   CREATE TABLE admin_audit (
     seq BIGSERIAL PRIMARY KEY,
     time BIGINT NOT NULL,
     actor TEXT NOT NULL,
     role TEXT NOT NULL,
     from_ip TEXT NOT NULL,
     action TEXT NOT NULL,
     target TEXT NOT NULL,
     result TEXT NOT NULL
   );`,
];

export class PostgresAccessStore implements AdminAccess {
  readonly #db: Postgres;

  private constructor(db: Postgres) {
    this.#db = db;
  }

  static async open(db: Postgres): Promise<PostgresAccessStore> {
    await db.migrate('admin', MIGRATIONS);
    return new PostgresAccessStore(db);
  }

  async create(opts: NewToken): Promise<{ id: string; token: string; expires: Date | null }> {
    const now = Date.now();
    const t = newToken(opts, now);
    await this.#db.query(
      'INSERT INTO admin_tokens (id, name, role, kind, hash, created, expires) VALUES ($1, $2, $3, $4, $5, $6, $7)',
      [t.id, t.name, t.role, t.kind, t.hash, now, t.expires],
    );
    if (opts.kind === 'session')
      await this.#db.query('DELETE FROM admin_tokens WHERE expires IS NOT NULL AND expires < $1', [now]);
    return { id: t.id, token: t.token, expires: t.expires === null ? null : new Date(t.expires) };
  }

  async verify(bearer: string): Promise<TokenInfo | null> {
    const b = bearerParts(bearer);
    if (!b) return null;
    const row = (await this.#db.rows('SELECT * FROM admin_tokens WHERE id = $1', [b.id]))[0];
    if (!row || !hashMatches(String(row.hash), b.hash)) return null;
    const now = Date.now();
    if (row.expires !== null && Number(row.expires) <= now) return null;
    if (row.last_used === null || now - Number(row.last_used) > LAST_USED_GRANULARITY_MS) {
      // Conditional: nodes verifying the same token at once write it once.
      await this.#db.query(
        'UPDATE admin_tokens SET last_used = $1 WHERE id = $2 AND (last_used IS NULL OR last_used < $3)',
        [now, b.id, now - LAST_USED_GRANULARITY_MS],
      );
    }
    return tokenInfo(row);
  }

  async isSession(id: string): Promise<boolean> {
    return (await this.#db.rows("SELECT 1 FROM admin_tokens WHERE id = $1 AND kind = 'session'", [id])).length > 0;
  }

  async revokeSessions(user: string): Promise<number> {
    const r = await this.#db.query("DELETE FROM admin_tokens WHERE kind = 'session' AND role = $1", [
      formatRole({ kind: 'user', user }),
    ]);
    return r.rowCount ?? 0;
  }

  async list(): Promise<TokenInfo[]> {
    return (await this.#db.rows("SELECT * FROM admin_tokens WHERE kind = 'api' ORDER BY created, id")).map(tokenInfo);
  }

  async delete(id: string): Promise<boolean> {
    return ((await this.#db.query('DELETE FROM admin_tokens WHERE id = $1', [id])).rowCount ?? 0) > 0;
  }

  async audit(e: Omit<AuditEntry, 'seq' | 'time'>): Promise<void> {
    await this.#db.query(
      `INSERT INTO admin_audit (time, actor, role, from_ip, action, target, result)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [Date.now(), e.actor, e.role, e.from, e.action, e.target, e.result],
    );
  }

  async auditLog(opts: { limit: number; before?: number; q?: string }): Promise<AuditEntry[]> {
    const q = (opts.q ?? '').toLowerCase();
    const rows = await this.#db.rows(
      `SELECT * FROM admin_audit
       WHERE seq < $1 AND ($2 = '' OR strpos(lower(actor || ' ' || action || ' ' || target), $2) > 0)
       ORDER BY seq DESC LIMIT $3`,
      [opts.before ?? Number.MAX_SAFE_INTEGER, q, opts.limit],
    );
    return rows.map(auditEntry);
  }

  /** The pool belongs to whoever opened it (main.ts). */
  close(): void {}
}
