// `npm run bench:queue-backends`: the queue's two backends side by side (issue #18):
// SQLite + {state}/queue/ (queue/store.ts) and PostgreSQL + a spool directory
// (queue/postgres.ts) on the PostgreSQL of this machine (or ARCLINE_TEST_PG), one node and two.
// (`npm run bench:queue` measures the whole server, which runs only on SQLite for now.)
//
// 1. enqueue: N messages of SIZE bytes through enqueue(), 64 at a time (file fsynced, directory
//    fsynced, rows committed).
// 2. claim + record: the N jobs claimed 32 at a time and their outcomes ("sent") recorded, as a
//    runner does with an instant remote server: the queue's own cost per delivery.
// 3. delivery: QueueRunner instances (1 node; PostgreSQL also 2 nodes) deliver N messages to a
//    loopback SMTP server (no TLS) in this process, 20 connections per node.
//
//   npm run bench:queue-backends                  N = 2000, SIZE = 4096
//   npm run bench:queue-backends -- --messages 5000 --size 4096

import { mkdtemp, rm } from 'node:fs/promises';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfigText } from '../src/config/load.ts';
import { silentLogger } from '../src/core/log.ts';
import { PostgresQueue } from '../src/queue/postgres.ts';
import type { RouteResolver } from '../src/queue/route.ts';
import { QueueRunner } from '../src/queue/runner.ts';
import { QueueStore } from '../src/queue/store.ts';
import type { QueueBackend } from '../src/queue/types.ts';
import { bufferMessage } from '../src/store/spool.ts';
import { startFakeMx } from '../test/harness/mx.ts';
import { freshDatabase, type TestDatabase } from '../test/harness/postgres.ts';
import { TEST_CONFIG } from '../test/harness/server.ts';

const { values } = parseArgs({ options: { messages: { type: 'string' }, size: { type: 'string' } } });
const N = Number(values.messages ?? 2000);
const SIZE = Number(values.size ?? 4096);
const DOMAINS = 10;

function body(i: number): Buffer {
  const head = `From: alice@bench.test\r\nTo: someone@d${i % DOMAINS}.test\r\nSubject: bench ${i}\r\n\r\n`;
  const line = `${'x'.repeat(76)}\r\n`;
  return Buffer.from(head + line.repeat(Math.max(1, Math.floor((SIZE - head.length) / line.length))));
}

async function fill(q: QueueBackend, tag: string): Promise<number> {
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < N) {
      const i = next++;
      await q.enqueue({
        sender: 'alice@bench.test',
        recipients: [{ address: `${tag}${i}@d${i % DOMAINS}.test` }],
        prefix: Buffer.alloc(0),
        message: bufferMessage(body(i)),
        origin: 'submission',
        logId: `b${i}`,
      });
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  return N / ((performance.now() - started) / 1000);
}

async function drain(nodes: QueueBackend[]): Promise<number> {
  const started = performance.now();
  const worker = async (q: QueueBackend) => {
    for (;;) {
      const jobs = await q.claim(Date.now(), 32, () => true);
      if (jobs.length === 0) return;
      await Promise.all(
        jobs.map((j) =>
          q.record(
            j,
            j.recipients.map((r) => ({ address: r.address, kind: 'sent' as const, reply: '250 ok', host: null })),
            Date.now(),
          ),
        ),
      );
    }
  };
  await Promise.all(nodes.map(worker));
  return N / ((performance.now() - started) / 1000);
}

const noDns = {
  resolveMx: () => Promise.reject(new Error('no DNS')),
  resolve4: () => Promise.reject(new Error('no DNS')),
  resolve6: () => Promise.reject(new Error('no DNS')),
} as unknown as RouteResolver;

async function deliver(nodes: QueueBackend[], dir: string): Promise<number> {
  const mx = await startFakeMx({ starttls: false });
  const config = parseConfigText(
    TEST_CONFIG(
      dir,
      `[delivery]\nrelay = "127.0.0.1:${mx.port}"\nrelay_tls = "none"\nmax_connections = 20\nmax_connections_per_domain = 20`,
    ),
    join(dir, 'bench.toml'),
  );
  const runners = nodes.map(
    (store) =>
      new QueueRunner({
        config,
        store,
        resolver: noDns,
        log: silentLogger(),
        notices: async () => {},
        relayPassword: null,
      }),
  );
  const started = performance.now();
  for (const r of runners) r.start();
  await mx.waitFor(N, 600_000);
  const secs = (performance.now() - started) / 1000;
  await Promise.all(runners.map((r) => r.stop(5000)));
  await mx.close();
  return N / secs;
}

interface Backend {
  readonly name: string;
  open(node: string): Promise<QueueBackend>;
  close(): Promise<void>;
}

async function sqlite(): Promise<Backend> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-qb-'));
  return {
    name: 'SQLite',
    async open() {
      const q = new QueueStore({ stateDir: dir, log: silentLogger() });
      await q.recover();
      return q;
    },
    close: () => rm(dir, { recursive: true, force: true }),
  };
}

async function postgres(): Promise<Backend> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-qb-'));
  const db: TestDatabase = await freshDatabase();
  return {
    name: 'PostgreSQL',
    async open(node) {
      const q = await PostgresQueue.open({
        db: await db.open(),
        spoolDir: join(dir, 'spool'),
        node,
        log: silentLogger(),
      });
      await q.recover();
      return q;
    },
    async close() {
      await db.drop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

async function run(make: () => Promise<Backend>, nodeCount: number): Promise<void> {
  const b = await make();
  const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-qb-cfg-'));
  try {
    const nodes = await Promise.all(Array.from({ length: nodeCount }, (_, i) => b.open(`node${i}`)));
    const first = nodes[0] as QueueBackend;
    const enqueue = await fill(first, 'a');
    const claimed = await drain(nodes);
    await fill(first, 'b');
    const delivered = await deliver(nodes, dir);
    for (const q of nodes) await q.close();
    console.log(
      `${b.name.padEnd(10)} ${nodeCount} node(s): enqueue ${Math.round(enqueue)} msg/s, claim+record ` +
        `${Math.round(claimed)} jobs/s, delivery to a loopback SMTP server ${Math.round(delivered)} msg/s`,
    );
  } finally {
    await b.close();
    await rm(dir, { recursive: true, force: true });
  }
}

console.log(`queue backends: ${N} messages x ${SIZE} B, ${cpus().length} CPU(s)`);
await run(sqlite, 1);
await run(postgres, 1);
await run(postgres, 2);
