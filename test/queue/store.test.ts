// The SQLite queue (queue/store.ts: {state}/queue.db and {state}/queue/) against the queue
// contract (contract.ts), and what only it does: a file left half written (.tmp) goes at start.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { silentLogger } from '../../src/core/log.ts';
import { QueueStore } from '../../src/queue/store.ts';
import { message, queueContract } from './contract.ts';

queueContract(
  'sqlite',
  async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arcline-q-'));
    return {
      spoolDir: join(dir, 'queue'),
      async open() {
        return new QueueStore({ stateDir: dir, log: silentLogger() });
      },
      orphanName: () => 'q-orphan.eml',
      async cleanup() {
        await rm(dir, { recursive: true, force: true });
      },
    };
  },
  { shared: false },
);

test('sqlite: recovery removes temporary files of an enqueue cut short', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-q-'));
  try {
    let q = new QueueStore({ stateDir: dir, log: silentLogger() });
    await q.recover();
    const id = await q.enqueue(message());
    await writeFile(join(dir, 'queue', `${id}x.tmp`), 'half written');
    await q.close();
    q = new QueueStore({ stateDir: dir, log: silentLogger() });
    assert.deepEqual(await q.recover(), { held: 0, orphanFiles: 1, missingFiles: [] });
    assert.deepEqual(await readdir(join(dir, 'queue')), [`${id}.eml`]);
    await q.close();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
});
