// The queue contract (src/queue/types.ts QueueBackend): every backend runs this suite through
// the interface only. SQLite (queue/store.ts) and PostgreSQL (queue/postgres.ts); the
// "across nodes" part runs where several backends share one queue (PostgreSQL: two nodes, each
// with its own pool, on one database and one spool directory).

import assert from 'node:assert/strict';
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import {
  type Job,
  LeaseLost,
  type OutboundMessage,
  type QueueBackend,
  type QueueEvent,
  type QueueId,
  SCHEDULED,
} from '../../src/queue/types.ts';
import { bufferMessage } from '../../src/store/spool.ts';
import { waitUntil } from '../harness/submit.ts';

export interface QueueUnderTest {
  /** Opens a backend on the queue (not yet recovered). `node` names a node of a shared queue;
   *  `leaseMs` shortens its leases. */
  open(opts?: { node?: string; leaseMs?: number }): Promise<QueueBackend>;
  /** Where the message files are. */
  readonly spoolDir: string;
  /** A file name the default node would have written (an orphan of its own for recovery). */
  orphanName(): string;
  cleanup(): Promise<void>;
}

export type MakeQueue = () => Promise<QueueUnderTest>;

export function message(over: Partial<OutboundMessage> = {}): OutboundMessage {
  return {
    sender: 'alice@example.test',
    recipients: [
      { address: 'a@one.test' },
      { address: 'b@one.test' },
      { address: 'c@two.test', orcpt: 'rfc822;C@two.test' },
    ],
    prefix: Buffer.from('Received: by test\r\n'),
    message: bufferMessage(Buffer.from('Subject: s\r\n\r\nbody\r\n')),
    origin: 'submission',
    logId: 'm-test',
    ...over,
  };
}

const all = () => true;

async function claimOne(q: QueueBackend, id: QueueId, domain: string, now = Date.now()): Promise<Job | null> {
  const jobs = await q.claim(now, 1000, (d) => d === domain);
  const job = jobs.find((j) => j.message.id === id) ?? null;
  for (const j of jobs) if (j !== job) await q.unclaim(j);
  return job;
}

