// The DkimKeys contract (hygiene/dkim-keys.ts): files under {state}/dkim/ and PostgreSQL
// (dkim-keys-pg.ts) keep, rotate and retire keys the same way.

import assert from 'node:assert/strict';
import { createPrivateKey } from 'node:crypto';
import { describe, test } from 'node:test';
import { isArclineError } from '../../src/core/errors.ts';
import type { DkimKeys } from '../../src/hygiene/dkim-keys.ts';

const code = (c: string) => (e: unknown) => isArclineError(e) && e.code === c;

/** `other()`: a second handle on the same keys (the CLI, another node). `fresh(h)`: resolves
 *  once h's cached keys() may be trusted to show the others' changes. */
export function runDkimContract(
  name: string,
  open: () => Promise<{ keys: DkimKeys; other: () => Promise<DkimKeys>; fresh: (h: DkimKeys) => Promise<void> }>,
) {
  describe(`${name}: DKIM keys contract`, () => {
    test('generate, list in order, never two keys for a selector, remove', async () => {
      const { keys } = await open();
      const e = await keys.generate('example.org', { selector: 'B1', algorithm: 'ed25519' });
      const r = await keys.generate('example.org', { selector: 'a1', algorithm: 'rsa' });
      assert.equal(e.selector, 'b1');
      assert.equal(createPrivateKey(r.privateKeyPem).asymmetricKeyDetails?.modulusLength, 2048);
      assert.equal(createPrivateKey(e.privateKeyPem).asymmetricKeyType, 'ed25519');
      assert.deepEqual(
        (await keys.keys('example.org')).map((k) => [k.selector, k.algorithm]),
        [
          ['a1', 'rsa'],
          ['b1', 'ed25519'],
        ],
      );
      assert.equal((await keys.keys('example.org'))[1]?.privateKeyPem, e.privateKeyPem);
      await assert.rejects(keys.generate('example.org', { selector: 'a1', algorithm: 'ed25519' }), code('EXISTS'));
      await assert.rejects(
        keys.generate('example.org', { selector: 'a1', algorithm: 'rsa', pending: true }),
        code('EXISTS'),
      );
      for (const bad of ['', '-x', 'a_b', 'x'.repeat(64)])
        await assert.rejects(keys.generate('example.org', { selector: bad, algorithm: 'rsa' }), code('INVALID'));
      await assert.rejects(keys.generate('../etc', { selector: 's', algorithm: 'rsa' }), code('INVALID'));
      await assert.rejects(keys.generate('example.org', { selector: 's', algorithm: 'dsa' as never }), code('INVALID'));
      assert.deepEqual(await keys.keys('other.org'), []);
      await keys.remove('example.org', 'A1');
      await assert.rejects(keys.remove('example.org', 'a1'), code('NOT_FOUND'));
      assert.deepEqual(
        (await keys.keys('example.org')).map((k) => k.selector),
        ['b1'],
      );
    });

    test('concurrent generate of one selector: one key, the other told EXISTS', async () => {
      const { keys, other } = await open();
      const b = await other();
      const r = await Promise.allSettled([
        keys.generate('race.org', { selector: 's', algorithm: 'ed25519' }),
        b.generate('race.org', { selector: 's', algorithm: 'ed25519' }),
      ]);
      assert.deepEqual(r.map((x) => x.status).sort(), ['fulfilled', 'rejected']);
      const won = r.find((x) => x.status === 'fulfilled') as PromiseFulfilledResult<{ privateKeyPem: string }>;
      assert.deepEqual(
        (await keys.keys('race.org')).map((k) => k.privateKeyPem),
        [won.value.privateKeyPem],
      );
    });

    test('rotation: pending keys do not sign until activated; the old key of that algorithm retires', async () => {
      const { keys } = await open();
      await keys.generate('rot.org', { selector: 'old', algorithm: 'rsa' });
      await keys.generate('rot.org', { selector: 'ed', algorithm: 'ed25519' });
      await keys.generate('rot.org', { selector: 'new', algorithm: 'rsa', pending: true });
      assert.deepEqual(
        (await keys.pendingKeys('rot.org')).map((k) => k.selector),
        ['new'],
      );
      assert.deepEqual(
        (await keys.keys('rot.org')).map((k) => k.selector),
        ['ed', 'old'],
      );
      await assert.rejects(keys.activate('rot.org', 'nope'), code('NOT_FOUND'));
      assert.ok(await keys.activate('rot.org', 'new'), 'the old rsa key was retired');
      assert.deepEqual(
        (await keys.keys('rot.org')).map((k) => k.selector),
        ['ed', 'new'],
      );
      assert.deepEqual(await keys.pendingKeys('rot.org'), []);
      // A retired selector may name a new key later (the files: it was moved aside).
      await keys.generate('rot.org', { selector: 'later', algorithm: 'ed25519', pending: true });
      assert.ok(await keys.activate('rot.org', 'later'), 'ed retired');
      assert.deepEqual(
        (await keys.keys('rot.org')).map((k) => [k.selector, k.algorithm]),
        [
          ['later', 'ed25519'],
          ['new', 'rsa'],
        ],
      );
      await keys.generate('rot.org', { selector: 'ed', algorithm: 'ed25519', pending: true });
      assert.ok(await keys.activate('rot.org', 'ed'), 'a retired selector names a new key');
    });

    test('rotation grace: the retired key is listed until its grace ends, then gone (its record may go)', async () => {
      const { keys, other } = await open();
      const t = new Date('2026-12-07T10:00:00Z');
      await keys.generate('grace.org', { selector: 'old', algorithm: 'rsa' });
      await keys.generate('grace.org', { selector: 'def', algorithm: 'ed25519' });
      await keys.generate('grace.org', { selector: 'new', algorithm: 'rsa', pending: true, graceMs: 3_600_000 });
      await assert.rejects(
        keys.generate('grace.org', { selector: 'bad', algorithm: 'rsa', pending: true, graceMs: -1 }),
        code('INVALID'),
      );
      assert.deepEqual(await keys.retiredKeys('grace.org'), []);
      assert.ok(await keys.activate('grace.org', 'new', t));
      const view = async () =>
        (await keys.retiredKeys('grace.org')).map((k) => [k.selector, k.algorithm, k.removableAt.getTime(), k.gone]);
      assert.deepEqual(await view(), [['old', 'rsa', t.getTime() + 3_600_000, false]]);
      // Another handle (the periodic task on another node) sees the same.
      assert.equal((await (await other()).retiredKeys('grace.org')).length, 1);
      assert.deepEqual(await keys.expireRetired('grace.org', new Date(t.getTime() + 3_599_999)), []);
      const gone = await keys.expireRetired('grace.org', new Date(t.getTime() + 3_600_000));
      assert.deepEqual(
        gone.map((k) => [k.selector, k.gone]),
        [['old', true]],
      );
      assert.deepEqual(
        (await keys.retiredKeys('grace.org')).map((k) => [k.selector, k.gone]),
        [['old', true]],
      );
      assert.deepEqual(await keys.expireRetired('grace.org', new Date(t.getTime() + 9e9)), [], 'once');
      // Without a grace of its own, a rotation keeps the old record 7 days (DEFAULT_GRACE_MS).
      await keys.generate('grace.org', { selector: 'ed2', algorithm: 'ed25519', pending: true });
      await keys.activate('grace.org', 'ed2', t);
      assert.deepEqual(
        (await keys.retiredKeys('grace.org')).map((k) => [k.selector, k.gone, k.gone ? 0 : k.removableAt.getTime()]),
        [
          ['def', false, t.getTime() + 7 * 86_400_000],
          ['old', true, 0],
        ],
      );
      // A selector in use again names the new key's record: never "may be removed".
      await keys.generate('grace.org', { selector: 'old', algorithm: 'rsa', pending: true });
      const selectors = (list: readonly { selector: string }[]) => list.map((k) => k.selector).join(' ');
      assert.equal(selectors(await keys.retiredKeys('grace.org')), 'def');
      assert.equal(selectors(await keys.keys('grace.org')), 'ed2 new');
    });

    test("retire: a deleted domain's keys never sign again; a new domain of that name starts empty", async () => {
      const { keys } = await open();
      assert.equal(await keys.retire('gone.org'), null, 'nothing to retire');
      const k = await keys.generate('gone.org', { selector: 's1', algorithm: 'ed25519' });
      await keys.generate('gone.org', { selector: 's2', algorithm: 'ed25519', pending: true });
      assert.ok(await keys.retire('gone.org'));
      assert.deepEqual(await keys.keys('gone.org'), []);
      assert.deepEqual(await keys.pendingKeys('gone.org'), []);
      const again = await keys.generate('gone.org', { selector: 's1', algorithm: 'ed25519' });
      assert.notEqual(again.privateKeyPem, k.privateKeyPem);
    });

    test('another handle (the CLI, another node) adds and removes keys: seen here', async () => {
      const { keys, other, fresh } = await open();
      assert.deepEqual(await keys.keys('shared.org'), []); // cached empty
      const b = await other();
      const made = await b.generate('shared.org', { selector: 'n1', algorithm: 'ed25519' });
      await fresh(keys);
      assert.deepEqual(
        (await keys.keys('shared.org')).map((k) => k.privateKeyPem),
        [made.privateKeyPem],
        'both sign with the same key',
      );
      await b.remove('shared.org', 'n1');
      await fresh(keys);
      assert.deepEqual(await keys.keys('shared.org'), []);
    });
  });
}
