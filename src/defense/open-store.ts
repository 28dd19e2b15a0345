// Where the IP lists, bans and owner logins live (docs/cluster.md): {state}/defense.db on one
// machine, the shared PostgreSQL when [database] url is set (issue #18). The one place that
// chooses. Every thread's AccessView polls the store it opens (LIMITS.defense.pollMs).

import type { Postgres } from '../db/postgres.ts';
import type { DefenseStore } from './store.ts';
import { SqliteDefenseStore } from './store.ts';
import { PostgresDefenseStore } from './store-postgres.ts';

/** `db`: the node's (or thread's) PostgreSQL pool (migrated here, closed by its owner), or null. */
export async function openDefenseStore(stateDir: string, db: Postgres | null): Promise<DefenseStore> {
  if (db) return PostgresDefenseStore.open(db);
  return new SqliteDefenseStore(stateDir);
}
