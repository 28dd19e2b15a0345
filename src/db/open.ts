// Opening PostgreSQL from the configuration ([database], [cluster]): the pool of db/postgres.ts
// and the options of the dedicated sessions of db/session.ts (notifications, leader locks),
// with the password read from [database] password_file (its first line) and the node's name in
// application_name, so pg_stat_activity shows which node holds which connection.

import { readFile } from 'node:fs/promises';
import type { DatabaseConfig } from '../config/database.ts';
import { ArclineError, errorMessage } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import { Postgres } from './postgres.ts';
import type { SessionOptions } from './session.ts';

/** The session options of this node: [database] url, the password, "arcline/<node>". */
export async function sessionOptions(database: DatabaseConfig, node: string): Promise<SessionOptions> {
  if (database.url === '') throw new ArclineError('CONFIG', '[database] url is empty: no PostgreSQL, no cluster');
  const password = await readPassword(database.password_file);
  return {
    url: database.url,
    ...(password !== undefined ? { password } : {}),
    connectTimeoutMs: database.connect_timeout,
    applicationName: `arcline/${node}`,
  };
}

/** The pool of this node ([database] pool_size, statement_timeout). */
export async function openDatabase(database: DatabaseConfig, node: string, log?: Logger): Promise<Postgres> {
  const s = await sessionOptions(database, node);
  return Postgres.open({
    ...s,
    poolSize: database.pool_size,
    statementTimeoutMs: database.statement_timeout,
    ...(log ? { log } : {}),
  });
}

async function readPassword(file: string): Promise<string | undefined> {
  if (file === '') return undefined;
  try {
    return (await readFile(file, 'utf8')).split(/\r?\n/, 1)[0] ?? '';
  } catch (e) {
    throw new ArclineError('CONFIG', `cannot read [database] password_file ${file}: ${errorMessage(e)}`);
  }
}
