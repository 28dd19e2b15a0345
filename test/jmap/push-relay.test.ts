// JMAP push across nodes (issue #18, docs/cluster.md "JMAP push across nodes";
// src/jmap/push-relay.ts): two PushHubs in one process, each with the relay over its own
// Notifier and pool on one database, as two nodes. A publish on hub A reaches an EventSource
// stream of hub B (streamEvents over a real HTTP response) within 100 ms (p50/p99 printed),
// once, and is not sent again by B; a burst goes in order, coalesced; the mail types are never relayed; malformed payloads
// NOTIFYed from psql are dropped and counted; after B's listening session is killed the relay
// resyncs without publishing and carries the next change.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import type { AccountId } from '../../src/core/ids.ts';
import { LIMITS } from '../../src/core/limits.ts';
import { jmapPushRelay } from '../../src/core/metrics.ts';
import { Notifier } from '../../src/db/notify.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { PushHub, type StateChanges, streamEvents } from '../../src/jmap/push.ts';
import { ClusterPushRelay, parseRelayPayload, relayPayload } from '../../src/jmap/push-relay.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { openEventStream, type StateChange } from '../harness/event-stream.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';
import { waitUntil } from '../harness/submit.ts';

const alice = 'alice@example.test' as AccountId;
const aliceId = accountIdOf(alice);
const KNOWN = new Set(['Identity', 'EmailSubmission', 'VacationResponse', 'Mailbox', 'Email', 'Thread']);
const known = (t: string) => KNOWN.has(t);

test('payloads: built and read back; hostile ones refused', () => {
  const p = relayPayload('node-a', alice, { Identity: '3', Email: '9', VacationResponse: '1' });
  assert.equal(p, '{"node":"node-a","account":"alice@example.test","changed":{"Identity":"3","VacationResponse":"1"}}');
  assert.deepEqual(parseRelayPayload(p ?? '', known), {
    node: 'node-a',
    account: alice,
    changed: { Identity: '3', VacationResponse: '1' },
  });
  assert.equal(relayPayload('node-a', alice, { Email: '9', Thread: '9' }), null, 'journal types only: nothing');
  assert.equal(relayPayload('node-a', 'Alice@x' as AccountId, { Identity: '3' }), null);
  // Unknown and journal types are left out; the rest kept.
  assert.deepEqual(
    parseRelayPayload(
      '{"node":"n","account":"alice@example.test","changed":{"Identity":"4","Quota":"1","Email":"2"}}',
      known,
    )?.changed,
    { Identity: '4' },
  );
  const max = LIMITS.cluster.pushRelayMaxToken;
  for (const bad of [
    '',
    'null',
    '[]',
    '{"node":"n","account":"alice@example.test","changed":{}}',
    '{"node":"n","account":"alice@example.test","changed":[]}',
    '{"node":"n","account":"alice@example.test","changed":{"Identity":3}}',
    '{"node":"n","account":"alice@example.test","changed":{"Identity":""}}',
    '{"node":"n","account":"alice@example.test","changed":{"Identity":"a b"}}',
    `{"node":"n","account":"alice@example.test","changed":{"Identity":"${'1'.repeat(max + 1)}"}}`,
    '{"node":"n","account":"alice@example.test","changed":{"__proto__":"1"}}',
    '{"node":"n","account":"Alice@Example.TEST","changed":{"Identity":"1"}}',
    '{"node":"-n","account":"alice@example.test","changed":{"Identity":"1"}}',
    `{"node":"${'n'.repeat(64)}","account":"alice@example.test","changed":{"Identity":"1"}}`,
    '{"account":"alice@example.test","changed":{"Identity":"1"}}',
    `{"node":"n","account":"alice@example.test","changed":{${Array.from({ length: 17 }, (_, i) => `"T${i}":"1"`).join(',')}}}`,
    `{"node":"n","account":"alice@example.test","changed":{"Identity":"1"},"x":"${'x'.repeat(4000)}"}`,
  ])
    assert.equal(parseRelayPayload(bad, known), null, bad.slice(0, 100));
});

/** A node: its pool, Notifier, hub and relay. */
interface Node {
  readonly name: string;
  readonly pool: Postgres;
  readonly notifier: Notifier;
  readonly hub: PushHub;
  readonly relay: ClusterPushRelay;
}

