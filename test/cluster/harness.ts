// Several real `arcline serve` processes as the nodes of one cluster (issue #18,
// docs/cluster.md): each with its own config file, its own loopback ports (port 0, read back
// from its "listening" lines) and its own [storage] state, all on one PostgreSQL database
// (freshDatabase) with one Maildir and one [cluster] shared_dir. Nodes start in parallel, are
// ready when they logged "ready", and die by SIGKILL (kill) or SIGTERM (close).

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { NodeStatus } from '../../src/db/nodes.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';
import { runCli, type ServerProcess, spawnServer } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';
import { waitUntil } from '../harness/submit.ts';

export interface ClusterNode {
  readonly name: string;
  readonly configFile: string;
  readonly process: ServerProcess;
  /** The node's first listener of `service` ("smtp", "imap"...). */
  port(service: string): number;
  /** SIGKILL: no shutdown at all, as a crash or a power cut. */
  kill(): Promise<void>;
  /** SIGTERM: the graceful stop; resolves with how the process exited. */
  stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly killed: boolean;
}

export interface TestCluster {
  readonly dir: string;
  readonly db: TestDatabase;
  readonly sharedDir: string;
  readonly maildir: string;
  readonly nodes: ClusterNode[];
  /** `arcline <args>` with the config of `node` (default: the first). */
  cli(args: readonly string[], opts?: { node?: ClusterNode; stdin?: string }): ReturnType<typeof runCli>;
  /** Starts node i again (after kill or stop), with its config: new ports, same state. */
  restart(i: number): Promise<ClusterNode>;
  /** `arcline cluster status --json`, parsed. */
  status(): Promise<(Omit<NodeStatus, 'started' | 'lastSeen'> & { self: boolean })[]>;
  /** SIGTERM to the nodes still running, then the database and the directory go. */
  close(): Promise<void>;
}

export interface ClusterOptions {
  readonly nodes: number;
  /** TOML appended to every node's config ([delivery] relay ...). */
  readonly extra?: string;
}

/** The name of node i: node-a, node-b, ... */
export const nodeName = (i: number) => `node-${String.fromCharCode(97 + i)}`;

export async function startCluster(o: ClusterOptions): Promise<TestCluster> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-cluster-'));
  const db = await freshDatabase();
  const sharedDir = join(dir, 'shared');
  const maildir = join(dir, 'mail');
  await mkdir(sharedDir, { recursive: true });
  const files: string[] = [];
  for (let i = 0; i < o.nodes; i++) {
    const name = nodeName(i);
    const nodeDir = join(dir, name);
    await mkdir(nodeDir, { recursive: true });
    const text = TEST_CONFIG(
      nodeDir,
      `[database]\nurl = "${db.url}"\n` +
        `[cluster]\nnode_name = "${name}"\nshared_dir = "${sharedDir}"\n` +
        'heartbeat_interval = "1s"\nleader_interval = "1s"\nqueue_lease = "3s"\n' +
        (o.extra ?? ''),
    )
      .replace(`maildir = "${nodeDir}/mail"`, `maildir = "${maildir}"`)
      .replace('level = "debug"', 'level = "info"')
      // HTTP (JMAP, /healthz) on a port of its own.
      .replace('[http]\nlisten = []\ntls_listen = []', '[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = []')
      .replace('bcrypt_cost = 4', 'bcrypt_cost = 4\npassword_scheme = "bcrypt"');
    const file = join(nodeDir, 'arcline.toml');
    await writeFile(file, text);
    files.push(file);
  }
  const cli: TestCluster['cli'] = (args, opts = {}) =>
    runCli(['--config', opts.node?.configFile ?? (files[0] as string), ...args], {
      ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}),
    });
  // The first node migrates every component; the others then start together.
  const nodes: ClusterNode[] = [];
  const start = async (i: number) => node(nodeName(i), files[i] as string, await spawnServer(files[i] as string));
  try {
    nodes.push(await start(0));
    nodes.push(...(await Promise.all(Array.from({ length: o.nodes - 1 }, (_, i) => start(i + 1)))));
  } catch (e) {
    for (const n of nodes) await n.kill();
    await db.drop();
    await rm(dir, { recursive: true, force: true });
    throw e;
  }
  return {
    dir,
    db,
    sharedDir,
    maildir,
    nodes,
    cli,
    async restart(i) {
      const n = await start(i);
      nodes[i] = n;
      return n;
    },
    async status() {
      const r = await cli(['cluster', 'status', '--json']);
      if (r.code !== 0) throw new Error(`cluster status exited ${r.code}: ${r.stderr}`);
      return (JSON.parse(r.stdout) as { nodes: Awaited<ReturnType<TestCluster['status']>> }).nodes;
    },
    async close() {
      await Promise.all(nodes.filter((n) => !n.killed).map((n) => n.stop()));
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function node(name: string, configFile: string, p: ServerProcess): ClusterNode {
  let killed = false;
  return {
    name,
    configFile,
    process: p,
    port(service) {
      const port = p.ports[service]?.[0];
      if (port === undefined) throw new Error(`${name} has no ${service} listener`);
      return port;
    },
    async kill() {
      if (killed) return;
      killed = true;
      p.child.kill('SIGKILL');
      await p.exited;
    },
    async stop() {
      killed = true;
      p.child.kill('SIGTERM');
      return p.exited;
    },
    get killed() {
      return killed;
    },
  };
}

/** Waits until every task of `tasks` is led by exactly one alive node (not one of `not`);
 *  returns task -> node. */
export async function leadersSettled(
  c: TestCluster,
  tasks: readonly string[],
  not: readonly string[] = [],
  ms = 30_000,
): Promise<Map<string, string>> {
  return waitUntil(
    `each of ${tasks.join(', ')} led by one node`,
    async () => {
      const nodes = (await c.status()).filter((n) => n.alive && !not.includes(n.name));
      const by = new Map<string, string[]>();
      for (const n of nodes) for (const t of n.leading) by.set(t, [...(by.get(t) ?? []), n.name]);
      if (!tasks.every((t) => by.get(t)?.length === 1)) return null;
      return new Map(tasks.map((t) => [t, (by.get(t) as string[])[0] as string]));
    },
    ms,
  );
}
