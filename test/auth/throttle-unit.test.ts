// LoginThrottle with a fake clock: the growth of delays, IPv6 per /64, forgetting, bounds.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LoginThrottle } from '../../src/auth/throttle.ts';
import type { AccountId } from '../../src/core/ids.ts';

const bob = 'bob@example.test' as AccountId;
const carol = 'carol@example.test' as AccountId;

function throttle(now: { t: number }, maxEntries?: number) {
  return new LoginThrottle({
    failureWindowMs: 15 * 60_000,
    maxPairDelayMs: 30_000,
    maxAddressDelayMs: 15_000,
    trusted: (ip) => ip === '192.0.2.99',
    now: () => now.t,
    ...(maxEntries ? { maxEntries } : {}),
  });
}

const wait = (g: ReturnType<LoginThrottle['gate']>) => (g.kind === 'go' ? g.waitMs : 'refused');

test('delays double per failure of the pair, capped; the account elsewhere is untouched', () => {
  const now = { t: 0 };
  const th = throttle(now);
  const delays: (number | string)[] = [];
  for (let i = 0; i < 8; i++) {
    const g = th.gate('192.0.2.1', bob);
    delays.push(wait(g));
    now.t += g.kind === 'go' ? g.waitMs : 0;
    th.failed('192.0.2.1', bob);
  }
  assert.deepEqual(delays, [0, 500, 1000, 2000, 4000, 8000, 16000, 30000]);
  assert.equal(wait(th.gate('192.0.2.2', bob)), 0, 'the owner from another address');
  assert.equal(wait(th.gate('192.0.2.1', carol)), 15000, 'a neighbour: the address delay, capped');
  th.succeeded('192.0.2.1', carol);
  assert.equal(wait(th.gate('192.0.2.1', carol)), 0, 'a known device skips the address delay');
});

test('IPv6 clients count per /64; IPv4-mapped addresses as IPv4; trusted clients never', () => {
  const now = { t: 0 };
  const th = throttle(now);
  for (let i = 0; i < 5; i++) th.failed(`2001:db8:1:2::${i + 1}`, bob);
  assert.ok(Number(wait(th.gate('2001:db8:1:2:ffff::9', bob))) > 0, 'same /64');
  assert.equal(wait(th.gate('2001:db8:1:3::1', bob)), 0, 'another /64');
  th.failed('::ffff:198.51.100.7', bob);
  assert.ok(Number(wait(th.gate('198.51.100.7', bob))) > 0);
  for (let i = 0; i < 20; i++) th.failed('192.0.2.99', bob);
  assert.equal(wait(th.gate('192.0.2.99', bob)), 0);
});

test('failures are forgotten after the window; memory is bounded', () => {
  const now = { t: 0 };
  const th = throttle(now, 100);
  for (let i = 0; i < 3; i++) th.failed('192.0.2.1', bob);
  now.t += 15 * 60_000 + 1;
  assert.equal(wait(th.gate('192.0.2.1', bob)), 0);
  for (let i = 0; i < 10_000; i++) th.failed(`10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`, bob);
  assert.ok(th.size <= 100, `${th.size} entries`);
});
