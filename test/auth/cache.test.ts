// The verified-credential cache (issue #10 item 10): a reconnecting client costs no hash, and
// the cache never lets an old password in: a password changed or a user deleted through another
// connection to the database (what the CLI does, from another process) applies at once.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { CredentialCache } from '../../src/auth/cache.ts';
import type { AccountId } from '../../src/core/ids.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { PASSWORD, PROTOCOLS } from './clients.ts';

describe('verified-credential cache', () => {
  let t: TestServer;
  before(async () => {
    t = await startTestServer({
      submission: true,
      users: ['alice@example.test', 'bob@example.test', 'carol@example.test'],
      auth: 'failure_delay = "0s"\nmax_delay = "300ms"\nmax_address_delay = "300ms"',
    });
  });
  after(async () => {
    await t?.stop();
  });

  const okLines = (user: string) => t.logs.filter((l) => l.msg === 'auth ok' && l.user === user);

  test('a second login with the same password is served from the cache, on either protocol', async () => {
    for (const [, login] of PROTOCOLS) assert.ok((await login(t, 'alice@example.test', PASSWORD)).ok);
    assert.deepEqual(
      okLines('alice@example.test').map((l) => [l.service, l.cached]),
      [
        ['imap', false],
        ['submission', true],
      ],
    );
  });

  test('a wrong password is never answered from the cache', async () => {
    for (const [name, login] of PROTOCOLS) {
      assert.ok((await login(t, 'bob@example.test', PASSWORD, '127.0.0.2')).ok);
      const wrong = await login(t, 'bob@example.test', `${PASSWORD}x`, '127.0.0.2');
      assert.equal(wrong.ok, false, `${name}: ${wrong.reply}`);
    }
  });

  test('a password changed through another connection (the CLI) refuses the old one at once', async () => {
    for (const [name, login] of PROTOCOLS) {
      assert.ok((await login(t, 'carol@example.test', PASSWORD, '127.0.0.3')).ok);
      assert.ok((await login(t, 'carol@example.test', PASSWORD, '127.0.0.3')).ok, 'cached');
      await t.admin.ops.setPassword('carol@example.test', 'a new password');
      const old = await login(t, 'carol@example.test', PASSWORD, '127.0.0.3');
      assert.equal(old.ok, false, `${name}: the old password after the change: ${old.reply}`);
      assert.ok((await login(t, 'carol@example.test', 'a new password', '127.0.0.3')).ok);
      await t.admin.ops.setPassword('carol@example.test', PASSWORD);
    }
  });

  test('a deleted user is refused at once, and re-created with the same password is verified anew', async () => {
    await t.admin.ops.addUser('dora@example.test', { password: PASSWORD });
    for (const [, login] of PROTOCOLS) assert.ok((await login(t, 'dora@example.test', PASSWORD, '127.0.0.4')).ok);
    await t.admin.ops.deleteUser('dora@example.test');
    for (const [name, login] of PROTOCOLS) {
      const a = await login(t, 'dora@example.test', PASSWORD, '127.0.0.4');
      assert.equal(a.ok, false, `${name}: ${a.reply}`);
    }
    await t.admin.ops.addUser('dora@example.test', { password: PASSWORD });
    const [, imap] = PROTOCOLS[0] ?? [];
    assert.ok(imap && (await imap(t, 'dora@example.test', PASSWORD, '127.0.0.4')).ok);
    assert.equal(okLines('dora@example.test').at(-1)?.cached, false);
  });
});

test('cache unit: bounded, TTL, keyed on the stored hash; a hit costs microseconds', () => {
  let now = 0;
  const c = new CredentialCache({ size: 2, ttlMs: 1000, now: () => now });
  const [a, b, d] = ['a@x.test', 'b@x.test', 'd@x.test'] as AccountId[];
  c.put(a as AccountId, 'H1', 'pw');
  assert.equal(c.hit(a as AccountId, 'H1', 'pw'), true);
  assert.equal(c.hit(a as AccountId, 'H1', 'pW'), false, 'another secret');
  assert.equal(c.hit(a as AccountId, 'H2', 'pw'), false, 'the stored hash changed');
  assert.equal(c.hit(a as AccountId, 'H1', 'pw'), false, 'and the entry is gone');
  c.put(a as AccountId, 'H1', 'pw');
  c.put(b as AccountId, 'H1', 'pw');
  c.put(d as AccountId, 'H1', 'pw');
  assert.equal(c.size, 2);
  assert.equal(c.hit(a as AccountId, 'H1', 'pw'), false, 'least recently used went first');
  now = 1000;
  assert.equal(c.hit(b as AccountId, 'H1', 'pw'), false, 'expired');
  now = 0;
  c.put(b as AccountId, 'H1', 'pw');
  const started = performance.now();
  for (let i = 0; i < 1000; i++) c.hit(b as AccountId, 'H1', 'pw');
  const perHit = ((performance.now() - started) * 1000) / 1000;
  assert.ok(perHit < 200, `${perHit.toFixed(1)} µs per hit`);
});
