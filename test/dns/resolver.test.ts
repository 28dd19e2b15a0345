// The answer cache in front of mailauth's lookups (dns/resolver.ts cachingResolve), against the
// test DNS server on 127.0.0.1: what is asked again and what is not. Time is a clock the test
// moves (no sleeping): `now` is injected.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { cachingResolve, cachingReverse, createPromiseResolver } from '../../src/dns/resolver.ts';
import { reverseName } from '../../src/dns/reverse.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';

let dns: TestDnsServer;
before(async () => {
  dns = await startTestDns([
    { type: 'TXT', name: 'spf.test', text: 'v=spf1 -all' },
    { type: 'A', name: 'short.test', address: '192.0.2.1', ttl: 10 },
    { type: 'A', name: 'long.test', address: '192.0.2.2', ttl: 86400 },
    { type: 'MX', name: 'spf.test', preference: 10, exchange: 'mx.spf.test' },
    { type: 'PTR', name: '7.2.0.192.in-addr.arpa', target: 'client.ptr.test' },
  ]);
});
after(() => dns.close());

function setup(opts: { maxTtlMs?: number; maxEntries?: number } = {}) {
  const clock = { now: 1_000_000 };
  const resolve = cachingResolve(createPromiseResolver([dns.address], 1000), {
    maxTtlMs: opts.maxTtlMs ?? 300_000,
    negativeTtlMs: 60_000,
    ...(opts.maxEntries ? { maxEntries: opts.maxEntries } : {}),
    now: () => clock.now,
  });
  return { clock, resolve };
}

const asked = (key: string) => dns.queries.get(key) ?? 0;

test('TXT: the second lookup does not reach the server, one after cache_max_ttl does', async () => {
  const { clock, resolve } = setup();
  const before = asked('spf.test/TXT');
  assert.deepEqual(await resolve('spf.test', 'TXT'), [['v=spf1 -all']]);
  assert.deepEqual(await resolve('SPF.test', 'TXT'), [['v=spf1 -all']]);
  assert.equal(asked('spf.test/TXT') - before, 1);
  clock.now += 299_000;
  await resolve('spf.test', 'TXT');
  assert.equal(asked('spf.test/TXT') - before, 1, 'still fresh');
  clock.now += 2_000;
  await resolve('spf.test', 'TXT');
  assert.equal(asked('spf.test/TXT') - before, 2, 'expired: asked again');
  await resolve('spf.test', 'MX');
  assert.equal(asked('spf.test/MX'), 1, 'cached per record type');
});

test('A: kept for the record TTL when shorter than the cap, else for the cap', async () => {
  const { clock, resolve } = setup();
  assert.deepEqual(await resolve('short.test', 'A'), ['192.0.2.1']);
  assert.deepEqual(await resolve('long.test', 'A'), ['192.0.2.2']);
  clock.now += 9_000;
  await resolve('short.test', 'A');
  assert.equal(asked('short.test/A'), 1);
  clock.now += 2_000;
  await resolve('short.test', 'A');
  assert.equal(asked('short.test/A'), 2, 'TTL 10 s passed');
  await resolve('long.test', 'A');
  assert.equal(asked('long.test/A'), 1);
  clock.now += 300_000;
  await resolve('long.test', 'A');
  assert.equal(asked('long.test/A'), 2, 'capped at cache_max_ttl');
});

test('NXDOMAIN and NODATA are cached briefly, SERVFAIL never; concurrent asks share one query', async () => {
  const { clock, resolve } = setup();
  for (let i = 0; i < 2; i++) await assert.rejects(resolve('none.test', 'TXT'), { code: 'ENOTFOUND' });
  assert.equal(asked('none.test/TXT'), 1);
  for (let i = 0; i < 2; i++) await assert.rejects(resolve('short.test', 'TXT'), { code: 'ENODATA' });
  assert.equal(asked('short.test/TXT'), 1);
  clock.now += 61_000;
  await assert.rejects(resolve('none.test', 'TXT'), { code: 'ENOTFOUND' });
  assert.equal(asked('none.test/TXT'), 2, 'negative answer expired');

  dns.add({ type: 'TXT', name: 'flaky.test', text: 'v=spf1 -all' });
  dns.failing.add('flaky.test');
  await assert.rejects(resolve('flaky.test', 'TXT'), { code: 'ESERVFAIL' });
  const failed = asked('flaky.test/TXT');
  dns.failing.delete('flaky.test');
  assert.deepEqual(await resolve('flaky.test', 'TXT'), [['v=spf1 -all']], 'the failure was not kept');
  assert.ok(asked('flaky.test/TXT') > failed);

  dns.add({ type: 'TXT', name: 'together.test', text: 'x' });
  const all = await Promise.all(Array.from({ length: 10 }, () => resolve('together.test', 'TXT')));
  assert.equal(all.length, 10);
  assert.equal(asked('together.test/TXT'), 1, 'ten asks, one query');
});

test('bounded: the least recently used entry is dropped first; cache_max_ttl 0 caches nothing', async () => {
  const { resolve } = setup({ maxEntries: 2 });
  for (const n of ['l1', 'l2']) dns.add({ type: 'TXT', name: `${n}.test`, text: n });
  dns.add({ type: 'TXT', name: 'l3.test', text: 'l3' });
  await resolve('l1.test', 'TXT');
  await resolve('l2.test', 'TXT');
  await resolve('l1.test', 'TXT'); // l1 used last: l2 is the oldest now
  await resolve('l3.test', 'TXT');
  await resolve('l1.test', 'TXT');
  await resolve('l2.test', 'TXT');
  assert.deepEqual(
    ['l1', 'l2', 'l3'].map((n) => asked(`${n}.test/TXT`)),
    [1, 2, 1],
  );
  const off = setup({ maxTtlMs: 0 });
  await off.resolve('l3.test', 'TXT');
  await assert.rejects(off.resolve('none2.test', 'TXT'), { code: 'ENOTFOUND' });
  await assert.rejects(off.resolve('none2.test', 'TXT'), { code: 'ENOTFOUND' });
  assert.equal(asked('l3.test/TXT'), 2);
  assert.equal(asked('none2.test/TXT'), 2);
});

test('PTR names (RFC 1035 §3.5, RFC 3596 §2.5) and the client-name lookup cached', async () => {
  assert.equal(reverseName('192.0.2.7'), '7.2.0.192.in-addr.arpa');
  assert.equal(reverseName('::ffff:192.0.2.7'), '7.2.0.192.in-addr.arpa');
  assert.equal(
    reverseName('2001:db8::567:89ab'),
    'b.a.9.8.7.6.5.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.ip6.arpa',
  );
  assert.equal(reverseName('not-an-address'), null);
  const reverse = cachingReverse(createPromiseResolver([dns.address], 1000), { maxTtlMs: 300_000 });
  const before = asked('7.2.0.192.in-addr.arpa/PTR');
  assert.deepEqual(await reverse('192.0.2.7'), ['client.ptr.test']);
  assert.deepEqual(await reverse('::ffff:192.0.2.7'), ['client.ptr.test']);
  assert.equal(asked('7.2.0.192.in-addr.arpa/PTR') - before, 1, 'one query for both');
  await assert.rejects(reverse('192.0.2.8'));
});
