// PushSubscriptions (RFC 8620 §7.2) across two real arcline nodes on one PostgreSQL (docs/
// cluster.md "JMAP push across nodes", jmap/push-peers.ts): one created through node A is
// verified and read through node B; each change, made through either node, is POSTed to the
// push service once (one owner per subscription); destroyed through B, A stops; when the owner
// is killed, the other node takes the subscription over.

import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { waitUntil } from '../harness/submit.ts';
import { type ClusterNode, startCluster, type TestCluster } from './harness.ts';

// biome-ignore lint/suspicious/noExplicitAny: JMAP answers are checked field by field
type Json = any;
const CORE = 'urn:ietf:params:jmap:core';
const SUBMISSION = 'urn:ietf:params:jmap:submission';
const auth = `Basic ${Buffer.from('erin@example.test:erin-secret').toString('base64')}`;
const account = accountIdOf('erin@example.test' as AccountId);

let c: TestCluster;
let sink: Server;
/** The bodies POSTed to the push service, parsed, in order. */
const pushed: Json[] = [];

before(async () => {
  sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (d: Buffer) => chunks.push(d));
    req.on('end', () => {
      pushed.push(JSON.parse(Buffer.concat(chunks).toString('utf8')));
      res.writeHead(201).end();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  const port = (sink.address() as AddressInfo).port;
  c = await startCluster({ nodes: 2, extra: `[jmap]\npush_url_patterns = ["http://127.0.0.1:${port}/push/*"]\n` });
  for (const args of [
    ['domain', 'add', 'example.test'],
    ['user', 'add', 'erin@example.test', '--password-stdin'],
  ]) {
    const r = await c.cli(args, { stdin: 'erin-secret\n' });
    assert.equal(r.code, 0, r.stderr);
  }
});

after(async () => {
  await c?.close();
  await new Promise<void>((r) => (sink ? sink.close(() => r()) : r()));
});

async function call(n: ClusterNode, using: string, name: string, args: Record<string, unknown>): Promise<Json> {
  const r = await fetch(`http://127.0.0.1:${n.port('http')}/jmap/api`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'application/json' },
    body: JSON.stringify({ using: [CORE, using], methodCalls: [[name, args, '0']] }),
  });
  assert.equal(r.status, 200);
  const [got, body] = ((await r.json()) as { methodResponses: [string, Json, string][] }).methodResponses[0] ?? [];
  assert.equal(got, name, JSON.stringify(body));
  return body;
}

/** Waits until `n` has logged that it sees `count` live nodes (push-peers.ts). */
const seesNodes = (n: ClusterNode, count: number) =>
  waitUntil(`${n.name} sees ${count} live nodes`, async () => {
    const last = n.process.logs.findLast((l) => String(l.msg).startsWith('jmap: live nodes changed'));
    return Array.isArray(last?.nodes) && last.nodes.length === count;
  });

/** Identity/set through `n`; the new Identity state. */
async function changeIdentity(n: ClusterNode, name: string): Promise<string> {
  const set = await call(n, SUBMISSION, 'Identity/set', {
    accountId: account,
    create: { w: { name, email: 'erin@example.test' } },
  });
  assert.ok(set.created?.w?.id, JSON.stringify(set.notCreated));
  return set.newState;
}

const identityPushes = (state: string) =>
  pushed.filter((p) => p['@type'] === 'StateChange' && p.changed?.[account]?.Identity === state).length;

let subscriptionId: string;

test('cluster: a PushSubscription created on node A is verified and read through node B', async () => {
  const [a, b] = c.nodes;
  assert.ok(a && b);
  await seesNodes(b, 2);
  const created = await call(a, CORE, 'PushSubscription/set', {
    create: {
      p: { deviceClientId: 'phone-1', url: `http://127.0.0.1:${(sink.address() as AddressInfo).port}/push/1` },
    },
  });
  subscriptionId = created.created?.p?.id;
  assert.ok(subscriptionId, JSON.stringify(created.notCreated));
  const verification = await waitUntil('the PushVerification', async () =>
    pushed.find((p) => p['@type'] === 'PushVerification' && p.pushSubscriptionId === subscriptionId),
  );
  // Through the other node: before, B knew it only after a restart (notFound).
  const verified = await call(b, CORE, 'PushSubscription/set', {
    update: { [subscriptionId]: { verificationCode: verification.verificationCode } },
  });
  assert.deepEqual(verified.updated, { [subscriptionId]: null }, JSON.stringify(verified.notUpdated));
  const got = await call(b, CORE, 'PushSubscription/get', { ids: [subscriptionId] });
  assert.equal(got.list[0]?.verificationCode, verification.verificationCode);
  assert.equal(got.list[0]?.deviceClientId, 'phone-1');
});

test('cluster: each change, through either node, is POSTed once', async () => {
  const [a, b] = c.nodes;
  assert.ok(a && b);
  await seesNodes(a, 2);
  await seesNodes(b, 2);
  const states: string[] = [];
  for (const [i, n] of [a, b, a, b].entries()) {
    const state = await changeIdentity(n, `Erin ${i}`);
    states.push(state);
    await waitUntil(`the StateChange of Identity ${state}`, async () => identityPushes(state) > 0);
  }
  // A later change's POST has come: an earlier one sent twice would have come before it.
  const last = await changeIdentity(b, 'Erin last');
  await waitUntil('the last StateChange', async () => identityPushes(last) > 0);
  assert.deepEqual(
    [...states, last].map(identityPushes),
    [1, 1, 1, 1, 1],
    JSON.stringify(pushed.filter((p) => p['@type'] === 'StateChange')),
  );
});

test('cluster: the owner killed, the other node takes the subscription over', async () => {
  const [a, b] = c.nodes;
  assert.ok(a && b);
  await a.kill();
  await seesNodes(b, 1);
  const state = await changeIdentity(b, 'Erin alone');
  await waitUntil('the StateChange from node B', async () => identityPushes(state) > 0);
  assert.equal(identityPushes(state), 1);
  // Destroyed through B: gone from the store and the lists.
  const destroyed = await call(b, CORE, 'PushSubscription/set', { destroy: [subscriptionId] });
  assert.deepEqual(destroyed.destroyed, [subscriptionId], JSON.stringify(destroyed.notDestroyed));
  const got = await call(b, CORE, 'PushSubscription/get', {});
  assert.deepEqual(got.list, []);
});