/** `shared`: several nodes may work on the queue at once (the "across nodes" part runs). */
export function queueContract(name: string, make: MakeQueue, opts: { readonly shared: boolean }): void {
  const withQueue = (fn: (u: QueueUnderTest, q: QueueBackend) => Promise<void>) => async () => {
    const u = await make();
    const q = await u.open();
    await q.recover();
    try {
      await fn(u, q);
    } finally {
      await q.close();
      await u.cleanup();
    }
  };

  describe(`${name}: queue contract`, () => {
    test(
      'enqueue writes prefix + message to a file and one row per recipient',
      withQueue(async (u, q) => {
        const id = await q.enqueue(message());
        const file = await readFile(join(u.spoolDir, `${id}.eml`), 'utf8');
        assert.equal(file, 'Received: by test\r\nSubject: s\r\n\r\nbody\r\n');
        const m = await q.get(id);
        assert.equal(m?.size, file.length);
        assert.deepEqual(
          m?.recipients.map((r) => [r.address, r.domain, r.state, r.orcpt]),
          [
            ['a@one.test', 'one.test', 'queued', null],
            ['b@one.test', 'one.test', 'queued', null],
            ['c@two.test', 'two.test', 'queued', 'rfc822;C@two.test'],
          ],
        );
        assert.deepEqual(await readdir(u.spoolDir), [`${id}.eml`], 'no temporary file left');
        assert.equal(await q.hasFile(id), true);
      }),
    );

    test(
      'due work comes per (message, domain); a claim leases it; outcomes finish the message',
      withQueue(async (u, q) => {
        const id = await q.enqueue(message());
        const now = Date.now();
        const job = await claimOne(q, id, 'one.test', now);
        assert.deepEqual(
          job?.recipients.map((r) => r.address),
          ['a@one.test', 'b@one.test'],
        );
        assert.ok(job);
        assert.equal(await claimOne(q, id, 'one.test', now), null, 'leased work is not handed out twice');
        assert.deepEqual(
          (await q.claim(now, 10, (d) => d !== 'two.test')).map((j) => j.domain),
          [],
          'refused domains stay due',
        );
        const two = await q.claim(now, 10, all);
        assert.deepEqual(
          two.map((j) => j.domain),
          ['two.test'],
        );
        const finished1 = await q.record(
          job,
          [
            { address: 'a@one.test', kind: 'sent', reply: '250 ok', host: 'mx.one.test' },
            {
              address: 'b@one.test',
              kind: 'deferred',
              reply: '451 later',
              host: 'mx.one.test',
              nextAttempt: now + 60_000,
            },
          ],
          now,
        );
        assert.equal(finished1, false);
        const b = (await q.get(id))?.recipients.find((r) => r.address === 'b@one.test');
        assert.deepEqual(
          [b?.state, b?.attempts, b?.lastReply, b?.nextAttempt],
          ['queued', 1, '451 later', now + 60_000],
        );
        assert.equal(await q.nextDue(), now + 60_000, 'the deferred one is next; two.test is leased');
        await q.record(two[0] as Job, [{ address: 'c@two.test', kind: 'failed', reply: '550 no', host: null }], now);
        assert.equal(await q.retry(id), 1, 'retry makes the deferred recipient due');
        const again = await claimOne(q, id, 'one.test', Date.now());
        assert.deepEqual(
          again?.recipients.map((r) => r.address),
          ['b@one.test'],
        );
        assert.ok(again);
        const finished = await q.record(
          again,
          [{ address: 'b@one.test', kind: 'sent', reply: '250', host: null }],
          now,
        );
        assert.equal(finished, true);
        assert.equal(await q.get(id), null);
        assert.deepEqual(await readdir(u.spoolDir), [], 'the file goes with the last recipient');
        assert.equal(await q.nextDue(), null);
      }),
    );

    test(
      'a claim takes at most `limit` jobs, oldest first',
      withQueue(async (_u, q) => {
        const ids: QueueId[] = [];
        for (let i = 0; i < 5; i++) ids.push(await q.enqueue(message({ recipients: [{ address: `r${i}@x.test` }] })));
        const jobs = await q.claim(Date.now(), 3, all);
        assert.deepEqual(
          jobs.map((j) => j.message.id),
          ids.slice(0, 3),
        );
        assert.equal((await q.claim(Date.now(), 10, all)).length, 2);
      }),
    );

    test(
      'a held message is invisible until released',
      withQueue(async (_u, q) => {
        const id = await q.enqueue(message({ hold: true }));
        assert.deepEqual(await q.claim(Date.now(), 10, all), []);
        assert.deepEqual(await q.list(), []);
        await q.release(id);
        assert.equal((await q.claim(Date.now(), 10, all)).length, 2);
      }),
    );

    test(
      "the operator's hold: listed as held, not due, kept across a restart, due again once released",
      withQueue(async (u, first) => {
        const id = await first.enqueue(message());
        assert.equal(await first.hold(id), true);
        assert.equal(await first.hold('q-none' as QueueId), false);
        assert.deepEqual(await first.claim(Date.now() + 1e10, 10, all), []);
        assert.deepEqual(
          (await first.list()).map((m) => [m.id, m.held]),
          [[id, true]],
        );
        const q = await u.open();
        try {
          assert.equal((await q.recover()).held, 0, 'an operator hold is not an unacknowledged message');
          assert.equal((await q.get(id))?.held, true);
          await q.release(id);
          assert.equal((await q.get(id))?.held, false);
          assert.equal((await q.claim(Date.now(), 10, all)).length, 2);
        } finally {
          await q.close();
        }
      }),
    );

    test(
      'recovery: held messages and orphan files go; leases are cleared; rows without file are reported',
      withQueue(async (u, first) => {
        const held = await first.enqueue(message({ hold: true }));
        const kept = await first.enqueue(message());
        const lost = await first.enqueue(message());
        assert.ok(await claimOne(first, kept, 'one.test'));
        const orphan = u.orphanName();
        await writeFile(join(u.spoolDir, orphan), 'never acknowledged');
        await rm(join(u.spoolDir, `${lost}.eml`));
        await first.close();
        const q = await u.open();
        try {
          const r = await q.recover();
          assert.deepEqual(r, { held: 1, orphanFiles: 1, missingFiles: [lost] });
          assert.equal(await q.get(held), null);
          assert.deepEqual(await readdir(u.spoolDir), [`${kept}.eml`]);
          assert.equal((await claimOne(q, kept, 'one.test'))?.recipients.length, 2, 'the lease was cleared');
        } finally {
          await q.close();
        }
      }),
    );

    test(
      'drop removes rows and file; list and counts see only queued work',
      withQueue(async (u, q) => {
        const a = await q.enqueue(message());
        await q.enqueue(message({ recipients: [{ address: 'z@three.test' }] }));
        assert.deepEqual({ ...(await q.counts()) }, { messages: 2, recipients: 4 });
        assert.deepEqual({ ...(await q.countsByState()) }, { held: 0, deferred: 0, waiting: 4 });
        assert.equal((await q.list()).length, 2);
        assert.equal((await q.list({ limit: 1 }))[0]?.id, a);
        assert.equal(await q.drop(a), true);
        assert.equal(await q.drop(a), false);
        assert.deepEqual({ ...(await q.counts()) }, { messages: 1, recipients: 1 });
        assert.equal((await readdir(u.spoolDir)).length, 1);
      }),
    );

    test(
      'a lease ends with the outcome or unclaim; an outcome under a lease no longer ours is refused',
      withQueue(async (_u, q) => {
        const id = await q.enqueue(message({ recipients: [{ address: 'a@one.test' }] }));
        const first = await claimOne(q, id, 'one.test');
        assert.ok(first);
        assert.equal(await q.extend(first), true);
        await q.unclaim(first);
        assert.equal(await q.extend(first), false, 'given back');
        const second = await claimOne(q, id, 'one.test');
        assert.ok(second);
        assert.notEqual(second.lease, first.lease);
        await assert.rejects(
          q.record(first, [{ address: 'a@one.test', kind: 'sent', reply: '250 first', host: null }], Date.now()),
          LeaseLost,
        );
        assert.equal((await q.get(id))?.recipients[0]?.attempts, 0, 'nothing written');
        const ok = await q.record(
          second,
          [{ address: 'a@one.test', kind: 'deferred', reply: '451 second', host: null, nextAttempt: Date.now() }],
          Date.now(),
        );
        assert.equal(ok, false);
        assert.equal((await q.get(id))?.recipients[0]?.lastReply, '451 second');
      }),
    );

    test(
      'restart keeps everything: messages, recipients and their outcomes, holds',
      withQueue(async (u, first) => {
        const a = await first.enqueue(
          message({
            envid: 'E1',
            authUser: 'alice',
            smtputf8: true,
            ret: 'HDRS',
            recipients: [
              { address: 'a@one.test', notify: 'NEVER' },
              { address: 'b@one.test', notify: 'SUCCESS,DELAY' },
              { address: 'c@two.test', orcpt: 'rfc822;C@two.test' },
            ],
          }),
        );
        const b = await first.enqueue(message({ origin: 'dsn', sender: '' }));
        const now = Date.now();
        await first.hold(b);
        const job = await claimOne(first, a, 'one.test', now);
        assert.ok(job);
        await first.record(
          job,
          [
            { address: 'a@one.test', kind: 'sent', reply: '250 ok', host: 'mx' },
            {
              address: 'b@one.test',
              kind: 'deferred',
              reply: '451',
              host: 'mx',
              nextAttempt: now + 5000,
              delayNotified: true,
            },
          ],
          now,
        );
        const before = [await first.get(a), await first.get(b)];
        const counts = await first.counts();
        await first.close();
        const q = await u.open();
        try {
          assert.deepEqual(await q.recover(), { held: 0, orphanFiles: 0, missingFiles: [] });
          assert.deepEqual([await q.get(a), await q.get(b)], before);
          assert.deepEqual(await q.counts(), counts);
          const m = await q.get(a);
          assert.deepEqual(
            [m?.envid, m?.authUser, m?.smtputf8, m?.recipients.find((r) => r.address === 'b@one.test')?.delayNotified],
            ['E1', 'alice', true, true],
          );
          // RFC 3461 RET and NOTIFY (with ENVID and ORCPT) kept with the entry
          assert.deepEqual(
            [m?.ret, ...(m?.recipients ?? []).map((r) => [r.address, r.notify, r.orcpt])],
            [
              'HDRS',
              ['a@one.test', 'NEVER', null],
              ['b@one.test', 'SUCCESS,DELAY', null],
              ['c@two.test', null, 'rfc822;C@two.test'],
            ],
          );
          assert.equal((await q.get(b))?.ret, null);
          assert.equal((await readFile(join(u.spoolDir, `${a}.eml`), 'utf8')).length, m?.size);
        } finally {
          await q.close();
        }
      }),
    );
    test(
      'a scheduled message waits: never a delivery job, kept by retry, claimed once for its release',
      withQueue(async (u, q) => {
        const now = Date.now();
        const events: QueueEvent[] = [];
        const stop = q.observe((e) => events.push(e));
        const later = await q.enqueue(message({ releaseAt: now + 60_000, tag: 'owner-1' }));
        const soon = await q.enqueue(message({ releaseAt: now + 30_000, tag: 'owner-2' }));
        assert.deepEqual(await q.claim(now + 100_000, 100, all), []);
        assert.equal(await q.retry('all'), 0);
        assert.equal(await q.nextDue(), now + 30_000);
        assert.deepEqual(await q.claimScheduled(now + 29_999, 10), []);
        const [job, ...rest] = await q.claimScheduled(now + 30_000, 10);
        assert.deepEqual(rest, []);
        assert.equal(job?.message.id, soon);
        assert.deepEqual([job?.domain, job?.message.tag, job?.message.releaseAt], [SCHEDULED, 'owner-2', now + 30_000]);
        assert.equal(job?.recipients.length, 3);
        assert.equal((await q.get(later))?.tag, 'owner-1');
        // Leased while the dispatcher routes it: not claimed again, not canceled.
        assert.deepEqual(await q.claimScheduled(now + 30_000, 10), []);
        assert.equal(await q.cancel(soon), false);
        assert.equal(await q.nextDue(), now + 60_000, 'the leased one is not due for this runner');
        const file = Buffer.concat(await q.messageFile(job.message).open().toArray()).toString();
        assert.equal(file, 'Received: by test\r\nSubject: s\r\n\r\nbody\r\n');
        const result = { queueIds: [], routes: { 'a@one.test': { local: true, refused: null, remote: [] } } };
        await q.finishScheduled(job, result);
        assert.equal(await q.get(soon), null);
        assert.deepEqual(events, [{ kind: 'released', queueId: soon, tag: 'owner-2', result }]);
        // Canceled: rows and file gone, once.
        assert.equal(await q.cancel(later), true);
        assert.equal(await q.cancel(later), false);
        assert.equal(await q.get(later), null);
        assert.deepEqual(await readdir(u.spoolDir), []);
        stop();
      }),
    );

    test(
      'a release that failed is rescheduled: the lease given back, due again at the new time',
      withQueue(async (_u, q) => {
        const now = Date.now();
        const id = await q.enqueue(message({ releaseAt: now + 1000 }));
        const [job] = await q.claimScheduled(now + 1000, 10);
        assert.ok(job);
        await q.rescheduleScheduled(job, now + 5000);
        assert.equal((await q.get(id))?.releaseAt, now + 5000);
        assert.equal(await q.nextDue(), now + 5000);
        assert.deepEqual(await q.claimScheduled(now + 4999, 10), []);
        const [again] = await q.claimScheduled(now + 5000, 10);
        assert.equal(again?.message.id, id);
        await assert.rejects(q.finishScheduled(job, { queueIds: [], routes: {} }), LeaseLost, 'the old lease');
        await q.unclaim(again);
        assert.equal(await q.cancel(id), true, 'given back: it can be canceled');
      }),
    );

    test(
      'an ordinary entry cannot be canceled; observers hear each recorded attempt with its tag',
      withQueue(async (_u, q) => {
        const events: QueueEvent[] = [];
        const stop = q.observe((e) => events.push(e));
        const failing = q.observe(() => {
          throw new Error('a broken observer');
        });
        const id = await q.enqueue(message({ tag: 'owner-3', recipients: [{ address: 'x@one.test' }] }));
        assert.equal(await q.cancel(id), false);
        assert.equal(await q.get(id).then((m) => m?.releaseAt), 0);
        const job = await claimOne(q, id, 'one.test');
        assert.ok(job);
        assert.deepEqual(events, [], 'nothing before the record');
        await q.record(job, [{ address: 'x@one.test', kind: 'sent', reply: '250 ok', host: 'mx' }], Date.now());
        assert.deepEqual(events, [
          {
            kind: 'attempt',
            queueId: id,
            tag: 'owner-3',
            outcomes: [{ address: 'x@one.test', kind: 'sent', reply: '250 ok' }],
          },
        ]);
        stop();
        failing();
        const other = await q.enqueue(message({ recipients: [{ address: 'y@one.test' }] }));
        const j2 = await claimOne(q, other, 'one.test');
        assert.ok(j2);
        await q.record(j2, [{ address: 'y@one.test', kind: 'failed', reply: '550 no', host: 'mx' }], Date.now());
        assert.equal(events.length, 1, 'unsubscribed');
      }),
    );
  });

  // One node owns a SQLite queue: there is nothing to share.
  if (!opts.shared) return;
  describe(`${name}: the queue across nodes`, () => {
    const sharedOnly = withQueue;
    /** Nodes a and b with leases of 400 ms. */
    const shortLeases = (fn: (u: QueueUnderTest, a: QueueBackend, b: QueueBackend) => Promise<void>) =>
      sharedOnly(async (u) => {
        const a = await u.open({ node: 'node-a', leaseMs: 400 });
        const b = await u.open({ node: 'node-b', leaseMs: 400 });
        try {
          await fn(u, a, b);
        } finally {
          await a.close();
          await b.close();
        }
      });

    test(
      'two nodes claiming together never claim the same job',
      sharedOnly(async (u, a) => {
        const b = await u.open({ node: 'node-b' });
        try {
          await b.recover();
          const domains = ['one.test', 'two.test', 'three.test'];
          const n = 120;
          await Promise.all(
            Array.from({ length: n }, (_, i) =>
              a.enqueue(message({ recipients: domains.map((d) => ({ address: `u${i}@${d}` })) })),
            ),
          );
          const seen = new Map<string, string>();
          const dup: string[] = [];
          const worker = async (q: QueueBackend, who: string) => {
            for (;;) {
              const jobs = await q.claim(Date.now(), 7, all);
              if (jobs.length === 0) return;
              for (const j of jobs) {
                const key = `${j.message.id} ${j.domain}`;
                if (seen.has(key)) dup.push(key);
                seen.set(key, who);
              }
            }
          };
          await Promise.all([worker(a, 'a'), worker(b, 'b'), worker(a, 'a2'), worker(b, 'b2')]);
          assert.deepEqual(dup, []);
          assert.equal(seen.size, n * domains.length, 'every job claimed once');
          const byNode = [...seen.values()].filter((w) => w.startsWith('b')).length;
          assert.ok(byNode > 0 && byNode < seen.size, 'both nodes got work');
        } finally {
          await b.close();
        }
      }),
    );

    test(
      'a lease that runs out is taken over by the other node; the first one cannot write over it',
      shortLeases(async (u, a, b) => {
        const id = await a.enqueue(message({ recipients: [{ address: 'x@one.test' }] }));
        const mine = await claimOne(a, id, 'one.test');
        assert.ok(mine);
        assert.equal(await claimOne(b, id, 'one.test'), null, 'leased to node a');
        assert.equal(await a.extend(mine), true, 'renewed while delivering');
        // Node a stalls (or died): no renewal; node b takes the job once the lease runs out.
        const taken = await waitUntil('the lease to run out', () => claimOne(b, id, 'one.test'), 5000);
        assert.equal(await a.extend(mine), false, 'a sees it lost the lease');
        await assert.rejects(
          a.record(mine, [{ address: 'x@one.test', kind: 'failed', reply: '550 late', host: null }], Date.now()),
          LeaseLost,
        );
        assert.equal(
          await b.record(taken, [{ address: 'x@one.test', kind: 'sent', reply: '250 b', host: null }], Date.now()),
          true,
        );
        assert.equal(await a.get(id), null, "b's result stands: delivered, finished");
        assert.deepEqual(await readdir(u.spoolDir), []);
      }),
    );

    test(
      'two domains of one message finished on two nodes at once: the message goes exactly once',
      sharedOnly(async (u, a) => {
        const b = await u.open({ node: 'node-b' });
        try {
          for (let i = 0; i < 10; i++) {
            const id = await a.enqueue(message({ recipients: [{ address: 'p@one.test' }, { address: 'q@two.test' }] }));
            const ja = await claimOne(a, id, 'one.test');
            const jb = await claimOne(b, id, 'two.test');
            assert.ok(ja && jb);
            const [fa, fb] = await Promise.all([
              a.record(ja, [{ address: 'p@one.test', kind: 'sent', reply: '250', host: null }], Date.now()),
              b.record(jb, [{ address: 'q@two.test', kind: 'sent', reply: '250', host: null }], Date.now()),
            ]);
            assert.equal(Number(fa) + Number(fb), 1, 'one of them saw the last recipient done');
            assert.equal(await a.get(id), null);
          }
          assert.deepEqual(await readdir(u.spoolDir), []);
        } finally {
          await b.close();
        }
      }),
    );

    test(
      "a node's recovery leaves the other nodes' unacknowledged messages and new files alone",
      sharedOnly(async (u, a) => {
        const b = await u.open({ node: 'node-b' });
        try {
          const heldByB = await b.enqueue(message({ hold: true }));
          const inFlight = `${heldByB.replace(/-[0-9a-f]{8}$/, '-0badf00d')}.eml`; // b between file and row
          await writeFile(join(u.spoolDir, inFlight), 'being queued by b');
          const a2 = await u.open();
          assert.deepEqual(await a2.recover(), { held: 0, orphanFiles: 0, missingFiles: [] });
          await a2.close();
          assert.ok(await a.hasFile(heldByB));
          assert.deepEqual((await readdir(u.spoolDir)).sort(), [`${heldByB}.eml`, inFlight].sort());
          const b2 = await u.open({ node: 'node-b' });
          assert.deepEqual(await b2.recover(), { held: 1, orphanFiles: 1, missingFiles: [] });
          await b2.close();
          assert.deepEqual(await readdir(u.spoolDir), []);
        } finally {
          await b.close();
        }
      }),
    );
    test(
      'a scheduled message is released by one node only, and a cancel and a release never both win',
      sharedOnly(async (u, a) => {
        const b = await u.open({ node: 'node-b' });
        try {
          const now = Date.now();
          const heard: string[] = [];
          b.observe((e) => heard.push(e.kind));
          const n = 40;
          const ids = await Promise.all(
            Array.from({ length: n }, (_, i) => a.enqueue(message({ releaseAt: now + 1000 + i, tag: `t${i}` }))),
          );
          // Node a releases, node b claims too and cancels each one, all at once.
          const claimedA: Job[] = [];
          const claimedB: Job[] = [];
          const canceled: string[] = [];
          const claimer = async (q: QueueBackend, into: Job[]) => {
            for (;;) {
              const jobs = await q.claimScheduled(now + 10_000, 3);
              if (jobs.length === 0) return;
              into.push(...jobs);
            }
          };
          await Promise.all([
            claimer(a, claimedA),
            claimer(b, claimedB),
            ...ids.map(async (id) => {
              if (await b.cancel(id)) canceled.push(id);
            }),
          ]);
          const released = [...claimedA, ...claimedB].map((j) => j.message.id as string);
          assert.equal(new Set(released).size, released.length, 'no message claimed twice');
          assert.deepEqual([...released, ...canceled].sort(), [...ids].sort(), 'each one released or canceled');
          for (const j of claimedA) await a.finishScheduled(j, { queueIds: [], routes: {} });
          assert.equal(heard.length, 0, "node b's observers do not hear node a's releases");
          for (const j of claimedB) await b.finishScheduled(j, { queueIds: [], routes: {} });
          assert.equal(heard.length, claimedB.length);
          assert.deepEqual(await readdir(u.spoolDir), []);
        } finally {
          await b.close();
        }
      }),
    );

    test(
      "a release whose lease ran out is the other node's; the first cannot finish it",
      shortLeases(async (u, a, b) => {
        const id = await a.enqueue(message({ releaseAt: Date.now() }));
        const [mine] = await a.claimScheduled(Date.now(), 10);
        assert.ok(mine);
        assert.equal(await b.cancel(id), false, 'being released by node a');
        assert.equal(await a.extend(mine), true);
        const [taken] = await waitUntil(
          'the lease to run out',
          async () => {
            const jobs = await b.claimScheduled(Date.now(), 10);
            return jobs.length > 0 ? jobs : null;
          },
          5000,
        );
        await assert.rejects(a.finishScheduled(mine, { queueIds: [], routes: {} }), LeaseLost);
        await b.finishScheduled(taken as Job, { queueIds: [], routes: {} });
        assert.equal(await a.get(id), null);
        assert.deepEqual(await readdir(u.spoolDir), []);
      }),
    );
  });
}
