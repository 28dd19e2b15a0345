// The IP lists and bans without sockets: network parsing, and the contract (store-contract.ts:
// the ban policy, the view, another connection) on a real defense.db in a temp directory.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import fc from 'fast-check';
import { banNetwork, NetworkSet, parseNetwork } from '../../src/defense/networks.ts';
import { SqliteDefenseStore } from '../../src/defense/store.ts';
import { defenseStoreContract } from './store-contract.ts';

defenseStoreContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-defense-'));
  return {
    open: async () => new SqliteDefenseStore(dir),
    close: () => rm(dir, { recursive: true, force: true }),
  };
});

test('networks: one canonical spelling; host bits cleared; mapped IPv4 as IPv4; bans cover /32 and /64', () => {
  assert.equal(parseNetwork('10.1.2.3/8')?.cidr, '10.0.0.0/8');
  assert.equal(parseNetwork('2001:DB8:0:0:1::1/64')?.cidr, '2001:db8::/64');
  assert.equal(parseNetwork('::ffff:192.0.2.9/120')?.cidr, '192.0.2.0/24');
  assert.equal(parseNetwork('203.0.113.5')?.cidr, '203.0.113.5/32');
  for (const bad of ['', 'x', '1.2.3.4/33', '1.2.3.4/', '::/129', '1.2.3.4/a', '1.2.3', `${'1'.repeat(70)}`]) {
    assert.equal(parseNetwork(bad), null, bad);
  }
  assert.equal(banNetwork('2001:db8:1:2:3:4:5:6')?.cidr, '2001:db8:1:2::/64');
  assert.equal(banNetwork('::ffff:198.51.100.7')?.cidr, '198.51.100.7/32');
  const set = new NetworkSet([parseNetwork('10.0.0.0/8') as never, parseNetwork('2001:db8::/32') as never]);
  assert.ok(set.has('10.200.0.1') && set.has('::ffff:10.0.0.1') && set.has('2001:db8:ffff::1'));
  assert.ok(!set.has('11.0.0.1') && !set.has('2001:db9::1') && !set.has('not an address'));
});

test('networks: parsing is idempotent and the network contains the address it came from (property)', () => {
  const v4 = fc.tuple(fc.ipV4(), fc.integer({ min: 0, max: 32 })).map(([a, p]) => `${a}/${p}`);
  const v6 = fc.tuple(fc.ipV6(), fc.integer({ min: 0, max: 128 })).map(([a, p]) => `${a}/${p}`);
  fc.assert(
    fc.property(fc.oneof(v4, v6), (text) => {
      const n = parseNetwork(text);
      assert.ok(n, text);
      assert.equal(parseNetwork(n.cidr)?.cidr, n.cidr);
      const address = text.slice(0, text.lastIndexOf('/'));
      assert.ok(new NetworkSet([n]).has(address), `${address} in ${n.cidr}`);
    }),
    { numRuns: 2000 },
  );
});
