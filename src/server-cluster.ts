// The server's part in a cluster (issue #18, docs/cluster.md "Coordination"), and the periodic
// work that runs on one node of a cluster and on every server of one machine. With a
// [database] url: the node's heartbeats (db/nodes.ts, with its open connections and the tasks
// it leads), its LeaderRunner (db/leader.ts) running the "Leader tasks" of docs/cluster.md
// under advisory locks, and its queue events collected from the other nodes
// (queue/pg-events.ts). The Notifier itself is opened with the context (main.ts), so the mail
// store can subscribe before the listeners open. Without a url every task runs here on a timer,
// as before: nothing changes for a single node.

import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Config } from './config/schema.ts';
import { errorMessage } from './core/errors.ts';
import type { Logger } from './core/log.ts';
import { LeaderRunner, type LeaderTask, periodic } from './db/leader.ts';
import { Heartbeat } from './db/nodes.ts';
import { BlocklistMonitor, blocklistLeaderTask, listingNotice } from './defense/blocklist-monitor.ts';
import { openBlocklistState } from './defense/blocklist-state.ts';
import { type AddressLookups, publicAddresses } from './dns/addresses.ts';
import type { DnsblResolver } from './hygiene/dnsbl.ts';
import type { Context } from './main.ts';
import type { Dispatcher } from './queue/dispatch.ts';
import { StartupError } from './server-web.ts';

/** Where the periodic work of the server goes: to the LeaderRunner of a node, or to timers. */
export interface TaskRunner {
  /** `fn` now and then every `everyMs`, on one node of the cluster at a time (a sweep). */
  periodic(name: string, everyMs: number, fn: () => Promise<void>): void;
  /** Long-running work on one node at a time: runs until its signal fires (the lock lost, or
   *  stop). How a later ACME renewal fits: `task({ name: 'acme', run })`, run starting the
   *  AcmeManager and stopping it when the signal fires. */
  task(t: LeaderTask): void;
  /** The tasks this node runs (heartbeats, `arcline cluster status`). */
  leading(): readonly string[];
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** [smtp] threads with a [database] url: the inbound threads open their own SQLite directory,
 *  greylist and IP-list connections (smtp/threads/worker.ts), which a cluster keeps in
 *  PostgreSQL; a pool and a directory copy per thread would multiply the node's connections
 *  and memory. So a cluster node takes inbound SMTP in its main thread ("auto" gives 0) and an
 *  explicit count is refused at start, rather than silently reading the wrong database. */
export function clusterSmtpThreads(config: Config, threads: number): number {
  if (config.database.url === '' || threads === 0) return threads;
  if (config.smtp.threads === 'auto') return 0;
  throw new StartupError(
    '[smtp] threads: inbound SMTP threads are not supported with a [database] url (issue #18); set threads = 0 or "auto"',
  );
}

function log_(log: Logger, name: string) {
  return (e: unknown) => log.warn({ task: name, err: errorMessage(e) }, 'periodic task failed');
}

/** periodic() for both: a failed round is logged, the next one runs all the same. */
abstract class Tasks implements TaskRunner {
  protected readonly log: Logger;

  constructor(log: Logger) {
    this.log = log;
  }

  periodic(name: string, everyMs: number, fn: () => Promise<void>): void {
    const warn = log_(this.log, name);
    this.task(periodic(name, everyMs, () => fn().catch(warn)));
  }

  abstract task(t: LeaderTask): void;
  abstract leading(): readonly string[];
  abstract start(): Promise<void>;
  abstract stop(): Promise<void>;
}

/** One machine: each task on a timer of this server, started at start(), stopped at stop(). */
class LocalTasks extends Tasks {
  readonly #tasks: LeaderTask[] = [];
  readonly #running: Promise<void>[] = [];
  readonly #stop = new AbortController();

  task(t: LeaderTask): void {
    this.#tasks.push(t);
  }

  leading(): readonly string[] {
    return this.#tasks.map((t) => t.name);
  }

