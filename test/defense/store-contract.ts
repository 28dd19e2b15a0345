// The defence state contract (src/defense/store.ts DefenseStore) with the ban policy and the
// listeners' view on top, a controllable clock: thresholds, the window, doubling periods and
// their cap, the memory of earlier bans, every exemption (allow list, trusted, an owner's
// network, loopback), what another connection (the CLI, another thread, another node of a
// cluster) sees and writes. Runs against defense.db (SQLite) and the shared PostgreSQL.
// `fresh` gives empty storage; `open()` another connection to it.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { deleteNetwork, explain, liftBan, putNetwork } from '../../src/admin/networks.ts';
import { silentLogger } from '../../src/core/log.ts';
import { AccessView } from '../../src/defense/access.ts';
import { BanPolicy, type BanSettings } from '../../src/defense/bans.ts';
import type { DefenseStore } from '../../src/defense/store.ts';

export interface DefenseBackend {
  open(): Promise<DefenseStore>;
  close(): Promise<void>;
}

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

export function defenseStoreContract(name: string, fresh: () => Promise<DefenseBackend>): void {
  describe(`${name}: IP lists and bans`, () => {
    /** A test on fresh storage: one node's store, view and policy (its clock), and `another`. */
    const on =
      (
        fn: (
          d: Awaited<ReturnType<typeof node>>,
          another: () => Promise<Awaited<ReturnType<typeof node>>>,
        ) => Promise<void>,
        o: { trusted?: (ip: string) => boolean; enabled?: boolean } = {},
      ) =>
      async () => {
        const b = await fresh();
        let now = Date.now();
        const clock = () => now;
        const advance = (ms: number) => {
          now += ms;
        };
        const nodes: { store: DefenseStore }[] = [];
        const another = async () => {
          const n = await node(await b.open(), clock, advance, o);
          nodes.push(n);
          return n;
        };
        try {
          await fn(await another(), another);
        } finally {
          for (const n of nodes) n.store.close();
          await b.close();
        }
      };

    async function node(
      store: DefenseStore,
      clock: () => number,
      advance: (ms: number) => void,
      o: { trusted?: (ip: string) => boolean; enabled?: boolean },
    ) {
      const view = await AccessView.open(store, { pollMs: 1000, now: clock });
      const policy = new BanPolicy({
        store,
        view,
        settings: { ...settings, enabled: o.enabled ?? true },
        trusted: o.trusted ?? (() => false),
        log: silentLogger(),
        now: clock,
      });
      return { store, view, policy, advance, now: clock };
    }

    test(
      'bans: at the threshold within the window; the count starts over after it',
      on(async (d) => {
        assert.equal(await d.policy.offence('198.51.100.7', 'auth'), null);
        assert.equal(await d.policy.offence('198.51.100.7', 'auth'), null);
        d.advance(11 * MIN); // the window passed: the third failure is the first of a new count
        assert.equal(await d.policy.offence('198.51.100.7', 'auth'), null);
        assert.equal(d.view.verdict('198.51.100.7').kind, 'open');
        assert.equal(await d.policy.offence('198.51.100.7', 'auth'), null);
        const ban = await d.policy.offence('198.51.100.7', 'auth');
        assert.ok(ban);
        assert.equal(ban.network, '198.51.100.7/32');
        assert.equal(ban.level, 1);
        assert.equal(ban.expires - ban.banned, 15 * MIN);
        assert.match(ban.detail, /^3 failed logins in \d+ s$/);
        assert.equal(d.view.verdict('198.51.100.7').kind, 'banned');
        assert.equal(d.view.verdict('198.51.100.8').kind, 'open', 'only the address itself (IPv4)');
        // Kinds count apart: two auth failures and one protocol error ban nobody.
        await d.policy.offence('198.51.100.9', 'auth');
        await d.policy.offence('198.51.100.9', 'auth');
        await d.policy.offence('198.51.100.9', 'protocol');
        assert.equal(d.view.verdict('198.51.100.9').kind, 'open');
        d.advance(15 * MIN);
        assert.equal(d.view.verdict('198.51.100.7').kind, 'open', 'expired');
      }),
    );

    test(
      'bans: an IPv6 client is banned with its /64; each further ban doubles, up to max_duration',
      on(async (d) => {
        const periods: number[] = [];
        for (let i = 0; i < 4; i++) {
          let ban = null;
          for (let k = 0; k < 2; k++) ban = await d.policy.offence(`2001:db8:5:6::${k + 1}`, 'protocol');
          assert.ok(ban);
          periods.push((ban.expires - ban.banned) / MIN);
          assert.equal(d.view.verdict('2001:db8:5:6:ffff::1').kind, 'banned', 'the whole /64');
          assert.equal(d.view.verdict('2001:db8:5:7::1').kind, 'open');
          d.advance(ban.expires - ban.banned);
        }
        assert.deepEqual(periods, [15, 30, 60, 60]);
        // Past the memory, a ban starts again at level 1.
        d.advance(settings.memoryMs + 1);
        await d.store.sweep(d.now(), 0);
        await d.policy.offence('2001:db8:5:6::1', 'protocol');
        const again = await d.policy.offence('2001:db8:5:6::1', 'protocol');
        assert.equal(again?.level, 1);
      }),
    );

    test(
      'bans: never the allow list, a trusted network, an owner network or 127.0.0.1',
      on(
        async (d) => {
          await putNetwork(d.store, '192.0.2.0/24', 'allow', { by: 'test' });
          await d.view.refresh(true);
          await d.policy.loggedIn('203.0.113.50');
          for (const ip of ['192.0.2.10', '10.1.1.1', '203.0.113.50', '127.0.0.1', '::1']) {
            for (let i = 0; i < 5; i++) assert.equal(await d.policy.offence(ip, 'auth'), null, ip);
            assert.notEqual(d.view.verdict(ip).kind, 'banned', ip);
          }
          // Another address of the owner's /64-less IPv4 neighbourhood is not exempt.
          for (let i = 0; i < 2; i++) await d.policy.offence('203.0.113.51', 'auth');
          assert.ok(await d.policy.offence('203.0.113.51', 'auth'));
          // An owner login older than known_client_age no longer protects.
          d.advance(settings.knownClientMs + MIN);
          for (let i = 0; i < 2; i++) await d.policy.offence('203.0.113.50', 'auth');
          assert.ok(await d.policy.offence('203.0.113.50', 'auth'));
        },
        { trusted: (ip) => ip.startsWith('10.') },
      ),
    );

    test(
      'bans: disabled, nothing is banned',
      on(
        async (d) => {
          for (let i = 0; i < 10; i++) assert.equal(await d.policy.offence('198.51.100.1', 'auth'), null);
          assert.equal(d.view.verdict('198.51.100.1').kind, 'open');
        },
        { enabled: false },
      ),
    );

    test(
      'lists: allow wins over deny and bans; another connection sees changes through the version',
      on(async (d, another) => {
        const cli = (await another()).store; // as `arcline ip` would open it
        await putNetwork(cli, '198.51.100.0/24', 'deny', { comment: 'scanners', by: 'cli' });
        assert.equal(d.view.verdict('198.51.100.20').kind, 'open', 'not polled yet');
        await d.view.refresh();
        assert.equal(d.view.verdict('198.51.100.20').kind, 'deny');
        await putNetwork(cli, '198.51.100.20', 'allow', { by: 'cli' });
        await d.view.refresh();
        assert.equal(d.view.verdict('198.51.100.20').kind, 'allow');
        assert.equal(d.view.verdict('198.51.100.21').kind, 'deny');
        // Moving an entry to the other list, idempotent puts.
        assert.equal((await putNetwork(cli, '198.51.100.20/32', 'allow', { by: 'cli' })).changed, false);
        assert.equal((await putNetwork(cli, '198.51.100.0/24', 'allow', { by: 'cli' })).changed, true);
        await d.view.refresh();
        assert.equal(d.view.verdict('198.51.100.21').kind, 'allow');
        const x = await explain(cli, '198.51.100.20');
        assert.equal(x.verdict, 'allow');
        assert.deepEqual(x.entries.map((e) => e.cidr).sort(), ['198.51.100.0/24', '198.51.100.20/32']);
        assert.equal(await deleteNetwork(cli, '198.51.100.0/24'), true);
        await assert.rejects(deleteNetwork(cli, '198.51.100.0/24'), /on no list/);
        assert.equal(await deleteNetwork(cli, '198.51.100.0/24', true), false);
        // A ban written by the server's policy, lifted by the CLI.
        for (let i = 0; i < 3; i++) await d.policy.offence('203.0.113.9', 'auth');
        assert.equal((await cli.bans(d.now())).length, 1);
        assert.equal(await liftBan(cli, '203.0.113.9'), true);
        await d.view.refresh();
        assert.equal(d.view.verdict('203.0.113.9').kind, 'open');
      }),
    );

    test(
      'a ban written by one node refuses the client at another once it polls; its level is shared',
      on(async (a, another) => {
        const b = await another();
        for (let i = 0; i < 2; i++) await a.policy.offence('2001:db8:77::1', 'protocol');
        assert.equal(a.view.verdict('2001:db8:77::9').kind, 'banned');
        assert.equal(b.view.verdict('2001:db8:77::9').kind, 'open', 'not polled yet');
        await b.view.refresh();
        assert.equal(b.view.verdict('2001:db8:77::9').kind, 'banned');
        // The next ban, by the other node, is the second level.
        a.advance(15 * MIN);
        for (let i = 0; i < 1; i++) await b.policy.offence('2001:db8:77::2', 'protocol');
        const second = await b.policy.offence('2001:db8:77::2', 'protocol');
        assert.equal(second?.level, 2);
        // An owner who logged in through one node is never banned by another.
        await b.policy.loggedIn('198.51.100.44');
        for (let i = 0; i < 5; i++) assert.equal(await a.policy.offence('198.51.100.44', 'auth'), null);
      }),
    );

    test(
      'lists: refused entries: not a network, a deny of everyone or of the loopback address, control characters',
      on(async (d) => {
        const put = (t: string, list: 'allow' | 'deny', comment?: string) =>
          putNetwork(d.store, t, list, { by: 't', ...(comment !== undefined ? { comment } : {}) });
        await assert.rejects(put('300.1.1.1', 'deny'), /not an IP address or CIDR/);
        await assert.rejects(put('0.0.0.0/0', 'deny'), /every client/);
        await assert.rejects(put('127.0.0.0/8', 'deny'), /contains 127\.0\.0\.1/);
        await assert.rejects(put('::/0', 'deny'), /every client/);
        await assert.rejects(put('::1', 'deny'), /contains ::1/);
        await assert.rejects(put('192.0.2.1', 'deny', 'a\nb'), /one line/);
        assert.equal((await put('127.0.0.0/8', 'allow')).changed, true, 'allowing loopback is fine');
        assert.equal((await put('127.0.0.9', 'deny')).changed, true, 'another loopback address');
      }),
    );
  });
}
