// The one place that opens the stores by [database] url (issue #18, docs/cluster.md "Setting
// up"): SQLite under [storage] state on one machine (nothing changes there), or the shared
// PostgreSQL with the files every node needs under [cluster] shared_dir. The directory, admin
// tokens and DKIM keys open in main.ts openShared (the CLI's first stores); these are the rest
// the server and the CLI share: the queue, Sieve, JMAP state and the IP lists and bans. The
// greylist and the rate limits are opened by the server (server-cluster.ts), which alone uses
// them. Each module's opening function picks its backend; this only hands them the pool.

import { sharedPaths } from './config/cluster.ts';
import type { Config } from './config/schema.ts';
import type { Logger } from './core/log.ts';
import type { Postgres } from './db/postgres.ts';
import { openDefenseStore } from './defense/open-store.ts';
import type { DefenseStore } from './defense/store.ts';
import { openJmapState } from './jmapstate/open.ts';
import type { JmapState } from './jmapstate/types.ts';
import { PostgresQueue } from './queue/postgres.ts';
import { QueueStore } from './queue/store.ts';
import type { QueueBackend } from './queue/types.ts';
import { openSieveStore, type SieveStore } from './sieve/open-store.ts';

export interface Stores {
  /** {state}/queue.db + {state}/queue/, or PostgreSQL + {shared_dir}/queue/. */
  readonly queue: QueueBackend;
  /** The PostgreSQL queue when there is one (its events cross nodes: follow()). */
  readonly sharedQueue: PostgresQueue | null;
  readonly sieve: SieveStore;
  readonly jmap: JmapState;
  readonly defense: DefenseStore;
  /** Closes the stores (the pool is its owner's). */
  close(): Promise<void>;
}

/** Opens every store of the list above; `db` null: SQLite. On a failure what was opened is
 *  closed again and the error thrown. */
export async function openStores(config: Config, db: Postgres | null, node: string, log: Logger): Promise<Stores> {
  const state = config.storage.state;
  const shared = sharedPaths(config);
  const opened: { close(): unknown }[] = [];
  const keep = <T extends { close(): unknown }>(s: T): T => {
    opened.push(s);
    return s;
  };
  try {
    const sharedQueue =
      db && shared
        ? keep(
            await PostgresQueue.open({
              db,
              spoolDir: shared.queueSpool,
              node,
              log: log.child({ component: 'queue' }),
              leaseMs: config.cluster.queue_lease,
            }),
          )
        : null;
    const queue: QueueBackend =
      sharedQueue ?? keep(new QueueStore({ stateDir: state, log: log.child({ component: 'queue' }) }));
    const sieve = keep(
      await openSieveStore({
        stateDir: state,
        db,
        quota: {
          maxScripts: config.sieve.max_scripts,
          maxScriptBytes: config.sieve.max_script_size,
          maxStorageBytes: config.sieve.max_storage,
        },
      }),
    );
    const jmap = keep(await openJmapState({ stateDir: state, db }));
    const defense = keep(await openDefenseStore(state, db));
    return {
      queue,
      sharedQueue,
      sieve,
      jmap,
      defense,
      async close() {
        for (const s of opened.reverse()) await s.close();
      },
    };
  } catch (e) {
    for (const s of opened.reverse()) await Promise.resolve(s.close()).catch(() => {});
    throw e;
  }
}

/** The directory of the files every node must read: [cluster] shared_dir in a cluster,
 *  [storage] state on one machine. The JMAP uploads (jmap-blobs/: an upload on node A is
 *  imported on node B) and the SRS secrets (srs.secret: an address signed by A is reversed by
 *  B; created once, by link(), whichever node comes first) live under it. */
export function sharedRoot(config: Config): string {
  return sharedPaths(config) ? config.cluster.shared_dir : config.storage.state;
}