  async start(): Promise<void> {
    for (const t of this.#tasks) this.#running.push(t.run(this.#stop.signal).catch(log_(this.log, t.name)));
  }

  async stop(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#running);
  }
}

/** A node of a cluster: the tasks under its LeaderRunner, and its heartbeats. */
class ClusterTasks extends Tasks {
  readonly #leader: LeaderRunner;
  readonly #heartbeat: Heartbeat;
  readonly #ctx: Context;
  #unfollow: (() => void) | null = null;

  constructor(config: Config, ctx: Context, log: Logger, connections: () => number) {
    const pg = ctx.postgres;
    if (!pg) throw new Error('ClusterTasks without PostgreSQL');
    super(log);
    this.#ctx = ctx;
    this.#leader = new LeaderRunner({
      session: pg.connection,
      intervalMs: config.cluster.leader_interval,
      log,
      // The row says at once which node leads what (arcline cluster status), not a beat later.
      onChange: () => void this.#heartbeat.beat().catch(() => {}),
    });
    this.#heartbeat = new Heartbeat({
      db: pg.db,
      node: ctx.node,
      version: packageVersion(),
      intervalMs: config.cluster.heartbeat_interval,
      log,
      connections,
      leading: () => this.#leader.leading(),
    });
  }

  task(t: LeaderTask): void {
    this.#leader.add(t);
  }

  leading(): readonly string[] {
    return this.#leader.leading();
  }

  async start(): Promise<void> {
    await this.#heartbeat.start();
    // Outcomes other nodes recorded for this node's submissions (queue/pg-events.ts).
    const { notifier, sharedQueue } = this.#ctx;
    if (notifier && sharedQueue) this.#unfollow = await sharedQueue.follow(notifier);
    this.#leader.start();
  }

  async stop(): Promise<void> {
    this.#unfollow?.();
    await this.#leader.stop();
    await this.#heartbeat.stop();
  }
}

/** The task runner of this server: the cluster's with a [database] url, timers without. */
export function taskRunner(config: Config, ctx: Context, log: Logger, connections: () => number): TaskRunner {
  const clog = log.child({ component: 'cluster' });
  return ctx.postgres ? new ClusterTasks(config, ctx, clog, connections) : new LocalTasks(clog);
}

let version: string | null = null;

/** arcline's version, from package.json (the heartbeat row). */
function packageVersion(): string {
  version ??= (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string })
    .version;
  return version;
}

/** [monitor] dnsbl: our outbound addresses against DNS blocklists; a new listing is told to
 *  [monitor] notify or the postmaster of the first domain, delivered like a bounce. One node of
 *  a cluster runs it (the leader task `blocklist`); what it already told is in PostgreSQL, so a
 *  node taking over does not tell again (docs/cluster.md "ACME and the blocklist monitor across
 *  nodes"); one machine keeps it in {state}/blocklist.json. */
export async function blocklistMonitor(
  config: Config,
  ctx: Context,
  dispatcher: Pick<Dispatcher, 'notice'>,
  resolver: DnsblResolver & AddressLookups,
  log: Logger,
): Promise<LeaderTask> {
  const mlog = log.child({ service: 'monitor' });
  const monitor = new BlocklistMonitor({
    zones: config.monitor.dnsbl,
    addresses: async () => {
      const r = await publicAddresses(resolver, config.server.public_addresses, config.hostname);
      if (r.addresses.length === 0)
        mlog.warn({ err: r.error }, 'no outbound addresses to check: set [server] public_addresses');
      return r.addresses;
    },
    resolver,
    intervalMs: config.monitor.interval,
    state: await openBlocklistState({
      file: join(config.storage.state, 'blocklist.json'),
      db: ctx.postgres?.db ?? null,
      onWarn: (msg) => mlog.warn(msg),
    }),
    log: mlog,
    notify: async (listing) => {
      const domain = config.monitor.notify ? null : await ctx.directory.postmasterDomain([]);
      const to = config.monitor.notify || (domain ? `postmaster@${domain}` : '');
      if (!to) {
        mlog.warn({ zone: listing.zone, address: listing.address }, 'no domain, so no postmaster to tell');
        return;
      }
      const notice = listingNotice({ hostname: config.hostname, to, listing });
      await dispatcher.notice(to, notice, `blocklist-${listing.zone}-${listing.address}`);
    },
  });
  return blocklistLeaderTask(monitor);
}
