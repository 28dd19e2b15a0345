// Node heartbeats (db/nodes.ts) and `arcline cluster status` (cli/cluster.ts) against the
// machine's PostgreSQL: two nodes beat, a third stopped long ago shows as gone, one gone for
// over a week is forgotten; the real CLI (a child process) lists them as a table and as JSON;
// [cluster] and the node name's precedence (--node, ARCLINE_NODE, node_name, host name).

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { nodeNameFromHost, resolveNodeName } from '../../src/config/cluster.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { isArclineError } from '../../src/core/errors.ts';
import { Heartbeat, listNodes } from '../../src/db/nodes.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { freshDatabase, type TestDatabase } from '../harness/postgres.ts';
import { runCli } from '../harness/process.ts';
import { waitUntil } from '../harness/submit.ts';

describe('cluster nodes', () => {
  let t: TestDatabase;
  let db: Postgres;
  let dir: string;
  const beats: Heartbeat[] = [];
  before(async () => {
    t = await freshDatabase();
    db = await t.open();
    dir = await mkdtemp(join(tmpdir(), 'arcline-cluster-'));
  });
  after(async () => {
    await Promise.all(beats.map((b) => b.stop()));
    await t.drop();
    await rm(dir, { recursive: true, force: true });
  });

  test('no table yet: no nodes', async () => {
    assert.deepEqual(await listNodes(db), []);
  });

  test('heartbeats: alive nodes, a stopped one gone, one gone for a week forgotten', async () => {
    const beat = (node: string, extra: Partial<ConstructorParameters<typeof Heartbeat>[0]> = {}) => {
      const h = new Heartbeat({ db, node, version: '9.9.9', intervalMs: 1000, ...extra });
      beats.push(h);
      return h;
    };
    await beat('node-a', { connections: () => 12, leading: () => ['acme', 'blocklist'] }).start();
    await beat('node-b').start();
    const c = beat('node-c');
    await c.start();
    await c.stop();
    await db.query("UPDATE cluster_nodes SET last_seen = now() - INTERVAL '1 hour' WHERE name = 'node-c'");
    await db.query(
      `INSERT INTO cluster_nodes (name, version, host, pid, started, last_seen, interval_ms, load1, load5, load15, rss)
       VALUES ('old', '0.0.1', 'h', 1, now() - INTERVAL '9 days', now() - INTERVAL '8 days', 5000, 0, 0, 0, 0)`,
    );
    // The beats go on: node-a's last_seen moves, and the week-old node is removed.
    const first = (await listNodes(db)).find((n) => n.name === 'node-a')?.lastSeen.getTime() ?? 0;
    await waitUntil('a later heartbeat of node-a', async () => {
      const a = (await listNodes(db)).find((n) => n.name === 'node-a');
      return (a?.lastSeen.getTime() ?? 0) > first;
    });
    await waitUntil('the old node forgotten', async () => !(await listNodes(db)).some((n) => n.name === 'old'));
    const nodes = await listNodes(db);
    assert.deepEqual(
      nodes.map((n) => [n.name, n.alive]),
      [
        ['node-a', true],
        ['node-b', true],
        ['node-c', false],
      ],
    );
    const a = nodes[0];
    assert.equal(a?.version, '9.9.9');
    assert.equal(a?.pid, process.pid);
    assert.equal(a?.host, hostname());
    assert.equal(a?.connections, 12);
    assert.deepEqual(a?.leading, ['acme', 'blocklist']);
    assert.equal(nodes[1]?.connections, null);
    assert.ok((a?.rssBytes ?? 0) > 1_000_000);
    assert.equal(a?.load.length, 3);
  });

  test('arcline cluster status: table and --json from a real CLI run', async () => {
    const file = join(dir, 'arcline.toml');
    await writeFile(file, `[database]\nurl = "${t.url}"\n\n[cluster]\nnode_name = "node-b"\n`);
    const r = await runCli(['--config', file, 'cluster', 'status']);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trim().split('\n');
    assert.match(lines[0] ?? '', /^NODE +STATE +VERSION +HOST +PID +UP +SEEN +LOAD +RSS +CONNS +LEADS$/);
    assert.match(lines[1] ?? '', /^node-a +alive +9\.9\.9 .* 12 +acme,blocklist$/);
    assert.match(lines[2] ?? '', /^node-b \* +alive +9\.9\.9 /);
    assert.match(lines[3] ?? '', /^node-c +gone +9\.9\.9 .* (59m|60m|1h) ago /);
    assert.equal(lines[4], '3 node(s), 2 alive; * this node (node-b)');
    console.log(`# ${r.stdout.trim().split('\n').join('\n# ')}`);

    const j = await runCli(['--config', file, '--node', 'node-a', 'cluster', 'status', '--json']);
    assert.equal(j.code, 0, j.stderr);
    const out = JSON.parse(j.stdout) as { nodes: Record<string, unknown>[] };
    assert.deepEqual(
      out.nodes.map((n) => [n.name, n.alive, n.self]),
      [
        ['node-a', true, true],
        ['node-b', true, false],
        ['node-c', false, false],
      ],
    );
    const a = out.nodes[0] ?? {};
    assert.equal(a.connections, 12);
    assert.equal(typeof a.lastSeen, 'string');
    assert.ok(Array.isArray(a.load));

    const env = await runCli(['--config', file, 'cluster', 'status', '--json'], { env: { ARCLINE_NODE: 'node-c' } });
    assert.deepEqual(
      (JSON.parse(env.stdout) as { nodes: { self: boolean }[] }).nodes.map((n) => n.self),
      [false, false, true],
    );

    // No [database] url: refused (1); a bad node name and a bad subcommand: usage (2).
    const none = join(dir, 'none.toml');
    await writeFile(none, '');
    const n = await runCli(['--config', none, 'cluster', 'status']);
    assert.equal(n.code, 1);
    assert.match(n.stderr, /\[database\] url is empty/);
    const bad = await runCli(['--config', file, '--node', 'a/b', 'cluster', 'status']);
    assert.equal(bad.code, 2);
    assert.match(bad.stderr, /--node: not a node name/);
    assert.equal((await runCli(['--config', file, 'cluster', 'nodes'])).code, 2);
  });

  test('[cluster]: defaults, bounds, node name precedence', () => {
    const c = parseConfigText('', '/x.toml').cluster;
    assert.deepEqual(c, {
      node_name: '',
      shared_dir: '',
      queue_lease: 120_000,
      heartbeat_interval: 5000,
      leader_interval: 10_000,
    });
    // A relative shared_dir is taken from the config file's directory, as [storage] paths.
    assert.equal(
      parseConfigText('[cluster]\nshared_dir = "shared"\n', '/etc/arcline/x.toml').cluster.shared_dir,
      '/etc/arcline/shared',
    );
    const d = parseConfigText('[cluster]\nnode_name = "mx1.example"\nheartbeat_interval = "2s"\n', '/x.toml').cluster;
    assert.equal(d.heartbeat_interval, 2000);
    for (const bad of [
      'node_name = "a b"',
      'node_name = "-a"',
      'heartbeat_interval = "100ms"',
      'leader_interval = 0',
      'queue_lease = "500ms"',
    ])
      assert.throws(
        () => parseConfigText(`[cluster]\n${bad}\n`, '/x.toml'),
        (e) => isArclineError(e, 'CONFIG'),
        bad,
      );
    assert.equal(resolveNodeName({ node_name: 'cfg' }, { flag: 'flag', env: { ARCLINE_NODE: 'env' } }), 'flag');
    assert.equal(resolveNodeName({ node_name: 'cfg' }, { env: { ARCLINE_NODE: 'env' } }), 'env');
    assert.equal(resolveNodeName({ node_name: 'cfg' }, { env: {} }), 'cfg');
    assert.ok(resolveNodeName({ node_name: '' }, { env: {} }).length > 0);
    assert.throws(() => resolveNodeName({ node_name: '' }, { env: { ARCLINE_NODE: 'a/b' } }), /ARCLINE_NODE/);
    assert.equal(nodeNameFromHost('mx1.example.net'), 'mx1.example.net');
    assert.equal(nodeNameFromHost(`${'a'.repeat(60)}.example.net`), 'a'.repeat(60));
    assert.equal(nodeNameFromHost('my host'), 'my-host');
    assert.equal(nodeNameFromHost('-x'), 'node-x');
    assert.equal(nodeNameFromHost(''), 'node');
  });
});
