// JMAP push across two real arcline nodes on one PostgreSQL (issue #18, docs/cluster.md "JMAP
// push across nodes"): an Identity/set made through node A's JMAP API reaches an EventSource
// held on node B as a StateChange, and a VacationResponse/set on B reaches an EventSource on A;
// neither carries a mail type (each node derives those from the journal).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { openEventStream } from '../harness/event-stream.ts';
import { type ClusterNode, startCluster, type TestCluster } from './harness.ts';

// biome-ignore lint/suspicious/noExplicitAny: JMAP answers are checked field by field
type Json = any;
const CORE = 'urn:ietf:params:jmap:core';
const SUBMISSION = 'urn:ietf:params:jmap:submission';
const VACATION = 'urn:ietf:params:jmap:vacationresponse';
const auth = `Basic ${Buffer.from('dana@example.test:dana-secret').toString('base64')}`;
const account = accountIdOf('dana@example.test' as AccountId);

let c: TestCluster;

before(async () => {
  c = await startCluster({ nodes: 2 });
  for (const args of [
    ['domain', 'add', 'example.test'],
    ['user', 'add', 'dana@example.test', '--password-stdin'],
  ]) {
    const r = await c.cli(args, { stdin: 'dana-secret\n' });
    assert.equal(r.code, 0, r.stderr);
  }
});

after(() => c?.close());

async function call(n: ClusterNode, using: string, name: string, args: Record<string, unknown>): Promise<Json> {
  const r = await fetch(`http://127.0.0.1:${n.port('http')}/jmap/api`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({ using: [CORE, using], methodCalls: [[name, { accountId: account, ...args }, '0']] }),
  });
  assert.equal(r.status, 200);
  const [got, body] = ((await r.json()) as { methodResponses: [string, Json, string][] }).methodResponses[0] ?? [];
  assert.equal(got, name, JSON.stringify(body));
  return body;
}

const events = (n: ClusterNode) =>
  openEventStream(`http://127.0.0.1:${n.port('http')}/jmap/eventsource?types=*&closeafter=no&ping=0`, {
    authorization: auth,
  });

test('cluster: Identity/set on node A reaches an EventSource on node B', async (t) => {
  const [a, b] = c.nodes;
  assert.ok(a && b);
  // The 200 comes once B's hub has the listener (streamEvents subscribes as it answers).
  const onB = await events(b);
  try {
    const got = onB.next((ch) => ch.changed[account]?.Identity !== undefined);
    const t0 = performance.now();
    const set = await call(a, SUBMISSION, 'Identity/set', {
      create: { w: { name: 'Dana', email: 'dana@example.test' } },
    });
    const answered = performance.now();
    assert.ok(set.created?.w?.id, JSON.stringify(set.notCreated));
    const change = await got;
    t.diagnostic(
      `StateChange on node B ${Math.round(performance.now() - answered)} ms after node A answered ` +
        `(${Math.round(performance.now() - t0)} ms after the request)`,
    );
    assert.deepEqual(change.changed, { [account]: { Identity: set.newState } });
  } finally {
    onB.close();
  }
});

test('cluster: VacationResponse/set on node B reaches an EventSource on node A, without mail types', async () => {
  const [a, b] = c.nodes;
  assert.ok(a && b);
  const onA = await events(a);
  try {
    const got = onA.next((ch) => ch.changed[account]?.VacationResponse !== undefined);
    const set = await call(b, VACATION, 'VacationResponse/set', { update: { singleton: { isEnabled: true } } });
    assert.deepEqual(set.updated, { singleton: null }, JSON.stringify(set.notUpdated));
    assert.deepEqual((await got).changed, { [account]: { VacationResponse: set.newState } });
    assert.ok(
      onA.got.every((ch) =>
        Object.keys(ch.changed[account] ?? {}).every((type) => !['Email', 'Mailbox', 'Thread'].includes(type)),
      ),
      JSON.stringify(onA.got),
    );
  } finally {
    onA.close();
  }
});
