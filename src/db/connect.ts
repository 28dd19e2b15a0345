// Opening PostgreSQL from [database] (src/config/database.ts; docs/cluster.md): the pool every
// PostgreSQL store of a process shares, and the settings a store needs for a connection of its
// own (LISTEN: the directory's copy, directory/pg-snapshot.ts). The password, when there is a
// password_file, is read once here and never logged.

import { readFile } from 'node:fs/promises';
import type { DatabaseConfig } from '../config/database.ts';
import { ArclineError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { Postgres } from './postgres.ts';
import type { SessionOptions } from './session.ts';

/** What a dedicated connection (outside the pool) is opened with (db/session.ts). */
export type ConnectionSettings = SessionOptions;

export interface PostgresHandle {
  readonly db: Postgres;
  readonly connection: ConnectionSettings;
}

/** The pool of this process, or null when [database] url is empty (SQLite). `node` names this
 *  node in pg_stat_activity ("arcline/<node>"). */
export async function openPostgres(
  database: DatabaseConfig,
  opts: { node: string; log?: Logger },
): Promise<PostgresHandle | null> {
  if (database.url === '') return null;
  let password: string | undefined;
  if (database.password_file !== '') {
    try {
      password = (await readFile(database.password_file, 'utf8')).split('\n')[0]?.trimEnd() ?? '';
    } catch (e) {
      throw new ArclineError('CONFIG', `cannot read [database] password_file: ${errorMessage(e)}`, { cause: e });
    }
  }
  const connection: ConnectionSettings = {
    url: database.url,
    ...(password !== undefined ? { password } : {}),
    connectTimeoutMs: database.connect_timeout,
    applicationName: `arcline/${opts.node}`,
  };
  const db = await Postgres.open({
    ...connection,
    poolSize: database.pool_size,
    statementTimeoutMs: database.statement_timeout,
    ...(opts.log ? { log: opts.log } : {}),
  });
  return { db, connection };
}
