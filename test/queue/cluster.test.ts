// The queue across nodes, end to end (issue #18, docs/cluster.md): two queue runners, each a
// node with its own pool on one PostgreSQL database and one spool directory, deliver 200
// messages to a loopback SMTP server (the relay). Mid-way node A dies abruptly: its database
// connections are cut (pg_terminate_backend), its pool closed, its runner dropped with its
// deliveries in flight. Node B takes A's jobs over once their leases run out: every message
// arrives, and only those A had in flight at the kill may arrive twice.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { parseConfigText } from '../../src/config/load.ts';
import { silentLogger } from '../../src/core/log.ts';
import { Postgres } from '../../src/db/postgres.ts';
import { PostgresQueue } from '../../src/queue/postgres.ts';
import type { RouteResolver } from '../../src/queue/route.ts';
import { QueueRunner } from '../../src/queue/runner.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';
import { TEST_CONFIG } from '../harness/server.ts';
import { waitUntil } from '../harness/submit.ts';
import { message } from './contract.ts';

const N = 200;
const LEASE_MS = 1500;

let db: TestDatabase;
let dir: string;
let mx: FakeMx;

before(async () => {
  db = await freshDatabase();
  dir = await mkdtemp(join(tmpdir(), 'arcline-cluster-'));
  mx = await startFakeMx({ starttls: false, dataDelayMs: 15 });
});

after(async () => {
  await mx.close();
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

/** The relay is an address: no DNS query is ever made. */
const noDns = {
  resolveMx: () => Promise.reject(new Error('no DNS in this test')),
  resolve4: () => Promise.reject(new Error('no DNS in this test')),
  resolve6: () => Promise.reject(new Error('no DNS in this test')),
} as unknown as RouteResolver;

async function node(name: string) {
  const pool = await Postgres.open({
    url: db.url,
    poolSize: 4,
    connectTimeoutMs: 5000,
    statementTimeoutMs: 30_000,
    applicationName: `arcline/${name}`,
  });
  const queue = await PostgresQueue.open({
    db: pool,
    spoolDir: join(dir, 'spool'),
    node: name,
    log: silentLogger(),
    leaseMs: LEASE_MS,
  });
  await queue.recover();
  const config = parseConfigText(
    TEST_CONFIG(
      join(dir, name),
      `[delivery]\nrelay = "127.0.0.1:${mx.port}"\nrelay_tls = "none"\nmax_connections = 8\n` +
        'max_connections_per_domain = 8\nretry_schedule = ["200ms"]',
    ),
    join(dir, `${name}.toml`),
  );
  const runner = new QueueRunner({
    config,
    store: queue,
    resolver: noDns,
    log: silentLogger(),
    notices: async () => {},
    relayPassword: null,
  });
  return { pool, queue, runner };
}

test('two runners, one killed mid-way: every message delivered, duplicates only from the kill', async (t) => {
  const a = await node('node-a');
  const b = await node('node-b');
  for (let i = 0; i < N; i++) {
    await (i % 2 ? b : a).queue.enqueue(message({ recipients: [{ address: `r${i}@d${i % 7}.test` }], logId: `m${i}` }));
  }
  a.runner.start();
  b.runner.start();
  await waitUntil('a third delivered', async () => mx.mails.length >= N / 3, 60_000);

  // Node A dies: no more queries (its pool ends), its connections cut, its runner gone. In
  // flight: the jobs it still holds leases on once it is gone (claimed, never recorded).
  const ended = a.pool.close();
  const admin = new pg.Client({ connectionString: db.url });
  await admin.connect();
  await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'arcline/node-a'");
  await ended;
  const leased = await admin.query<{ n: string }>(
    "SELECT count(*) AS n FROM queue_job WHERE lease_owner = 'node-a' AND lease_token IS NOT NULL",
  );
  await admin.end();
  const inFlight = Number(leased.rows[0]?.n);
  void a.runner.stop(0);
  const deliveredAtKill = mx.mails.length;

  await waitUntil(
    'every recipient delivered',
    async () => new Set(mx.mails.flatMap((m) => m.to)).size === N && (await b.queue.counts()).messages === 0,
    120_000,
  );
  await b.runner.stop(5000);
  const seen = new Map<string, number>();
  for (const m of mx.mails) for (const to of m.to) seen.set(to, (seen.get(to) ?? 0) + 1);
  const duplicates = [...seen.values()].reduce((n, c) => n + c - 1, 0);
  t.diagnostic(
    `delivered ${mx.mails.length} for ${N} messages; ${deliveredAtKill} before the kill, ${inFlight} in flight at it; ` +
      `duplicates ${duplicates}`,
  );
  assert.equal(seen.size, N, 'every message delivered');
  assert.ok(duplicates <= inFlight, `duplicates (${duplicates}) only among those in flight at the kill (${inFlight})`);
  assert.deepEqual(await readdir(join(dir, 'spool')), [], 'every file removed');
});
