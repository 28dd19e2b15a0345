// The DkimKeys contract on files ({state}/dkim/) and on PostgreSQL, and what PostgreSQL adds:
// two nodes sign with the same keys; the private keys are readable by arcline's role only.

import assert from 'node:assert/strict';
import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { DkimKeyStore } from '../../src/hygiene/dkim-keys.ts';
import { PostgresDkimKeys } from '../../src/hygiene/dkim-keys-pg.ts';
import { asOtherRole, freshDatabaseForFile } from '../harness/postgres.ts';
import { runDkimContract } from './dkim-keys-contract.ts';

runDkimContract('files', async () => {
  const state = await mkdtemp(join(tmpdir(), 'arcline-dkimc-'));
  // Files: a change another instance made is seen at once (directory mtimes; dkim-keys.ts).
  return { keys: new DkimKeyStore(state), other: async () => new DkimKeyStore(state), fresh: async () => {} };
});

const database = freshDatabaseForFile;

runDkimContract('postgres', async () => {
  const t = await database();
  // A cache of 0 ms: this suite checks the contract; the cache has its own test below.
  return {
    keys: await PostgresDkimKeys.open(await t.open(), { cacheMs: 0 }),
    other: async () => PostgresDkimKeys.open(await t.open(), { cacheMs: 0 }),
    fresh: async () => {},
  };
});

test("postgres: a key activated on node A signs on node B once B's copy is older than its cache time", async () => {
  const t = await database();
  const a = await PostgresDkimKeys.open(await t.open());
  const b = await PostgresDkimKeys.open(await t.open(), { cacheMs: 50 });
  await a.generate('example.org', { selector: 'old', algorithm: 'ed25519' });
  assert.deepEqual(
    (await b.keys('example.org')).map((k) => k.selector),
    ['old'],
  );
  const next = await a.generate('example.org', { selector: 'new', algorithm: 'ed25519', pending: true });
  await a.activate('example.org', 'new');
  const start = performance.now();
  while ((await b.keys('example.org'))[0]?.selector !== 'new') {
    assert.ok(performance.now() - start < 2000, 'B signs with the new key');
    await new Promise((r) => setTimeout(r, 5));
  }
  assert.equal((await b.keys('example.org'))[0]?.privateKeyPem, next.privateKeyPem);
});

test('postgres: the private keys are not readable by other database roles', async () => {
  const t = await database();
  const db = await t.open();
  await PostgresDkimKeys.open(db);
  await asOtherRole(t, db, 'other', async (c) => {
    await assert.rejects(c.query('SELECT private_key_pem FROM dkim_keys'), /permission denied/);
  });
});

test('postgres: a retired key past its grace has its private key erased (state gone)', async () => {
  const t = await database();
  const db = await t.open();
  const keys = await PostgresDkimKeys.open(db, { cacheMs: 0 });
  await keys.generate('example.org', { selector: 'old', algorithm: 'ed25519' });
  await keys.generate('example.org', { selector: 'new', algorithm: 'ed25519', pending: true, graceMs: 1000 });
  await keys.activate('example.org', 'new', new Date(5000));
  const row = () =>
    db.rows<{ state: string; private_key_pem: string }>(
      "SELECT state, private_key_pem FROM dkim_keys WHERE selector = 'old'",
    );
  assert.equal((await row())[0]?.state, 'retired');
  await keys.expireRetired('example.org', new Date(6000));
  assert.deepEqual(await row(), [{ state: 'gone', private_key_pem: '' }]);
});
