// The PostgreSQL JmapState (src/jmapstate/postgres-store.ts) against the contract, and what only
// a shared database has: two nodes writing one type of one account at once get distinct,
// increasing states, and the change log holds every one of them in order.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { openJmapState } from '../../src/jmapstate/open.ts';
import { PostgresJmapState } from '../../src/jmapstate/postgres-store.ts';
import { databaseForFile } from '../harness/postgres.ts';
import { jmapStateContract } from './contract.ts';

const file = databaseForFile(2);
const pool = (i: number) => file.pools[i] as Postgres;

jmapStateContract('postgres', async () => {
  const state = await PostgresJmapState.open(pool(0));
  await pool(0).query('TRUNCATE jmap_object, jmap_counter, jmap_change');
  return { state, close: async () => state.close() };
});

test('postgres: two nodes writing at once get distinct states and a complete change log', async () => {
  const account = 'dave@example.test' as AccountId;
  const one = await PostgresJmapState.open(pool(0));
  const two = await openJmapState({ stateDir: '/nonexistent', db: pool(1) }); // as the server will
  const states = await Promise.all(
    Array.from({ length: 40 }, (_, i) =>
      (i % 2 ? one : two).put(account, 'EmailSubmission', `S${i % 10}`, { id: `S${i % 10}`, n: i }),
    ),
  );
  assert.deepEqual(
    states.map(Number).sort((a, b) => a - b),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  const log = await two.changesSince(account, 'EmailSubmission', '0');
  assert.ok(log);
  assert.deepEqual(
    log.map((c) => Number(c.state)),
    Array.from({ length: 40 }, (_, i) => i + 1),
  );
  // Each id was created once, then updated.
  assert.equal(log.filter((c) => c.kind === 'created').length, 10);
  assert.equal((await one.list(account, 'EmailSubmission')).length, 10);
  const destroyed = await Promise.all([
    one.destroy(account, 'EmailSubmission', 'S1'),
    two.destroy(account, 'EmailSubmission', 'S1'),
  ]);
  assert.deepEqual(
    destroyed.map(Number).sort((a, b) => a - b),
    [41, 41],
    'one destroy made state 41, the other found nothing left',
  );
  assert.equal(await one.state(account, 'EmailSubmission'), '41');
});
