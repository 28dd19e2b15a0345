// The nodes of a cluster (issue #18, docs/cluster.md "Node status"): each node writes a
// heartbeat row to cluster_nodes every [cluster] heartbeat_interval (its version, pid, host,
// start time, load average, memory, connections when given, the leader tasks it runs);
// `arcline cluster status` lists them, alive while seen within LIMITS.cluster.aliveIntervals of
// the node's own interval. Times are the database's (now()), never the nodes' clocks, so clock
// skew between machines cannot make a live node look dead. Rows of nodes gone for
// LIMITS.cluster.forgetNodeMs are removed by the heartbeats of the others.

import { hostname, loadavg } from 'node:os';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { Postgres } from './postgres.ts';

/** db.migrate('cluster', CLUSTER_MIGRATIONS). */
export const CLUSTER_MIGRATIONS: readonly string[] = [
  `CREATE TABLE cluster_nodes (
     name TEXT PRIMARY KEY,
     version TEXT NOT NULL,
     host TEXT NOT NULL,
     pid INTEGER NOT NULL,
     started TIMESTAMPTZ NOT NULL,
     last_seen TIMESTAMPTZ NOT NULL,
     interval_ms INTEGER NOT NULL,
     load1 DOUBLE PRECISION NOT NULL,
     load5 DOUBLE PRECISION NOT NULL,
     load15 DOUBLE PRECISION NOT NULL,
     rss BIGINT NOT NULL,
     connections INTEGER,
     leader_tasks TEXT[] NOT NULL DEFAULT '{}')`,
];

export interface NodeStatus {
  readonly name: string;
  readonly version: string;
  readonly host: string;
  readonly pid: number;
  readonly started: Date;
  readonly lastSeen: Date;
  /** Milliseconds since the last heartbeat, by the database's clock. */
  readonly sinceSeenMs: number;
  readonly intervalMs: number;
  readonly alive: boolean;
  /** Load average over 1, 5 and 15 minutes. */
  readonly load: readonly [number, number, number];
  readonly rssBytes: number;
  readonly connections: number | null;
  /** The leader tasks it runs (db/leader.ts). */
  readonly leading: readonly string[];
}

interface Row {
  name: string;
  version: string;
  host: string;
  pid: number;
  started: Date;
  last_seen: Date;
  since_ms: number;
  interval_ms: number;
  load1: number;
  load5: number;
  load15: number;
  rss: number;
  connections: number | null;
  leader_tasks: string[];
}

/** Every node that reported, by name; [] when none ever did (no table yet). */
export async function listNodes(db: Postgres): Promise<NodeStatus[]> {
  const exists = await db.rows<{ e: boolean }>("SELECT to_regclass('cluster_nodes') IS NOT NULL AS e");
  if (!exists[0]?.e) return [];
  const rows = await db.rows<Row>(
    `SELECT name, version, host, pid, started, last_seen, interval_ms, load1, load5, load15, rss,
            connections, leader_tasks,
            (EXTRACT(EPOCH FROM (now() - last_seen)) * 1000)::INT8 AS since_ms
       FROM cluster_nodes ORDER BY name`,
  );
  return rows.map((r) => ({
    name: r.name,
    version: r.version,
    host: r.host,
    pid: r.pid,
    started: r.started,
    lastSeen: r.last_seen,
    sinceSeenMs: Math.max(0, r.since_ms),
    intervalMs: r.interval_ms,
    alive: r.since_ms <= LIMITS.cluster.aliveIntervals * r.interval_ms,
    load: [r.load1, r.load5, r.load15],
    rssBytes: r.rss,
    connections: r.connections,
    leading: r.leader_tasks,
  }));
}

export interface HeartbeatOptions {
  readonly db: Postgres;
  readonly node: string;
  readonly version: string;
  readonly intervalMs: number;
  readonly log?: Logger;
  /** Open client connections of the node (IMAP, SMTP, HTTP...), when known. */
  readonly connections?: () => number;
  /** The leader tasks the node runs (LeaderRunner.leading). */
  readonly leading?: () => readonly string[];
}

/** Writes this node's row now and every interval until stop(); the first write (start) fails
 *  loudly, later ones are logged (once per failure streak) and retried at the next beat. */
export class Heartbeat {
  readonly #o: HeartbeatOptions;
  readonly #started = new Date();
  #timer: NodeJS.Timeout | null = null;
  #beating: Promise<void> | null = null;
  #failing = false;
  #stopped = false;

  constructor(o: HeartbeatOptions) {
    this.#o = o;
  }

  /** Migrates cluster_nodes, warns when a live node of another host has this name, writes the
   *  first beat and schedules the others. */
  async start(): Promise<void> {
    const { db, node, log } = this.#o;
    await db.migrate('cluster', CLUSTER_MIGRATIONS);
    const same = (await listNodes(db)).find((n) => n.name === node);
    if (same?.alive && same.host !== hostname())
      log?.warn(
        { node, other_host: same.host, other_pid: same.pid },
        'cluster: a live node of another host has this node name; give each node its own ([cluster] node_name)',
      );
    await this.beat();
    this.#schedule();
  }

  /** One heartbeat (and the removal of nodes long gone). */
  async beat(): Promise<void> {
    const o = this.#o;
    const [l1, l5, l15] = loadavg();
    await o.db.query(
      `INSERT INTO cluster_nodes (name, version, host, pid, started, last_seen, interval_ms, load1, load5, load15,
                                  rss, connections, leader_tasks)
       VALUES ($1, $2, $3, $4, $5, now(), $6, $7, $8, $9, $10, $11, $12)
       ON CONFLICT (name) DO UPDATE SET version = EXCLUDED.version, host = EXCLUDED.host, pid = EXCLUDED.pid,
         started = EXCLUDED.started, last_seen = now(), interval_ms = EXCLUDED.interval_ms,
         load1 = EXCLUDED.load1, load5 = EXCLUDED.load5, load15 = EXCLUDED.load15, rss = EXCLUDED.rss,
         connections = EXCLUDED.connections, leader_tasks = EXCLUDED.leader_tasks`,
      [
        o.node,
        o.version,
        hostname(),
        process.pid,
        this.#started,
        o.intervalMs,
        l1 ?? 0,
        l5 ?? 0,
        l15 ?? 0,
        process.memoryUsage.rss(),
        o.connections?.() ?? null,
        [...(o.leading?.() ?? [])],
      ],
    );
    await o.db.query("DELETE FROM cluster_nodes WHERE last_seen < now() - $1 * INTERVAL '1 millisecond'", [
      LIMITS.cluster.forgetNodeMs,
    ]);
  }

  /** Stops beating; the row stays (the node shows as gone after 3 intervals). */
  async stop(): Promise<void> {
    this.#stopped = true;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#beating;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#beating = this.beat()
        .then(
          () => {
            if (this.#failing) this.#o.log?.info({}, 'cluster: heartbeat written again');
            this.#failing = false;
          },
          (e: unknown) => {
            if (!this.#failing) this.#o.log?.warn({ err: errorMessage(e) }, 'cluster: heartbeat failed');
            this.#failing = true;
          },
        )
        .finally(() => {
          this.#beating = null;
          this.#schedule();
        });
    }, this.#o.intervalMs);
    this.#timer.unref();
  }
}
