// Three real arcline nodes on one PostgreSQL (issue #18, docs/cluster.md "Setting up"): they
// report themselves (arcline cluster status), share the directory (a user added through the CLI
// of one node logs in over IMAP on another), and run each leader task on exactly one node, the
// tasks of a node killed with SIGKILL moving to the others.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, test } from 'node:test';
import { imapflowClient } from '../harness/imap-client.ts';
import { waitUntil } from '../harness/submit.ts';
import { leadersSettled, startCluster, type TestCluster } from './harness.ts';

/** The leader tasks of a node without greylisting (docs/cluster.md "Leader tasks"). */
const TASKS = ['ban-sweep', 'blocklist', 'queue-sweep', 'sieve-sweep'];
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
