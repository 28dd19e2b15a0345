// The greylisting contract (src/defense/greylist.ts over a GreylistStorage): postgrey's semantics
// with a clock the test moves, run against {state}/greylist.db (SQLite) and the shared
// PostgreSQL (issue #18). `fresh` gives empty storage; `node()` another opener of it (another
// inbound thread, another node of a cluster).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { pino } from 'pino';
import { Greylist, type GreylistStorage } from '../../src/defense/greylist.ts';
import { GreylistAllowlist } from '../../src/defense/greylist-allowlist.ts';

const MIN = 60_000;
const DAY = 86_400_000;
const log = pino({ level: 'silent' });

export interface GreylistBackend {
  /** Another opener of the same storage. */
  node(): Promise<GreylistStorage>;
  close(): Promise<void>;
}

export function greylistContract(name: string, fresh: () => Promise<GreylistBackend>): void {
  describe(`${name}: greylisting with a controllable clock`, () => {
    let now = Date.UTC(2026, 0, 1);
    const greylist = (
      storage: GreylistStorage,
      o: { allowlist?: string; exempt?: (ip: string) => boolean; enabled?: boolean } = {},
    ) =>
      new Greylist(
        {
          enabled: o.enabled ?? true,
          delayMs: 5 * MIN,
          retryWindowMs: 2 * DAY,
          maxAgeMs: 35 * DAY,
          autoAllowAfter: 5,
          allowlist: new GreylistAllowlist({ file: '', warn: () => {}, shipped: o.allowlist ?? '' }),
          exempt: o.exempt ?? (() => false),
          log,
          now: () => now,
        },
        storage,
      );
    /** A test on fresh storage with one greylister (more through `another`). */
    const on =
      (
        o: Parameters<typeof greylist>[1],
        fn: (g: Greylist, another: () => Promise<Greylist>) => Promise<void>,
      ): (() => Promise<void>) =>
      async () => {
        const b = await fresh();
        const all: Greylist[] = [];
        const another = async () => {
          const g = greylist(await b.node(), o);
          all.push(g);
          return g;
        };
        try {
          await fn(await another(), another);
        } finally {
          for (const g of all) await g.close();
          await b.close();
        }
      };
    const t = (ip = '203.0.113.5', sender = 'alice@sender.example', recipient = 'bob@here.example') => ({
      ip,
      sender,
      recipient,
      hostname: null,
    });

    test(
      'first attempt deferred, retry before the delay deferred, after the delay accepted',
      on({}, async (g) => {
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
      }),
    );

    test(
      'a first attempt not retried within the retry window starts over',
      on({}, async (g) => {
        assert.equal((await g.check(t())).kind, 'defer');
        now += 2 * DAY + MIN;
        assert.deepEqual(await g.check(t()), { kind: 'defer', retryInSeconds: 300 });
        now += 5 * MIN;
        assert.equal((await g.check(t())).kind, 'pass');
      }),
    );

    test(
      'a triplet unseen for max_age is forgotten; the sweep deletes expired rows',
      on({}, async (g) => {
        await g.check(t());
        now += 5 * MIN;
        assert.equal((await g.check(t())).kind, 'pass');
        now += 35 * DAY + MIN;
        assert.equal((await g.check(t())).kind, 'defer');
        assert.equal((await g.list()).length, 1);
        now += 36 * DAY;
        assert.equal((await g.sweep()) >= 1, true);
        assert.equal((await g.list()).length, 0);
      }),
    );

    test(
      'a client network that passed 5 times is allowed as a whole',
      on({}, async (g, another) => {
        for (let i = 0; i < 5; i++) {
          const rcpt = `user${i}@here.example`;
          assert.equal((await g.check(t('198.51.100.1', 's@x.example', rcpt))).kind, 'defer');
          now += 5 * MIN;
          assert.equal((await g.check(t('198.51.100.1', 's@x.example', rcpt))).kind, 'pass');
        }
        // A new triplet from that network: no delay, on this node and on another.
        assert.deepEqual(await g.check(t('198.51.100.200', 'new@y.example', 'z@here.example')), { kind: 'pass' });
        const h = await another();
        assert.deepEqual(await h.check(t('198.51.100.201', 'new2@y.example', 'z@here.example')), { kind: 'pass' });
        // Passes within a minute count once: one message to many recipients is one pass.
        for (let i = 0; i < 6; i++) await h.check(t('192.0.2.1', 's@x.example', `r${i}@here.example`));
        now += 5 * MIN;
        for (let i = 0; i < 6; i++)
          assert.equal((await h.check(t('192.0.2.1', 's@x.example', `r${i}@here.example`))).kind, 'pass');
        assert.equal((await h.check(t('192.0.2.1', 'other@x.example', 'q@here.example'))).kind, 'defer');
      }),
    );

    test(
      'allowlisted host names and addresses are never greylisted; exempt clients neither',
      on(
        {
          allowlist: 'google.com\n/^mx\\d+\\.example\\.net$/\n192.0.2.0/25\n10.1\n',
          exempt: (ip) => ip === '203.0.113.99',
        },
        async (g) => {
          assert.equal((await g.check({ ...t(), hostname: 'mail-a1.google.com' })).kind, 'pass');
          assert.equal((await g.check({ ...t(), hostname: 'evilgoogle.com' })).kind, 'defer');
          assert.equal((await g.check({ ...t(), hostname: 'mx12.example.net' })).kind, 'pass');
          assert.equal((await g.check(t('192.0.2.100'))).kind, 'pass');
          assert.equal((await g.check(t('192.0.2.200'))).kind, 'defer');
          assert.equal((await g.check(t('10.1.200.3'))).kind, 'pass');
          assert.equal((await g.check(t('203.0.113.99'))).kind, 'pass');
        },
      ),
    );

    test(
      'off in the configuration: everything passes unless forced (rspamd asked)',
      on({ enabled: false }, async (g) => {
        assert.equal((await g.check(t())).kind, 'pass');
        assert.equal((await g.check(t(), { force: true })).kind, 'defer');
      }),
    );

    test(
      'a triplet deferred by one opener (thread, node) passes on another after the delay; clear forgets',
      on({}, async (a, another) => {
        const b = await another();
        assert.equal((await a.check(t())).kind, 'defer');
        now += 2 * MIN;
        assert.deepEqual(await b.check(t()), { kind: 'defer', retryInSeconds: 180 });
        now += 3 * MIN;
        assert.equal((await b.check(t())).kind, 'pass');
        assert.deepEqual(
          (await a.list()).map((e) => [e.net, e.sender, e.recipient, e.passed]),
          [['203.0.113.0/24', 'alice@sender.example', 'bob@here.example', true]],
        );
        assert.equal(await b.clear(), 2, 'the triplet and its client network');
        assert.equal((await a.check(t())).kind, 'defer');
      }),
    );

    test(
      'many checks of one triplet at once from two openers: every one answers, one row',
      on({}, async (a, another) => {
        const b = await another();
        const answers = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).check(t())));
        assert.ok(answers.every((x) => x.kind === 'defer'));
        assert.equal((await a.list()).length, 1);
        now += 5 * MIN;
        const later = await Promise.all(Array.from({ length: 20 }, (_, i) => (i % 2 ? a : b).check(t())));
        assert.ok(later.every((x) => x.kind === 'pass'));
      }),
    );
  });
}
