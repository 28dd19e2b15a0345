// Rate limits (src/defense/rate-limits.ts) with a controllable clock: node:test's mock timers
// move Date and the timers rate-limiter-flexible's memory store uses.

import assert from 'node:assert/strict';
import { afterEach, beforeEach, describe, mock, test } from 'node:test';
import { configSchema } from '../../src/config/schema.ts';
import { registry } from '../../src/core/metrics.ts';
import { RateLimits } from '../../src/defense/rate-limits.ts';

const cfg = (o: Record<string, unknown>) => configSchema.parse({ rate_limits: o }).rate_limits;

async function metric(limit: string): Promise<number> {
  const m = await registry.getSingleMetric('arcline_rate_limited_total')?.get();
  return m?.values.find((v) => v.labels.limit === limit)?.value ?? 0;
}

describe('rate limits', () => {
  beforeEach(() => mock.timers.enable({ apis: ['Date', 'setTimeout'], now: Date.UTC(2026, 0, 1) }));
  afterEach(() => mock.timers.reset());

  test('connections per minute at three prefix lengths; the window ends after a minute', async () => {
    const r = new RateLimits(cfg({ connections_per_minute: [2, 3, 4] }), { exempt: () => false });
    assert.equal(await r.connection('192.0.2.1'), null);
    assert.equal(await r.connection('192.0.2.1'), null);
    const before = await metric('connections_1');
    assert.equal(await r.connection('192.0.2.1'), 'connections_1');
    assert.equal(await metric('connections_1'), before + 1);
    // A neighbour in the /26: its own /32 is fresh, the /26 is at 3 now (the refused attempt
    // counted too) -> over.
    assert.equal(await r.connection('192.0.2.2'), 'connections_2');
    // Another /26 of the same /21: only the /21 counts (5 > 4).
    assert.equal(await r.connection('192.0.2.70'), 'connections_3');
    // Another /21: fresh.
    assert.equal(await r.connection('192.0.10.1'), null);
    mock.timers.tick(60_001);
    assert.equal(await r.connection('192.0.2.1'), null);
  });

  test('IPv6 clients count per /64, /56, /48', async () => {
    const r = new RateLimits(cfg({ connections_per_minute: [1, 100, 100] }), { exempt: () => false });
    assert.equal(await r.connection('2001:db8:1:1::1'), null);
    assert.equal(await r.connection('2001:db8:1:1::2'), 'connections_1');
    assert.equal(await r.connection('2001:db8:1:2::1'), null);
  });

  test('trusted clients are never limited; 0 turns a limit off; enabled = false all', async () => {
    const r = new RateLimits(cfg({ connections_per_minute: [1, 0, 0] }), { exempt: (ip) => ip === '10.0.0.1' });
    for (let i = 0; i < 5; i++) assert.equal(await r.connection('10.0.0.1'), null);
    assert.equal(await r.connection('10.0.0.2'), null);
    assert.equal(await r.connection('10.0.0.2'), 'connections_1');
    const off = new RateLimits(cfg({ enabled: false, connections_per_minute: [1, 1, 1] }), { exempt: () => false });
    for (let i = 0; i < 3; i++) assert.equal(await off.connection('10.0.0.3'), null);
  });

  test('messages and recipients per user per hour and per day', async () => {
    const r = new RateLimits(
      cfg({ messages_per_hour: 2, messages_per_day: 3, recipients_per_hour: 3, recipients_per_day: 100 }),
      { exempt: () => false },
    );
    assert.equal(await r.message('alice', '192.0.2.1'), null);
    assert.equal(await r.message('alice', '192.0.2.1'), null);
    assert.equal(await r.message('alice', '192.0.2.1'), 'messages_hour');
    assert.equal(await r.message('bob', '192.0.2.1'), null);
    mock.timers.tick(3_600_001);
    // The hour is over, the day is not (3 counted already: the refused one too).
    assert.equal(await r.message('alice', '192.0.2.1'), 'messages_day');
    for (let i = 0; i < 3; i++) assert.equal(await r.recipient('alice', '192.0.2.1'), null);
    assert.equal(await r.recipient('alice', '192.0.2.1'), 'recipients_hour');
    mock.timers.tick(86_400_001);
    assert.equal(await r.message('alice', '192.0.2.1'), null);
  });

  test('outbound per destination per minute: the wait until the window ends', async () => {
    const r = new RateLimits(cfg({ outbound_per_domain_per_minute: 2 }), { exempt: () => false });
    assert.equal(await r.outbound('example.com'), 0);
    assert.equal(await r.outbound('Example.com'), 0);
    mock.timers.tick(20_000);
    const wait = await r.outbound('example.com');
    assert.ok(wait > 39_000 && wait <= 40_000, String(wait));
    assert.equal(await r.outbound('example.net'), 0);
    mock.timers.tick(40_001);
    assert.equal(await r.outbound('example.com'), 0);
  });
});
