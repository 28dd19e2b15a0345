// DKIM signing keys in PostgreSQL (issue #18, docs/cluster.md "PostgreSQL schema"): every node
// signs with the same keys, and a key made, activated or retired on one node (or by the CLI) is
// the one all use. Same DkimKeys contract and rules as the files of dkim-keys.ts (validation,
// one key per selector, rotation through pending keys, retired keys kept, never read again).
//
// Protection of the private keys (the files are 0600 in a 0700 directory): the table is owned by
// arcline's database role and PUBLIC's privileges on it are revoked by the migration, so only
// that role (and superusers) can read it; the keys cross the network, so [database] url should
// ask for TLS (sslmode=verify-full) off the machine, and pg_dump backups hold them (protect them
// as {state}/dkim/ in a file backup). docs/cluster.md says the same for operators.
//
// keys() is on the hot path (every submitted message): a copy per domain, re-read when older
// than LIMITS.dkim.pgCacheMs; this node's own changes drop it at once.

import { ArclineError } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Postgres } from '../db/postgres.ts';
import {
  checkDomain,
  checkNewKey,
  type DkimAlgorithm,
  type DkimKey,
  type DkimKeys,
  newKeyPem,
  normalizeSelector,
  sortKeys,
  usablePem,
} from './dkim-keys.ts';

