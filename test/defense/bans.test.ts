// The ban policy and the IP lists without sockets: a real defense.db in a temp directory, a
// controllable clock. Thresholds, the window, doubling periods and their cap, the memory of
// earlier bans, every exemption (allow list, trusted, an owner's network, loopback), and what
// another connection (the CLI) sees.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { deleteNetwork, explain, liftBan, putNetwork } from '../../src/admin/networks.ts';
import { silentLogger } from '../../src/core/log.ts';
import { AccessView } from '../../src/defense/access.ts';
import { BanPolicy, type BanSettings } from '../../src/defense/bans.ts';
import { banNetwork, NetworkSet, parseNetwork } from '../../src/defense/networks.ts';
import { DefenseStore } from '../../src/defense/store.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-defense-'));
});
after(() => rm(dir, { recursive: true, force: true }));

const MIN = 60_000;
const settings: BanSettings = {
  enabled: true,
  windowMs: 10 * MIN,
  thresholds: { auth: 3, protocol: 2, 'unknown-recipient': 4 },
  firstMs: 15 * MIN,
  maxMs: 60 * MIN,
  memoryMs: 24 * 60 * MIN,
  knownClientMs: 30 * 24 * 60 * MIN,
};

function setup(name: string, trusted: (ip: string) => boolean = () => false) {
  const store = new DefenseStore(join(dir, name));
  let now = Date.now();
  const clock = () => now;
  const view = new AccessView(store, { pollMs: 1000, now: clock });
  const policy = new BanPolicy({ store, view, settings, trusted, log: silentLogger(), now: clock });
  return {
    store,
    view,
    policy,
    advance: (ms: number) => {
      now += ms;
    },
    now: clock,
  };
}

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

test('bans: at the threshold within the window; the count starts over after it', () => {
  const d = setup('threshold.db');
  assert.equal(d.policy.offence('198.51.100.7', 'auth'), null);
  assert.equal(d.policy.offence('198.51.100.7', 'auth'), null);
  d.advance(11 * MIN); // the window passed: the third failure is the first of a new count
  assert.equal(d.policy.offence('198.51.100.7', 'auth'), null);
  assert.equal(d.view.verdict('198.51.100.7').kind, 'open');
  assert.equal(d.policy.offence('198.51.100.7', 'auth'), null);
  const ban = d.policy.offence('198.51.100.7', 'auth');
  assert.ok(ban);
  assert.equal(ban.network, '198.51.100.7/32');
  assert.equal(ban.level, 1);
  assert.equal(ban.expires - ban.banned, 15 * MIN);
  assert.match(ban.detail, /^3 failed logins in \d+ s$/);
  const v = d.view.verdict('198.51.100.7');
  assert.equal(v.kind, 'banned');
  assert.equal(d.view.verdict('198.51.100.8').kind, 'open', 'only the address itself (IPv4)');
  // Kinds count apart: two auth failures and one protocol error ban nobody.
  d.policy.offence('198.51.100.9', 'auth');
  d.policy.offence('198.51.100.9', 'auth');
  d.policy.offence('198.51.100.9', 'protocol');
  assert.equal(d.view.verdict('198.51.100.9').kind, 'open');
  d.advance(15 * MIN);
  assert.equal(d.view.verdict('198.51.100.7').kind, 'open', 'expired');
});

test('bans: an IPv6 client is banned with its /64; each further ban doubles, up to max_duration', () => {
  const d = setup('escalate.db');
  const periods: number[] = [];
  for (let i = 0; i < 4; i++) {
    let ban = null;
    for (let k = 0; k < 2; k++) ban = d.policy.offence(`2001:db8:5:6::${k + 1}`, 'protocol');
    assert.ok(ban);
    periods.push((ban.expires - ban.banned) / MIN);
    assert.equal(d.view.verdict('2001:db8:5:6:ffff::1').kind, 'banned', 'the whole /64');
    assert.equal(d.view.verdict('2001:db8:5:7::1').kind, 'open');
    d.advance(ban.expires - ban.banned);
  }
  assert.deepEqual(periods, [15, 30, 60, 60]);
  // Past the memory, a ban starts again at level 1.
  d.advance(settings.memoryMs + 1);
  d.store.sweep(d.now(), 0);
  d.policy.offence('2001:db8:5:6::1', 'protocol');
  const again = d.policy.offence('2001:db8:5:6::1', 'protocol');
  assert.equal(again?.level, 1);
});

