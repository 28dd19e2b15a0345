// advanceRotations (admin/dkim-rotation.ts), the periodic step of a DKIM rotation, on a real key
// store: a pending key is activated only when the look-up says its record is there (not when it
// is absent, other, or the look-up failed), an operator's activation in the same instant is no
// error, and retired keys go when their grace ends. The look-up itself over real DNS:
// test/hygiene/dkim-rotation.test.ts.

import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { advanceRotations, type RotationDeps, rotateDkim } from '../../src/admin/dkim-rotation.ts';
import { DkimKeyStore, dkimRecordName } from '../../src/hygiene/dkim-keys.ts';

test('advanceRotations: activation only once published, grace, a concurrent activation', async () => {
  const dkim = new DkimKeyStore(await mkdtemp(join(tmpdir(), 'arcline-rot-')));
  await dkim.generate('a.test', { selector: 'old', algorithm: 'ed25519' });
  let answer: boolean | null = null;
  const asked: string[] = [];
  const deps: RotationDeps = {
    dkim,
    defaults: { selector: 'arcline', algorithm: 'rsa' },
    published: async (name) => {
      asked.push(name);
      return answer;
    },
  };
  const t = new Date('2026-12-07T00:00:00Z');
  const [key] = await rotateDkim(deps, 'a.test', { graceMs: 60_000 }, t);
  assert.equal(key?.selector, 'arcline-20261207');
  assert.equal(key.algorithm, 'ed25519', 'the algorithm that signs now, not the default');
  for (const a of [null, false]) {
    answer = a;
    assert.deepEqual(await advanceRotations(deps, ['a.test'], t), { activated: [], expired: [] });
  }
  assert.deepEqual(asked, [dkimRecordName(key), dkimRecordName(key)]);
  answer = true;
  const round = await advanceRotations(deps, ['a.test'], t);
  assert.deepEqual(
    round.activated.map((k) => k.selector),
    [key.selector],
  );
  assert.deepEqual(
    (await dkim.keys('a.test')).map((k) => k.selector),
    [key.selector],
  );
  assert.deepEqual(await advanceRotations(deps, ['a.test'], new Date(t.getTime() + 59_999)), {
    activated: [],
    expired: [],
  });
  const later = await advanceRotations(deps, ['a.test'], new Date(t.getTime() + 60_000));
  assert.deepEqual(
    later.expired.map((k) => [k.selector, k.gone]),
    [['old', true]],
  );

  // The operator activates the key between the look-up and the activation: no error.
  const [next] = await rotateDkim(deps, 'a.test', {}, new Date(t.getTime() + 86_400_000));
  assert.ok(next);
  const racing: RotationDeps = {
    ...deps,
    published: async () => {
      await dkim.activate('a.test', next.selector);
      return true;
    },
  };
  assert.deepEqual((await advanceRotations(racing, ['a.test'])).activated, []);
  assert.equal((await dkim.keys('a.test'))[0]?.selector, next.selector);
});
