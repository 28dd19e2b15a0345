// COPY and MOVE in the Maildir store (store/maildir/copy.ts) at the file level: a copy is a hard
// link keeping the file's base (as Dovecot's Maildir COPY), a move a rename keeping it; a file
// linked into a mailbox but never indexed (a crash between the link and the index commit) is
// picked up by the next reconciliation under the same base, so with the same email id.

import assert from 'node:assert/strict';
import { link, mkdir, mkdtemp, readdir, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { spoolOf, tempStore } from '../harness/store.ts';

const ALICE = 'alice@example.test' as AccountId;
const baseOf = (name: string) => name.split(':2,')[0] as string;

async function setup() {
  const t = await tempStore('arcline-copy-');
  await t.store.createAccount(ALICE);
  const root = join(t.dir, 'mail', 'example.test', 'alice');
  const inbox = await t.store.accounts.open(ALICE, 'INBOX');
  const msg = await spoolOf(t.store, 'Subject: x\r\n\r\nbody\r\n');
  const uid = await inbox.append(msg, ['\\Seen'], null);
  await msg.dispose();
  const [file] = await readdir(join(root, 'cur'));
  assert.ok(file);
  return { ...t, root, inbox, uid, file, done: () => t.store.close().then(() => rm(t.dir, { recursive: true })) };
}

test('COPY is a hard link keeping the base; MOVE a rename keeping it', async () => {
  const t = await setup();
  try {
    const sent = await t.store.accounts.open(ALICE, 'Sent');
    await sent.sync();
    const [[, copied] = [0, 0]] = await t.inbox.copyTo([t.uid], sent);
    const [linked] = await readdir(join(t.root, '.Sent', 'cur'));
    assert.ok(linked);
    assert.equal(baseOf(linked), baseOf(t.file), 'the base is kept');
    const [a, b] = await Promise.all([stat(join(t.root, 'cur', t.file)), stat(join(t.root, '.Sent', 'cur', linked))]);
    assert.equal(a.ino, b.ino, 'one file, two links');
    assert.equal(a.nlink, 2);
    const trash = await t.store.accounts.open(ALICE, 'Trash');
    await trash.sync();
    await sent.copyTo([copied], trash, { move: true });
    assert.deepEqual(await readdir(join(t.root, '.Sent', 'cur')), []);
    const [moved] = await readdir(join(t.root, '.Trash', 'cur'));
    assert.equal(baseOf(moved ?? ''), baseOf(t.file));
    assert.equal((await stat(join(t.root, '.Trash', 'cur', moved ?? ''))).ino, a.ino, 'renamed, not copied');
    assert.deepEqual(await readdir(join(t.root, '.Sent', 'tmp')), [], 'nothing left behind');
  } finally {
    await t.done();
  }
});

test('a crash between the link and the index commit: the linked file is indexed at the next sync, same base', async () => {
  const t = await setup();
  try {
    const id = t.inbox.emailIds([t.uid]).get(t.uid);
    assert.ok(id);
    // What copyTo does before its commit, done by hand: the link only.
    await link(join(t.root, 'cur', t.file), join(t.root, '.Junk', 'cur', t.file));
    await t.store.close();
    const store = t.reopen();
    const junk = await store.accounts.open(ALICE, 'Junk');
    const s = await junk.sync();
    assert.equal(s.messages.length, 1);
    assert.deepEqual(s.messages[0]?.flags, ['\\Seen']);
    assert.equal(baseOf((await readdir(join(t.root, '.Junk', 'cur')))[0] ?? ''), baseOf(t.file));
    const uid = s.messages[0]?.uid ?? 0;
    assert.equal(junk.emailIds([uid]).get(uid), id, 'the same email id');
    await store.close();
  } finally {
    await rm(t.dir, { recursive: true, force: true });
  }
});

// A folder on another file system (a mount point; here a symlink to /dev/shm, a tmpfs): link(2)
// and rename(2) fail with EXDEV, so the bytes are copied under the same base.
const otherFs = await stat('/dev/shm').then(
  async (shm) => shm.dev !== (await stat(tmpdir())).dev,
  () => false,
);

test('across file systems (EXDEV): COPY and MOVE copy the bytes and keep the base', {
  skip: !otherFs && 'no second file system',
}, async () => {
  const t = await setup();
  const far = await mkdtemp('/dev/shm/arcline-copy-');
  try {
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(far, sub));
    await writeFile(join(far, 'maildirfolder'), '');
    await rm(join(t.root, '.Junk'), { recursive: true });
    await symlink(far, join(t.root, '.Junk'));
    const junk = await t.store.accounts.open(ALICE, 'Junk');
    await junk.sync();
    const id = t.inbox.emailIds([t.uid]).get(t.uid);
    const [[, copied] = [0, 0]] = await t.inbox.copyTo([t.uid], junk);
    const [file] = await readdir(join(far, 'cur'));
    assert.equal(baseOf(file ?? ''), baseOf(t.file), 'the base is kept');
    assert.equal(junk.emailIds([copied]).get(copied), id);
    assert.equal(junk.meta(copied)?.internalDate.getTime(), t.inbox.meta(t.uid)?.internalDate.getTime());
    assert.deepEqual(await readdir(join(far, 'tmp')), [], 'no temporary file left');
    // MOVE back: rename fails with EXDEV too, the bytes are copied and the source expunged.
    await junk.expunge([copied]);
    await t.inbox.expunge([t.uid]);
    const drafts = await t.store.accounts.open(ALICE, 'Drafts');
    await drafts.sync();
    const msg = await spoolOf(t.store, 'Subject: y\r\n\r\nbody\r\n');
    const far1 = await junk.append(msg, [], null);
    await msg.dispose();
    const farId = junk.emailIds([far1]).get(far1);
    const [[, near] = [0, 0]] = await junk.copyTo([far1], drafts, { move: true });
    assert.equal(drafts.emailIds([near]).get(near), farId);
    assert.equal((await junk.sync()).messages.length, 0, 'the source is expunged');
    assert.deepEqual(await readdir(join(far, 'cur')), []);
  } finally {
    await t.done();
    await rm(far, { recursive: true, force: true });
  }
});
