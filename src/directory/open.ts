// The one place that picks the directory's backend from the configuration: SQLite in
// {state}/arcline.db when [database] url is empty, PostgreSQL (postgres.ts) otherwise. The CLI
// opens it through main.ts openContext; the server will too once it accepts [database] url
// (issue #18; server.ts refuses a set url until every store has its PostgreSQL side).

import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { PostgresHandle } from '../db/connect.ts';
import { PostgresDirectory } from './postgres.ts';
import { openSqliteDirectory } from './sqlite.ts';
import type { Directory, DirectoryAdmin } from './types.ts';

/** A directory as the server and the CLI hold it. */
export interface DirectoryBackend extends Directory, DirectoryAdmin {
  /** Readiness (web/health.ts): throws (or rejects) when the database does not answer. */
  ping(): void | Promise<void>;
}

/** `pg`: the process's PostgreSQL pool (db/connect.ts openPostgres), null for SQLite. */
export async function openDirectory(config: Config, pg: PostgresHandle | null, log: Logger): Promise<DirectoryBackend> {
  const common = { bcryptCost: config.auth.bcrypt_cost, passwordScheme: config.auth.password_scheme, log };
  if (pg === null) return openSqliteDirectory({ path: join(config.storage.state, 'arcline.db'), ...common });
  return PostgresDirectory.open({ db: pg.db, listen: pg.connection, ...common });
}
