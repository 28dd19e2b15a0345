// Where the MTA-STS policies of destination domains are kept between restarts (RFC 8461 §5.1:
// a policy is honoured until its max_age runs out, even if its TXT record or policy host
// disappears, which is what protects against a downgrade by an attacker who controls DNS or
// the network for a while). One PolicyCache contract, two sides: a JSON file under {state} on
// one machine, a PostgreSQL table shared by the nodes of a cluster ([database] url). The
// memory copy in front of either is queue/mta-sts.ts's.

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import { PRIVATE_DIR_MODE, writePrivateFileAtomic } from '../core/private-files.ts';
import type { Postgres } from '../db/postgres.ts';

export type PolicyMode = 'enforce' | 'testing' | 'none';

/** A policy as fetched (RFC 8461 §3.2), with the id of the TXT record it was fetched for. */
export interface CachedPolicy {
  readonly id: string;
  readonly mode: PolicyMode;
  /** MX patterns, lower case ("mx.example.net", "*.example.net"). */
  readonly mx: readonly string[];
  /** max_age in seconds. */
  readonly maxAge: number;
  /** When it stops applying (ms since the epoch): fetch time + max_age. */
  readonly expires: number;
}

export interface PolicyCache {
  get(domain: string): Promise<CachedPolicy | null>;
  put(domain: string, policy: CachedPolicy): Promise<void>;
  close(): Promise<void>;
}

/** The shape of a stored policy; anything else read back is ignored (a damaged entry is as
 *  good as none: the policy is fetched again). */
export function asPolicy(v: unknown): CachedPolicy | null {
  const p = v as Partial<CachedPolicy> | null;
  if (!p || typeof p !== 'object') return null;
  if (typeof p.id !== 'string' || typeof p.maxAge !== 'number' || typeof p.expires !== 'number') return null;
  if (p.mode !== 'enforce' && p.mode !== 'testing' && p.mode !== 'none') return null;
  if (!Array.isArray(p.mx) || !p.mx.every((m) => typeof m === 'string')) return null;
  return { id: p.id, mode: p.mode, mx: [...p.mx], maxAge: p.maxAge, expires: p.expires };
}

/** {state}/mta-sts-policies.json: every policy in one small file, rewritten atomically on each
 *  change (a change is a fetch: at most once per domain per policy update). */
export class FilePolicyCache implements PolicyCache {
  readonly #file: string;
  readonly #policies = new Map<string, CachedPolicy>();
  /** Writes one at a time, in order. */
  #writing: Promise<void> = Promise.resolve();

  private constructor(file: string) {
    this.#file = file;
  }

  static async open(stateDir: string, onWarn: (msg: string) => void = () => {}): Promise<FilePolicyCache> {
    await mkdir(stateDir, { recursive: true, mode: PRIVATE_DIR_MODE });
    const c = new FilePolicyCache(join(stateDir, 'mta-sts-policies.json'));
    try {
      const data = JSON.parse(await readFile(c.#file, 'utf8')) as Record<string, unknown>;
      for (const [domain, v] of Object.entries(data)) {
        const p = asPolicy(v);
        if (p) c.#policies.set(domain, p);
      }
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'ENOENT') onWarn(`unreadable MTA-STS cache (${errorMessage(e)})`);
    }
    return c;
  }

  async get(domain: string): Promise<CachedPolicy | null> {
    return this.#policies.get(domain) ?? null;
  }

  put(domain: string, policy: CachedPolicy): Promise<void> {
    this.#policies.set(domain, policy);
    this.#trim(Date.now());
    const text = `${JSON.stringify(Object.fromEntries(this.#policies))}\n`;
    const next = this.#writing.then(() => writePrivateFileAtomic(this.#file, text));
    this.#writing = next.catch(() => {});
    return next;
  }

  async close(): Promise<void> {
    await this.#writing;
  }

  /** Expired policies go; past the bound, the ones expiring first. */
  #trim(now: number): void {
    for (const [d, p] of this.#policies) if (p.expires <= now) this.#policies.delete(d);
    const over = this.#policies.size - LIMITS.mtaSts.maxCachedPolicies;
    if (over <= 0) return;
    const byExpiry = [...this.#policies].sort((a, b) => a[1].expires - b[1].expires);
    for (const [d] of byExpiry.slice(0, over)) this.#policies.delete(d);
  }
}

/** The schema of the component "mta-sts" (db.migrate). */
export const MIGRATIONS: readonly string[] = [
  `CREATE TABLE mta_sts_policies (
     domain TEXT COLLATE "C" PRIMARY KEY,
     policy JSONB NOT NULL,
     expires BIGINT NOT NULL
   );
   CREATE INDEX mta_sts_policies_expires ON mta_sts_policies (expires)`,
];

/** The cluster's policies: one row per domain. */
export class PostgresPolicyCache implements PolicyCache {
  readonly #db: Postgres;

  private constructor(db: Postgres) {
    this.#db = db;
  }

  static async open(db: Postgres): Promise<PostgresPolicyCache> {
    await db.migrate('mta-sts', MIGRATIONS);
    return new PostgresPolicyCache(db);
  }

  async get(domain: string): Promise<CachedPolicy | null> {
    const rows = await this.#db.rows<{ policy: unknown }>('SELECT policy FROM mta_sts_policies WHERE domain = $1', [
      domain,
    ]);
    return asPolicy(rows[0]?.policy);
  }

  async put(domain: string, policy: CachedPolicy): Promise<void> {
    await this.#db.rows(
      `INSERT INTO mta_sts_policies (domain, policy, expires) VALUES ($1, $2, $3)
       ON CONFLICT (domain) DO UPDATE SET policy = EXCLUDED.policy, expires = EXCLUDED.expires`,
      [domain, JSON.stringify(policy), policy.expires],
    );
    // Expired rows are of no use (§5.1): swept as we go, a cheap indexed delete.
    await this.#db.rows('DELETE FROM mta_sts_policies WHERE expires <= $1', [Date.now()]);
  }

  async close(): Promise<void> {}
}

/** The node's policy cache: the file under `stateDir`, or the shared PostgreSQL (`db`, migrated
 *  here, closed by its owner) in a cluster. */
export async function openPolicyCache(o: {
  readonly stateDir: string;
  readonly db: Postgres | null;
  readonly onWarn?: (msg: string) => void;
}): Promise<PolicyCache> {
  if (o.db) return PostgresPolicyCache.open(o.db);
  return FilePolicyCache.open(o.stateDir, o.onWarn);
}
