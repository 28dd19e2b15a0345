// The contract of the mail index (store/index/backend.ts MailIndexBackend), run against the
// SQLite index (IndexClient, test/store/index-sqlite.test.ts) and the PostgreSQL one
// (PostgresMailIndex, test/store/index-postgres.test.ts): mailboxes (UIDVALIDITY strictly
// increasing, stable ids, events in the account journal), writes (rows, journal, counters,
// CONFLICT on stale counters), catchUp, the cache, emails and their copies (locate), threads
// (by the fields given, and read from the message file), thread counts and collapsed pages
// against an oracle after random writes, accountMessages pages, imports, and the pruning of
// both journals. Every test works in an account of its own.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import type { ThreadHeaders } from '../../src/mime/thread-key.ts';
import { emailId, newMailboxId } from '../../src/store/ids.ts';
import type { MailIndexBackend } from '../../src/store/index/backend.ts';
import type { MessageRow } from '../../src/store/index/db.ts';
import { accountDir } from '../../src/store/maildir/layout.ts';
import { rejectsWith } from './contract-support.ts';
import { countsContract } from './index-contract-counts.ts';
import { Box, type IndexUnderTest, newAccount, rowsOf, th, type WithIndex } from './index-contract-support.ts';

export type { IndexUnderTest };

