// What the blocklist monitor told the postmaster (defense/blocklist-state.ts), on a file and on
// PostgreSQL: the same cases against both. Then two nodes on one database, each with a monitor
// offered as the leader task `blocklist` (db/leader.ts): the leader tells the postmaster of a
// listing once; its session killed, the other node takes the task over, reads the shared state
// and tells nothing again; a delisting seen by the new leader is forgotten for both.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { silentLogger } from '../../src/core/log.ts';
import { LeaderRunner } from '../../src/db/leader.ts';
import { BlocklistMonitor, blocklistLeaderTask, type Listing } from '../../src/defense/blocklist-monitor.ts';
import { type BlocklistState, FileBlocklistState, PostgresBlocklistState } from '../../src/defense/blocklist-state.ts';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { startTestDns } from '../harness/dns.ts';
import { freshDatabaseForFile } from '../harness/postgres.ts';
import { waitUntil } from '../harness/submit.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const listing = (zone: string, address: string, since = '2026-01-01T00:00:00.000Z'): Listing => ({
  zone,
  address,
  codes: ['127.0.0.2'],
  reason: 'spam trap',
  since,
});

function contract(name: string, open: () => Promise<{ state: BlocklistState; other: () => Promise<BlocklistState> }>) {
  describe(`${name}: BlocklistState contract`, () => {
    test('remembered, kept with its first date, forgotten, seen by another handle', async () => {
      const { state, other } = await open();
      assert.deepEqual(await state.load(), []);
      await state.update([listing('bl.test', '192.0.2.1'), listing('bl.test', '192.0.2.2')], []);
      const seen = await (await other()).load();
      assert.deepEqual(seen.map((l) => `${l.zone} ${l.address}`).sort(), ['bl.test 192.0.2.1', 'bl.test 192.0.2.2']);
      assert.deepEqual(
        seen.find((l) => l.address === '192.0.2.1'),
        listing('bl.test', '192.0.2.1'),
      );
      // Told again by a node in the fencing window of a takeover: the first date stays.
      await (await other()).update([listing('bl.test', '192.0.2.1', '2026-02-02T00:00:00.000Z')], []);
      assert.equal((await state.load()).find((l) => l.address === '192.0.2.1')?.since, '2026-01-01T00:00:00.000Z');
      await state.update([listing('other.test', '192.0.2.1')], [{ zone: 'bl.test', address: '192.0.2.1' }]);
      assert.deepEqual((await (await other()).load()).map((l) => `${l.zone} ${l.address}`).sort(), [
        'bl.test 192.0.2.2',
        'other.test 192.0.2.1',
      ]);
      await state.update([], [{ zone: 'nothing.test', address: '192.0.2.9' }]);
      assert.equal((await state.load()).length, 2);
    });
  });
}

contract('file', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-blstate-'));
  dirs.push(dir);
  const file = join(dir, 'blocklist.json');
  return { state: new FileBlocklistState(file), other: async () => new FileBlocklistState(file) };
});

contract('postgres', async () => {
  const t = await freshDatabaseForFile();
  return {
    state: await PostgresBlocklistState.open(await t.open()),
    other: async () => PostgresBlocklistState.open(await t.open()),
  };
});

test('two nodes: the leader tells once; after a takeover the other node tells nothing again', async () => {
  const ADDRESS = '192.0.2.10';
  const LISTED = '10.2.0.192.bl.test';
  const dns = await startTestDns([{ type: 'A', name: LISTED, address: '127.0.0.2' }]);
  const t = await freshDatabaseForFile();
  const told: { node: string; listing: Listing }[] = [];
  const rounds = { a: 0, b: 0 };
  const runners: LeaderRunner[] = [];
  const node = async (name: 'a' | 'b') => {
    const state = await PostgresBlocklistState.open(await t.open());
    const log = silentLogger();
    const monitor = new BlocklistMonitor({
      zones: ['bl.test'],
      addresses: async () => {
        rounds[name]++;
        return [ADDRESS];
      },
      resolver: createPromiseResolver([dns.address]),
      intervalMs: 100,
      state,
      log,
      notify: async (l) => {
        told.push({ node: name, listing: l });
      },
    });
    const runner = new LeaderRunner({
      session: { url: t.url, connectTimeoutMs: 5000, applicationName: `arcline-test-${name}` },
      intervalMs: 300,
    }).add(blocklistLeaderTask(monitor));
    runners.push(runner);
    return runner;
  };
  try {
    const a = (await node('a')).start();
    await waitUntil('a to lead', async () => a.leading().includes('blocklist'));
    const b = (await node('b')).start();
    await waitUntil('the listing told', async () => told.length === 1);
    assert.equal(told[0]?.node, 'a');
    const seen = rounds.a;
    await waitUntil('two more rounds of a', async () => rounds.a >= seen + 2);
    assert.equal(told.length, 1, 'told once');
    assert.equal(rounds.b, 0, 'b does not run the monitor while a leads');
    // a's node dies: its lock session goes, b takes over.
    const db = await t.open();
    await db.query('SELECT pg_terminate_backend($1)', [a.backendPid]);
    await waitUntil('b to lead', async () => b.leading().includes('blocklist'));
    await waitUntil('two rounds of b', async () => rounds.b >= 2);
    assert.equal(told.length, 1, 'the takeover tells nothing again');
    // The delisting, seen by b, is forgotten in the shared state: a later listing is new.
    dns.remove(LISTED);
    const state = await PostgresBlocklistState.open(db);
    await waitUntil('the delisting remembered', async () => (await state.load()).length === 0);
    dns.add({ type: 'A', name: LISTED, address: '127.0.0.3' });
    await waitUntil('the new listing told', async () => told.length === 2);
    assert.equal(told[1]?.node, 'b');
  } finally {
    await Promise.all(runners.map((r) => r.stop()));
    await dns.close();
  }
});
