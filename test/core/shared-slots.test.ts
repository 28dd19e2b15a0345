// SharedSlots (core/shared-slots.ts): the per-client and total connection limits shared by the
// inbound SMTP threads. Checked against ConnectionCounter (the one-thread reference) on random
// sequences, and with real worker threads admitting and releasing at the same time.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Worker } from 'node:worker_threads';
import fc from 'fast-check';
import { ConnectionCounter } from '../../src/core/connection-limits.ts';
import { SharedSlots } from '../../src/core/shared-slots.ts';

test('per-client and total limits, IPv6 counted per /64, IPv4-mapped as IPv4', () => {
  const s = SharedSlots.create(2, 5);
  assert.equal(s.admit('192.0.2.1'), null);
  assert.equal(s.admit('::ffff:192.0.2.1'), null);
  assert.equal(s.admit('192.0.2.1'), 'per-ip');
  assert.equal(s.admit('2001:db8:1:2::1'), null);
  assert.equal(s.admit('2001:db8:1:2:ffff::9'), null);
  assert.equal(s.admit('2001:db8:1:2::77'), 'per-ip');
  assert.equal(s.admit('198.51.100.7'), null);
  assert.equal(s.total, 5);
  assert.equal(s.admit('203.0.113.1'), 'total');
  s.release('192.0.2.1');
  assert.equal(s.count('192.0.2.1'), 1);
  assert.equal(s.admit('192.0.2.1'), null);
  assert.equal(s.total, 5);
});

test('agrees with ConnectionCounter on random admit/release sequences (tombstones, rebuilds)', () => {
  const ips = Array.from({ length: 3000 }, (_, i) => `10.${(i >> 8) & 255}.${i & 255}.1`);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(ips.length - 1)), { minLength: 1, maxLength: 4000 }), (ops) => {
      const shared = SharedSlots.create(3, 600);
      const ref = new ConnectionCounter(3, 600);
      const held = new Map<string, number>();
      for (const [add, n] of ops) {
        const ip = ips[n] as string;
        if (add) {
          const a = shared.admit(ip);
          assert.equal(a, ref.admit(ip));
          if (a === null) held.set(ip, (held.get(ip) ?? 0) + 1);
        } else if ((held.get(ip) ?? 0) > 0) {
          shared.release(ip);
          ref.release(ip);
          held.set(ip, (held.get(ip) ?? 0) - 1);
        }
        assert.equal(shared.total, ref.total);
      }
      for (const [ip, n] of held) assert.equal(shared.count(ip), n);
    }),
    { numRuns: 40 },
  );
});

test('four threads admitting and releasing at once never lose or invent a connection', async () => {
  const slots = SharedSlots.create(1_000_000, 50_000);
  // The worker imports the real module (TypeScript through Node's type stripping).
  const url = new URL('../../src/core/shared-slots.ts', import.meta.url).href;
  const body = `
    import { workerData, parentPort } from 'node:worker_threads';
    const { SharedSlots } = await import(${JSON.stringify(url)});
    const slots = new SharedSlots(workerData.init);
    const ips = workerData.ips;
    for (let r = 0; r < workerData.rounds; r++) {
      for (const ip of ips) if (slots.admit(ip) !== null) throw new Error('refused');
      for (const ip of ips) slots.release(ip);
      for (const ip of ips) if (slots.admit(ip) !== null) throw new Error('refused');
    }
    parentPort.postMessage('done');
  `;
  const ips = Array.from({ length: 200 }, (_, i) => (i % 2 ? `2001:db8:${i}::1` : `192.0.2.${i}`));
  const workers = Array.from(
    { length: 4 },
    () =>
      new Worker(new URL(`data:text/javascript,${encodeURIComponent(body)}`), {
        workerData: { init: slots.init, ips, rounds: 50 },
      }),
  );
  await Promise.all(
    workers.map(
      (w) =>
        new Promise<void>((resolve, reject) => {
          w.on('message', (m) => m === 'done' && resolve());
          w.on('error', reject);
        }),
    ),
  );
  await Promise.all(workers.map((w) => w.terminate()));
  // Each thread ends holding `rounds` connections per address.
  assert.equal(slots.total, 4 * 50 * ips.length);
  for (const ip of ips) assert.equal(slots.count(ip), 4 * 50);
});

