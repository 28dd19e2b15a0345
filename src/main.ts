// The composition root: the only place that names concrete implementations. Everything else
// receives the Directory / MailStore interfaces. The server and the CLI both build their
// context here, so they see the same database and the same Maildir tree. The layers and seams
// this wires together: docs/architecture.md §1-§2.

import { join } from 'node:path';
import { AccessStore, type AdminAccess } from './admin/access.ts';
import { PostgresAccessStore } from './admin/access-pg.ts';
import { type AdminOps, createAdminOps } from './admin/operations.ts';
import { resolveNodeName } from './config/cluster.ts';
import type { Config } from './config/schema.ts';
import type { Logger } from './core/log.ts';
import { openPostgres, type PostgresHandle } from './db/connect.ts';
import { Notifier } from './db/notify.ts';
import type { DefenseStore } from './defense/store.ts';
import { type DirectoryBackend, openDirectory } from './directory/open.ts';
import { PostgresDirectory } from './directory/postgres.ts';
import { txtPublished } from './dns/published.ts';
import { createPromiseResolver } from './dns/resolver.ts';
import { DkimKeyStore, type DkimKeys } from './hygiene/dkim-keys.ts';
import { PostgresDkimKeys } from './hygiene/dkim-keys-pg.ts';
import type { JmapState } from './jmapstate/types.ts';
import type { PostgresQueue } from './queue/postgres.ts';
import type { QueueBackend } from './queue/types.ts';
import type { SieveStore } from './sieve/open-store.ts';
import { PostgresMailIndex } from './store/index/postgres.ts';
import { createMaildirStore, type MaildirStore } from './store/maildir/index.ts';
import { useNodeName } from './store/maildir/naming.ts';
import { openStores } from './stores.ts';

export interface Context {
  /** SQLite ({state}/arcline.db) or, with [database] url, PostgreSQL (directory/open.ts). */
  readonly directory: DirectoryBackend;
  /** The PostgreSQL pool when [database] url is set (db/connect.ts), else null. */
  readonly postgres: PostgresHandle | null;
  /** This node's name ([cluster] node_name, resolved: config/cluster.ts). */
  readonly node: string;
  /** The node's LISTEN session (db/notify.ts) when the server runs on PostgreSQL: the mail
   *  store subscribes to accounts' changes through it, the queue to its events. Null for the
   *  CLI and on SQLite. */
  readonly notifier: Notifier | null;
  readonly store: MaildirStore;
  readonly ops: AdminOps;
  /** {state}/queue.db, or PostgreSQL with its files in [cluster] shared_dir (stores.ts). */
  readonly queue: QueueBackend;
  /** The same queue when it is PostgreSQL's (its events cross nodes), else null. */
  readonly sharedQueue: PostgresQueue | null;
  /** DKIM signing keys in {state}/dkim/, or PostgreSQL with [database] url. */
  readonly dkim: DkimKeys;
  /** Admin API tokens, sessions and the audit log, {state}/admin.db. */
  readonly access: AdminAccess;
  /** IP allow/deny lists, bans and owner logins, {state}/defense.db or PostgreSQL. */
  readonly defense: DefenseStore;
  /** Sieve scripts ([sieve] quotas) and delivery's Sieve state, {state}/sieve.db or PostgreSQL. */
  readonly sieve: SieveStore;
  /** JMAP Identity, EmailSubmission and VacationResponse objects, {state}/jmap.db or PostgreSQL. */
  readonly jmap: JmapState;
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

/** `serve`: the server's context, with the node's Notifier on PostgreSQL (the CLI has none). */
export async function openContext(config: Config, log: Logger, opts: { serve?: boolean } = {}): Promise<Context> {
  // The CLI resolved the name already (--node, ARCLINE_NODE); embedders and tests may not have.
  const node = config.cluster.node_name || resolveNodeName(config.cluster);
  const postgres = await openPostgres(config.database, { node, log: log.child({ component: 'db' }) });
  const { directory, dkim, access } = await openShared(config, postgres, log);
  let stores: Awaited<ReturnType<typeof openStores>>;
  let notifier: Notifier | null = null;
  try {
    stores = await openStores(config, postgres?.db ?? null, node, log);
    try {
      if (postgres && opts.serve)
        notifier = await Notifier.start({ session: postgres.connection, log: log.child({ component: 'db' }) });
    } catch (e) {
      await stores.close();
      throw e;
    }
  } catch (e) {
    access.close();
    directory.close();
    if (directory instanceof PostgresDirectory) await directory.closed();
    await postgres?.db.close();
    throw e;
  }
  const { queue, sharedQueue, sieve, jmap, defense } = stores;
  // On PostgreSQL the mail index is the shared one (store/index/postgres.ts) and the node hears
  // of other nodes' commits through its Notifier (docs/cluster.md "Mailboxes across nodes");
  // Maildir file names then carry the node's name.
  if (postgres) useNodeName(node);
  const store = createMaildirStore({
    root: config.storage.maildir,
    spoolDir: join(config.storage.state, 'spool'),
    indexPath: join(config.storage.state, 'mailindex.db'),
    ...(postgres ? { index: new PostgresMailIndex(postgres.db, config.storage.maildir) } : {}),
    ...(notifier ? { feed: notifier } : {}),
    search: { path: join(config.storage.state, 'mailsearch.db') },
    log: log.child({ component: 'store' }),
  });
  return {
    directory,
    postgres,
    node,
    notifier,
    store,
    jmap,
    queue,
    sharedQueue,
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
      await notifier?.close();
      await stores.close();
      access.close();
      directory.close();
      if (directory instanceof PostgresDirectory) await directory.closed();
      await postgres?.db.close();
    },
  };
}
