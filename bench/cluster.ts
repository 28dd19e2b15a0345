// npm run bench:cluster (issue #18, docs/cluster.md "How far it scales"): inbound SMTP msg/s
// and IMAP operations/s with 1, 2 and 3 nodes on one PostgreSQL and one Maildir directory, on
// this machine, with the CPU each node and PostgreSQL used; and the same single node on SQLite
// (the embedded default) as the reference. Real processes on loopback (test/cluster/harness.ts).
//
//   npm run bench:cluster -- [--nodes 1,2,3] [--messages 3000] [--sessions 24] [--users 12]
//                            [--imap-clients 12] [--seconds 10] [--no-sqlite]
//
// Inbound: `sessions` SMTP clients spread evenly over the nodes, a new connection per 4 KB
// message (bench/lib/smtp-load.ts), each session to one of `users` accounts; the clock stops
// when the last message got its 250 ("accepted"), then again when every message is in the
// mail index ("indexed": what IMAP clients on every node see). IMAP: `imap-clients` sessions
// spread over the nodes, each on its own account with the inbound messages, run NOOP, UID FETCH
// 1:* (FLAGS), UID STORE +/-FLAGS \Seen and FETCH n BODY.PEEK[] round robin for `seconds`.

import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { availableParallelism, cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import pg from 'pg';
import { startCluster } from '../test/cluster/harness.ts';
import { RawImap } from '../test/harness/imap-client.ts';
import { runCli, spawnServer } from '../test/harness/process.ts';
import { TEST_CONFIG } from '../test/harness/server.ts';
import { cpuMs, processTree } from './lib/proc.ts';
import { runLoad } from './lib/smtp-load.ts';

const argv = process.argv.slice(2);
const arg = (name: string, dflt: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? (argv[i + 1] ?? dflt) : dflt;
};
const NODES = arg('nodes', '1,2,3').split(',').map(Number);
const MESSAGES = Number(arg('messages', '3000'));
const SESSIONS = Number(arg('sessions', '24'));
const USERS = Number(arg('users', '12'));
const IMAP_CLIENTS = Number(arg('imap-clients', '12'));
const SECONDS = Number(arg('seconds', '10'));
const SQLITE = !argv.includes('--no-sqlite');
const PASS = 'bench-secret';
const user = (i: number) => `u${i}@bench.test`;

interface Target {
  readonly label: string;
  readonly smtp: number[];
  readonly imap: number[];
  readonly pids: number[];
  /** Messages in the mail index now. */
  indexed(): Promise<number>;
  cli(args: string[], stdin?: string): Promise<void>;
  close(): Promise<void>;
}

/** The PostgreSQL server's processes (its postmaster and backends). */
function postgresPids(): number[] {
  for (const f of ['/var/run/postgresql/15-main.pid', '/run/postgresql/15-main.pid']) {
    try {
      return processTree(Number(readFileSync(f, 'utf8').split('\n')[0]));
    } catch {}
  }
  return [];
}

async function clusterTarget(n: number): Promise<Target> {
  const c = await startCluster({ nodes: n, extra: '[rate_limits]\nenabled = false\n' });
  const sql = new pg.Client({ connectionString: c.db.url });
  await sql.connect();
  return {
    label: `${n} node${n > 1 ? 's' : ''}, PostgreSQL`,
    smtp: c.nodes.map((x) => x.port('smtp')),
    imap: c.nodes.map((x) => x.port('imap')),
    pids: c.nodes.map((x) => x.process.child.pid as number),
    async indexed() {
      const r = await sql.query('SELECT count(*)::int AS n FROM mail_messages');
      return Number(r.rows[0]?.n ?? 0);
    },
    async cli(args, stdin) {
      const r = await c.cli(args, stdin === undefined ? {} : { stdin });
      if (r.code !== 0) throw new Error(`arcline ${args.join(' ')}: ${r.stderr}`);
    },
    async close() {
      await sql.end();
      await c.close();
    },
  };
}

/** One node on SQLite (the embedded default): its index counted through IMAP STATUS. */
async function sqliteTarget(): Promise<Target> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-sqlite-'));
  await mkdir(dir, { recursive: true });
  const file = join(dir, 'arcline.toml');
  await writeFile(
    file,
    TEST_CONFIG(dir, '[rate_limits]\nenabled = false\n').replace('level = "debug"', 'level = "info"'),
  );
  const p = await spawnServer(file);
  const imapPort = p.ports.imap?.[0] as number;
  return {
    label: '1 node, SQLite (reference)',
    smtp: [p.port],
    imap: [imapPort],
    pids: [p.child.pid as number],
    async indexed() {
      // STATUS makes the server index what was delivered (as any client opening it would).
      let total = 0;
      for (let i = 0; i < USERS; i++) {
        const { client } = await RawImap.connect(imapPort);
        await client.cmd(`LOGIN ${user(i)} ${PASS}`);
        const s = await client.cmd('STATUS INBOX (MESSAGES)');
        total += Number(/MESSAGES (\d+)/.exec(s.join(' '))?.[1] ?? 0);
        client.close();
      }
      return total;
    },
    async cli(args, stdin) {
      const r = await runCli(['--config', file, ...args], stdin === undefined ? {} : { stdin });
      if (r.code !== 0) throw new Error(`arcline ${args.join(' ')}: ${r.stderr}`);
    },
    async close() {
      p.child.kill('SIGTERM');
      await p.exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}

const cpuOf = (pids: readonly number[]) => pids.map((p) => cpuMs(processTree(p)));

async function inbound(t: Target) {
  const before = { nodes: cpuOf(t.pids), pg: cpuMs(postgresPids()) };
  const started = performance.now();
  let accepted = 0;
  await Promise.all(
    Array.from({ length: SESSIONS }, (_, s) =>
      runLoad({
        port: t.smtp[s % t.smtp.length] as number,
        sessions: 1,
        count: Math.floor(MESSAGES / SESSIONS),
        size: 4096,
        to: user(s % USERS),
      }).then((n) => {
        accepted += n;
      }),
    ),
  );
  const acceptedS = (performance.now() - started) / 1000;
  for (;;) {
    if ((await t.indexed()) >= accepted) break;
    await new Promise((r) => setTimeout(r, 100));
  }
  const indexedS = (performance.now() - started) / 1000;
  const after = { nodes: cpuOf(t.pids), pg: cpuMs(postgresPids()) };
  return {
    accepted,
    acceptedPerS: accepted / acceptedS,
    indexedPerS: accepted / indexedS,
    nodeCpu: after.nodes.map((c, i) => (c - (before.nodes[i] as number)) / 1000 / indexedS),
    pgCpu: (after.pg - before.pg) / 1000 / indexedS,
  };
}

async function imapOps(t: Target) {
  const clients = await Promise.all(
    Array.from({ length: IMAP_CLIENTS }, async (_, i) => {
      const { client } = await RawImap.connect(t.imap[i % t.imap.length] as number);
      client.timeoutMs = 30_000;
      await client.cmd(`LOGIN ${user(i % USERS)} ${PASS}`);
      const sel = await client.cmd('SELECT INBOX');
      const exists = Number(/\* (\d+) EXISTS/.exec(sel.join('\n'))?.[1] ?? 1);
      return { client, exists: Math.max(1, exists) };
    }),
  );
  const before = { nodes: cpuOf(t.pids), pg: cpuMs(postgresPids()) };
  const end = performance.now() + SECONDS * 1000;
  let ops = 0;
  await Promise.all(
    clients.map(async ({ client, exists }, i) => {
      for (let k = i; performance.now() < end; k++) {
        const n = 1 + (k % exists);
        const cmd = [
          'NOOP',
          'UID FETCH 1:* (FLAGS)',
          `STORE ${n} ${k % 2 ? '+' : '-'}FLAGS (\\Seen)`,
          `FETCH ${n} BODY.PEEK[]`,
        ][k % 4] as string;
        const r = await client.cmd(cmd);
        if (/ OK/.test(r.at(-1) ?? '')) ops++;
      }
    }),
  );
  const after = { nodes: cpuOf(t.pids), pg: cpuMs(postgresPids()) };
  for (const { client } of clients) client.close();
  return {
    opsPerS: ops / SECONDS,
    nodeCpu: after.nodes.map((c, i) => (c - (before.nodes[i] as number)) / 1000 / SECONDS),
    pgCpu: (after.pg - before.pg) / 1000 / SECONDS,
  };
}

const pct = (xs: readonly number[]) => xs.map((x) => `${Math.round(x * 100)}%`).join(' / ');

console.log(
  `bench:cluster on ${availableParallelism()} cores (${cpus()[0]?.model ?? '?'}), load ${loadavg()[0]?.toFixed(2)}; ` +
    `${MESSAGES} messages of 4 KB by ${SESSIONS} sessions to ${USERS} users; ${IMAP_CLIENTS} IMAP clients for ${SECONDS} s`,
);
const rows: string[] = [];
const targets: (() => Promise<Target>)[] = [
  ...(SQLITE ? [sqliteTarget] : []),
  ...NODES.map((n) => () => clusterTarget(n)),
];
for (const make of targets) {
  const t = await make();
  try {
    await t.cli(['domain', 'add', 'bench.test']);
    for (let i = 0; i < USERS; i++) await t.cli(['user', 'add', user(i), '--password-stdin'], `${PASS}\n`);
    const inb = await inbound(t);
    const im = await imapOps(t);
    const row =
      `| ${t.label} | ${inb.acceptedPerS.toFixed(0)} | ${inb.indexedPerS.toFixed(0)} | ${pct(inb.nodeCpu)} | ` +
      `${Math.round(inb.pgCpu * 100)}% | ${im.opsPerS.toFixed(0)} | ${pct(im.nodeCpu)} | ${Math.round(im.pgCpu * 100)}% |`;
    console.log(row);
    rows.push(row);
  } finally {
    await t.close();
  }
}
console.log(
  '\n| nodes | inbound msg/s (250) | msg/s indexed | CPU per node (inbound) | PostgreSQL CPU | IMAP ops/s | CPU per node (IMAP) | PostgreSQL CPU |',
);
console.log('| --- | ---: | ---: | --- | ---: | ---: | --- | ---: |');
for (const r of rows) console.log(r);
