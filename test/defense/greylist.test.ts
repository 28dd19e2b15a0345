// Greylisting (src/defense/greylist.ts, docs/spam.md "Greylisting"): postgrey's semantics on
// the real SQLite database with a clock the test moves.

import assert from 'node:assert/strict';
import { mkdtemp, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { pino } from 'pino';
import { networkKey } from '../../src/core/ip.ts';
import { cleanSender, greylistKey, SqliteGreylister, verifiedReverse } from '../../src/defense/greylist.ts';
import { GreylistAllowlist, parseAllowlist } from '../../src/defense/greylist-allowlist.ts';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { startTestDns } from '../harness/dns.ts';

const MIN = 60_000;
const DAY = 86_400_000;
const log = pino({ level: 'silent' });

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

describe('greylisting with a controllable clock', () => {
  let dir: string;
  let now = Date.UTC(2026, 0, 1);
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-greylist-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  let n = 0;
  const make = (o: { allowlist?: string; exempt?: (ip: string) => boolean; enabled?: boolean } = {}) =>
    new SqliteGreylister({
      path: join(dir, `greylist-${n++}.db`),
      enabled: o.enabled ?? true,
      delayMs: 5 * MIN,
      retryWindowMs: 2 * DAY,
      maxAgeMs: 35 * DAY,
      autoAllowAfter: 5,
      allowlist: new GreylistAllowlist({ file: '', warn: () => {}, shipped: o.allowlist ?? '' }),
      exempt: o.exempt ?? (() => false),
      log,
      now: () => now,
    });
  const t = (ip = '203.0.113.5', sender = 'alice@sender.example', recipient = 'bob@here.example') => ({
    ip,
    sender,
    recipient,
    hostname: null,
  });

  test('first attempt deferred, retry before the delay deferred, after the delay accepted', async () => {
    const g = make();
    assert.deepEqual(await g.check(t()), { kind: 'defer', retryInSeconds: 300 });
    now += 2 * MIN;
    assert.deepEqual(await g.check(t()), { kind: 'defer', retryInSeconds: 180 });
    // A neighbour in the same /24 (a pool retrying from another address) is the same triplet.
    now += 3 * MIN;
    assert.deepEqual(await g.check(t('203.0.113.77')), { kind: 'pass' });
    // Once passed, later mail of the triplet passes at once.
    now += DAY;
    assert.deepEqual(await g.check(t()), { kind: 'pass' });
    // Another recipient is another triplet; another network too.
    assert.equal((await g.check(t('203.0.113.5', 'alice@sender.example', 'carol@here.example'))).kind, 'defer');
    assert.equal((await g.check(t('203.0.114.5'))).kind, 'defer');
    g.close();
  });

  test('a first attempt not retried within the retry window starts over', async () => {
    const g = make();
    assert.equal((await g.check(t())).kind, 'defer');
    now += 2 * DAY + MIN;
    assert.deepEqual(await g.check(t()), { kind: 'defer', retryInSeconds: 300 });
    now += 5 * MIN;
    assert.equal((await g.check(t())).kind, 'pass');
    g.close();
  });

  test('a triplet unseen for max_age is forgotten; the sweep deletes expired rows', async () => {
    const g = make();
    await g.check(t());
    now += 5 * MIN;
    assert.equal((await g.check(t())).kind, 'pass');
    now += 35 * DAY + MIN;
    assert.equal((await g.check(t())).kind, 'defer');
    assert.equal(g.list().length, 1);
    now += 36 * DAY;
    assert.equal(g.sweep() >= 1, true);
    assert.equal(g.list().length, 0);
    g.close();
  });

  test('a client network that passed 5 times is allowed as a whole', async () => {
    const g = make();
    for (let i = 0; i < 5; i++) {
      const rcpt = `user${i}@here.example`;
      assert.equal((await g.check(t('198.51.100.1', 's@x.example', rcpt))).kind, 'defer');
      now += 5 * MIN;
      assert.equal((await g.check(t('198.51.100.1', 's@x.example', rcpt))).kind, 'pass');
    }
    // A new triplet from that network: no delay.
    assert.deepEqual(await g.check(t('198.51.100.200', 'new@y.example', 'z@here.example')), { kind: 'pass' });
    // Passes within a minute count once: one message to many recipients is one pass.
    const h = make();
    for (let i = 0; i < 6; i++) await h.check(t('192.0.2.1', 's@x.example', `r${i}@here.example`));
    now += 5 * MIN;
    for (let i = 0; i < 6; i++)
      assert.equal((await h.check(t('192.0.2.1', 's@x.example', `r${i}@here.example`))).kind, 'pass');
    assert.equal((await h.check(t('192.0.2.1', 'other@x.example', 'q@here.example'))).kind, 'defer');
    g.close();
    h.close();
  });

  test('allowlisted host names and addresses are never greylisted; exempt clients neither', async () => {
    const g = make({
      allowlist: 'google.com\n/^mx\\d+\\.example\\.net$/\n192.0.2.0/25\n10.1\n',
      exempt: (ip) => ip === '203.0.113.99',
    });
    assert.equal((await g.check({ ...t(), hostname: 'mail-a1.google.com' })).kind, 'pass');
    assert.equal((await g.check({ ...t(), hostname: 'evilgoogle.com' })).kind, 'defer');
    assert.equal((await g.check({ ...t(), hostname: 'mx12.example.net' })).kind, 'pass');
    assert.equal((await g.check(t('192.0.2.100'))).kind, 'pass');
    assert.equal((await g.check(t('192.0.2.200'))).kind, 'defer');
    assert.equal((await g.check(t('10.1.200.3'))).kind, 'pass');
    assert.equal((await g.check(t('203.0.113.99'))).kind, 'pass');
    g.close();
  });

  test('off in the configuration: everything passes unless forced (rspamd asked)', async () => {
    const g = make({ enabled: false });
    assert.equal((await g.check(t())).kind, 'pass');
    assert.equal((await g.check(t(), { force: true })).kind, 'defer');
    g.close();
  });

  test('several connections to one database (the inbound threads) agree', async () => {
    const path = join(dir, 'shared.db');
    const mk = () =>
      new SqliteGreylister({
        path,
        enabled: true,
        delayMs: 5 * MIN,
        retryWindowMs: 2 * DAY,
        maxAgeMs: 35 * DAY,
        autoAllowAfter: 5,
        allowlist: new GreylistAllowlist({ file: '', warn: () => {}, shipped: '' }),
        exempt: () => false,
        log,
        now: () => now,
      });
    const a = mk();
    const b = mk();
    assert.equal((await a.check(t())).kind, 'defer');
    now += 5 * MIN;
    assert.equal((await b.check(t())).kind, 'pass');
    a.close();
    b.close();
  });
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
