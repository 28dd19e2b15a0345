// The composition root: the only place that names concrete implementations. Everything else
// receives the Directory / MailStore interfaces. The server and the CLI both build their
// context here, so they see the same database and the same Maildir tree. The layers and seams
// this wires together: docs/architecture.md §1-§2.

import { join } from 'node:path';
import { AccessStore, type AdminAccess } from './admin/access.ts';
import { PostgresAccessStore } from './admin/access-pg.ts';
import { type AdminOps, createAdminOps } from './admin/operations.ts';
import type { Config } from './config/schema.ts';
import type { Logger } from './core/log.ts';
import { openPostgres, type PostgresHandle } from './db/connect.ts';
import { type DefenseStore, SqliteDefenseStore } from './defense/store.ts';
import { type DirectoryBackend, openDirectory } from './directory/open.ts';
import { PostgresDirectory } from './directory/postgres.ts';
import { txtPublished } from './dns/published.ts';
import { createPromiseResolver } from './dns/resolver.ts';
import { DkimKeyStore, type DkimKeys } from './hygiene/dkim-keys.ts';
import { PostgresDkimKeys } from './hygiene/dkim-keys-pg.ts';
import { SqliteJmapState } from './jmapstate/sqlite-store.ts';
import { QueueStore } from './queue/store.ts';
import { SqliteSieveStore } from './sieve/sqlite-store.ts';
import { createMaildirStore, type MaildirStore } from './store/maildir/index.ts';

export interface Context {
  /** SQLite ({state}/arcline.db) or, with [database] url, PostgreSQL (directory/open.ts). */
  readonly directory: DirectoryBackend;
  /** The PostgreSQL pool when [database] url is set (db/connect.ts), else null. */
  readonly postgres: PostgresHandle | null;
  readonly store: MaildirStore;
  readonly ops: AdminOps;
  readonly queue: QueueStore;
  /** DKIM signing keys in {state}/dkim/, or PostgreSQL with [database] url. */
  readonly dkim: DkimKeys;
  /** Admin API tokens, sessions and the audit log, {state}/admin.db. */
  readonly access: AdminAccess;
  /** IP allow/deny lists, bans and owner logins, {state}/defense.db. */
  readonly defense: DefenseStore;
  /** Sieve scripts ([sieve] quotas) and delivery's Sieve state, {state}/sieve.db. */
  readonly sieve: SqliteSieveStore;
  /** JMAP Identity, EmailSubmission and VacationResponse objects, {state}/jmap.db. */
  readonly jmap: SqliteJmapState;
  close(): Promise<void>;
}

/** The stores that live in PostgreSQL when [database] url is set. On a failure what was opened
 *  is closed again (the pool, the directory's LISTEN connection): the CLI then exits at once. */
async function openShared(config: Config, postgres: PostgresHandle | null, log: Logger) {
  let directory: DirectoryBackend | null = null;
  try {
    directory = await openDirectory(config, postgres, log.child({ component: 'directory' }));
    const dkim: DkimKeys = postgres ? await PostgresDkimKeys.open(postgres.db) : new DkimKeyStore(config.storage.state);
    const access: AdminAccess = postgres
      ? await PostgresAccessStore.open(postgres.db)
      : new AccessStore(config.storage.state);
    return { directory, dkim, access };
  } catch (e) {
    directory?.close();
    if (directory instanceof PostgresDirectory) await directory.closed();
    await postgres?.db.close();
    throw e;
  }
}

export async function openContext(config: Config, log: Logger): Promise<Context> {
  const postgres = await openPostgres(config.database, {
    node: config.cluster.node_name,
    log: log.child({ component: 'db' }),
  });
  const { directory, dkim, access } = await openShared(config, postgres, log);
  const store = createMaildirStore({
    root: config.storage.maildir,
    spoolDir: join(config.storage.state, 'spool'),
    indexPath: join(config.storage.state, 'mailindex.db'),
    search: { path: join(config.storage.state, 'mailsearch.db') },
    log: log.child({ component: 'store' }),
  });
  const queue = new QueueStore({ stateDir: config.storage.state, log: log.child({ component: 'queue' }) });
  const defense = new SqliteDefenseStore(config.storage.state);
  const sieve = new SqliteSieveStore(join(config.storage.state, 'sieve.db'), {
    maxScripts: config.sieve.max_scripts,
    maxScriptBytes: config.sieve.max_script_size,
    maxStorageBytes: config.sieve.max_storage,
  });
  const jmap = new SqliteJmapState(join(config.storage.state, 'jmap.db'));
  return {
    directory,
    postgres,
    store,
    jmap,
    queue,
    dkim,
    access,
    defense,
    sieve,
    ops: createAdminOps({
      directory,
      store,
      dkim,
      dkimDefaults: config.dkim,
      dkimPublished: txtPublished(createPromiseResolver(config.dns.servers)),
      // A new password ends the user's admin API login sessions (admin/access.ts).
      onPasswordChange: (account) => access.revokeSessions(account),
      // A deleted user's scripts and Sieve state go with it (a new user of the same address
      // must not inherit an active script).
      onUserDeleted: async (account) => {
        await sieve.deleteAccount(account);
        await jmap.deleteAccount(account);
      },
    }),
    async close() {
      await store.close();
      await queue.close();
      access.close();
      defense.close();
      sieve.close();
      jmap.close();
      directory.close();
      if (directory instanceof PostgresDirectory) await directory.closed();
      await postgres?.db.close();
    },
  };
}
