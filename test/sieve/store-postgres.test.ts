// The PostgreSQL Sieve store (src/sieve/postgres-store.ts) against the contract, plus what only a
// shared database has: two nodes (two pools) see each other's writes, concurrent PUTSCRIPTs
// cannot together pass the quota, and no sender address or message id is kept in clear.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { openSieveStore } from '../../src/sieve/open-store.ts';
import { PostgresSieveStore } from '../../src/sieve/postgres-store.ts';
import { isSieveStoreError } from '../../src/sieve/store-types.ts';
import { databaseForFile } from '../harness/postgres.ts';
import { sieveStoreContract } from './store-contract.ts';

const file = databaseForFile(2);
const pool = (i: number) => file.pools[i] as Postgres;

sieveStoreContract('postgres', async (quota) => {
  const store = await PostgresSieveStore.open(pool(0), quota);
  await pool(0).query('TRUNCATE sieve_script, sieve_state');
  return { scripts: store, state: store, close: async () => store.close() };
});

test('postgres: two nodes share scripts and state; concurrent puts respect the quota; keys hashed', async () => {
  const a = 'carol@example.org' as AccountId;
  const quota = { maxScripts: 3, maxScriptBytes: 100, maxStorageBytes: 1000 };
  const one = await PostgresSieveStore.open(pool(0), quota);
  const two = await openSieveStore({ stateDir: '/nonexistent', quota, db: pool(1) }); // as the server will
  await one.put(a, 's', Buffer.from('keep;\r\n'));
  await one.setActive(a, 's');
  assert.deepEqual(await two.active(a), { name: 's', content: Buffer.from('keep;\r\n') });
  const now = new Date();
  await one.vacationRecord(a, 'h', 'secret-sender@example.com', 60, now);
  await one.duplicateTrack(a, 'h', '<secret-id@example.com>', 60, now);
  assert.equal(await two.vacationRecent(a, 'h', 'Secret-Sender@example.com', 60, now), true);
  assert.equal(await two.duplicateSeen(a, 'h', '<secret-id@example.com>', 60, now), true);
  // Ten scripts at once from two nodes: exactly two more fit (3 at most), the others are refused.
  const results = await Promise.allSettled(
    Array.from({ length: 10 }, (_, i) => (i % 2 ? one : two).put(a, `n${i}`, Buffer.from('discard;'))),
  );
  assert.equal(results.filter((r) => r.status === 'fulfilled').length, 2);
  for (const r of results) {
    if (r.status === 'rejected') assert.ok(isSieveStoreError(r.reason, 'QUOTA/MAXSCRIPTS'), String(r.reason));
  }
  assert.equal((await one.list(a)).length, 3);
  const dump = JSON.stringify(await pool(0).rows('SELECT * FROM sieve_state'), (_k, v) =>
    v && typeof v === 'object' && v.type === 'Buffer' ? Buffer.from(v.data).toString('latin1') : v,
  );
  assert.ok(!dump.includes('secret'), dump);
});