describe('two nodes on one database', () => {
  let t: TestDatabase;
  let a: Node;
  let b: Node;
  let http: Server;
  let base: string;

  const node = async (name: string): Promise<Node> => {
    const pool = await t.open();
    const notifier = await Notifier.start({
      session: { url: t.url, connectTimeoutMs: 5000, applicationName: `arcline/${name}` },
    });
    const hub = new PushHub();
    const relay = await ClusterPushRelay.start({ hub, source: notifier, db: pool, node: name, known });
    return { name, pool, notifier, hub, relay };
  };

  before(async () => {
    t = await freshDatabase();
    a = await node('node-a');
    b = await node('node-b');
    // Node B's EventSource (RFC 8620 §7.3), as jmap/http.ts serves it.
    http = createServer((_req, res) =>
      streamEvents(b.hub, alice, aliceId, { types: '*', closeAfterState: false, pingSeconds: 0 }, res, {}),
    );
    await new Promise<void>((r) => http.listen(0, '127.0.0.1', r));
    base = `http://127.0.0.1:${(http.address() as AddressInfo).port}`;
  });

  after(async () => {
    http.closeAllConnections();
    await new Promise((r) => http.close(r));
    for (const n of [a, b]) {
      n.relay.close();
      await n.notifier.close();
    }
    await t.drop();
  });

  /** B's event stream, alice's part of each StateChange. */
  async function eventsOfB() {
    const stream = await openEventStream(`${base}/`);
    await waitUntil('B listens', async () => b.hub.listeners(alice) > 0);
    const mine = (c: StateChange) => c.changed[aliceId] ?? {};
    return {
      get got() {
        return stream.got.map(mine);
      },
      next: async (pred: (c: Record<string, string>) => boolean) => mine(await stream.next((c) => pred(mine(c)))),
      async close() {
        stream.close();
        await waitUntil('B stops listening', async () => b.hub.listeners(alice) === 0);
      },
    };
  }

  /** Everything hub `n` tells its listeners of alice, until stopped. */
  const record = (n: Node) => {
    const seen: StateChanges[] = [];
    return { seen, stop: n.hub.subscribe(alice, (c) => seen.push(c)) };
  };

  test('a publish on hub A reaches the EventSource of hub B within 100 ms, once; B sends nothing', async () => {
    const ev = await eventsOfB();
    const onA = record(a);
    const sentByB = b.relay.stats.sent;
    const ms: number[] = [];
    try {
      /** Milliseconds from the publish of `state` on A to its event on B. */
      const relayed = async (state: string) => {
        const got = ev.next((c) => c.Identity === state);
        const t0 = performance.now();
        a.hub.publish(alice, { Identity: state });
        await got;
        return performance.now() - t0;
      };
      for (let i = 1; i <= 100; i++) ms.push(await relayed(String(i)));
      const [p50 = 0, p99 = 0] = [0.5, 0.99].map((q) => ms.toSorted((x, y) => x - y)[Math.ceil(q * ms.length) - 1]);
      console.log(
        `# relay latency over 100 (publish on A to B's event stream): p50 ${p50.toFixed(2)} ms, p99 ${p99.toFixed(2)} ms`,
      );
      // As test/db/notify.test.ts: the typical case held to the target, the tail to what a
      // loaded 2-core machine keeps.
      assert.ok(p50 < 100, `p50 ${p50} ms`);
      assert.ok(p99 < 250, `p99 ${p99} ms`);
      // Each state once on B; A's own listener told once by the publish (its own relayed
      // message ignored), B sent nothing back.
      const last = ev.next((c) => c.Identity === 'end');
      a.hub.publish(alice, { Identity: 'end' });
      await last;
      assert.deepEqual(
        ev.got.map((c) => c.Identity),
        [...Array.from({ length: 100 }, (_, i) => String(i + 1)), 'end'],
      );
      assert.equal(onA.seen.length, 101);
      assert.equal(b.relay.stats.sent, sentByB);
    } finally {
      onA.stop();
      await ev.close();
    }
  });

  test('a burst: sent in order, each account keeping its newest state while a NOTIFY is out', async () => {
    const ev = await eventsOfB();
    const sent = a.relay.stats.sent;
    try {
      const last = ev.next((c) => c.EmailSubmission === '1050');
      for (let i = 1001; i <= 1050; i++) a.hub.publish(alice, { EmailSubmission: String(i) });
      await last;
      const states = ev.got.map((c) => Number(c.EmailSubmission));
      console.log(`# 50 publishes at once: ${a.relay.stats.sent - sent} NOTIFYs, ${states.length} events on B`);
      assert.deepEqual(
        states,
        states.toSorted((x, y) => x - y),
        'never an older state after a newer one',
      );
      assert.ok(a.relay.stats.sent - sent < 50, `${a.relay.stats.sent - sent} NOTIFYs`);
    } finally {
      await ev.close();
    }
  });

  test('mail types are not relayed: each node derives them from the journal', async () => {
    const ev = await eventsOfB();
    const sent = a.relay.stats.sent;
    try {
      a.hub.publish(alice, { Email: '50', Mailbox: '50', Thread: '50', EmailDelivery: '50' });
      a.hub.publish(alice, { Email: '51', Mailbox: '51', Identity: '200', EmailSubmission: '7' });
      const s = ev.next((c) => c.VacationResponse === '3');
      a.hub.publish(alice, { VacationResponse: '3' });
      await s;
      assert.deepEqual(ev.got, [{ Identity: '200', EmailSubmission: '7' }, { VacationResponse: '3' }]);
      assert.equal(a.relay.stats.sent - sent, 2, 'the publish of mail types alone sent nothing');
    } finally {
      await ev.close();
    }
  });

  test('malformed payloads NOTIFYed from psql are dropped and counted; a well-formed one is told', async () => {
    const ev = await eventsOfB();
    const before = b.relay.stats;
    const bad = [
      'not json',
      '{"node":"node-x","account":"alice@example.test"}',
      '{"node":"node-x","account":"ALICE@example.test","changed":{"Identity":"1"}}',
      '{"node":"node-x","account":"alice@example.test","changed":{"Identity":1}}',
      '{"node":"node-x","account":"alice@example.test","changed":{"Email":"1"}}', // journal only
      '{"node":"node-x","account":"alice@example.test","changed":{"Nope":"1"}}', // unknown only
      `{"node":"node-x","account":"alice@example.test","changed":{"Identity":"1"},"pad":"${'x'.repeat(5000)}"}`,
    ];
    const good = [
      // A payload of B's own name is B's own: ignored, not counted as malformed.
      '{"node":"node-b","account":"alice@example.test","changed":{"Identity":"own"}}',
      '{"node":"node-x","account":"alice@example.test","changed":{"Identity":"300","Email":"9","Nope":"2"}}',
    ];
    const quote = (p: string) => `'${p.replaceAll("'", "''")}'`;
    const sql = [...bad, ...good].map((p) => `NOTIFY arcline_jmap, ${quote(p)};`).join('\n');
    const s = ev.next((c) => c.Identity === '300');
    await promisify(execFile)('psql', ['-X', '-q', '-v', 'ON_ERROR_STOP=1', t.url, '-c', sql]);
    assert.deepEqual(await s, { Identity: '300' });
    const after = b.relay.stats;
    assert.equal(after.malformed - before.malformed, bad.length);
    const counted = (await jmapPushRelay.get()).values.find((v) => v.labels.result === 'malformed')?.value;
    assert.ok((counted ?? 0) >= bad.length, `arcline_jmap_push_relay_total{result="malformed"} ${counted}`);
    assert.equal(after.received - before.received, 1);
    assert.deepEqual(ev.got, [{ Identity: '300' }]);
    await ev.close();
  });

  test("B's listening session killed: it resyncs, publishes nothing, and relays the next change", async () => {
    const ev = await eventsOfB();
    try {
      const pid = b.notifier.backendPid;
      assert.ok(pid);
      const resyncs = b.relay.stats.resyncs;
      await a.pool.query('SELECT pg_terminate_backend($1)', [pid]);
      await waitUntil('B resynced', async () => b.relay.stats.resyncs > resyncs);
      assert.deepEqual(ev.got, [], 'nothing published at the resync');
      const s = ev.next((c) => c.Identity === '400');
      a.hub.publish(alice, { Identity: '400' });
      await s;
    } finally {
      await ev.close();
    }
  });
});
