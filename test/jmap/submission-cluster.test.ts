// EmailSubmission across nodes (issue #18, docs/cluster.md "Queue events across nodes"): a
// submission made on node A whose message node B's runner delivers, even before A has written
// the submission's record (B's delivery recorded while A's create is still on its way). A's
// tracker hears the attempt through the database (queue/pg-events.ts), keeps it until the
// record exists, and brings deliveryStatus up to date; B's tracker hears nothing (no second
// writer of the record).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import { Notifier } from '../../src/db/notify.ts';
import { SubmissionTracker, submissionTag } from '../../src/jmap/methods/submission-track.ts';
import { PushHub } from '../../src/jmap/push.ts';
import { PostgresJmapState } from '../../src/jmapstate/postgres-store.ts';
import { PostgresQueue } from '../../src/queue/postgres.ts';
import type { Mailboxes } from '../../src/store/mailboxes.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';
import { waitUntil } from '../harness/submit.ts';
import { message } from '../queue/contract.ts';

let db: TestDatabase;
let dir: string;

before(async () => {
  db = await freshDatabase();
  dir = await mkdtemp(join(tmpdir(), 'arcline-subcluster-'));
});

after(async () => {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
});

const ACCOUNT = 'alice@example.test' as AccountId;

/** A node: its pool, queue, JMAP state and submission tracker following its queue. */
async function node(name: string) {
  const pool = await db.open();
  const queue = await PostgresQueue.open({ db: pool, spoolDir: join(dir, 'spool'), node: name, log: silentLogger() });
  const state = await PostgresJmapState.open(pool);
  const tracker = new SubmissionTracker({
    state,
    hub: new PushHub(),
    accounts: {} as Mailboxes, // not used by the tracker's updates
    log: silentLogger(),
    relayed: false,
  });
  tracker.follow(queue);
  return { pool, queue, state, tracker };
}

test('a submission made on node A, delivered by node B before A wrote it: A shows it delivered', async (t) => {
  const a = await node('node-a');
  const b = await node('node-b');
  const notifier = await Notifier.start({
    session: { url: db.url, connectTimeoutMs: 5000, applicationName: 'arcline/node-a' },
  });
  t.after(() => notifier.close());
  t.after(await a.queue.follow(notifier));
  const heardB: unknown[] = [];
  b.queue.observe((e) => heardB.push(e));

  // A's create: the message queued with the submission's tag (submission-send.ts hands it over
  // before the record is written).
  const tag = submissionTag(ACCOUNT, 'S1');
  const id = await a.queue.enqueue(message({ tag, recipients: [{ address: 'bob@remote.test' }] }));
  // B's runner takes it at once and the remote MX says 250: recorded before A's record exists.
  const [job] = await b.queue.claim(Date.now(), 10, () => true);
  assert.ok(job);
  await b.queue.record(
    job,
    [{ address: 'bob@remote.test', kind: 'sent', reply: '250 2.0.0 Ok: queued as X', host: 'mx.remote.test' }],
    Date.now(),
  );
  // A collected it (the row is gone), while its create has not written the record yet.
  await waitUntil(
    'node A collected the event',
    async () => (await a.pool.rows('SELECT 1 FROM queue_event')).length === 0,
  );

  // A's create now writes the record and tells its tracker (submission.ts).
  await a.tracker.exclusive(() =>
    a.state.put(ACCOUNT, 'EmailSubmission', 'S1', {
      emailId: 'Mabc',
      undoStatus: 'final',
      deliveryStatus: {
        'bob@remote.test': { smtpReply: '250 2.0.0 Queued', delivered: 'queued', displayed: 'unknown' },
      },
      _track: { queueIds: [id], queued: { 'bob@remote.test': ['bob@remote.test'] }, addr: {} },
    }),
  );
  await a.tracker.created(tag);

  // Read through node B's store (the record is shared), once A's tracker has written it (the
  // event may still be between its collection and the tracker when the table is empty).
  type Sub = { deliveryStatus: Record<string, { delivered: string; smtpReply: string }> };
  const s = await waitUntil('delivered on the record', async () => {
    const r = (await b.state.get(ACCOUNT, 'EmailSubmission', 'S1')) as Sub | null;
    return r?.deliveryStatus['bob@remote.test']?.delivered === 'yes' ? r : null;
  });
  assert.deepEqual(s.deliveryStatus['bob@remote.test'], {
    smtpReply: '250 2.0.0 Ok: queued as X',
    delivered: 'yes',
    displayed: 'unknown',
  });
  assert.deepEqual(heardB, [], "node B's tracker heard nothing: one writer of the record");
});
