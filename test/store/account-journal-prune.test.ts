// The account journal's pruning floor (store/index/db.ts): entries more than 100,000 behind the
// account's last are pruned, and accountChangesSince below the floor answers null (JMAP
// cannotCalculateChanges), while the entries above it stay. Run on the index itself: the
// contract suite (contract-journal.ts) cannot make 100,000 changes in a test's time.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { MailIndex, type MessageRow } from '../../src/store/index/db.ts';

test('account journal: pruned 100,000 behind the last entry; below the floor is null, above it is whole', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-prune-'));
  const index = new MailIndex(join(dir, 'mailindex.db'));
  try {
    const box = index.createMailbox('a@example.test', 'INBOX', true);
    index.createMailbox('b@example.test', 'INBOX', true);
    const start = index.accountState('a@example.test');
    let uid = 0;
    const rows = (n: number): MessageRow[] =>
      Array.from({ length: n }, () => {
        uid++;
        return { uid, base: `b${uid}`, inNew: false, letters: '', modseq: uid, size: 10, internalDate: uid };
      });
    // 101,000 appends in a few transactions, then flag changes until a prune runs (every 256th
    // write that has journal entries).
    for (let k = 0; k < 101; k++) {
      const ins = rows(1000);
      index.write(box.id, {
        insert: ins,
        journal: ins.map((r) => ({ modseq: r.modseq, kind: 'append' as const, uid: r.uid, base: r.base })),
        counters: { uidnext: uid + 1, highestmodseq: uid },
      });
    }
    const otherState = index.accountState('b@example.test');
    let modseq = uid;
    for (let k = 0; k < 260; k++) {
      modseq++;
      index.write(box.id, {
        update: [{ uid: 1 + k, inNew: false, letters: 'S', modseq }],
        journal: [{ modseq, kind: 'flags', uid: 1 + k, base: `b${1 + k}` }],
        counters: { uidnext: uid + 1, highestmodseq: modseq },
      });
    }
    const last = index.accountState('a@example.test');
    assert.equal(last, start + 101_000 + 260);
    assert.equal(index.accountChangesSince('a@example.test', start, 10), null, 'below the floor');
    // The prune ran at one of the last 260 writes: the floor is 100,000 behind the last then.
    assert.equal(index.accountChangesSince('a@example.test', last - 100_261, 10), null);
    const recent = index.accountChangesSince('a@example.test', last - 1000, 2000);
    assert.ok(recent);
    assert.equal(recent.length, 1000);
    assert.equal(recent.at(-1)?.aseq, last);
    assert.ok(index.accountChangesSince('a@example.test', last - 90_000, 5), 'well above the floor');
    assert.equal(index.accountState('b@example.test'), otherState, 'another account untouched');
    assert.deepEqual(index.accountChangesSince('b@example.test', 0, 10)?.length, 1, 'its mailbox create');
  } finally {
    index.close();
    await rm(dir, { recursive: true, force: true });
  }
});
