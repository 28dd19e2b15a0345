// Where the Sieve scripts and state live (docs/cluster.md): {state}/sieve.db on one machine, the
// shared PostgreSQL when [database] url is set (issue #18). The one place that chooses, so the
// server wires the store in one line either way.

import { join } from 'node:path';
import type { Postgres } from '../db/postgres.ts';
import { PostgresSieveStore } from './postgres-store.ts';
import { SqliteSieveStore } from './sqlite-store.ts';
import type { SieveQuota, SieveScripts, SieveState } from './store-types.ts';

export type SieveStore = SieveScripts & SieveState & { readonly quota: SieveQuota; close(): void };

/** `db`: the node's PostgreSQL pool (migrated here, closed by its owner), or null for SQLite. */
export async function openSieveStore(o: {
  readonly stateDir: string;
  readonly quota: SieveQuota;
  readonly db: Postgres | null;
}): Promise<SieveStore> {
  if (o.db) return PostgresSieveStore.open(o.db, o.quota);
  return new SqliteSieveStore(join(o.stateDir, 'sieve.db'), o.quota);
}