test('bans: never the allow list, a trusted network, an owner network or 127.0.0.1', () => {
  const d = setup('exempt.db', (ip) => ip.startsWith('10.'));
  putNetwork(d.store, '192.0.2.0/24', 'allow', { by: 'test' });
  d.view.refresh(true);
  d.policy.loggedIn('203.0.113.50');
  for (const ip of ['192.0.2.10', '10.1.1.1', '203.0.113.50', '127.0.0.1', '::1']) {
    for (let i = 0; i < 5; i++) assert.equal(d.policy.offence(ip, 'auth'), null, ip);
    assert.notEqual(d.view.verdict(ip).kind, 'banned', ip);
  }
  // Another address of the owner's /64-less IPv4 neighbourhood is not exempt.
  for (let i = 0; i < 2; i++) d.policy.offence('203.0.113.51', 'auth');
  assert.ok(d.policy.offence('203.0.113.51', 'auth'));
  // An owner login older than known_client_age no longer protects.
  d.advance(settings.knownClientMs + MIN);
  for (let i = 0; i < 2; i++) d.policy.offence('203.0.113.50', 'auth');
  assert.ok(d.policy.offence('203.0.113.50', 'auth'));
});

test('bans: disabled, nothing is banned', () => {
  const store = new DefenseStore(join(dir, 'off.db'));
  const view = new AccessView(store, { pollMs: 1000 });
  const policy = new BanPolicy({
    store,
    view,
    settings: { ...settings, enabled: false },
    trusted: () => false,
    log: silentLogger(),
  });
  for (let i = 0; i < 10; i++) assert.equal(policy.offence('198.51.100.1', 'auth'), null);
  assert.equal(view.verdict('198.51.100.1').kind, 'open');
});

test('lists: allow wins over deny and bans; another connection sees changes through data_version', () => {
  const d = setup('lists.db');
  const cli = new DefenseStore(join(dir, 'lists.db')); // as `arcline ip` would open it
  putNetwork(cli, '198.51.100.0/24', 'deny', { comment: 'scanners', by: 'cli' });
  assert.equal(d.view.verdict('198.51.100.20').kind, 'open', 'not polled yet');
  d.view.refresh();
  assert.equal(d.view.verdict('198.51.100.20').kind, 'deny');
  putNetwork(cli, '198.51.100.20', 'allow', { by: 'cli' });
  d.view.refresh();
  assert.equal(d.view.verdict('198.51.100.20').kind, 'allow');
  assert.equal(d.view.verdict('198.51.100.21').kind, 'deny');
  // Moving an entry to the other list, idempotent puts.
  assert.equal(putNetwork(cli, '198.51.100.20/32', 'allow', { by: 'cli' }).changed, false);
  assert.equal(putNetwork(cli, '198.51.100.0/24', 'allow', { by: 'cli' }).changed, true);
  d.view.refresh();
  assert.equal(d.view.verdict('198.51.100.21').kind, 'allow');
  const x = explain(cli, '198.51.100.20');
  assert.equal(x.verdict, 'allow');
  assert.deepEqual(x.entries.map((e) => e.cidr).sort(), ['198.51.100.0/24', '198.51.100.20/32']);
  assert.equal(deleteNetwork(cli, '198.51.100.0/24'), true);
  assert.throws(() => deleteNetwork(cli, '198.51.100.0/24'), /on no list/);
  assert.equal(deleteNetwork(cli, '198.51.100.0/24', true), false);
  // A ban written by the server's policy, lifted by the CLI.
  for (let i = 0; i < 3; i++) d.policy.offence('203.0.113.9', 'auth');
  assert.equal(cli.bans(d.now()).length, 1);
  assert.equal(liftBan(cli, '203.0.113.9'), true);
  d.view.refresh();
  assert.equal(d.view.verdict('203.0.113.9').kind, 'open');
  cli.close();
});

test('lists: refused entries: not a network, a deny of everyone or of the loopback address, control characters', () => {
  const d = setup('refused.db');
  assert.throws(() => putNetwork(d.store, '300.1.1.1', 'deny', { by: 't' }), /not an IP address or CIDR/);
  assert.throws(() => putNetwork(d.store, '0.0.0.0/0', 'deny', { by: 't' }), /every client/);
  assert.throws(() => putNetwork(d.store, '127.0.0.0/8', 'deny', { by: 't' }), /contains 127\.0\.0\.1/);
  assert.throws(() => putNetwork(d.store, '::/0', 'deny', { by: 't' }), /every client/);
  assert.throws(() => putNetwork(d.store, '::1', 'deny', { by: 't' }), /contains ::1/);
  assert.throws(() => putNetwork(d.store, '192.0.2.1', 'deny', { comment: 'a\nb', by: 't' }), /one line/);
  assert.equal(putNetwork(d.store, '127.0.0.0/8', 'allow', { by: 't' }).changed, true, 'allowing loopback is fine');
  assert.equal(putNetwork(d.store, '127.0.0.9', 'deny', { by: 't' }).changed, true, 'another loopback address');
});
