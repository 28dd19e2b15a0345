// Threads of emails indexed before threads were stored (the migration leaves them without):
// the index gives them theirs when it opens (ThreadIndex.backfill, in the index worker, from
// each message's header block), in internal-date order, so they get the ids an index built
// with threads gives them. Also: a message too short to have a header block, and one whose
// header is larger than the bound, are threaded without error.

import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import type { MessageStore } from '../../src/store/mailboxes.ts';
import { tempStore } from '../harness/store.ts';
import { threadMessage } from './contract-threads.ts';

const ACCOUNT = 'alice@example.test' as AccountId;

async function deliver(store: MessageStore, raw: string): Promise<void> {
  const w = store.createSpool();
  await w.write(Buffer.from(raw));
  const msg = await w.finish();
  try {
    await store.deliver([{ account: ACCOUNT, mailbox: 'INBOX', prefix: Buffer.alloc(0) }], msg);
  } finally {
    await msg.dispose();
  }
}

async function threads(store: MessageStore): Promise<string[]> {
  const box = await store.accounts.open(ACCOUNT, 'INBOX');
  const s = await box.sync();
  const ids = [...box.emailIds(s.messages.map((m) => m.uid)).values()];
  store.accounts.release(ACCOUNT, box);
  const located = new Map((await store.accounts.locate(ACCOUNT, ids)).map((l) => [l.emailId, l.threadId]));
  return ids.map((id) => located.get(id) ?? '');
}

test('emails without a thread get theirs when the index opens, as if threaded at insert', async () => {
  const { dir, store, reopen } = await tempStore('arcline-threads-');
  let s = store;
  try {
    await s.createAccount(ACCOUNT);
    await deliver(s, threadMessage('a@x', 'One'));
    await deliver(s, threadMessage('b@x', 'Re: One', ['a@x']));
    await deliver(s, threadMessage('c@x', 'One'));
    await deliver(s, 'X');
    await deliver(s, `Subject: big\r\nX-Long: ${'y'.repeat(300 * 1024)}\r\nMessage-ID: <late@x>\r\n\r\nbody\r\n`);
    const before = await threads(s);
    assert.equal(before.length, 5);
    assert.equal(before[1], before[0]);
    assert.equal(new Set(before).size, 4);
    await s.close();
    // As after the migration: no thread, no message ids.
    const db = new DatabaseSync(join(dir, 'index.db'));
    db.exec("UPDATE emails SET thread = NULL; DELETE FROM thread_keys; UPDATE account_changes SET thread = ''");
    db.close();
    s = reopen();
    await s.openIndex();
    assert.deepEqual(await threads(s), before);
    const db2 = new DatabaseSync(join(dir, 'index.db'));
    const keys = db2.prepare('SELECT count(*) AS n FROM thread_keys').get() as { n: number };
    db2.close();
    assert.equal(keys.n, 3, 'a@x, b@x, c@x recorded again (the long header was cut before its Message-ID)');
  } finally {
    await s.close();
    await rm(dir, { recursive: true, force: true });
  }
});
