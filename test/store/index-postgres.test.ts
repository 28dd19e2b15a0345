// The mail index contract (test/store/index-contract.ts) against PostgresMailIndex on one
// database for the file (each test in an account of its own), and what only a shared index
// does, with two PostgresMailIndex on two pools (two nodes): lockMailbox excludes across them,
// concurrent writes from stale counters (exactly one wins, the other gets CONFLICT), a write
// publishes (account, aseq) at its commit (db/notify.ts), a lost lock connection fails the
// next write with TEMPORARY.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isArclineError } from '../../src/core/errors.ts';
import type { AccountId } from '../../src/core/ids.ts';
import { Notifier } from '../../src/db/notify.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { emailId } from '../../src/store/ids.ts';
import type { MailboxRow } from '../../src/store/index/backend.ts';
import { MAILBOX_LOCK_CLASS, mailboxLockKeys, PostgresMailIndex } from '../../src/store/index/postgres.ts';
import { databaseForFile } from '../harness/postgres.ts';
import { rejectsWith, waitFor } from './contract-support.ts';
import { indexContract } from './index-contract.ts';

const pg = databaseForFile(2);
let dir = '';
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-ixp-'));
});
after(() => rm(dir, { recursive: true, force: true }));

indexContract('postgres', async () => {
  const root = join(dir, 'mail');
  return { index: new PostgresMailIndex(pg.pools[0] as Postgres, root), root, close: async () => {} };
});

