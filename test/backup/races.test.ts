// The Maildir copy of `arcline backup` while files move under it (backup/take.ts step 3): a
// message renamed new/ -> cur/ or given new flags during the copy is found by its unique base
// and copied once, under one of its names, with its content; a removed one is either copied
// whole or left out and counted; nothing is copied twice.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { takeBackup } from '../../src/backup/take.ts';

const N = 1000;
let dir: string;
after(async () => {
  await rm(dir, { recursive: true, force: true });
});

test('messages renamed, re-flagged and removed during the copy: each base once, whole', async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-backup-race-'));
  const state = join(dir, 'state');
  const box = join(dir, 'mail', 'example.test', 'alice');
  await mkdir(state, { recursive: true });
  for (const sub of ['new', 'cur', 'tmp']) await mkdir(join(box, sub), { recursive: true });
  const base = (i: number) => `1796000000.M${i}P1Q${i}.host,S=20`;
  const body = (i: number) => `message number ${i}\r\n`;
  for (let i = 0; i < N; i++) await writeFile(join(box, 'new', base(i)), body(i));

  let done = false;
  const removed = new Set<number>();
  let moves = 0;
  const mutate = (async () => {
    // Walks the messages in the order a listing gives them, a few steps behind nothing: new/ ->
    // cur/ (":2,S"), then new flags (":2,FS"), every 7th removed, until the backup is over.
    for (let round = 0; !done; round++) {
      for (let i = round % 7; i < N && !done; i += 3) {
        const b = base(i);
        if (removed.has(i)) continue;
        try {
          if (i % 7 === 0) {
            await unlink(join(box, 'new', b)).catch(() => unlink(join(box, 'cur', `${b}:2,S`)));
            removed.add(i);
          } else if (round % 2 === 0) {
            await rename(join(box, 'new', b), join(box, 'cur', `${b}:2,S`));
          } else {
            await rename(join(box, 'cur', `${b}:2,S`), join(box, 'cur', `${b}:2,FS`));
          }
          moves++;
        } catch {
          // already moved on by an earlier round
        }
      }
    }
  })();
  const out = join(dir, 'backup');
  const manifest = await takeBackup({ state, maildir: join(dir, 'mail'), dir: out, hostname: 'h', version: 't' });
  const movesDuring = moves;
  done = true;
  await mutate;
  assert.ok(movesDuring > 0, 'the files moved while the backup ran');

  const copied = new Map<string, string>();
  for (const sub of ['new', 'cur']) {
    for (const name of await readdir(join(out, 'maildir/example.test/alice', sub))) {
      const b = name.split(':2,')[0] as string;
      assert.ok(!copied.has(b), `${b} copied twice (${copied.get(b)} and ${sub}/${name})`);
      copied.set(b, `${sub}/${name}`);
      const i = Number(/M(\d+)P/.exec(b)?.[1]);
      assert.equal(await readFile(join(out, 'maildir/example.test/alice', sub, name), 'utf8'), body(i));
    }
  }
  for (let i = 0; i < N; i++) if (!removed.has(i)) assert.ok(copied.has(base(i)), `${base(i)} missing`);
  assert.equal(manifest.totals.messages, copied.size);
  assert.ok(copied.size + manifest.totals.expunged <= N);
  assert.ok(copied.size + removed.size >= N);
});
