import assert from 'node:assert/strict';
import { test } from 'node:test';
import { DirSyncer } from '../../src/store/maildir/dirsync.ts';

/** A fake fsync we complete by hand, recording when each call started. */
function manualSync() {
  const calls: { dir: string; done: () => void }[] = [];
  const fn = (dir: string) => new Promise<void>((resolve) => calls.push({ dir, done: resolve }));
  return { calls, fn };
}

const tick = () => new Promise((r) => setImmediate(r));

test('callers during a running fsync share the next one, which starts after it', async () => {
  const { calls, fn } = manualSync();
  const s = new DirSyncer(fn);
  const released: string[] = [];
  const a = s.sync('/d').then(() => released.push('a'));
  await tick();
  assert.equal(calls.length, 1);
  // b and c arrive while the first fsync runs: their renames may postdate its start.
  const b = s.sync('/d').then(() => released.push('b'));
  const c = s.sync('/d').then(() => released.push('c'));
  await tick();
  assert.equal(calls.length, 1, 'no second fsync while the first runs');
  calls[0]!.done();
  await a;
  await tick();
  assert.deepEqual(released, ['a'], 'b and c are not released by an fsync that began before them');
  assert.equal(calls.length, 2, 'one shared fsync for b and c');
  calls[1]!.done();
  await Promise.all([b, c]);
  assert.deepEqual(released.sort(), ['a', 'b', 'c']);
});

test('different directories sync independently; errors reach every sharer', async () => {
  const { calls, fn } = manualSync();
  const s = new DirSyncer(fn);
  const x = s.sync('/x');
  const y = s.sync('/y');
  await tick();
  assert.deepEqual(calls.map((c) => c.dir).sort(), ['/x', '/y']);
  calls.forEach((c) => {
    c.done();
  });
  await Promise.all([x, y]);
  let n = 0;
  const failing = new DirSyncer(async () => {
    n++;
    throw new Error('EIO');
  });
  await Promise.all([
    assert.rejects(failing.sync('/z'), /EIO/),
    assert.rejects(failing.sync('/z'), /EIO/),
    assert.rejects(failing.sync('/z'), /EIO/),
  ]);
  assert.equal(n, 2);
});
