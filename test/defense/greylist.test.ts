// Greylisting (src/defense/greylist.ts, docs/spam.md "Greylisting"): the keys, the contract
// (greylist-contract.ts) on the real SQLite database, the allowlist, verified reverse names.

import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, test } from 'node:test';
import { networkKey } from '../../src/core/ip.ts';
import { cleanSender, greylistKey, verifiedReverse } from '../../src/defense/greylist.ts';
import { GreylistAllowlist, parseAllowlist } from '../../src/defense/greylist-allowlist.ts';
import { SqliteGreylistStorage } from '../../src/defense/greylist-sqlite.ts';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { startTestDns } from '../harness/dns.ts';
import { greylistContract } from './greylist-contract.ts';

describe('greylist keys', () => {
  test('client network: IPv4 /24, IPv6 /64, IPv4-mapped as IPv4', () => {
    assert.equal(networkKey('192.0.2.77', 24, 64), '192.0.2.0/24');
    assert.equal(networkKey('::ffff:192.0.2.77', 24, 64), '192.0.2.0/24');
    assert.equal(networkKey('2001:db8:1:2:3::4', 24, 64), '20010db800010002/64');
    assert.equal(networkKey('2001:db8:1:2::9', 24, 64), networkKey('2001:db8:1:2:ffff::1', 24, 64));
    assert.equal(networkKey('10.1.2.3', 21, 64), '10.1.0.0/21');
    assert.equal(networkKey('2001:db8:1:ff00::1', 32, 56), '20010db80001ff/56');
    assert.equal(networkKey('2001:db8:1:ff80::1', 32, 57), '20010db80001ff8/57');
  });

  test('sender cleanup as postgrey: case, +extension, BATV, VERP numbers', () => {
    assert.equal(cleanSender('Bounce+Alice=example.org@Lists.Example'), 'bounce@lists.example');
    assert.equal(cleanSender('prvs=1234abcdef=joe@example.com'), 'joe@example.com');
    assert.equal(cleanSender('bounces-123-4567@news.example'), 'bounces-#-#@news.example');
    assert.equal(cleanSender('user2023@example.com'), 'user2023@example.com');
    assert.equal(cleanSender(''), '');
    const k = greylistKey({ ip: '198.51.100.9', sender: 'A+x@B.example', recipient: 'Bob@Here.example' });
    assert.deepEqual(k, { net: '198.51.100.0/24', sender: 'a@b.example', recipient: 'bob@here.example' });
  });
});

greylistContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-greylist-'));
  return {
    node: async () => new SqliteGreylistStorage(join(dir, 'greylist.db')),
    close: () => rm(dir, { recursive: true, force: true }),
  };
});

describe('greylist allowlist', () => {
  test('parses postgrey whitelist_clients lines and refuses what it cannot use', () => {
    const p = parseAllowlist(
      '# big senders\n.Example.COM\n/^mail\\d+\\.x\\.net$/\n/(a+)+$/\n192.0.2\n198.51.100.7\n2001:db8::/32\nnot a name\n',
      'f',
    );
    assert.deepEqual([...p.domains], ['example.com']);
    assert.equal(p.patterns.length, 1);
    assert.deepEqual(p.cidrs, ['192.0.2.0/24', '198.51.100.7', '2001:db8::/32']);
    assert.equal(p.errors.length, 2);
  });

  test("the operator's file is re-read when its mtime changes, without a restart", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arcline-allow-'));
    const file = join(dir, 'allow.txt');
    await writeFile(file, 'first.example\n');
    await utimes(file, 1_000, 1_000);
    const warnings: string[] = [];
    const a = new GreylistAllowlist({ file, warn: (m) => warnings.push(m), shipped: 'shipped.example\n' });
    await a.reload();
    assert.equal(await a.allows('192.0.2.1', 'mx.first.example'), true);
    assert.equal(await a.allows('192.0.2.1', 'mx.shipped.example'), true);
    assert.equal(await a.allows('192.0.2.1', 'mx.second.example'), false);
    await writeFile(file, 'second.example\n');
    await utimes(file, 2_000, 2_000);
    await a.reload();
    assert.equal(await a.allows('192.0.2.1', 'mx.second.example'), true);
    assert.equal(await a.allows('192.0.2.1', 'mx.first.example'), false);
    assert.deepEqual(warnings, []);
    await rm(dir, { recursive: true, force: true });
  });

  test('the shipped list parses cleanly', () => {
    const warnings: string[] = [];
    const a = new GreylistAllowlist({ file: '', warn: (m) => warnings.push(m) });
    assert.deepEqual(warnings, []);
    return a.allows('192.0.2.1', 'mail-yw1-f170.google.com').then((ok) => assert.equal(ok, true));
  });
});

describe('verified reverse names (real DNS server on 127.0.0.1)', () => {
  test('a PTR name counts only when its A record holds the address', async () => {
    const dns = await startTestDns([
      { type: 'PTR', name: '5.113.0.203.in-addr.arpa', target: 'mail-a1.google.com' },
      { type: 'A', name: 'mail-a1.google.com', address: '203.0.113.5' },
      // A PTR that claims a name whose A record is another address: not verified.
      { type: 'PTR', name: '6.113.0.203.in-addr.arpa', target: 'mail-a2.google.com' },
      { type: 'A', name: 'mail-a2.google.com', address: '198.51.100.1' },
    ]);
    try {
      const verify = verifiedReverse(createPromiseResolver([dns.address]));
      assert.equal(await verify('203.0.113.5'), 'mail-a1.google.com');
      assert.equal(await verify('203.0.113.6'), null);
      assert.equal(await verify('203.0.113.7'), null);
    } finally {
      await dns.close();
    }
  });
});
