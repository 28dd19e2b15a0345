// The JmapState contract (src/jmapstate/types.ts): objects per account and type, one state per
// type that every change moves, and the change log /changes folds.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import type { JmapState } from '../../src/jmapstate/types.ts';

const A = 'alice@example.test' as AccountId;
const B = 'bob@example.test' as AccountId;

export function jmapStateContract(name: string, open: () => Promise<{ state: JmapState; close(): Promise<void> }>) {
  test(`${name}: objects, states and changes per account and type`, async () => {
    const { state: s, close } = await open();
    try {
      assert.equal(await s.state(A, 'Identity'), '0');
      assert.deepEqual(await s.changesSince(A, 'Identity', '0'), []);
      const s1 = await s.put(A, 'Identity', 'i1', { id: 'i1', name: 'One' });
      const s2 = await s.put(A, 'Identity', 'i2', { id: 'i2', name: 'Two' });
      const s3 = await s.put(A, 'Identity', 'i1', { id: 'i1', name: 'Uno' });
      assert.ok(Number(s1) < Number(s2) && Number(s2) < Number(s3));
      assert.equal(await s.state(A, 'Identity'), s3);
      // Other types and accounts are apart.
      assert.equal(await s.state(A, 'EmailSubmission'), '0');
      assert.deepEqual(await s.list(B, 'Identity'), []);
      assert.deepEqual(await s.get(A, 'Identity', 'i1'), { id: 'i1', name: 'Uno' });
      assert.deepEqual(
        (await s.list(A, 'Identity')).map((o) => o.id),
        ['i1', 'i2'],
      );
      const s4 = await s.destroy(A, 'Identity', 'i2');
      assert.equal(await s.destroy(A, 'Identity', 'i2'), s4); // nothing more to destroy
      assert.equal(await s.get(A, 'Identity', 'i2'), null);
      assert.deepEqual(await s.changesSince(A, 'Identity', s1), [
        { state: s2, id: 'i2', kind: 'created' },
        { state: s3, id: 'i1', kind: 'updated' },
        { state: s4, id: 'i2', kind: 'destroyed' },
      ]);
      assert.deepEqual(await s.changesSince(A, 'Identity', s4), []);
      // Unknown states: not a number, in the future.
      assert.equal(await s.changesSince(A, 'Identity', 'x'), null);
      assert.equal(await s.changesSince(A, 'Identity', String(Number(s4) + 1)), null);
      await s.put(B, 'VacationResponse', 'singleton', { id: 'singleton' });
      await s.deleteAccount(A);
      assert.equal(await s.state(A, 'Identity'), '0');
      assert.deepEqual(await s.list(A, 'Identity'), []);
      assert.deepEqual(await s.get(B, 'VacationResponse', 'singleton'), { id: 'singleton' });
    } finally {
      await close();
    }
  });

  test(`${name}: push subscriptions kept, replaced, expired, deleted with the account`, async () => {
    const { state: s, close } = await open();
    try {
      await s.putPushSubscription({ account: A, id: 'p1', expires: 1000, data: { url: 'http://127.0.0.1/a' } });
      await s.putPushSubscription({ account: A, id: 'p2', expires: 5000, data: { url: 'http://127.0.0.1/b' } });
      await s.putPushSubscription({ account: B, id: 'p3', expires: 9000, data: { url: 'http://127.0.0.1/c' } });
      await s.putPushSubscription({ account: A, id: 'p2', expires: 6000, data: { url: 'http://127.0.0.1/b2' } });
      assert.deepEqual(
        (await s.pushSubscriptions()).map((p) => [p.account, p.id, p.expires, p.data.url]),
        [
          [A, 'p1', 1000, 'http://127.0.0.1/a'],
          [A, 'p2', 6000, 'http://127.0.0.1/b2'],
          [B, 'p3', 9000, 'http://127.0.0.1/c'],
        ],
      );
      assert.deepEqual(
        (await s.pushSubscriptions(A)).map((p) => p.id),
        ['p1', 'p2'],
      );
      assert.deepEqual(await s.deleteExpiredPushSubscriptions(1000), [{ account: A, id: 'p1' }]);
      assert.deepEqual(await s.deleteExpiredPushSubscriptions(1000), []);
      await s.deletePushSubscription(B, 'p3');
      await s.deleteAccount(A);
      assert.deepEqual(await s.pushSubscriptions(), []);
    } finally {
      await close();
    }
  });
}
