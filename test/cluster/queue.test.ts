// The queue test (issue #18, docs/cluster.md "The queue across nodes"): three real
// arcline nodes deliver a queue of 500 messages through [delivery] relay to an SMTP sink on
// loopback. Node A is killed with SIGKILL in the middle of it; B and C take its jobs over once
// their leases ([cluster] queue_lease, 3 s here) run out. Every Message-ID reaches the sink;
// only the messages A had in flight at the kill (jobs it held leases on) may arrive twice.

import assert from 'node:assert/strict';
import { readdir, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import pg from 'pg';
import { silentLogger } from '../../src/core/log.ts';
import { PostgresQueue } from '../../src/queue/postgres.ts';
import { bufferMessage } from '../../src/store/spool.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { waitUntil } from '../harness/submit.ts';
import { message } from '../queue/contract.ts';
import { startCluster, type TestCluster } from './harness.ts';

const N = 500;

let c: TestCluster;
let mx: FakeMx;

before(async () => {
  mx = await startFakeMx({ starttls: false, dataDelayMs: 40 });
  c = await startCluster({
    nodes: 3,
    extra:
      `[delivery]\nrelay = "127.0.0.1:${mx.port}"\nrelay_tls = "none"\nmax_connections = 8\n` +
      'max_connections_per_domain = 8\nretry_schedule = ["200ms"]\n',
  });
});

after(async () => {
  await c?.close();
  await mx?.close();
});

const messageId = (m: { data: Buffer }) => /^Message-ID: (<[^>]+>)/im.exec(m.data.toString('latin1'))?.[1] ?? '';

test('cluster queue: node A killed mid-delivery, B and C deliver every message', async (t) => {
  // The messages are queued as one more node would (its own name, the shared spool), held
  // until all are in, then let go at once.
  const pool = await c.db.open();
  const loader = await PostgresQueue.open({
    db: pool,
    spoolDir: join(c.sharedDir, 'queue'),
    node: 'loader',
    log: silentLogger(),
  });
  const ids = Array.from({ length: N }, (_, i) => `<m${i}@loader.test>`);
  for (let i = 0; i < N; i++) {
    await loader.enqueue(
      message({
        recipients: [{ address: `r${i}@d${i % 7}.test` }],
        message: bufferMessage(Buffer.from(`Message-ID: ${ids[i]}\r\nSubject: m${i}\r\n\r\nbody ${i}\r\n`)),
        logId: `m${i}`,
        hold: true,
      }),
    );
  }
  const admin = new pg.Client({ connectionString: c.db.url });
  await admin.connect();
  t.after(() => admin.end());
  await admin.query("UPDATE queue_message SET held = 0 WHERE node = 'loader'");
  const leasedBy = async (node: string) =>
    Number(
      (
        await admin.query<{ n: string }>(
          'SELECT count(*) AS n FROM queue_job WHERE lease_owner = $1 AND lease_token IS NOT NULL',
          [node],
        )
      ).rows[0]?.n,
    );

  // Mid-way, while A holds jobs: SIGKILL, no goodbye to PostgreSQL or the sink.
  const a = c.nodes[0];
  assert.ok(a);
  await waitUntil(
    'a fifth delivered while node-a delivers',
    async () => mx.mails.length >= N / 5 && (await leasedBy('node-a')) > 0,
    120_000,
  );
  await a.kill();
  const deliveredAtKill = mx.mails.length;
  const inFlight = await leasedBy('node-a');
  const killedAt = Date.now();

  await waitUntil(
    'every Message-ID at the sink, the queue empty',
    async () =>
      new Set(mx.mails.map(messageId)).size === N &&
      (await admin.query('SELECT 1 FROM queue_message LIMIT 1')).rowCount === 0,
    180_000,
  );
  const doneMs = Date.now() - killedAt;
  const seen = new Map<string, number>();
  for (const m of mx.mails) seen.set(messageId(m), (seen.get(messageId(m)) ?? 0) + 1);
  const duplicates = [...seen.values()].reduce((n, k) => n + k - 1, 0);
  t.diagnostic(
    `${mx.mails.length} delivered for ${N} messages: ${deliveredAtKill} before the kill, ${inFlight} jobs of node-a in ` +
      `flight at it; duplicates ${duplicates}; the rest done ${doneMs} ms after the kill`,
  );
  assert.deepEqual([...seen.keys()].sort(), [...ids].sort(), 'every Message-ID delivered');
  assert.ok(duplicates <= inFlight, `duplicates (${duplicates}) only among node-a's jobs in flight (${inFlight})`);
  // A file may be left by the kill: node-a committed a message's last outcome (its rows gone)
  // and died before removing the file. The leader's queue-sweep removes such orphans once
  // LIMITS.queue.orphanFileAgeMs old (another node may be between writing a file and its row).
  const spool = join(c.sharedDir, 'queue');
  const left = await readdir(spool);
  t.diagnostic(`spool files left by the kill: ${left.length}`);
  assert.ok(left.length <= 8, 'at most the files of the deliveries node-a was finishing ([delivery] max_connections)');
  const old = new Date(Date.now() - 2 * 24 * 3600 * 1000);
  for (const f of left) await utimes(join(spool, f), old, old);
  // The cluster's own queue-sweep (a leader task on B or C) may take some of them first.
  assert.ok((await loader.sweep()).orphanFiles <= left.length);
  assert.deepEqual(await readdir(spool), [], 'every spool file removed');
});
