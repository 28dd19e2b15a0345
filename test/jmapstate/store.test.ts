// The SQLite JmapState ({state}/jmap.db) against the contract, and reopened: what was written
// is still there.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { SqliteJmapState } from '../../src/jmapstate/sqlite-store.ts';
import { jmapStateContract } from './contract.ts';

jmapStateContract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-jmapstate-'));
  const state = new SqliteJmapState(join(dir, 'jmap.db'));
  return {
    state,
    async close() {
      state.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
});

test('sqlite: a second opener sees the writes; a reopened file keeps them', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-jmapstate-'));
  try {
    const path = join(dir, 'jmap.db');
    const a = new SqliteJmapState(path);
    const b = new SqliteJmapState(path);
    const account = 'alice@example.test' as AccountId;
    const st = await a.put(account, 'EmailSubmission', 'S1', { id: 'S1' });
    assert.equal(await b.state(account, 'EmailSubmission'), st);
    a.close();
    b.close();
    const c = new SqliteJmapState(path);
    assert.deepEqual(await c.get(account, 'EmailSubmission', 'S1'), { id: 'S1' });
    c.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
