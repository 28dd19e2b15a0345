// The ownership rule and the announce payload of PushSubscriptions across nodes
// (jmap/push-peers.ts): rendezvous hashing gives every node the same owner from the same list,
// spreads subscriptions over the nodes, and moves only a dead node's ones; payloads are untrusted.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ownerOf, parseSubscriptionsPayload } from '../../src/jmap/push-peers.ts';

const ids = Array.from({ length: 3000 }, (_, i) => `P${i.toString(36)}x${(i * 7919).toString(36)}`);

test('owners: the same from any order of the list, spread over the nodes', () => {
  const nodes = ['node-a', 'node-b', 'node-c'];
  const count = new Map<string, number>();
  for (const id of ids) {
    const o = ownerOf(id, nodes);
    assert.equal(ownerOf(id, [...nodes].reverse()), o);
    count.set(o, (count.get(o) ?? 0) + 1);
  }
  for (const n of nodes) {
    const share = (count.get(n) ?? 0) / ids.length;
    assert.ok(share > 0.28 && share < 0.39, `${n} owns ${share}`);
  }
});

test('owners: a node leaving moves only its own subscriptions; one node owns all', () => {
  const before = ids.map((id) => ownerOf(id, ['node-a', 'node-b', 'node-c']));
  const after = ids.map((id) => ownerOf(id, ['node-a', 'node-c']));
  for (let i = 0; i < ids.length; i++) if (before[i] !== 'node-b') assert.equal(after[i], before[i]);
  assert.ok(after.every((o) => o !== 'node-b'));
  assert.ok(ids.every((id) => ownerOf(id, ['node-a']) === 'node-a'));
});

test('announce payloads: only {node, account} with a node name and a canonical account', () => {
  assert.deepEqual(parseSubscriptionsPayload('{"node":"node-a","account":"erin@example.test"}'), {
    node: 'node-a',
    account: 'erin@example.test',
  });
  for (const bad of [
    'not json',
    '[]',
    'null',
    '{"node":"node-a"}',
    '{"node":"no de","account":"erin@example.test"}',
    '{"node":"node-a","account":"Erin@Example.test"}',
    '{"node":"node-a","account":"../x"}',
    `{"node":"node-a","account":"${'a'.repeat(5000)}@example.test"}`,
  ])
    assert.equal(parseSubscriptionsPayload(bad), null, bad);
});
