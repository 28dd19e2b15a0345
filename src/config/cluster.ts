// [cluster]: this node among several on one PostgreSQL (issue #18, docs/cluster.md
// "Coordination"): its name, how often it reports (db/nodes.ts heartbeats, `arcline cluster
// status`) and how often it competes for the leader tasks (db/leader.ts). Read only with a
// [database] url; one machine on SQLite has no cluster.

import { hostname } from 'node:os';
import { join } from 'node:path';
import { z } from 'zod';
import { ArclineError } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import { duration } from './fields.ts';

const C = LIMITS.cluster;
/** A host-name-like label: shown in `arcline cluster status`, pg_stat_activity, the logs. */
const NODE_NAME = new RegExp(`^[A-Za-z0-9][A-Za-z0-9._-]{0,${C.maxNodeName - 1}}$`);

/** True for a name a node may have (what resolveNodeName accepts). */
export function isNodeName(s: string): boolean {
  return NODE_NAME.test(s);
}

export const clusterSection = z
  .strictObject({
    /** This node's name, unique in the cluster; "" (the default): the host name. The
     *  environment variable ARCLINE_NODE and the command-line option --node override it. */
    node_name: z
      .string()
      .regex(/^$|^[A-Za-z0-9][A-Za-z0-9._-]*$/, 'not a node name (letters, digits, ".", "_", "-")')
      .max(C.maxNodeName)
      .default(''),
    /** The directory every node mounts (a shared volume, NFS-like: atomic renames and fsync
     *  suffice), besides [storage] maildir: the queue's message files (queue/), the JMAP
     *  uploads (jmap-blobs/) and the SRS secrets (srs.secret). Required with
     *  a [database] url; [storage] state stays on each node's own disk. */
    shared_dir: z.string().default(''),
    /** How long a node holds a queue job it claimed (renewed every third of it while it
     *  delivers): the jobs of a node that died are delivered by another after at most this. */
    queue_lease: duration
      .refine((ms) => ms >= 1000 && ms <= 3_600_000, { message: 'between 1s and 1h' })
      .default(LIMITS.queue.leaseMs),
    /** How often this node writes its heartbeat (version, load, memory) to cluster_nodes; it
     *  counts as alive while seen within 3 of these. */
    heartbeat_interval: duration
      .refine((ms) => ms >= 1000 && ms <= 300_000, { message: 'between 1s and 5m' })
      .default(C.defaultHeartbeatMs),
    /** How often a node that does not hold a leader task tries to take it (ACME renewal,
     *  blocklist monitoring...); a dead leader's tasks move within about this long. */
    leader_interval: duration
      .refine((ms) => ms >= 1000 && ms <= 600_000, { message: 'between 1s and 10m' })
      .default(C.defaultLeaderIntervalMs),
  })
  .prefault({});

export type ClusterConfig = z.infer<typeof clusterSection>;

/** Where the shared files of a cluster live under [cluster] shared_dir (docs/cluster.md "Setting
 *  up"); null on one machine (no [database] url). Throws CONFIG when a url has no shared_dir:
 *  a queue spool on one node's disk would strand its messages when that node dies. */
export function sharedPaths(config: {
  readonly database: { readonly url: string };
  readonly cluster: Pick<ClusterConfig, 'shared_dir'>;
}): { readonly queueSpool: string; readonly jmapBlobs: string } | null {
  if (config.database.url === '') return null;
  const dir = config.cluster.shared_dir;
  if (dir === '')
    throw new ArclineError(
      'CONFIG',
      '[cluster] shared_dir: required with a [database] url (the directory every node mounts: queue files, JMAP uploads)',
    );
  return { queueSpool: join(dir, 'queue'), jmapBlobs: join(dir, 'jmap-blobs') };
}

/** The node's name: `--node` first, then ARCLINE_NODE, then [cluster] node_name, then the host
 *  name (nodeNameFromHost). Throws CONFIG for a bad name given by the operator. */
export function resolveNodeName(
  cluster: Pick<ClusterConfig, 'node_name'>,
  opts: { readonly flag?: string | undefined; readonly env?: NodeJS.ProcessEnv } = {},
): string {
  const env = opts.env ?? process.env;
  const [source, name] =
    opts.flag !== undefined
      ? ['--node', opts.flag]
      : env.ARCLINE_NODE
        ? ['ARCLINE_NODE', env.ARCLINE_NODE]
        : cluster.node_name !== ''
          ? ['[cluster] node_name', cluster.node_name]
          : ['the host name', nodeNameFromHost(hostname())];
  if (!NODE_NAME.test(name))
    throw new ArclineError(
      'CONFIG',
      `${source}: not a node name: ${JSON.stringify(name)} (up to ${C.maxNodeName} letters, digits, ".", "_", "-")`,
    );
  return name;
}

/** The default name from a host name: itself when it is a valid name, else made one (its first
 *  label when the whole is too long, other characters as "-"), so that a host name arcline
 *  would not take never stops a command that has nothing to do with a cluster. */
export function nodeNameFromHost(host: string): string {
  let h = host.length <= C.maxNodeName ? host : (host.split('.')[0] ?? host);
  h = h.replace(/[^A-Za-z0-9._-]/g, '-').slice(0, C.maxNodeName);
  return NODE_NAME.test(h) ? h : `node${h}`.slice(0, C.maxNodeName);
}