/** The schema of the component "dkim" (db.migrate). */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE dkim_keys (
     id BIGSERIAL PRIMARY KEY,
     domain TEXT COLLATE "C" NOT NULL,
     selector TEXT COLLATE "C" NOT NULL,
     algorithm TEXT NOT NULL CHECK (algorithm IN ('rsa', 'ed25519')),
     private_key_pem TEXT NOT NULL,
     state TEXT NOT NULL CHECK (state IN ('active', 'pending', 'retired')),
     created BIGINT NOT NULL,
     retired_at BIGINT
   );
   -- A selector names at most one key in use (RFC 6376 §3.1); retired keys do not count.
   CREATE UNIQUE INDEX dkim_keys_selector ON dkim_keys(domain, selector) WHERE state <> 'retired';
   REVOKE ALL ON dkim_keys FROM PUBLIC;`,
];

type State = 'active' | 'pending';

export class PostgresDkimKeys implements DkimKeys {
  readonly #db: Postgres;
  readonly #cache = new Map<string, { at: number; keys: readonly DkimKey[] }>();
  readonly #cacheMs: number;

  private constructor(db: Postgres, cacheMs: number) {
    this.#db = db;
    this.#cacheMs = cacheMs;
  }

  /** `cacheMs`: how old a copy of keys() may be (LIMITS.dkim.pgCacheMs; tests shorten it). */
  static async open(db: Postgres, opts: { cacheMs?: number } = {}): Promise<PostgresDkimKeys> {
    await db.migrate('dkim', MIGRATIONS);
    return new PostgresDkimKeys(db, opts.cacheMs ?? LIMITS.dkim.pgCacheMs);
  }

  async generate(
    domain: string,
    opts: { selector: string; algorithm: DkimAlgorithm; pending?: boolean },
  ): Promise<DkimKey> {
    const { domain: d, selector, algorithm } = checkNewKey(domain, opts);
    const exists = () => new ArclineError('EXISTS', `${d} already has a DKIM key with selector ${selector}`);
    if ((await this.#select(d, selector)).length > 0) throw exists(); // before spending time on the key
    const pem = await newKeyPem(algorithm);
    const now = Date.now();
    try {
      await this.#db.query(
        `INSERT INTO dkim_keys (domain, selector, algorithm, private_key_pem, state, created)
         VALUES ($1, $2, $3, $4, $5, $6)`,
        [d, selector, algorithm, pem, opts.pending ? 'pending' : 'active', now],
      );
    } catch (e) {
      if ((e as { code?: unknown }).code === '23505') throw exists(); // another node, same selector
      throw e;
    }
    this.#cache.delete(d);
    return { domain: d, selector, algorithm, privateKeyPem: pem, created: new Date(now) };
  }

  async keys(domain: string): Promise<readonly DkimKey[]> {
    const d = checkDomain(domain);
    const hit = this.#cache.get(d);
    const now = performance.now();
    if (hit && now - hit.at < this.#cacheMs) return hit.keys;
    const keys = await this.#read(d, 'active');
    this.#cache.set(d, { at: now, keys });
    return keys;
  }

  async pendingKeys(domain: string): Promise<readonly DkimKey[]> {
    return this.#read(checkDomain(domain), 'pending');
  }

  async remove(domain: string, selector: string): Promise<void> {
    const d = checkDomain(domain);
    const s = normalizeSelector(selector);
    const r = await this.#db.query("DELETE FROM dkim_keys WHERE domain = $1 AND selector = $2 AND state <> 'retired'", [
      d,
      s,
    ]);
    this.#cache.delete(d);
    if (r.rowCount === 0) throw new ArclineError('NOT_FOUND', `${d} has no DKIM key with selector ${s}`);
  }

  async activate(domain: string, selector: string, now = new Date()): Promise<string | null> {
    const d = checkDomain(domain);
    const s = normalizeSelector(selector);
    const retired = await this.#db.tx(async (q) => {
      const pending = await q.query<{ algorithm: string }>(
        "SELECT algorithm FROM dkim_keys WHERE domain = $1 AND selector = $2 AND state = 'pending' FOR UPDATE",
        [d, s],
      );
      const algorithm = pending.rows[0]?.algorithm;
      if (algorithm === undefined)
        throw new ArclineError('NOT_FOUND', `${d} has no pending DKIM key with selector ${s}`);
      const old = await q.query(
        `UPDATE dkim_keys SET state = 'retired', retired_at = $3
         WHERE domain = $1 AND algorithm = $2 AND state = 'active'`,
        [d, algorithm, now.getTime()],
      );
      await q.query("UPDATE dkim_keys SET state = 'active' WHERE domain = $1 AND selector = $2 AND state = 'pending'", [
        d,
        s,
      ]);
      return (old.rowCount ?? 0) > 0;
    });
    this.#cache.delete(d);
    return retired ? retiredPlace(d, now) : null;
  }

  async retire(domain: string, now = new Date()): Promise<string | null> {
    const d = checkDomain(domain);
    const r = await this.#db.query(
      "UPDATE dkim_keys SET state = 'retired', retired_at = $2 WHERE domain = $1 AND state <> 'retired'",
      [d, now.getTime()],
    );
    this.#cache.delete(d);
    return (r.rowCount ?? 0) > 0 ? retiredPlace(d, now) : null;
  }

  async #select(d: string, selector: string) {
    return this.#db.rows("SELECT 1 FROM dkim_keys WHERE domain = $1 AND selector = $2 AND state <> 'retired'", [
      d,
      selector,
    ]);
  }

  /** The keys of one state; a row that is not a usable key is skipped, as a bad file is. */
  async #read(d: string, state: State): Promise<readonly DkimKey[]> {
    const rows = await this.#db.rows<{
      selector: string;
      algorithm: DkimAlgorithm;
      private_key_pem: string;
      created: number;
    }>('SELECT selector, algorithm, private_key_pem, created FROM dkim_keys WHERE domain = $1 AND state = $2', [
      d,
      state,
    ]);
    const keys: DkimKey[] = [];
    for (const r of rows) {
      const pem = usablePem(r.private_key_pem, r.algorithm);
      if (pem !== null) {
        keys.push(
          Object.freeze({
            domain: d,
            selector: r.selector,
            algorithm: r.algorithm,
            privateKeyPem: pem,
            created: new Date(r.created),
          }),
        );
      }
    }
    return sortKeys(keys);
  }
}

/** Where retired keys are kept, as the operator is told (the files' answer is a directory). */
function retiredPlace(domain: string, at: Date): string {
  return `the database (dkim_keys of ${domain}, retired_at ${at.toISOString()})`;
}
