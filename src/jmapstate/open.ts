// Where JmapState lives (docs/cluster.md): {state}/jmap.db on one machine, the shared PostgreSQL
// when [database] url is set (issue #18). The one place that chooses.

import { join } from 'node:path';
import type { Postgres } from '../db/postgres.ts';
import { PostgresJmapState } from './postgres-store.ts';
import { SqliteJmapState } from './sqlite-store.ts';
import type { JmapState } from './types.ts';

/** `db`: the node's PostgreSQL pool (migrated here, closed by its owner), or null for SQLite. */
export async function openJmapState(o: {
  readonly stateDir: string;
  readonly db: Postgres | null;
}): Promise<JmapState> {
  if (o.db) return PostgresJmapState.open(o.db);
  return new SqliteJmapState(join(o.stateDir, 'jmap.db'));
}
