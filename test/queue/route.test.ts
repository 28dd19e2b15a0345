// MX routing (RFC 5321 §5.1, RFC 7505) against a real DNS server on 127.0.0.1.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { resolveHostRoute, resolveRoute, retryDelay } from '../../src/queue/route.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';

describe('MX routing', () => {
  let dns: TestDnsServer;
  let resolver: ReturnType<typeof createPromiseResolver>;
  const opts = { port: 25, ipv6: true, ownHostname: 'mx.us.test', maxAddresses: 10, random: () => 0.5 };

  before(async () => {
    dns = await startTestDns([
      { type: 'MX', name: 'pref.test', preference: 20, exchange: 'b.pref.test' },
      { type: 'MX', name: 'pref.test', preference: 10, exchange: 'a.pref.test' },
      { type: 'MX', name: 'pref.test', preference: 30, exchange: 'gone.pref.test' },
      { type: 'A', name: 'a.pref.test', address: '127.0.0.10' },
      { type: 'AAAA', name: 'a.pref.test', address: '::1' },
      { type: 'A', name: 'b.pref.test', address: '127.0.0.11' },
      { type: 'MX', name: 'equal.test', preference: 10, exchange: 'one.equal.test' },
      { type: 'MX', name: 'equal.test', preference: 10, exchange: 'two.equal.test' },
      { type: 'A', name: 'one.equal.test', address: '127.0.0.21' },
      { type: 'A', name: 'two.equal.test', address: '127.0.0.22' },
      { type: 'MX', name: 'loop.test', preference: 10, exchange: 'mx.us.test' },
      { type: 'MX', name: 'loop.test', preference: 20, exchange: 'b.pref.test' },
      // We are the backup MX of backup.test: only the primary may be tried.
      { type: 'MX', name: 'backup.test', preference: 10, exchange: 'a.pref.test' },
      { type: 'MX', name: 'backup.test', preference: 20, exchange: 'mx.us.test' },
      { type: 'MX', name: 'backup.test', preference: 30, exchange: 'b.pref.test' },
      { type: 'A', name: 'mx.us.test', address: '127.0.0.1' },
      { type: 'MX', name: 'noaddr.test', preference: 10, exchange: 'nothing.noaddr.test' },
      { type: 'MX', name: 'tempaddr.test', preference: 10, exchange: 'flaky.tempaddr.test' },
      { type: 'TXT', name: 'txtonly.test', text: 'v=spf1 -all' },
    ]);
    resolver = createPromiseResolver([dns.address], 1000);
  });

  after(async () => {
    await dns?.close();
  });

  test('hosts by preference, IPv4 before IPv6, hosts without addresses skipped', async () => {
    const r = await resolveRoute(resolver, 'pref.test', opts);
    assert.equal(r.kind, 'hosts');
    assert.deepEqual(r.kind === 'hosts' ? r.hosts.map((h) => `${h.name} ${h.address}`) : [], [
      'a.pref.test 127.0.0.10',
      'a.pref.test ::1',
      'b.pref.test 127.0.0.11',
    ]);
    const v4 = await resolveRoute(resolver, 'pref.test', { ...opts, ipv6: false });
    assert.equal(v4.kind === 'hosts' ? v4.hosts.length : 0, 2);
    const capped = await resolveRoute(resolver, 'pref.test', { ...opts, maxAddresses: 1 });
    assert.equal(capped.kind === 'hosts' ? capped.hosts.length : 0, 1);
  });

  test('equal preferences are shuffled (RFC 5321 §5.1)', async () => {
    const orders = new Set<string>();
    let flip = 0;
    for (let i = 0; i < 4; i++) {
      const random = () => (flip++ % 2 === i % 2 ? 0.1 : 0.9);
      const r = await resolveRoute(resolver, 'equal.test', { ...opts, random });
      orders.add(r.kind === 'hosts' ? r.hosts.map((h) => h.name).join(',') : '');
    }
    assert.deepEqual([...orders].sort(), ['one.equal.test,two.equal.test', 'two.equal.test,one.equal.test']);
  });

  test('permanent outcomes: NXDOMAIN 5.1.2, MX pointing at ourselves 5.4.6, MX without address 5.4.4', async () => {
    const nx = await resolveRoute(resolver, 'nx.test', opts);
    assert.deepEqual([nx.kind, nx.kind !== 'hosts' && nx.status], ['permanent', '5.1.2']);
    const loop = await resolveRoute(resolver, 'loop.test', opts);
    assert.deepEqual([loop.kind, loop.kind !== 'hosts' && loop.status], ['permanent', '5.4.6']);
    const none = await resolveRoute(resolver, 'noaddr.test', opts);
    assert.deepEqual([none.kind, none.kind !== 'hosts' && none.status], ['permanent', '5.4.4']);
  });

  test('as a backup MX we only try more preferred hosts', async () => {
    const r = await resolveRoute(resolver, 'backup.test', { ...opts, ipv6: false });
    assert.deepEqual(r.kind === 'hosts' ? r.hosts.map((h) => h.name) : r, ['a.pref.test']);
  });

  test('a domain with other records but no MX and no address: no address (5.4.4)', async () => {
    const r = await resolveRoute(resolver, 'txtonly.test', opts);
    assert.deepEqual([r.kind, r.kind !== 'hosts' && r.status], ['permanent', '5.4.4']);
  });

  test('temporary outcomes: SERVFAIL on MX or on the address of every MX', async () => {
    dns.failing.add('equal.test');
    dns.failing.add('flaky.tempaddr.test');
    try {
      const mx = await resolveRoute(resolver, 'equal.test', opts);
      assert.deepEqual([mx.kind, mx.kind !== 'hosts' && mx.status], ['temporary', '4.4.3']);
      const addr = await resolveRoute(resolver, 'tempaddr.test', opts);
      assert.deepEqual([addr.kind, addr.kind !== 'hosts' && addr.status], ['temporary', '4.4.3']);
    } finally {
      dns.failing.clear();
    }
  });

  test('an address literal domain goes to that address; a relay host is resolved without MX', async () => {
    const lit = await resolveRoute(resolver, '[127.0.0.9]', opts);
    assert.deepEqual(lit.kind === 'hosts' ? lit.hosts : null, [{ name: '127.0.0.9', address: '127.0.0.9', port: 25 }]);
    const relay = await resolveHostRoute(resolver, 'b.pref.test', { port: 587, ipv6: true });
    assert.deepEqual(relay.kind === 'hosts' ? relay.hosts : null, [
      { name: 'b.pref.test', address: '127.0.0.11', port: 587 },
    ]);
    const missing = await resolveHostRoute(resolver, 'nothing.test', { port: 587, ipv6: true });
    assert.equal(missing.kind, 'temporary', 'relay trouble never bounces');
  });

  test('retry schedule: one entry per attempt, the last repeats', () => {
    const s = [60_000, 300_000, 900_000];
    assert.deepEqual(
      [1, 2, 3, 4, 10].map((n) => retryDelay(n, s)),
      [60_000, 300_000, 900_000, 900_000, 900_000],
    );
  });
});
