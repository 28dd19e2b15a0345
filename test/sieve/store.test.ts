// The SQLite Sieve store (src/sieve/sqlite-store.ts) against the contract, plus what only SQLite
// has: keys stored hashed, the file shared by two openers (server and CLI).

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { SqliteSieveStore } from '../../src/sieve/sqlite-store.ts';
import { sieveStoreContract } from './store-contract.ts';

sieveStoreContract('sqlite', async (quota) => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-sieve-'));
  const store = new SqliteSieveStore(join(dir, 'sieve.db'), quota);
  return {
    scripts: store,
    state: store,
    async close() {
      store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

test('sqlite: no sender address or message id in clear; a second opener sees the writes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-sieve-'));
  try {
    const path = join(dir, 'sieve.db');
    const one = new SqliteSieveStore(path);
    const two = new SqliteSieveStore(path);
    const a = 'alice@example.org' as AccountId;
    await one.vacationRecord(a, 'h', 'secret-sender@example.com', 60, new Date());
    await one.duplicateTrack(a, 'h', '<secret-id@example.com>', 60, new Date());
    await one.put(a, 's', Buffer.from('keep;'));
    assert.equal((await two.get(a, 's'))?.toString(), 'keep;');
    one.close();
    two.close();
    const db = new DatabaseSync(path);
    const dump = JSON.stringify(db.prepare('SELECT * FROM state').all(), (_k, v) =>
      v instanceof Uint8Array ? Buffer.from(v).toString('latin1') : v,
    );
    db.close();
    assert.ok(!dump.includes('secret'), dump);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
