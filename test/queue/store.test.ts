// The queue store on its own: durable enqueue, held messages, leases, outcomes, recovery.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, test } from 'node:test';
import { silentLogger } from '../../src/core/log.ts';
import { QueueStore } from '../../src/queue/store.ts';
import type { OutboundMessage, QueueEvent, QueueId } from '../../src/queue/types.ts';
import { bufferMessage } from '../../src/store/spool.ts';

function message(over: Partial<OutboundMessage> = {}): OutboundMessage {
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

describe('queue store', () => {
  let dir: string;
  let q: QueueStore;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-q-'));
    q = new QueueStore({ stateDir: dir, log: silentLogger() });
    await q.recover();
  });

  afterEach(async () => {
    q.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('enqueue writes prefix + message to a file and one row per recipient', async () => {
    const id = await q.enqueue(message());
    const file = await readFile(join(dir, 'queue', `${id}.eml`), 'utf8');
    assert.equal(file, 'Received: by test\r\nSubject: s\r\n\r\nbody\r\n');
    const m = q.get(id);
    assert.equal(m?.size, file.length);
    assert.deepEqual(
      m?.recipients.map((r) => [r.address, r.domain, r.state, r.orcpt]),
      [
        ['a@one.test', 'one.test', 'queued', null],
        ['b@one.test', 'one.test', 'queued', null],
        ['c@two.test', 'two.test', 'queued', 'rfc822;C@two.test'],
      ],
    );
    assert.deepEqual(await readdir(join(dir, 'queue')), [`${id}.eml`], 'no temporary file left');
  });

  test('due work comes per (message, domain); a claim leases it; outcomes finish the message', async () => {
    const id = await q.enqueue(message());
    const now = Date.now();
    const due = q.due(now, 10, new Set());
    assert.deepEqual(due.map((d) => d.domain).sort(), ['one.test', 'two.test']);
    const job = q.claim(id, 'one.test', now);
    assert.deepEqual(
      job?.recipients.map((r) => r.address),
      ['a@one.test', 'b@one.test'],
    );
    assert.equal(q.claim(id, 'one.test', now), null, 'leased work is not handed out twice');
    assert.deepEqual(
      q.due(now, 10, new Set()).map((d) => d.domain),
      ['two.test'],
    );
    assert.deepEqual(q.due(now, 10, new Set(['two.test'])), [], 'busy domains are skipped');
    const finished1 = await q.record(
      id,
      'one.test',
      [
        { address: 'a@one.test', kind: 'sent', reply: '250 ok', host: 'mx.one.test' },
        { address: 'b@one.test', kind: 'deferred', reply: '451 later', host: 'mx.one.test', nextAttempt: now + 60_000 },
      ],
      now,
    );
    assert.equal(finished1, false);
    const b = q.get(id)?.recipients.find((r) => r.address === 'b@one.test');
    assert.deepEqual([b?.state, b?.attempts, b?.lastReply, b?.nextAttempt], ['queued', 1, '451 later', now + 60_000]);
    assert.ok((q.nextDue() ?? Infinity) <= now, 'two.test is still due now');
    q.claim(id, 'two.test', now);
    await q.record(id, 'two.test', [{ address: 'c@two.test', kind: 'failed', reply: '550 no', host: null }], now);
    assert.equal(q.retry(id), 1, 'retry makes the deferred recipient due');
    const again = q.claim(id, 'one.test', Date.now());
    assert.deepEqual(
      again?.recipients.map((r) => r.address),
      ['b@one.test'],
    );
    const finished = await q.record(
      id,
      'one.test',
      [{ address: 'b@one.test', kind: 'sent', reply: '250', host: null }],
      now,
    );
    assert.equal(finished, true);
    assert.equal(q.get(id), null);
    assert.deepEqual(await readdir(join(dir, 'queue')), [], 'the file goes with the last recipient');
  });

  test('a held message is invisible until released', async () => {
    const id = await q.enqueue(message({ hold: true }));
    assert.deepEqual(q.due(Date.now(), 10, new Set()), []);
    assert.deepEqual(q.list(), []);
    q.release(id);
    assert.equal(q.due(Date.now(), 10, new Set()).length, 2);
  });

  test("the operator's hold: listed as held, not due, kept across a restart, due again once released", async () => {
    const id = await q.enqueue(message());
    assert.equal(q.hold(id), true);
    assert.equal(q.hold('q-none' as QueueId), false);
    assert.deepEqual(q.due(Date.now() + 1e10, 10, new Set()), []);
    assert.deepEqual(
      q.list().map((m) => [m.id, m.held]),
      [[id, true]],
    );
    q.close();
    q = new QueueStore({ stateDir: dir, log: silentLogger() });
    assert.equal((await q.recover()).held, 0, 'an operator hold is not an unacknowledged message');
    assert.equal(q.get(id)?.held, true);
    q.release(id);
    assert.equal(q.get(id)?.held, false);
    assert.equal(q.due(Date.now(), 10, new Set()).length, 2);
  });

  test('recovery: held messages, orphan and temporary files go; leases are cleared; rows without file are reported', async () => {
    const held = await q.enqueue(message({ hold: true }));
    const kept = await q.enqueue(message());
    const lost = await q.enqueue(message());
    q.claim(kept, 'one.test', Date.now());
    await writeFile(join(dir, 'queue', 'q-orphan.eml'), 'never acknowledged');
    await writeFile(join(dir, 'queue', `${kept}x.tmp`), 'half written');
    await rm(join(dir, 'queue', `${lost}.eml`));
    q.close();
    q = new QueueStore({ stateDir: dir, log: silentLogger() });
    const r = await q.recover();
    assert.deepEqual(r, { held: 1, orphanFiles: 2, missingFiles: [lost] });
    assert.equal(q.get(held as QueueId), null);
    assert.deepEqual(
      (await readdir(join(dir, 'queue'))).sort(),
      [`${kept}.eml`, `${lost}.eml`].filter((f) => f !== `${lost}.eml`),
    );
    assert.equal(q.claim(kept, 'one.test', Date.now())?.recipients.length, 2, 'the lease was cleared');
  });

  test('drop removes rows and file; list and counts see only queued work', async () => {
    const a = await q.enqueue(message());
    await q.enqueue(message({ recipients: [{ address: 'z@three.test' }] }));
    assert.deepEqual({ ...q.counts() }, { messages: 2, recipients: 4 });
    assert.equal(q.list().length, 2);
    assert.equal(await q.drop(a), true);
    assert.equal(await q.drop(a), false);
    assert.deepEqual({ ...q.counts() }, { messages: 1, recipients: 1 });
  });

  test('a scheduled message: not due, kept by retry, released once or canceled once; observers hear of attempts', async () => {
    const now = Date.now();
    const events: QueueEvent[] = [];
    const stop = q.observe((e) => events.push(e));
    const later = await q.enqueue(message({ releaseAt: now + 60_000, tag: 'owner-1' }));
    const soon = await q.enqueue(message({ releaseAt: now + 30_000, tag: 'owner-2' }));
    assert.deepEqual(q.due(now + 100_000, 10, new Set()), []); // never claimed per domain
    assert.equal(q.retry('all'), 0);
    assert.deepEqual(q.dueScheduled(now + 30_000, 10), [soon]);
    assert.equal(q.nextDue(), now + 30_000);
    // Released: leased while the dispatcher routes it; a cancel then fails.
    const m = q.claimScheduled(soon);
    assert.equal(m?.tag, 'owner-2');
    assert.equal(q.claimScheduled(soon), null);
    assert.equal(await q.cancel(soon), false);
    await q.finishScheduled(m as NonNullable<typeof m>, { queueIds: [], routes: {} });
    assert.equal(q.get(soon), null);
    assert.equal(events.at(-1)?.kind, 'released');
    // Canceled: rows and file gone, once.
    assert.equal(await q.cancel(later), true);
    assert.equal(await q.cancel(later), false);
    assert.deepEqual(await readdir(join(dir, 'queue')), []);
    // An ordinary entry cannot be canceled; its attempts are told with its tag.
    const plain = await q.enqueue(message({ tag: 'owner-3', recipients: [{ address: 'x@one.test' }] }));
    assert.equal(await q.cancel(plain), false);
    const job = q.claim(plain, 'one.test', Date.now() + 1);
    assert.ok(job);
    await q.record(
      plain,
      'one.test',
      [{ address: 'x@one.test', kind: 'sent', reply: '250 ok', host: 'mx' }],
      Date.now(),
    );
    assert.deepEqual(events.at(-1), {
      kind: 'attempt',
      queueId: plain,
      tag: 'owner-3',
      outcomes: [{ address: 'x@one.test', kind: 'sent', reply: '250 ok' }],
    });
    stop();
  });
});
