// DNS blocklists (RFC 5782) against a real DNS server on 127.0.0.1.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { Dnsbl, dnsblQueryName } from '../../src/hygiene/dnsbl.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';

describe('DNSBL', () => {
  let dns: TestDnsServer;

  before(async () => {
    dns = await startTestDns([
      { type: 'A', name: '2.0.0.127.bl.test', address: '127.0.0.2', ttl: 60 },
      { type: 'TXT', name: '2.0.0.127.bl.test', text: 'Listed\r\n by bl.test: see h\u00e9re ' },
      { type: 'A', name: '3.0.0.127.bl.test', address: '127.0.0.4' },
      { type: 'A', name: '4.0.0.127.bl.test', address: '127.255.255.254' },
      { type: 'A', name: '5.0.0.127.bl.test', address: '10.0.0.1' },
      { type: 'A', name: '2.0.0.127.second.test', address: '127.0.0.3' },
      {
        type: 'A',
        name: '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test',
        address: '127.0.0.2',
      },
    ]);
  });
  after(async () => {
    await dns?.close();
  });

  test('query names: IPv4 reversed, IPv6 as nibbles, IPv4-mapped as IPv4, not an IP: null', () => {
    assert.equal(dnsblQueryName('192.0.2.1', 'zen.example.'), '1.2.0.192.zen.example');
    assert.equal(
      dnsblQueryName('2001:db8::1', 'bl.test'),
      '1.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.0.8.b.d.0.1.0.0.2.bl.test',
    );
    assert.equal(dnsblQueryName('::ffff:192.0.2.1', 'bl.test'), '1.2.0.192.bl.test');
    assert.equal(dnsblQueryName('not-an-ip', 'bl.test'), null);
  });

  test('listed with a reason (one printable line), listed without one, IPv6 listed', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: createPromiseResolver([dns.address], 1000) });
    assert.deepEqual(await bl.check('127.0.0.2'), {
      zone: 'bl.test',
      codes: ['127.0.0.2'],
      reason: 'Listed by bl.test: see h re',
    });
    assert.deepEqual(await bl.check('127.0.0.3'), { zone: 'bl.test', codes: ['127.0.0.4'], reason: null });
    assert.equal((await bl.check('2001:db8::1'))?.zone, 'bl.test');
  });

  test('not listed: no record, an error code 127.255.255.x, an answer outside 127/8', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: createPromiseResolver([dns.address], 1000) });
    assert.equal(await bl.check('127.0.0.9'), null);
    assert.equal(await bl.check('127.0.0.4'), null);
    assert.equal(await bl.check('127.0.0.5'), null);
  });

  test('fail open: SERVFAIL and silence mean not listed; errors are not cached, answers are', async () => {
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: createPromiseResolver([dns.address], 300), timeoutMs: 500 });
    dns.failing.add('2.0.0.127.bl.test');
    assert.equal(await bl.check('127.0.0.2'), null);
    dns.failing.delete('2.0.0.127.bl.test');
    assert.equal((await bl.check('127.0.0.2'))?.zone, 'bl.test', 'the error was not cached');
    const before = dns.queries.get('2.0.0.127.bl.test/A') ?? 0;
    await bl.check('127.0.0.2');
    assert.equal(dns.queries.get('2.0.0.127.bl.test/A'), before, 'the listing is cached');
    dns.silent.add('6.0.0.127.bl.test');
    const started = Date.now();
    assert.equal(await bl.check('127.0.0.6'), null);
    assert.ok(Date.now() - started < 2000);
  });

  test('cache entries expire after their TTL; concurrent checks share one query', async () => {
    let now = 1_000_000;
    const bl = new Dnsbl({ zones: ['bl.test'], resolver: createPromiseResolver([dns.address], 1000), now: () => now });
    const q = () => dns.queries.get('2.0.0.127.bl.test/A') ?? 0;
    const start = q();
    await Promise.all([bl.check('127.0.0.2'), bl.check('127.0.0.2'), bl.check('127.0.0.2')]);
    assert.equal(q(), start + 1);
    now += 59_000;
    await bl.check('127.0.0.2');
    assert.equal(q(), start + 1, 'within the 60 s TTL');
    now += 2_000;
    await bl.check('127.0.0.2');
    assert.equal(q(), start + 2, 'expired');
  });

  test('several zones: the first listing in zone order; no zones: no query', async () => {
    const bl = new Dnsbl({
      zones: ['clean.test', 'second.test', 'bl.test'],
      resolver: createPromiseResolver([dns.address]),
    });
    assert.equal((await bl.check('127.0.0.2'))?.zone, 'second.test');
    const none = new Dnsbl({ zones: [], resolver: createPromiseResolver([dns.address]) });
    assert.equal(await none.check('127.0.0.2'), null);
  });
});
