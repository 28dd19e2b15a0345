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
import { checkGrace, DEFAULT_GRACE_MS, withoutInUse } from './dkim-grace.ts';
import {
  checkDomain,
  checkNewKey,
  type DkimAlgorithm,
  type DkimKey,
  type DkimKeys,
  type NewKeyOptions,
  newKeyPem,
  normalizeSelector,
  type RetiredDkimKey,
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
  // Rotation grace (docs/hygiene.md "Rotating a key"): a pending key keeps the grace of the key it
  // retires; a retired key is 'gone' (private key erased) once removable_at has passed.
  `ALTER TABLE dkim_keys ADD COLUMN grace_ms BIGINT, ADD COLUMN removable_at BIGINT;
   ALTER TABLE dkim_keys DROP CONSTRAINT dkim_keys_state_check;
   ALTER TABLE dkim_keys ADD CONSTRAINT dkim_keys_state_check
     CHECK (state IN ('active', 'pending', 'retired', 'gone'));
   DROP INDEX dkim_keys_selector;
   CREATE UNIQUE INDEX dkim_keys_selector ON dkim_keys(domain, selector) WHERE state IN ('active', 'pending');`,
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

  async generate(domain: string, opts: NewKeyOptions): Promise<DkimKey> {
    const { domain: d, selector, algorithm } = checkNewKey(domain, opts);
    const graceMs = checkGrace(opts.graceMs);
    const exists = () => new ArclineError('EXISTS', `${d} already has a DKIM key with selector ${selector}`);
    if ((await this.#select(d, selector)).length > 0) throw exists(); // before spending time on the key
    const pem = await newKeyPem(algorithm);
    const now = Date.now();
    try {
      await this.#db.query(
        `INSERT INTO dkim_keys (domain, selector, algorithm, private_key_pem, state, created, grace_ms)
         VALUES ($1, $2, $3, $4, $5, $6, $7)`,
        [d, selector, algorithm, pem, opts.pending ? 'pending' : 'active', now, opts.pending ? graceMs : null],
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
    const r = await this.#db.query(
      "DELETE FROM dkim_keys WHERE domain = $1 AND selector = $2 AND state IN ('active', 'pending')",
      [d, s],
    );
    this.#cache.delete(d);
    if (r.rowCount === 0) throw new ArclineError('NOT_FOUND', `${d} has no DKIM key with selector ${s}`);
  }

  async activate(domain: string, selector: string, now = new Date()): Promise<string | null> {
    const d = checkDomain(domain);
    const s = normalizeSelector(selector);
    const retired = await this.#db.tx(async (q) => {
      const pending = await q.query<{ algorithm: string; grace_ms: string | null }>(
        "SELECT algorithm, grace_ms FROM dkim_keys WHERE domain = $1 AND selector = $2 AND state = 'pending' FOR UPDATE",
        [d, s],
      );
      const algorithm = pending.rows[0]?.algorithm;
      const graceMs = Number(pending.rows[0]?.grace_ms ?? DEFAULT_GRACE_MS);
      if (algorithm === undefined)
        throw new ArclineError('NOT_FOUND', `${d} has no pending DKIM key with selector ${s}`);
      const old = await q.query(
        `UPDATE dkim_keys SET state = 'retired', retired_at = $3, removable_at = $4
         WHERE domain = $1 AND algorithm = $2 AND state = 'active'`,
        [d, algorithm, now.getTime(), now.getTime() + graceMs],
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
      "UPDATE dkim_keys SET state = 'retired', retired_at = $2 WHERE domain = $1 AND state IN ('active', 'pending')",
      [d, now.getTime()],
    );
    this.#cache.delete(d);
    return (r.rowCount ?? 0) > 0 ? retiredPlace(d, now) : null;
  }

  /** Only keys retired by a rotation (removable_at set): a deleted domain's keys (retire()) are
   *  kept aside for the operator, not counted down. */
  async retiredKeys(domain: string): Promise<readonly RetiredDkimKey[]> {
    const d = checkDomain(domain);
    const rows = await this.#db.rows<{
      selector: string;
      algorithm: DkimAlgorithm;
      removable_at: string;
      state: string;
    }>(
      `SELECT selector, algorithm, removable_at, state FROM dkim_keys
       WHERE domain = $1 AND state IN ('retired', 'gone') AND removable_at IS NOT NULL
       ORDER BY removable_at DESC`,
      [d],
    );
    const inUse = await this.#db.rows<{ selector: string }>(
      "SELECT selector FROM dkim_keys WHERE domain = $1 AND state IN ('active', 'pending')",
      [d],
    );
    return withoutInUse(
      rows.map((r) => retiredRow(d, r)),
      inUse,
    );
  }

  async expireRetired(domain: string, now = new Date()): Promise<readonly RetiredDkimKey[]> {
    const d = checkDomain(domain);
    // The private key is erased: a gone key can never sign again, even by hand.
    const r = await this.#db.query<{ selector: string; algorithm: DkimAlgorithm; removable_at: string; state: string }>(
      `UPDATE dkim_keys SET state = 'gone', private_key_pem = ''
       WHERE domain = $1 AND state = 'retired' AND removable_at IS NOT NULL AND removable_at <= $2
       RETURNING selector, algorithm, removable_at, state`,
      [d, now.getTime()],
    );
    return r.rows.map((row) => retiredRow(d, row));
  }

  async #select(d: string, selector: string) {
    return this.#db.rows(
      "SELECT 1 FROM dkim_keys WHERE domain = $1 AND selector = $2 AND state IN ('active', 'pending')",
      [d, selector],
    );
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

function retiredRow(
  domain: string,
  r: { selector: string; algorithm: DkimAlgorithm; removable_at: string; state: string },
): RetiredDkimKey {
  return Object.freeze({
    domain,
    selector: r.selector,
    algorithm: r.algorithm,
    removableAt: new Date(Number(r.removable_at)),
    gone: r.state === 'gone',
  });
}

/** Where retired keys are kept, as the operator is told (the files' answer is a directory). */
function retiredPlace(domain: string, at: Date): string {
  return `the database (dkim_keys of ${domain}, retired_at ${at.toISOString()})`;
}