export function indexContract(name: string, make: () => Promise<IndexUnderTest>): void {
  const withIndex: WithIndex = (fn) => async () => {
    const u = await make();
    try {
      await u.index.open();
      await fn(u.index, newAccount(), u);
    } finally {
      await u.close();
    }
  };
  const boxOf = async (ix: MailIndexBackend, account: string, mailbox: string) =>
    new Box(ix, await ix.createMailbox(account, mailbox, true));

  test(
    `${name}: mailboxes: UIDVALIDITY strictly increasing, stable ids, events journaled in order`,
    withIndex(async (ix, a) => {
      assert.equal(await ix.accountState(a), 0, 'no journal before the first change');
      assert.deepEqual(await ix.accountChangesSince(a, 0, 10), [], 'state 0 of an empty account');
      const t0 = Date.now() * 1000;
      const inbox = await ix.createMailbox(a, 'INBOX', true);
      const start = (await ix.accountState(a)) - 1;
      assert.ok(start >= t0 - 10_000_000, 'the counter starts at the time in microseconds');
      assert.equal(inbox.uidnext, 1);
      assert.equal(inbox.highestmodseq, 1);
      assert.match(inbox.oid, /^F[A-Za-z0-9_-]{16}$/);
      assert.deepEqual(await ix.createMailbox(a, 'INBOX', false), inbox, 'made already: that one');
      const kept = newMailboxId();
      const [arch, sent] = await ix.createMailboxes(a, [
        { name: 'Archive', minValidity: inbox.uidvalidity + 100, oid: kept, sortOrder: 7 },
        { name: 'Sent', minValidity: 0, oid: kept },
      ]);
      assert.ok(arch && sent);
      assert.equal(arch.oid, kept, 'the id the folder keeps');
      assert.notEqual(sent.oid, kept, 'another mailbox has it: a new one');
      assert.equal(arch.sortOrder, 7);
      assert.equal(arch.uidvalidity, inbox.uidvalidity + 100, 'at least minValidity');
      assert.ok(sent.uidvalidity > arch.uidvalidity, 'strictly increasing');
      assert.deepEqual(
        (await ix.mailboxes(a)).map((m) => m.name),
        ['Archive', 'INBOX', 'Sent'],
      );
      assert.deepEqual(await ix.mailbox(a, 'Archive'), arch);
      assert.equal(await ix.mailbox(a, 'archive'), null, 'names are exact');
      await ix.renameMailbox(sent.id, 'Sent Items');
      await ix.setSubscribed(sent.id, false);
      await ix.setSortOrder(sent.id, 3);
      const renamed = await ix.mailbox(a, 'Sent Items');
      assert.deepEqual(renamed, { ...sent, name: 'Sent Items', subscribed: false, sortOrder: 3 });
      await ix.deleteMailbox(sent.id);
      assert.equal(await ix.mailbox(a, 'Sent Items'), null);
      const again = await ix.createMailbox(a, 'Sent', true);
      assert.ok(again.uidvalidity > sent.uidvalidity, 'a re-created name never reuses a UIDVALIDITY');
      const changes = await ix.accountChangesSince(a, 0, 100);
      assert.deepEqual(
        changes?.map((c) => [c.kind, c.mailboxId, c.uid, c.emailId]),
        [
          ['mailbox-create', inbox.oid, 0, null],
          ['mailbox-create', arch.oid, 0, null],
          ['mailbox-create', sent.oid, 0, null],
          ['mailbox-rename', sent.oid, 0, null],
          ['mailbox-subscribe', sent.oid, 0, null],
          ['mailbox-sort-order', sent.oid, 0, null],
          ['mailbox-delete', sent.oid, 0, null],
          ['mailbox-create', again.oid, 0, null],
        ],
      );
      assert.deepEqual(
        changes?.map((c) => c.aseq),
        changes?.map((_, i) => start + 1 + i),
        'numbered one by one',
      );
      assert.equal(await ix.accountState(a), start + 8);
      assert.deepEqual(
        (await ix.accountChangesSince(a, start + 6, 1))?.map((c) => c.kind),
        ['mailbox-delete'],
        'after a state, at most max',
      );
      assert.deepEqual(await ix.accountChangesSince(a, start + 8, 10), [], 'nothing after the last');
      assert.equal(await ix.accountChangesSince(a, start + 9, 10), null, 'a state beyond the journal');
      assert.equal(await ix.accountChangesSince(a, start - 5, 10), null, 'a state from before its start');
      assert.ok((await ix.accounts()).includes(a));
      await ix.ping();
    }),
  );

  test(
    `${name}: writes: rows, journal, counters, emails and their copies`,
    withIndex(async (ix, a) => {
      const inbox = await boxOf(ix, a, 'INBOX');
      const arch = await boxOf(ix, a, 'Archive');
      const s0 = await ix.accountState(a);
      const u1 = await inbox.append('b1', { letters: '', inNew: true });
      const u2 = await inbox.append('b2', { letters: 'S' });
      const u3 = await inbox.append('b3', { letters: 'FS' });
      const cols = rowsOf(await ix.messageColumns(inbox.row.id));
      assert.deepEqual(
        cols.map((r) => [r.uid, r.base, r.inNew, r.letters, r.modseq]),
        [
          [u1, 'b1', true, '', 2],
          [u2, 'b2', false, 'S', 3],
          [u3, 'b3', false, 'FS', 4],
        ],
      );
      assert.equal(cols[0]?.size, 101);
      assert.equal(cols[0]?.date, 1_700_000_001_000);
      const row = await ix.mailbox(a, 'INBOX');
      assert.equal(row?.uidnext, 4);
      assert.equal(row?.highestmodseq, 4);
      await inbox.flags(u1, 'S');
      await inbox.expunge(u2);
      assert.deepEqual(
        (await ix.changesSince(inbox.row.id, 1))?.map((j) => [j.modseq, j.kind, j.uid]),
        [
          [2, 'append', u1],
          [3, 'append', u2],
          [4, 'append', u3],
          [5, 'flags', u1],
          [6, 'expunge', u2],
        ],
      );
      assert.deepEqual(await ix.changesSince(inbox.row.id, 5), [{ modseq: 6, kind: 'expunge', uid: u2 }]);
      assert.deepEqual(await ix.vanishedSince(inbox.row.id, 0), [u2]);
      assert.deepEqual(await ix.vanishedSince(inbox.row.id, 6), []);
      // A copy of b1 in Archive: one email, two copies.
      await arch.append('b1', { thread: null });
      const [l1] = await ix.locate(a, [emailId('b1')]);
      assert.ok(l1);
      assert.equal(l1.size, 101);
      assert.equal(l1.threadId, `T${emailId('b1').slice(1)}`);
      assert.deepEqual(
        l1.copies.map((c) => [c.name, c.uid, c.letters, c.mailboxId]),
        [
          ['Archive', 1, '', arch.row.oid],
          ['INBOX', u1, 'S', inbox.row.oid],
        ],
      );
      assert.deepEqual(await ix.locate(a, [emailId('b2'), 'Mnothere']), [], 'expunged and unknown left out');
      await inbox.expunge(u1);
      assert.deepEqual(
        (await ix.locate(a, [emailId('b1')]))[0]?.copies.map((c) => c.name),
        ['Archive'],
        'one copy left',
      );
      await arch.expunge(1);
      assert.deepEqual(await ix.locate(a, [emailId('b1')]), [], 'gone with its last copy');
      const changes = await ix.accountChangesSince(a, s0, 100);
      assert.deepEqual(
        changes?.map((c) => [c.kind, c.mailboxId === inbox.row.oid ? 'INBOX' : 'Archive', c.uid, c.emailId]),
        [
          ['append', 'INBOX', u1, emailId('b1')],
          ['append', 'INBOX', u2, emailId('b2')],
          ['append', 'INBOX', u3, emailId('b3')],
          ['flags', 'INBOX', u1, emailId('b1')],
          ['expunge', 'INBOX', u2, emailId('b2')],
          ['append', 'Archive', 1, emailId('b1')],
          ['expunge', 'INBOX', u1, emailId('b1')],
          ['expunge', 'Archive', 1, emailId('b1')],
        ],
      );
      assert.ok(
        changes?.every((c) => c.threadId === `T${(c.emailId as string).slice(1)}`),
        'each entry its thread',
      );
      // Deleting a mailbox journals an expunge for each of its messages, then the delete.
      const s1 = await ix.accountState(a);
      await ix.deleteMailbox(inbox.row.id);
      assert.deepEqual(
        (await ix.accountChangesSince(a, s1, 10))?.map((c) => [c.kind, c.uid, c.emailId]),
        [
          ['expunge', u3, emailId('b3')],
          ['mailbox-delete', 0, null],
        ],
      );
      assert.deepEqual(await ix.locate(a, [emailId('b3')]), []);
      assert.equal((await ix.messageColumns(inbox.row.id)).count, 0);
    }),
  );

  test(
    `${name}: a write computed from stale counters is refused with CONFLICT, nothing written`,
    withIndex(async (ix, a) => {
      const box = await boxOf(ix, a, 'INBOX');
      await box.append('c1');
      const s = await ix.accountState(a);
      const stale = { uidnext: 1, highestmodseq: 1 };
      const w = {
        insert: [{ uid: 2, base: 'c2', inNew: false, letters: '', modseq: 3, size: 1, internalDate: 1 }],
        journal: [{ modseq: 3, kind: 'append' as const, uid: 2, base: 'c2' }],
        counters: { uidnext: 3, highestmodseq: 3 },
      };
      await rejectsWith(ix.write(box.row.id, w, stale), 'CONFLICT');
      assert.equal((await ix.messageColumns(box.row.id)).count, 1);
      assert.equal(await ix.accountState(a), s);
      assert.deepEqual(await ix.locate(a, [emailId('c2')]), []);
      assert.equal((await ix.mailbox(a, 'INBOX'))?.uidnext, 2);
      await ix.write(box.row.id, w, { uidnext: 2, highestmodseq: 2 });
      assert.equal((await ix.messageColumns(box.row.id)).count, 2);
      await rejectsWith(ix.write(box.row.id, w, { uidnext: 2, highestmodseq: 2 }), 'CONFLICT', 'the same again');
      await ix.deleteMailbox(box.row.id);
      await rejectsWith(ix.write(box.row.id, w, { uidnext: 3, highestmodseq: 3 }), 'CONFLICT', 'a deleted mailbox');
      // The lock of a mailbox: taken and released (SQLite: nothing to take).
      const lock = await ix.lockMailbox(box.row.id);
      await lock.release();
    }),
  );

  test(
    `${name}: catchUp: rows changed and UIDs expunged after a MODSEQ, in one read`,
    withIndex(async (ix, a) => {
      const box = await boxOf(ix, a, 'INBOX');
      const u = [await box.append('d1'), await box.append('d2'), await box.append('d3'), await box.append('d4')];
      const mark = box.modseq;
      await box.flags(u[0] as number, 'S');
      await box.expunge(u[1] as number);
      await box.append('d5');
      const c = await ix.catchUp(box.row.id, mark);
      assert.ok(c);
      assert.deepEqual(c.row, await ix.mailbox(a, 'INBOX'));
      assert.equal(c.row?.highestmodseq, box.modseq);
      assert.deepEqual(
        rowsOf(c.changed).map((r) => [r.uid, r.base, r.letters]),
        [
          [u[0], 'd1', 'S'],
          [5, 'd5', ''],
        ],
      );
      assert.deepEqual(c.expunged, [u[1]]);
      const none = await ix.catchUp(box.row.id, box.modseq);
      assert.deepEqual([none?.changed.count, none?.expunged], [0, []]);
      const all = await ix.catchUp(box.row.id, 0);
      assert.equal(all?.changed.count, 4, 'from 0: every row (journal_floor 0)');
      await ix.deleteMailbox(box.row.id);
      const gone = await ix.catchUp(box.row.id, mark);
      assert.deepEqual([gone?.row, gone?.changed.count, gone?.expunged], [null, 0, []], 'a deleted mailbox');
    }),
  );

  test(
    `${name}: the parse cache: dense and sparse reads, rows of messages gone skipped`,
    withIndex(async (ix, a) => {
      const box = await boxOf(ix, a, 'INBOX');
      for (let i = 1; i <= 40; i++) await box.append(`e${i}`, { thread: null });
      await ix.setCachedMany(box.row.id, [
        [1, 'envelope', 'env1'],
        [2, 'envelope', 'env2'],
        [2, 'structure', 'st2'],
        [40, 'search', 'se40'],
        [99, 'envelope', 'nope'],
      ]);
      await ix.setCachedMany(box.row.id, [[2, 'envelope', 'env2b']]);
      assert.deepEqual(await ix.cachedMany(box.row.id, [1, 2, 3], 'envelope'), [
        [1, 'env1'],
        [2, 'env2b'],
      ]);
      assert.deepEqual(await ix.cachedMany(box.row.id, [40, 2], 'structure'), [[2, 'st2']], 'sparse');
      assert.deepEqual(await ix.cachedMany(box.row.id, [40, 1], 'search'), [[40, 'se40']]);
      assert.deepEqual(await ix.cachedMany(box.row.id, [99], 'envelope'), [], 'no row for a message not indexed');
      assert.deepEqual(await ix.cachedMany(box.row.id, [], 'envelope'), []);
      await box.expunge(1);
      assert.deepEqual(await ix.cachedMany(box.row.id, [1, 2], 'envelope'), [[2, 'env2b']], 'gone with its message');
    }),
  );

  test(
    `${name}: threads: replies join, the same subject alone does not, thread ids are kept`,
    withIndex(async (ix, a) => {
      const box = await boxOf(ix, a, 'INBOX');
      const other = await boxOf(ix, a, 'Other');
      await box.append('t1', { thread: th('a@x', 'lunch') });
      await box.append('t2', { thread: th('b@x', 'lunch', ['a@x']) });
      await box.append('t3', { thread: th('c@x', 'lunch') });
      await box.append('t4', { thread: th('d@x', 'budget', ['a@x']) });
      // A parent arriving after its reply finds the reply's thread by its own id.
      await other.append('t5', { thread: th('z@x', 'party', ['y@x']) });
      await other.append('t6', { thread: th('y@x', 'party') });
      const located = new Map(
        (await ix.locate(a, ['t1', 't2', 't3', 't4', 't5', 't6'].map(emailId))).map((l) => [l.emailId, l.threadId]),
      );
      const t = (b: string) => located.get(emailId(b));
      const first = `T${emailId('t1').slice(1)}`;
      assert.equal(t('t1'), first);
      assert.equal(t('t2'), first, 'In-Reply-To');
      assert.notEqual(t('t3'), first, 'same subject, no reference');
      assert.notEqual(t('t4'), first, 'another subject');
      assert.equal(t('t6'), t('t5'), 'a parent after its reply');
      assert.deepEqual(await ix.threads(a, [first, 'Tnone', t('t5') as string]), [
        { threadId: first, emailIds: [emailId('t1'), emailId('t2')] },
        { threadId: t('t5'), emailIds: [emailId('t5'), emailId('t6')] },
      ]);
      // In one write, a reply after its parent joins it.
      const m = (uid: number, base: string, h: ThreadHeaders): MessageRow => ({
        uid,
        base,
        inNew: false,
        letters: '',
        modseq: box.modseq + 1,
        size: 1,
        internalDate: 1_800_000_000_000 + uid,
        thread: h,
      });
      box.modseq++;
      await ix.write(box.row.id, {
        insert: [m(5, 'u1', th('p@x', 'plan')), m(6, 'u2', th('q@x', 'plan', ['p@x']))],
        journal: [
          { modseq: box.modseq, kind: 'append', uid: 5, base: 'u1' },
          { modseq: box.modseq, kind: 'append', uid: 6, base: 'u2' },
        ],
        counters: { uidnext: 7, highestmodseq: box.modseq },
      });
      box.uidnext = 7;
      const [p, q] = await ix.locate(a, [emailId('u1'), emailId('u2')]);
      assert.equal(q?.threadId, p?.threadId);
      // The thread goes with its last email: a later reply to it starts a new one.
      await box.expunge(1, 2);
      assert.deepEqual(await ix.threads(a, [first]), []);
      await box.append('t7', { thread: th('e@x', 'lunch', ['a@x']) });
      assert.equal((await ix.locate(a, [emailId('t7')]))[0]?.threadId, `T${emailId('t7').slice(1)}`);
      const changes = await ix.accountChangesSince(a, 0, 100);
      const appendOf = changes?.find((c) => c.kind === 'append' && c.emailId === emailId('t2'));
      assert.equal(appendOf?.threadId, first, 'the journal records the thread');
      const expungeOf = changes?.find((c) => c.kind === 'expunge' && c.emailId === emailId('t2'));
      assert.equal(expungeOf?.threadId, first, 'and the thread of an expunged email');
    }),
  );

  test(
    `${name}: a message given without its threading fields is threaded from its file`,
    withIndex(async (ix, a, u) => {
      const box = await boxOf(ix, a, 'INBOX');
      const dir = accountDir(u.root, a as AccountId);
      for (const sub of ['cur', 'new', 'tmp']) await mkdir(join(dir, sub), { recursive: true });
      await writeFile(join(dir, 'cur', 'f1:2,S'), 'Message-ID: <f1@x>\r\nSubject: Plans\r\n\r\nbody\r\n');
      await writeFile(
        join(dir, 'new', 'f2'),
        'Message-ID: <f2@x>\r\nIn-Reply-To: <f1@x>\r\nSubject: Re: plans\r\n\r\nb\r\n',
      );
      await box.append('f1', { thread: null, letters: 'S' });
      await box.append('f2', { thread: null, inNew: true });
      await box.append('f3', { thread: null }); // no file: no fields, a thread of its own
      // Too short to have a header block; a header block past the bound (its Message-ID unseen).
      await writeFile(join(dir, 'cur', 'f4:2,'), 'X');
      await writeFile(
        join(dir, 'cur', 'f5:2,'),
        `Subject: big\r\nX-Long: ${'y'.repeat(300 * 1024)}\r\nMessage-ID: <late@x>\r\n\r\nbody\r\n`,
      );
      await writeFile(join(dir, 'cur', 'f6:2,'), 'Message-ID: <f6@x>\r\nIn-Reply-To: <late@x>\r\nSubject: big\r\n\r\n');
      // Several in one write: the files are read before its transaction.
      box.modseq++;
      const rows = ['f4', 'f5', 'f6'].map((base, i) => ({
        uid: 4 + i,
        base,
        inNew: false,
        letters: '',
        modseq: box.modseq,
        size: 1,
        internalDate: 1,
      }));
      await ix.write(box.row.id, {
        insert: rows,
        journal: rows.map((m) => ({ modseq: m.modseq, kind: 'append' as const, uid: m.uid, base: m.base })),
        counters: { uidnext: 7, highestmodseq: box.modseq },
      });
      const [f1, f2, f3, f4, f5, f6] = await ix.locate(a, ['f1', 'f2', 'f3', 'f4', 'f5', 'f6'].map(emailId));
      assert.equal(f2?.threadId, f1?.threadId, 'read from the files');
      assert.equal(f3?.threadId, `T${emailId('f3').slice(1)}`);
      assert.equal(f4?.threadId, `T${emailId('f4').slice(1)}`);
      assert.equal(f5?.threadId, `T${emailId('f5').slice(1)}`);
      assert.equal(f6?.threadId, `T${emailId('f6').slice(1)}`, 'the Message-ID past the bound was not seen');
    }),
  );

  test(
    `${name}: accountMessages: pages by date and size, of the account or one mailbox`,
    withIndex(async (ix, a) => {
      const inbox = await boxOf(ix, a, 'INBOX');
      const arch = await boxOf(ix, a, 'Archive');
      const sizes = [50, 10, 30, 10, 40];
      for (const [i, size] of sizes.entries())
        await inbox.append(`g${i}`, { size, date: 1_000_000 + ((i * 7) % 5) * 1000 });
      await arch.append('g1', { size: 10, date: 1_001_000 + 7000 });
      await arch.append('h9', { size: 5, date: 999 });
      const ids = (bases: string[]) => bases.map(emailId);
      const byDate = ['g0', 'g3', 'g1', 'g4', 'g2']; // dates 0, 1, 2, 3, 4 (x1000)
      assert.deepEqual(await ix.accountMessages(a, { sort: 'receivedAt', descending: false, position: 0, limit: 10 }), {
        ids: ids(['h9', ...byDate]),
        total: 6,
      });
      assert.deepEqual(await ix.accountMessages(a, { sort: 'receivedAt', descending: true, position: 1, limit: 2 }), {
        ids: ids(['g4', 'g1']),
        total: 6,
      });
      // Ties by base, in the direction asked.
      const bySize = ['h9', 'g1', 'g3', 'g2', 'g4', 'g0'];
      assert.deepEqual(
        (await ix.accountMessages(a, { sort: 'size', descending: false, position: 0, limit: 10 })).ids,
        ids(bySize),
      );
      assert.deepEqual(
        (await ix.accountMessages(a, { sort: 'size', descending: true, position: 0, limit: 10 })).ids,
        ids([...bySize].reverse()),
      );
      assert.deepEqual(
        await ix.accountMessages(a, {
          sort: 'receivedAt',
          descending: true,
          position: 0,
          limit: 10,
          mailboxId: arch.row.oid,
        }),
        { ids: ids(['g1', 'h9']), total: 2 },
      );
      assert.deepEqual(
        await ix.accountMessages(a, { sort: 'size', descending: false, position: 0, limit: 10, mailboxId: 'Fnone' }),
        { ids: [], total: 0 },
      );
      assert.deepEqual(await ix.accountMessages(a, { sort: 'size', descending: false, position: 9, limit: 10 }), {
        ids: [],
        total: 6,
      });
    }),
  );

  test(
    `${name}: importMailbox: UIDs kept, history after it, a changed entry refused`,
    withIndex(async (ix, a) => {
      const old = await ix.createMailbox(a, 'Imported', true);
      const before = await ix.accountState(a);
      const rows: MessageRow[] = [3, 7].map((uid) => ({
        uid,
        base: `i${uid}`,
        inNew: false,
        letters: 'S',
        modseq: 1,
        size: 10,
        internalDate: uid,
        thread: th(`i${uid}@x`, 'imported'),
      }));
      await assert.rejects(
        ix.importMailbox(
          a,
          'Imported',
          { uidvalidity: 5_000_000_000, uidnext: 9, subscribed: true, expect: null },
          rows,
        ),
        /changed during the import/,
      );
      const row = await ix.importMailbox(
        a,
        'Imported',
        { uidvalidity: 5_000_000_000, uidnext: 9, subscribed: false, expect: old.id },
        rows,
      );
      assert.equal(row.uidvalidity, 5_000_000_000);
      assert.equal(row.uidnext, 9);
      assert.equal(row.subscribed, false);
      assert.deepEqual(
        rowsOf(await ix.messageColumns(row.id)).map((r) => [r.uid, r.base, r.modseq]),
        [
          [3, 'i3', 1],
          [7, 'i7', 1],
        ],
      );
      assert.equal(await ix.accountChangesSince(a, before, 10), null, 'the history starts after the import');
      assert.deepEqual((await ix.accountChangesSince(a, await ix.accountState(a), 10))?.length, 0);
      assert.equal(await ix.changesSince(row.id, 0), null, 'changes since 0: a full resync');
      assert.equal(await ix.catchUp(row.id, 0), null);
      assert.deepEqual(await ix.changesSince(row.id, 1), []);
      const later = await ix.createMailbox(a, 'Later', true);
      assert.ok(later.uidvalidity > 5_000_000_000, 'the account sequence moved up to the import');
      assert.equal((await ix.locate(a, [emailId('i3')]))[0]?.copies[0]?.uid, 3);
    }),
  );
  countsContract(name, withIndex);
}