describe('postgres mail index across two nodes', () => {
  let a: PostgresMailIndex;
  let b: PostgresMailIndex;
  let n = 0;
  const account = () => `node${process.pid}x${++n}@example.test`;
  before(async () => {
    a = new PostgresMailIndex(pg.pools[0] as Postgres, null);
    b = new PostgresMailIndex(pg.pools[1] as Postgres, null);
    await Promise.all([a.open(), b.open()]);
  });

  /** The backend holding mailbox `id`'s lock, and whether a session waits for it. */
  async function lockState(id: number): Promise<{ holder: number | null; waiting: number }> {
    const [k1, k2] = mailboxLockKeys(id);
    const r = await (pg.pools[1] as Postgres).rows<{ pid: number; granted: boolean }>(
      `SELECT pid, granted FROM pg_locks WHERE locktype = 'advisory' AND classid = $1::int8::oid
         AND objid = ($2::int8 & 4294967295)::oid AND objsubid = 2`,
      [k1, k2],
    );
    return { holder: r.find((x) => x.granted)?.pid ?? null, waiting: r.filter((x) => !x.granted).length };
  }

  test('lock keys: injective below 2^48, apart from LOCK_CLASS', () => {
    assert.deepEqual(mailboxLockKeys(1), [MAILBOX_LOCK_CLASS, 1]);
    assert.deepEqual(mailboxLockKeys(2 ** 32 + 5), [MAILBOX_LOCK_CLASS + 1, 5]);
    assert.deepEqual(mailboxLockKeys(2 ** 31), [MAILBOX_LOCK_CLASS, -(2 ** 31)]);
    assert.throws(() => mailboxLockKeys(2 ** 48));
  });

  test('lockMailbox excludes across nodes: the second waits until the first releases', async () => {
    const box = await a.createMailbox(account(), 'INBOX', true);
    const first = await a.lockMailbox(box.id);
    let got = false;
    const second = b.lockMailbox(box.id).then((l) => {
      got = true;
      return l;
    });
    await waitFor(async () => (await lockState(box.id)).waiting === 1, 'node B waiting for the lock');
    assert.equal(got, false, 'B waits while A holds it');
    // A's writes go through its lock's connection meanwhile.
    await a.write(box.id, { counters: { uidnext: 1, highestmodseq: 2 } }, { uidnext: 1, highestmodseq: 1 });
    await first.release();
    const lock = await second;
    assert.equal((await lockState(box.id)).waiting, 0);
    await lock.release();
    await first.release(); // twice: nothing
    assert.equal((await lockState(box.id)).holder, null, 'released');
  });

  test('held locks never starve the pool: at most pool_size - 1 are held, the next waits for one', async () => {
    const acct = account();
    // The test pools have 4 connections: 3 locks are held at once, the 4th waits (it neither
    // fails nor takes the last connection), and the holders' writes and reads go through.
    const boxes = await Promise.all(['A', 'B', 'C', 'D'].map((m) => a.createMailbox(acct, m, true)));
    const first = await Promise.all(boxes.slice(0, 3).map((x) => a.lockMailbox(x.id)));
    let fourthHeld = false;
    const fourth = a.lockMailbox((boxes[3] as (typeof boxes)[number]).id).then((l) => {
      fourthHeld = true;
      return l;
    });
    const write = (id: number) =>
      a.write(
        id,
        {
          insert: [{ uid: 1, base: `s${id}`, inNew: false, letters: '', modseq: 2, size: 1, internalDate: 1 }],
          journal: [{ modseq: 2, kind: 'append', uid: 1, base: `s${id}` }],
          counters: { uidnext: 2, highestmodseq: 2 },
        },
        { uidnext: 1, highestmodseq: 1 },
      );
    await Promise.all(boxes.slice(0, 3).map((x) => write(x.id)));
    // A pool connection is still free for everything else (a mailbox's first load, the thread
    // keys of a copy, other stores).
    assert.equal((await a.messageColumns((boxes[3] as (typeof boxes)[number]).id)).count, 0);
    assert.equal(fourthHeld, false);
    await (first[0] as (typeof first)[number]).release();
    const last = await fourth;
    await write((boxes[3] as (typeof boxes)[number]).id);
    assert.deepEqual(
      await Promise.all(boxes.map(async (x) => (await a.catchUp(x.id, 1))?.changed.count)),
      [1, 1, 1, 1],
    );
    await Promise.all([...first.slice(1), last].map((l) => l.release()));
  });

  test('writes from the same counters on two nodes: exactly one wins, the other gets CONFLICT', async () => {
    const acct = account();
    const box = await a.createMailbox(acct, 'INBOX', true);
    for (let round = 0; round < 20; round++) {
      const row = (await b.mailbox(acct, 'INBOX')) as MailboxRow;
      const expect = { uidnext: row.uidnext, highestmodseq: row.highestmodseq };
      const write = (ix: PostgresMailIndex, base: string) =>
        ix.write(
          box.id,
          {
            insert: [
              {
                uid: expect.uidnext,
                base,
                inNew: false,
                letters: '',
                modseq: expect.highestmodseq + 1,
                size: 1,
                internalDate: 1,
              },
            ],
            journal: [{ modseq: expect.highestmodseq + 1, kind: 'append', uid: expect.uidnext, base }],
            counters: { uidnext: expect.uidnext + 1, highestmodseq: expect.highestmodseq + 1 },
          },
          expect,
        );
      const r = await Promise.allSettled([write(a, `a${round}`), write(b, `b${round}`)]);
      assert.equal(r.filter((x) => x.status === 'fulfilled').length, 1, `round ${round}`);
      const lost = r.find((x) => x.status === 'rejected');
      assert.ok(lost && isArclineError(lost.reason, 'CONFLICT'), `round ${round}: ${String(lost)}`);
    }
    const c = await a.catchUp(box.id, 1);
    assert.equal(c?.changed.count, 20);
    assert.equal(c?.row?.uidnext, 21);
    const journal = await a.accountChangesSince(acct, 0, 100);
    assert.equal(journal?.filter((x) => x.kind === 'append').length, 20, 'the losers left no journal entry');
  });

  test('a write publishes (account, aseq) at its commit; the other node reads it from the journal', async () => {
    const acct = account() as AccountId;
    const box = await a.createMailbox(acct, 'INBOX', true);
    const notifier = await Notifier.start({
      session: { url: pg.db().url, connectTimeoutMs: 5000, applicationName: 'arcline-test' },
    });
    try {
      const heard: number[] = [];
      const stop = notifier.watchAccount(acct, (aseq) => heard.push(aseq));
      await a.write(box.id, {
        insert: [{ uid: 1, base: 'n1', inNew: false, letters: '', modseq: 2, size: 1, internalDate: 1 }],
        journal: [{ modseq: 2, kind: 'append', uid: 1, base: 'n1' }],
        counters: { uidnext: 2, highestmodseq: 2 },
      });
      const state = await b.accountState(acct);
      await waitFor(() => heard.includes(state), 'the notification of the write');
      const [change] = (await b.accountChangesSince(acct, state - 1, 10)) ?? [];
      assert.equal(change?.kind, 'append');
      // A mailbox event is published too.
      await b.renameMailbox(box.id, 'Renamed');
      const renamed = await a.accountState(acct);
      await waitFor(() => heard.includes(renamed), 'the notification of the rename');
      stop();
    } finally {
      await notifier.close();
    }
  });

  test('two nodes writing mailboxes of one account: one journal, numbered in commit order, copies counted once each', async () => {
    const acct = account();
    const [x, y] = await Promise.all([a.createMailbox(acct, 'X', true), b.createMailbox(acct, 'Y', true)]);
    const start = await a.accountState(acct);
    const appendAll = async (ix: PostgresMailIndex, box: MailboxRow, tag: string) => {
      for (let i = 1; i <= 30; i++) {
        // Every third message is the same email on both nodes (a copy made on each at once).
        const base = i % 3 === 0 ? `both${i}` : `${tag}${i}`;
        const thread = { messageId: `${base}@x`, inReplyTo: [], references: [], subject: 'same' };
        await ix.write(
          box.id,
          {
            insert: [{ uid: i, base, inNew: false, letters: '', modseq: i + 1, size: 1, internalDate: i, thread }],
            journal: [{ modseq: i + 1, kind: 'append', uid: i, base }],
            counters: { uidnext: i + 1, highestmodseq: i + 1 },
          },
          { uidnext: i, highestmodseq: i },
        );
      }
    };
    await Promise.all([appendAll(a, x, 'x'), appendAll(b, y, 'y')]);
    const journal = (await a.accountChangesSince(acct, start, 1000)) ?? [];
    assert.equal(journal.length, 60);
    assert.deepEqual(
      journal.map((c) => c.aseq),
      journal.map((_, i) => start + 1 + i),
      'consecutive numbers, no gap, no duplicate',
    );
    assert.equal(await b.accountState(acct), start + 60);
    const shared = await b.locate(
      acct,
      [3, 6, 9].map((i) => emailId(`both${i}`)),
    );
    assert.deepEqual(
      shared.map((l) => l.copies.map((c) => c.name)),
      [
        ['X', 'Y'],
        ['X', 'Y'],
        ['X', 'Y'],
      ],
    );
    assert.equal(new Set(shared.map((l) => l.threadId)).size, 3, 'each email one thread, whichever node was first');
    const page = await a.accountMessages(acct, { sort: 'receivedAt', descending: false, position: 0, limit: 100 });
    assert.equal(page.total, 50, '20 + 20 emails of one node each, 10 shared');
  });

  test('a lost lock connection: the lock is gone, the next write on it fails with TEMPORARY', async () => {
    const box = await a.createMailbox(account(), 'INBOX', true);
    const lock = await a.lockMailbox(box.id);
    const { holder } = await lockState(box.id);
    assert.ok(holder);
    await (pg.pools[1] as Postgres).query('SELECT pg_terminate_backend($1)', [holder]);
    await rejectsWith(
      a.write(box.id, { counters: { uidnext: 1, highestmodseq: 2 } }, { uidnext: 1, highestmodseq: 1 }),
      'TEMPORARY',
    );
    await lock.release();
    const again = await b.lockMailbox(box.id);
    await again.release();
    // Writes go through the pool again.
    await a.write(box.id, { counters: { uidnext: 1, highestmodseq: 2 } }, { uidnext: 1, highestmodseq: 1 });
  });
});
