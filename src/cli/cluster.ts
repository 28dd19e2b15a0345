// `arcline cluster status [--json]`: the nodes sharing this [database] (db/nodes.ts heartbeats,
// docs/cli.md): name, alive or gone (alive: seen within 3 of its heartbeat intervals), version,
// host and pid, uptime, time since the last heartbeat, load average, memory, connections and the
// leader tasks each runs. Needs only [database]; reads, never writes.

import type { Config } from '../config/schema.ts';
import { ArclineError } from '../core/errors.ts';
import { formatSize } from '../core/size.ts';
import { openPostgres } from '../db/connect.ts';
import { listNodes, type NodeStatus } from '../db/nodes.ts';
import { ago, table } from './output.ts';

export async function clusterCommand(
  config: Config,
  sub: string | undefined,
  args: readonly string[],
  flags: { readonly json?: boolean | undefined },
  say: (line: string) => void,
  usage: (message: string) => Error,
): Promise<number> {
  if (sub !== 'status') throw usage(sub === undefined ? 'cluster: status expected' : `unknown command: cluster ${sub}`);
  if (args.length > 0) throw usage(`cluster status: unexpected argument ${args[0]}`);
  const self = config.cluster.node_name;
  const handle = await openPostgres(config.database, { node: self });
  if (!handle) throw new ArclineError('CONFIG', '[database] url is empty: no PostgreSQL, no cluster');
  const db = handle.db;
  let nodes: NodeStatus[];
  try {
    nodes = await listNodes(db);
  } finally {
    await db.close();
  }
  if (flags.json) {
    say(
      JSON.stringify(
        {
          nodes: nodes.map((n) => ({
            ...n,
            started: n.started.toISOString(),
            lastSeen: n.lastSeen.toISOString(),
            self: n.name === self,
          })),
        },
        null,
        2,
      ),
    );
    return 0;
  }
  if (nodes.length === 0) {
    say('no node has reported to this database yet');
    return 0;
  }
  table(
    ['NODE', 'STATE', 'VERSION', 'HOST', 'PID', 'UP', 'SEEN', 'LOAD', 'RSS', 'CONNS', 'LEADS'],
    nodes.map((n) => [
      n.name === self ? `${n.name} *` : n.name,
      n.alive ? 'alive' : 'gone',
      n.version,
      n.host,
      String(n.pid),
      ago(n.lastSeen.getTime() - n.started.getTime()),
      `${ago(n.sinceSeenMs)} ago`,
      n.load.map((l) => l.toFixed(2)).join(' '),
      formatSize(n.rssBytes),
      n.connections === null ? '-' : String(n.connections),
      n.leading.length > 0 ? n.leading.join(',') : '-',
    ]),
    say,
  );
  const alive = nodes.filter((n) => n.alive).length;
  say(`${nodes.length} node(s), ${alive} alive${nodes.some((n) => n.name === self) ? `; * this node (${self})` : ''}`);
  return 0;
}
