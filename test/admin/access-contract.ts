// The AdminAccess contract (admin/access.ts): tokens, login sessions and the audit log behave
// the same on SQLite ({state}/admin.db) and PostgreSQL (admin/access-pg.ts). Drawn from what the
// API tests rely on (test/api/api.test.ts, limits.test.ts): a token verifies, a wrong or expired
// one does not, a password change ends the user's sessions only, the audit log pages and filters.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AdminAccess } from '../../src/admin/access.ts';
import { isArclineError } from '../../src/core/errors.ts';

export function runAccessContract(
  name: string,
  open: () => Promise<{ access: AdminAccess; other: () => Promise<AdminAccess> }>,
) {
  describe(`${name}: admin access contract`, () => {
    test('tokens: verify, wrong secret, malformed, delete; list shows API tokens only', async () => {
      const { access, other } = await open();
      const a = await access.create({ role: { kind: 'admin' }, name: ' ops ' });
      assert.match(a.token, /^arc_[0-9a-f]{16}_[0-9a-f]{64}$/);
      assert.equal(a.expires, null);
      const info = await access.verify(a.token);
      assert.deepEqual(info && [info.id, info.name, info.role, info.kind, info.expires], [
        a.id,
        'ops',
        { kind: 'admin' },
        'api',
        null,
      ]);
      const wrong = `${a.token.slice(0, -1)}${a.token.endsWith('0') ? '1' : '0'}`;
      assert.equal(await access.verify(wrong), null);
      for (const bad of ['', 'arc_', 'Bearer x', `${a.token}x`]) assert.equal(await access.verify(bad), null);
      await assert.rejects(access.create({ role: { kind: 'admin' }, name: 'a\u0007b' }), (e) =>
        isArclineError(e, 'INVALID'),
      );
      const d = await access.create({ role: { kind: 'domain', domain: 'example.test' } });
      const s = await access.create({ role: { kind: 'user', user: 'a@example.test' }, kind: 'session', ttlMs: 60_000 });
      assert.ok(s.expires && s.expires.getTime() > Date.now());
      assert.equal(await access.isSession(s.id), true);
      assert.equal(await access.isSession(a.id), false);
      assert.deepEqual((await access.list()).map((t) => t.id).sort(), [a.id, d.id].sort());
      // Another handle (another node, the CLI) sees the same tokens.
      const b = await other();
      assert.equal((await b.verify(d.token))?.role.kind, 'domain');
      assert.equal(await b.delete(d.id), true);
      assert.equal(await b.delete(d.id), false);
      assert.equal(await access.verify(d.token), null, 'revoked on one handle: refused on the other');
      // The last use is recorded (coarsely).
      assert.ok((await access.list()).find((t) => t.id === a.id)?.lastUsed instanceof Date);
      b.close();
      access.close();
    });

    test("sessions: expiry; revokeSessions ends a user's sessions, not its API tokens", async () => {
      const { access } = await open();
      const user = { kind: 'user', user: 'bob@example.test' } as const;
      const s1 = await access.create({ role: user, kind: 'session', ttlMs: 60_000 });
      const s2 = await access.create({ role: user, kind: 'session', ttlMs: 60_000 });
      const other = await access.create({
        role: { kind: 'user', user: 'carol@example.test' },
        kind: 'session',
        ttlMs: 60_000,
      });
      const api = await access.create({ role: user, name: 'script' });
      const gone = await access.create({ role: user, kind: 'session', ttlMs: 1 });
      // Expired once its time has passed (awaited, not slept through blindly).
      while (Date.now() <= (gone.expires as Date).getTime()) await new Promise((r) => setImmediate(r));
      assert.equal(await access.verify(gone.token), null, 'expired');
      assert.equal(await access.revokeSessions('bob@example.test'), 3);
      assert.equal(await access.verify(s1.token), null);
      assert.equal(await access.verify(s2.token), null);
      assert.ok(await access.verify(other.token));
      assert.ok(await access.verify(api.token), 'an API token made for the user stays');
      access.close();
    });

    test('audit log: newest first, paged by seq, filtered case-insensitively', async () => {
      const { access } = await open();
      for (let i = 0; i < 5; i++) {
        await access.audit({
          actor: i % 2 ? 'cli' : 'Token-X',
          role: 'admin',
          from: '127.0.0.1',
          action: `user add`,
          target: `u${i}@example.test`,
          result: '201',
        });
      }
      const all = await access.auditLog({ limit: 10 });
      assert.deepEqual(
        all.map((e) => e.target),
        ['u4@example.test', 'u3@example.test', 'u2@example.test', 'u1@example.test', 'u0@example.test'],
      );
      assert.ok(all[0] && all[0].time instanceof Date && all[0].from === '127.0.0.1');
      const page1 = await access.auditLog({ limit: 2 });
      const page2 = await access.auditLog({ limit: 2, before: page1[1]?.seq as number });
      assert.deepEqual(
        [...page1, ...page2].map((e) => e.target),
        all.slice(0, 4).map((e) => e.target),
      );
      assert.deepEqual(
        (await access.auditLog({ limit: 10, q: 'token-x' })).map((e) => e.target),
        ['u4@example.test', 'u2@example.test', 'u0@example.test'],
      );
      assert.deepEqual(await access.auditLog({ limit: 10, q: 'nothing like it' }), []);
      access.close();
    });
  });
}