test('many distinct clients coming and going: freed slots are reused and the table rebuilt', () => {
  const s = SharedSlots.create(2, 100); // 1024 slots; 20,000 distinct keys pass through them
  const kept: string[] = [];
  for (let i = 0; i < 20_000; i++) {
    const ip = `10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}`;
    assert.equal(s.admit(ip), null);
    if (i % 50 === 0 && kept.length < 99) kept.push(ip);
    else s.release(ip);
  }
  assert.equal(s.total, 99);
  for (const ip of kept) assert.equal(s.count(ip), 1);
  for (const ip of kept) s.release(ip);
  assert.equal(s.total, 0);
});

test('slowed clients are remembered across threads by client key, and forgotten when expired', () => {
  const a = SharedSlots.create(20, 100);
  const b = new SharedSlots(a.init); // another thread's view of the same memory
  const until = Date.now() + 600_000;
  a.remember('192.0.2.9', until);
  a.remember('2001:db8:5:6::1', until);
  assert.ok(Math.abs(b.slowedUntil('192.0.2.9') - until) < 1000);
  assert.ok(b.slowedUntil('2001:db8:5:6:ffff::2') > Date.now()); // same /64
  assert.equal(b.slowedUntil('192.0.2.10'), 0);
  a.remember('192.0.2.9', Date.now() - 1000);
  assert.ok(b.slowedUntil('192.0.2.9') < Date.now());
});

test('wider client networks with limits of their own (/26, /21; IPv6 /56): counted and released', () => {
  const nets = [
    { v4: 26, v6: 56, max: 3 },
    { v4: 21, v6: 48, max: 4 },
  ];
  for (const s of [SharedSlots.create(2, 100, nets), new ConnectionCounter(2, 100, nets)]) {
    assert.equal(s.admit('192.0.2.1'), null);
    assert.equal(s.admit('192.0.2.2'), null);
    assert.equal(s.admit('192.0.2.3'), null);
    // Fourth in the /26: refused, nothing counted for it.
    assert.equal(s.admit('192.0.2.4'), 'per-network');
    // Another /26 of the same /21: the /21's fourth.
    assert.equal(s.admit('192.0.2.200'), null);
    assert.equal(s.admit('192.0.3.1'), 'per-network');
    assert.equal(s.admit('198.51.100.1'), null);
    s.release('192.0.2.1');
    assert.equal(s.admit('192.0.2.9'), null);
    assert.equal(s.admit('2001:db8:1:100::1'), null);
    assert.equal(s.admit('2001:db8:1:1ff::1'), null);
    assert.equal(s.admit('2001:db8:1:1aa::1'), null);
    assert.equal(s.admit('2001:db8:1:1bb::1'), 'per-network');
  }
});

test('with network limits, SharedSlots agrees with ConnectionCounter on random sequences', () => {
  const nets = [
    { v4: 26, v6: 56, max: 5 },
    { v4: 21, v6: 48, max: 9 },
  ];
  const ips = Array.from({ length: 600 }, (_, i) => `10.0.${(i >> 6) & 255}.${(i * 7) & 255}`);
  fc.assert(
    fc.property(fc.array(fc.tuple(fc.boolean(), fc.nat(ips.length - 1)), { minLength: 1, maxLength: 2000 }), (ops) => {
      const shared = SharedSlots.create(2, 200, nets);
      const ref = new ConnectionCounter(2, 200, nets);
      const held = new Map<string, number>();
      for (const [add, n] of ops) {
        const ip = ips[n] as string;
        if (add) {
          const a = shared.admit(ip);
          assert.equal(a, ref.admit(ip));
          if (a === null) held.set(ip, (held.get(ip) ?? 0) + 1);
        } else if ((held.get(ip) ?? 0) > 0) {
          shared.release(ip);
          ref.release(ip);
          held.set(ip, (held.get(ip) ?? 0) - 1);
        }
      }
      assert.equal(shared.total, ref.total);
    }),
    { numRuns: 30 },
  );
});
