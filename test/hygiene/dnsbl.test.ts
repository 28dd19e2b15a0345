// DNS blocklists (RFC 5782) against a real DNS server on 127.0.0.1: query names, listings and
// their reasons, error codes, fail-open on errors and timeouts, the TTL cache, zone order.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { Dnsbl, dnsblQueryName } from '../../src/hygiene/dnsbl.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';

const V6_NAME = '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2';

describe('dnsblQueryName', () => {
  test('IPv4: octets reversed under the zone (RFC 5782 §2.1), the zone normalised', () => {
    assert.equal(dnsblQueryName('192.0.2.1', 'zen.example'), '1.2.0.192.zen.example');
    assert.equal(dnsblQueryName('192.0.2.1', 'ZEN.Example.'), '1.2.0.192.zen.example');
  });

  test('IPv6: 32 nibbles reversed (RFC 5782 §2.4), whatever the spelling', () => {
    assert.equal(dnsblQueryName('2001:db8::1', 'zone'), `${V6_NAME}.zone`);
    assert.equal(dnsblQueryName('2001:0DB8:0:0:0:0:0:0001', 'zone'), `${V6_NAME}.zone`);
    assert.equal(dnsblQueryName('::1', 'zone'), `1${'.0'.repeat(31)}.zone`);
    assert.equal(dnsblQueryName('fe80::1%eth0', 'zone'), `1${'.0'.repeat(27)}.0.8.e.f.zone`);
    assert.equal(dnsblQueryName('::', 'zone'), `0${'.0'.repeat(31)}.zone`);
  });

  test('IPv4-mapped IPv6 is queried as IPv4, in every spelling', () => {
    assert.equal(dnsblQueryName('::ffff:192.0.2.1', 'bl.test'), '1.2.0.192.bl.test');
    assert.equal(dnsblQueryName('::FFFF:192.0.2.1', 'bl.test'), '1.2.0.192.bl.test');
    assert.equal(dnsblQueryName('0:0:0:0:0:ffff:192.0.2.1', 'bl.test'), '1.2.0.192.bl.test');
    assert.equal(dnsblQueryName('::ffff:c000:201', 'bl.test'), '1.2.0.192.bl.test');
  });

  test('not an IP address: null', () => {
    for (const s of ['not-an-ip', '', '1.2.3', '1.2.3.4.5', '256.1.1.1', '::ffff:999.0.0.1', '[::1]', '1:2:3']) {
      assert.equal(dnsblQueryName(s, 'bl.test'), null, s);
    }
  });
});

