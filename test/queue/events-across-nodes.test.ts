// Queue events across nodes (issue #18, docs/cluster.md "Queue events across nodes";
// src/queue/pg-events.ts): a tagged message queued on node A (a JMAP EmailSubmission made
// there) and delivered by node B's runner is told to A's observers, through queue_event and a
// NOTIFY on arcline_queue, not to B's; events recorded while A was not listening wait for it
// and are told when it follows again (its restart); untagged messages write nothing.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { silentLogger } from '../../src/core/log.ts';
import { Notifier } from '../../src/db/notify.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { PostgresQueue } from '../../src/queue/postgres.ts';
import type { QueueEvent, QueueId } from '../../src/queue/types.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';
import { waitUntil } from '../harness/submit.ts';
import { message } from './contract.ts';

let db: TestDatabase;
let dir: string;
let pa: Postgres;
let pb: Postgres;

before(async () => {
  db = await freshDatabase();
  dir = await mkdtemp(join(tmpdir(), 'arcline-qevents-'));
  pa = await db.open();
  pb = await db.open();
});

after(async () => {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

const open = (pool: Postgres, node: string) =>
  PostgresQueue.open({ db: pool, spoolDir: join(dir, 'spool'), node, log: silentLogger() });

/** Node B claims the job of `id` and records `kind` for its one recipient. */
async function deliverOn(q: PostgresQueue, id: QueueId, kind: 'sent' | 'failed'): Promise<void> {
  const jobs = await q.claim(Date.now(), 100, () => true);
  const job = jobs.find((j) => j.message.id === id);
  for (const j of jobs) if (j !== job) await q.unclaim(j);
  assert.ok(job, 'claimed');
  const address = job.recipients[0]?.address ?? '';
  await q.record(
    job,
    [{ address, kind, reply: kind === 'sent' ? '250 2.0.0 ok' : '550 5.1.1 no', host: 'mx' }],
    Date.now(),
  );
}

test('an outcome recorded on node B is told on node A, which queued the message', async (t) => {
  const a = await open(pa, 'node-a');
  const b = await open(pb, 'node-b');
  const heardA: QueueEvent[] = [];
  const heardB: QueueEvent[] = [];
  a.observe((e) => heardA.push(e));
  b.observe((e) => heardB.push(e));
  const notifier = await Notifier.start({
    session: { url: db.url, connectTimeoutMs: 5000, applicationName: 'arcline/node-a' },
  });
  t.after(() => notifier.close());
  const unfollow = await a.follow(notifier);

  const tag = 'jmap ["alice@example.test","S1"]';
  const id = await a.enqueue(message({ tag, recipients: [{ address: 'bob@remote.test' }] }));
  const started = performance.now();
  await deliverOn(b, id, 'sent');
  await waitUntil('A hears the attempt', async () => heardA.length === 1);
  t.diagnostic(`told on A ${Math.round(performance.now() - started)} ms after B recorded it`);
  assert.deepEqual(heardA[0], {
    kind: 'attempt',
    queueId: id,
    tag,
    outcomes: [{ address: 'bob@remote.test', kind: 'sent', reply: '250 2.0.0 ok' }],
  });
  assert.equal(heardB.length, 0, 'not told on B');

  // Untagged: nobody follows it, nothing is written; B tells its own observers as before.
  const plain = await a.enqueue(message({ recipients: [{ address: 'carol@remote.test' }] }));
  await deliverOn(b, plain, 'failed');
  assert.equal(heardB.length, 1);
  assert.equal((await pa.rows('SELECT 1 FROM queue_event')).length, 0);

  // A stops listening (as if down); B records for it meanwhile; A's next follow (its restart)
  // collects what waited, in order.
  unfollow();
  const later = [
    await a.enqueue(message({ tag: 'jmap ["alice@example.test","S2"]', recipients: [{ address: 'x@r.test' }] })),
    await a.enqueue(message({ tag: 'jmap ["alice@example.test","S3"]', recipients: [{ address: 'y@r.test' }] })),
  ];
  for (const id2 of later) await deliverOn(b, id2, 'sent');
  // unfollow() took A's listener away at once: no notification can reach it now.
  assert.equal(heardA.length, 1, 'not following: nothing told');
  assert.equal((await pa.rows('SELECT 1 FROM queue_event')).length, 2, 'waiting for node-a');
  const again = await a.follow(notifier);
  t.after(again);
  assert.deepEqual(
    heardA.slice(1).map((e) => e.queueId),
    later,
    'told at follow, in the order recorded',
  );
  assert.equal((await pa.rows('SELECT 1 FROM queue_event')).length, 0, 'collected once');

  // A node's own outcome is told at once, locally, without the table.
  const own = await a.enqueue(
    message({ tag: 'jmap ["alice@example.test","S4"]', recipients: [{ address: 'z@r.test' }] }),
  );
  await deliverOn(a, own, 'sent');
  assert.equal(heardA.at(-1)?.queueId, own);
});

test('the queue sweep drops events no node collected within the retention', async () => {
  const b = await open(pb, 'node-b');
  await pb.query("INSERT INTO queue_event (node, at, event) VALUES ('node-gone', 0, '{}'), ('node-a', $1, '{}')", [
    Date.now(),
  ]);
  const r = await b.sweep();
  assert.equal(r.events, 1);
  assert.deepEqual(
    (await pb.rows<{ node: string }>('SELECT node FROM queue_event')).map((x) => x.node),
    ['node-a'],
  );
});
