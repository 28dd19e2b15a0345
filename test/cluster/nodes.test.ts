// Three real arcline nodes on one PostgreSQL (issue #18, docs/cluster.md "Setting up"): they
// report themselves (arcline cluster status), share the directory (a user added through the CLI
// of one node logs in over IMAP on another), and run each leader task on exactly one node, the
// tasks of a node killed with SIGKILL moving to the others.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { imapflowClient, RawImap } from '../harness/imap-client.ts';
import { waitUntil } from '../harness/submit.ts';
import { type ClusterNode, leadersSettled, startCluster, type TestCluster } from './harness.ts';

// biome-ignore lint/suspicious/noExplicitAny: JMAP answers are checked field by field
type Json = any;
const USING = ['urn:ietf:params:jmap:core', 'urn:ietf:params:jmap:mail'];

/** The leader tasks of a node without greylisting (docs/cluster.md "Leader tasks"). */
const TASKS = ['ban-sweep', 'blocklist', 'dkim-rotation', 'queue-sweep', 'sieve-sweep', 'tls-reports'];
const VERSION = (
  JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string }
).version;

let c: TestCluster;

before(async () => {
  c = await startCluster({ nodes: 3 });
});

after(() => c?.close());

test('cluster: three nodes report alive with their version', async () => {
  const nodes = await c.status();
  assert.deepEqual(
    nodes.map((n) => [n.name, n.alive, n.version]),
    [
      ['node-a', true, VERSION],
      ['node-b', true, VERSION],
      ['node-c', true, VERSION],
    ],
  );
  for (const n of nodes) assert.equal(typeof n.connections, 'number', `${n.name} reports its connections`);
  // Readiness includes PostgreSQL on a cluster node.
  const r = await fetch(`http://127.0.0.1:${c.nodes[1]?.port('http')}/healthz/ready`);
  const body = (await r.json()) as { checks: Record<string, { ok: boolean }> };
  assert.equal(r.status, 200);
  assert.equal(body.checks.database?.ok, true);
});

test('cluster: a user added by the CLI of node A logs in over IMAP on node B and C', async () => {
  for (const args of [
    ['domain', 'add', 'example.test'],
    ['user', 'add', 'carol@example.test', '--password-stdin'],
  ]) {
    const r = await c.cli(args, { stdin: 'carol-secret\n' });
    assert.equal(r.code, 0, r.stderr);
  }
  for (const n of c.nodes.slice(1)) {
    const imap = await imapflowClient(n.port('imap'), 'carol@example.test', 'carol-secret');
    assert.ok(imap.authenticated, `logged in on ${n.name}`);
    await imap.logout();
  }
  // A wrong password is refused there all the same.
  await assert.rejects(imapflowClient(c.nodes[2]?.port('imap') ?? 0, 'carol@example.test', 'wrong'));
});

test('cluster: a JMAP upload on node A is imported on node B (uploads in [cluster] shared_dir)', async () => {
  const [a, b] = c.nodes;
  assert.ok(a && b);
  const auth = `Basic ${Buffer.from('carol@example.test:carol-secret').toString('base64')}`;
  const account = accountIdOf('carol@example.test' as AccountId);
  const api = async (n: ClusterNode, name: string, args: Record<string, unknown>) => {
    const r = await fetch(`http://127.0.0.1:${n.port('http')}/jmap/api`, {
      method: 'POST',
      headers: { authorization: auth, 'content-type': 'application/json' },
      body: JSON.stringify({ using: USING, methodCalls: [[name, { accountId: account, ...args }, '0']] }),
    });
    assert.equal(r.status, 200);
    return ((await r.json()) as { methodResponses: [string, Json, string][] }).methodResponses[0]?.[1];
  };
  const raw = Buffer.from('From: x@remote.test\r\nTo: carol@example.test\r\nSubject: across\r\n\r\nbody\r\n');
  const up = await fetch(`http://127.0.0.1:${a.port('http')}/jmap/upload/${account}`, {
    method: 'POST',
    headers: { authorization: auth, 'content-type': 'message/rfc822' },
    body: raw,
  });
  assert.equal(up.status, 201);
  const { blobId } = (await up.json()) as { blobId: string };
  const inbox = ((await api(b, 'Mailbox/get', { ids: null })).list as Json[]).find((m) => m.role === 'inbox')?.id;
  assert.ok(inbox, 'an inbox on node B');
  const imported = await api(b, 'Email/import', { emails: { i1: { blobId, mailboxIds: { [inbox]: true } } } });
  assert.ok(imported.created?.i1?.id, `imported on node B: ${JSON.stringify(imported.notCreated)}`);
  const got = await api(b, 'Email/get', { ids: [imported.created.i1.id], properties: ['subject'] });
  assert.equal(got.list[0]?.subject, 'across');
});

test('cluster: arcline ip deny on node A refuses the network at node C within a poll; queue list works', async (t) => {
  const node = c.nodes[2];
  assert.ok(node);
  const greeting = async () => {
    const { client, greeting: g } = await RawImap.connect(node.port('imap'), '127.0.3.8');
    client.write('x LOGOUT\r\n');
    return g;
  };
  assert.match(await greeting(), /^\* OK/);
  const denied = await c.cli(['ip', 'deny', '127.0.3.0/24']);
  assert.equal(denied.code, 0, denied.stderr);
  const t0 = performance.now();
  await waitUntil('node C refuses 127.0.3.8', async () => (await greeting()) === '* BYE Access denied');
  t.diagnostic(`refused at node C ${Math.round(performance.now() - t0)} ms after the CLI on node A returned`);
  assert.equal((await c.cli(['ip', 'del', '127.0.3.0/24'])).code, 0);
  // The queue commands read the shared queue.
  const q = await c.cli(['queue', 'list'], { node });
  assert.equal(q.code, 0, q.stderr);
});

test('cluster: each leader task runs on exactly one node and moves when that node is killed', async (t) => {
  const before = await leadersSettled(c, TASKS);
  t.diagnostic(`leaders: ${[...before].map(([task, n]) => `${task}@${n}`).join(' ')}`);
  // The node leading the most tasks dies without a word.
  const counts = new Map<string, number>();
  for (const n of before.values()) counts.set(n, (counts.get(n) ?? 0) + 1);
  const victimName = [...counts].sort((x, y) => y[1] - x[1])[0]?.[0];
  const victim = c.nodes.find((n) => n.name === victimName);
  assert.ok(victim);
  const killedAt = Date.now();
  await victim.kill();
  const afterKill = await leadersSettled(c, TASKS, [victim.name]);
  const movedMs = Date.now() - killedAt;
  t.diagnostic(
    `after SIGKILL of ${victim.name}: ${[...afterKill].map(([task, n]) => `${task}@${n}`).join(' ')} (${movedMs} ms)`,
  );
  for (const [task, n] of afterKill) assert.notEqual(n, victim.name, `${task} moved off the dead node`);
  // The dead node shows as gone after 3 heartbeat intervals.
  await waitUntil(
    `${victim.name} gone`,
    async () => (await c.status()).find((n) => n.name === victim.name)?.alive === false,
  );
});

test('cluster: a node stopped with SIGTERM exits 0 and shows as gone; its tasks stay led', async () => {
  const n = c.nodes.find((x) => !x.killed);
  assert.ok(n);
  assert.deepEqual(await n.stop(), { code: 0, signal: null });
  await waitUntil(`${n.name} gone`, async () => (await c.status()).find((x) => x.name === n.name)?.alive === false);
  const dead = c.nodes.filter((x) => x.killed).map((x) => x.name);
  await leadersSettled(c, TASKS, dead);
});