describe('Dnsbl', () => {
  let dns: TestDnsServer;
  const count = (name: string, type = 'A') => dns.queries.get(`${name}/${type}`) ?? 0;
  const total = () => [...dns.queries.values()].reduce((a, b) => a + b, 0);
  const resolver = (timeoutMs = 1000) => createPromiseResolver([dns.address], timeoutMs);

  before(async () => {
    dns = await startTestDns([
      // listed, with a reason that needs sanitising
      { type: 'A', name: '2.0.0.127.bl.test', address: '127.0.0.2', ttl: 60 },
      { type: 'TXT', name: '2.0.0.127.bl.test', text: '  Listed\r\n by bl.test:\tsee h\u00e9re  ' },
      // listed, two codes, no TXT
      { type: 'A', name: '3.0.0.127.bl.test', address: '127.0.0.4' },
      { type: 'A', name: '3.0.0.127.bl.test', address: '127.0.0.10' },
      // error code, hijacked answer, an error code next to a real code and a foreign answer
      { type: 'A', name: '4.0.0.127.bl.test', address: '127.255.255.254' },
      { type: 'A', name: '5.0.0.127.bl.test', address: '10.0.0.1' },
      { type: 'A', name: '7.0.0.127.bl.test', address: '127.255.255.252' },
      { type: 'A', name: '7.0.0.127.bl.test', address: '127.0.0.3' },
      { type: 'A', name: '7.0.0.127.bl.test', address: '192.0.2.7' },
      // NODATA: the name exists, with only a TXT
      { type: 'TXT', name: '8.0.0.127.bl.test', text: 'no A here' },
      // a long reason in several character-strings
      { type: 'A', name: '9.0.0.127.bl.test', address: '127.0.0.2' },
      { type: 'TXT', name: '9.0.0.127.bl.test', text: ['a'.repeat(150), 'b'.repeat(150)] },
      // TTL bounds
      { type: 'A', name: '11.0.0.127.bl.test', address: '127.0.0.2', ttl: 5 },
      { type: 'A', name: '12.0.0.127.bl.test', address: '127.0.0.2', ttl: 86_400 },
      { type: 'A', name: '13.0.0.127.bl.test', address: '127.255.255.255', ttl: 120 },
      // IPv6
      { type: 'A', name: `${V6_NAME}.bl.test`, address: '127.0.0.2' },
      // a second zone
      { type: 'A', name: '2.0.0.127.second.test', address: '127.0.0.3' },
      { type: 'A', name: '20.0.0.127.second.test', address: '127.0.0.5' },
      { type: 'TXT', name: '20.0.0.127.second.test', text: 'second says no' },
    ]);
  });
  after(async () => {
    await dns?.close();
  });

  test('listed with a TXT reason: one line of printable ASCII, runs of spaces collapsed', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver() });
    assert.deepEqual(await bl.check('127.0.0.2'), {
      zone: 'bl.test',
      codes: ['127.0.0.2'],
      reason: 'Listed by bl.test: see h re',
    });
  });

  test('the strings of the first TXT record are joined, then cut to 200 characters', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver() });
    const listing = await bl.check('127.0.0.9');
    assert.equal(listing?.reason, `${'a'.repeat(150)}${'b'.repeat(50)}`);
  });

  test('listed without a TXT record: reason null; every return code is reported', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver() });
    const listing = await bl.check('127.0.0.3');
    assert.equal(listing?.zone, 'bl.test');
    assert.deepEqual([...(listing?.codes ?? [])].sort(), ['127.0.0.10', '127.0.0.4']);
    assert.equal(listing?.reason, null);
  });

  test('IPv6 and IPv4-mapped clients; zones normalised', async () => {
    const bl = new Dnsbl({ zones: ['BL.Test.'], resolver: resolver() });
    assert.deepEqual(await bl.check('2001:db8::1'), { zone: 'bl.test', codes: ['127.0.0.2'], reason: null });
    assert.equal((await bl.check('::ffff:127.0.0.2'))?.zone, 'bl.test');
  });

  test('not listed: NXDOMAIN, NODATA, a non-IP (no query)', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver() });
    assert.equal(await bl.check('127.0.0.99'), null);
    assert.equal(count('99.0.0.127.bl.test'), 1);
    assert.equal(await bl.check('127.0.0.8'), null);
    const before = total();
    assert.equal(await bl.check('not-an-ip'), null);
    assert.equal(total(), before);
  });

  test('an error code in 127.255.255.0/24 and an answer outside 127/8 are not listings', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver() });
    assert.equal(await bl.check('127.0.0.4'), null, '127.255.255.254');
    assert.equal(await bl.check('127.0.0.5'), null, '10.0.0.1');
    assert.equal(count('4.0.0.127.bl.test', 'TXT'), 0, 'no reason is asked for');
    assert.deepEqual(await bl.check('127.0.0.7'), { zone: 'bl.test', codes: ['127.0.0.3'], reason: null });
  });

  test('fail open: SERVFAIL is not listed and not cached', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver() });
    dns.failing.add('2.0.0.127.bl.test');
    try {
      const before = count('2.0.0.127.bl.test');
      assert.equal(await bl.check('127.0.0.2'), null);
      assert.equal(await bl.check('127.0.0.2'), null);
      assert.ok(count('2.0.0.127.bl.test') >= before + 2, 'asked again');
    } finally {
      dns.failing.delete('2.0.0.127.bl.test');
    }
    assert.equal((await bl.check('127.0.0.2'))?.zone, 'bl.test', 'the error was not cached');
  });

  test('fail open: a silent zone gives null within about timeoutMs, and is asked again', async () => {
    const r = resolver(5000); // the resolver would wait much longer than the DNSBL's own timeout
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: r, timeoutMs: 300 });
    dns.silent.add('6.0.0.127.bl.test');
    try {
      const started = performance.now();
      assert.equal(await bl.check('127.0.0.6'), null);
      const elapsed = performance.now() - started;
      assert.ok(elapsed >= 250 && elapsed < 1000, `took ${elapsed} ms`);
      const before = count('6.0.0.127.bl.test');
      assert.equal(await bl.check('127.0.0.6'), null);
      assert.ok(count('6.0.0.127.bl.test') > before, 'a timeout is not cached');
    } finally {
      r.cancel();
      dns.silent.delete('6.0.0.127.bl.test');
    }
  });

  test('a TXT lookup that never answers: the listing comes within timeoutMs, without a reason', async () => {
    const r = resolver();
    const bl = new Dnsbl({
      zones: ['bl.test'],
      resolver: { resolve4: r.resolve4.bind(r), resolveTxt: () => new Promise(() => {}) },
      timeoutMs: 300,
    });
    const started = performance.now();
    assert.deepEqual(await bl.check('127.0.0.2'), { zone: 'bl.test', codes: ['127.0.0.2'], reason: null });
    assert.ok(performance.now() - started < 1000);
  });

  test('cache: hits do not query again and expire after the TTL (injected clock)', async () => {
    let now = 1_000_000;
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver(), now: () => now });
    const start = count('2.0.0.127.bl.test');
    const startTxt = count('2.0.0.127.bl.test', 'TXT');
    const first = await bl.check('127.0.0.2');
    assert.equal(first?.reason, 'Listed by bl.test: see h re');
    now += 59_000;
    assert.deepEqual(await bl.check('127.0.0.2'), first);
    assert.deepEqual(await bl.check('::ffff:127.0.0.2'), first, 'IPv4-mapped shares the entry');
    assert.equal(count('2.0.0.127.bl.test'), start + 1, 'within the 60 s TTL');
    assert.equal(count('2.0.0.127.bl.test', 'TXT'), startTxt + 1);
    now += 2_000;
    assert.deepEqual(await bl.check('127.0.0.2'), first);
    assert.equal(count('2.0.0.127.bl.test'), start + 2, 'expired');
  });

  test('cache: NXDOMAIN for 300 s; TTLs bounded to [30 s, 1 h]; error codes by their TTL', async () => {
    let now = 0;
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver(), now: () => now });
    const names = ['98.0.0.127.bl.test', '11.0.0.127.bl.test', '12.0.0.127.bl.test', '13.0.0.127.bl.test'];
    const ips = ['127.0.0.98', '127.0.0.11', '127.0.0.12', '127.0.0.13'];
    const before = names.map((n) => count(n));
    const checkAll = () => Promise.all(ips.map((ip) => bl.check(ip)));
    const asked = () => names.map((n, i) => count(n) - (before[i] ?? 0));
    await checkAll();
    assert.deepEqual(asked(), [1, 1, 1, 1]);
    now = 29_000;
    await checkAll();
    assert.deepEqual(asked(), [1, 1, 1, 1], 'TTL 5 s is kept 30 s');
    now = 31_000;
    await checkAll();
    assert.deepEqual(asked(), [1, 2, 1, 1]);
    now = 121_000;
    await checkAll();
    assert.deepEqual(asked(), [1, 3, 1, 2], '127.255.255.255 with TTL 120 s');
    now = 301_000;
    await checkAll();
    assert.deepEqual(asked(), [2, 4, 1, 3], 'NXDOMAIN for 300 s');
    now = 3_599_000;
    await bl.check('127.0.0.12');
    assert.equal(asked()[2], 1, 'TTL 86400 s is kept 1 h');
    now = 3_601_000;
    await bl.check('127.0.0.12');
    assert.equal(asked()[2], 2);
  });

  test('cache: bounded, the least recently used entry goes first', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver(), maxCacheEntries: 2 });
    const names = ['31.0.0.127.bl.test', '32.0.0.127.bl.test', '33.0.0.127.bl.test'];
    const before = names.map((n) => count(n));
    const asked = () => names.map((n, i) => count(n) - (before[i] ?? 0));
    await bl.check('127.0.0.31');
    await bl.check('127.0.0.32');
    await bl.check('127.0.0.33'); // evicts .31
    assert.deepEqual(asked(), [1, 1, 1]);
    await bl.check('127.0.0.33');
    await bl.check('127.0.0.32');
    assert.deepEqual(asked(), [1, 1, 1], '.32 and .33 cached');
    await bl.check('127.0.0.31'); // evicts .33, used before .32
    assert.deepEqual(asked(), [2, 1, 1]);
    await bl.check('127.0.0.32');
    assert.deepEqual(asked(), [2, 1, 1], '.32 still cached');
    await bl.check('127.0.0.33');
    assert.deepEqual(asked(), [2, 1, 2]);
  });

  test('concurrent checks of the same address share one query', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: resolver() });
    const start = count('3.0.0.127.bl.test');
    const results = await Promise.all([bl.check('127.0.0.3'), bl.check('127.0.0.3'), bl.check('::ffff:127.0.0.3')]);
    assert.equal(count('3.0.0.127.bl.test'), start + 1);
    assert.ok(results.every((r) => r?.zone === 'bl.test'));
  });

  test('several zones: the first listing in zone order, whichever answers first', async () => {
    const bl = new Dnsbl({ zones: ['clean.test', 'second.test', 'bl.test'], resolver: resolver() });
    assert.deepEqual(await bl.check('127.0.0.20'), {
      zone: 'second.test',
      codes: ['127.0.0.5'],
      reason: 'second says no',
    });
    assert.equal((await bl.check('127.0.0.2'))?.zone, 'second.test', 'listed in both: the earlier zone');
    dns.failing.add('21.0.0.127.clean.test');
    dns.add({ type: 'A', name: '21.0.0.127.second.test', address: '127.0.0.2' });
    try {
      assert.equal((await bl.check('127.0.0.21'))?.zone, 'second.test', 'a failing zone does not hide the others');
    } finally {
      dns.failing.delete('21.0.0.127.clean.test');
      dns.remove('21.0.0.127.second.test');
    }
  });

  test('no zones: null without any query', async () => {
    const before = total();
    const none = new Dnsbl({ zones: [], resolver: resolver() });
    assert.equal(await none.check('127.0.0.2'), null);
    const blank = new Dnsbl({ zones: ['', '.'], resolver: resolver() });
    assert.equal(await blank.check('127.0.0.2'), null);
    assert.equal(total(), before);
  });
});
