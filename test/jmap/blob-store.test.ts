// The JMAP blob store (src/jmap/blob-store.ts): private durable files, content-addressed ids,
// the size bound leaving nothing behind, expiry of unreferenced uploads, keep, resolvers.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { FileBlobStore } from '../../src/jmap/blob-store.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-blobs-'));
});
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function* chunks(...parts: string[]): AsyncIterable<Buffer> {
  for (const p of parts) yield Buffer.from(p);
}

const read = async (s: Readable) => {
  const out: Buffer[] = [];
  for await (const c of s) out.push(c as Buffer);
  return Buffer.concat(out).toString();
};

test('put, open, same bytes same id, 0600 files, too large leaves nothing', async () => {
  const store = new FileBlobStore(dir);
  const a = await store.put('Aone', chunks('hello ', 'world'), 100);
  assert.ok(typeof a === 'object');
  assert.equal(a.size, 11);
  const b = await store.put('Aone', chunks('hello world'), 100);
  assert.deepEqual(b, a);
  const blob = await store.open('Aone', a.blobId);
  assert.ok(blob);
  assert.equal(blob.size, 11);
  assert.equal(await read(blob.stream()), 'hello world');
  assert.equal((await stat(join(dir, 'jmap-blobs', 'Aone', a.blobId))).mode & 0o777, 0o600);
  assert.equal(await store.open('Atwo', a.blobId), null);
  assert.equal(await store.put('Aone', chunks('x'.repeat(60), 'y'.repeat(60)), 100), 'too large');
  assert.deepEqual((await readdir(join(dir, 'jmap-blobs', 'Aone'))).sort(), [a.blobId]);
});

test('unreferenced uploads expire; kept ones stay', async () => {
  const store = new FileBlobStore(dir, 1000);
  const a = await store.put('Aexp', chunks('a'), 10);
  const k = await store.put('Aexp', chunks('k'), 10);
  assert.ok(typeof a === 'object' && typeof k === 'object');
  assert.equal(await store.keep('Aexp', k.blobId), true);
  assert.equal(await store.keep('Aexp', k.blobId), true);
  await store.age('Aexp', a.blobId, 5000);
  assert.equal(await store.sweep(), 1);
  assert.equal(await store.open('Aexp', a.blobId), null);
  assert.ok(await store.open('Aexp', k.blobId));
  // Uploading kept bytes again keeps one copy.
  assert.deepEqual(await store.put('Aexp', chunks('k'), 10), k);
  assert.deepEqual(await readdir(join(dir, 'jmap-blobs', 'Aexp')), [`${k.blobId}.keep`]);
});

test('the room for unreferenced uploads is bounded in bytes and files; kept ones do not count', async () => {
  const store = new FileBlobStore(dir, 60_000, { bytes: 10, files: 2 });
  const a = await store.put('Aroom', chunks('123456'), 100);
  assert.ok(typeof a === 'object');
  assert.equal(await store.put('Aroom', chunks('abcdef'), 100), 'over quota');
  assert.deepEqual(await readdir(join(dir, 'jmap-blobs', 'Aroom')), [a.blobId]);
  const b = await store.put('Aroom', chunks('abc'), 100);
  assert.ok(typeof b === 'object');
  assert.equal(await store.put('Aroom', chunks('x'), 100), 'over quota');
  await store.keep('Aroom', a.blobId);
  assert.ok(typeof (await store.put('Aroom', chunks('abcdef'), 100)) === 'object');
});

test('resolvers answer the blobs other parts own', async () => {
  const store = new FileBlobStore(dir);
  store.addResolver(async (account, id) =>
    account === 'Ar' && id === 'Mmessage' ? { size: 3, stream: () => Readable.from([Buffer.from('abc')]) } : null,
  );
  const m = await store.open('Ar', 'Mmessage');
  assert.ok(m);
  assert.equal(await read(m.stream()), 'abc');
  assert.equal(await store.open('Ax', 'Mmessage'), null);
});
