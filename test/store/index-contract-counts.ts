// The mail index contract (test/store/index-contract.ts), part: thread counts and collapsed
// pages against an oracle after random writes (the cases of index-thread-counts.test.ts through
// the interface), and the pruning of both journals 100,000 behind (account-journal-prune.test.ts).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { ThreadHeaders } from '../../src/mime/thread-key.ts';
import { emailId } from '../../src/store/ids.ts';
import type { MailIndexBackend } from '../../src/store/index/backend.ts';
import type { MessageRow } from '../../src/store/index/db.ts';
import { rng } from '../harness/random.ts';
import { Box, rowsOf, th, type WithIndex } from './index-contract-support.ts';

export function countsContract(name: string, withIndex: WithIndex): void {
  test(
    `${name}: thread counts and collapsed pages equal an oracle after random writes`,
    withIndex(async (ix, a) => {
      const r = rng(7);
      const names = ['INBOX', 'Archive', 'Trash'];
      const boxes = new Map<string, Box>();
      const box = async (n: string) => {
        const b = boxes.get(n) ?? new Box(ix, await ix.createMailbox(a, n, true));
        boxes.set(n, b);
        return b;
      };
      const headers = new Map<string, ThreadHeaders>();
      const bases: string[] = [];
      let mixed = 0;
      for (let step = 0; step < 120; step++) {
        const name = names[r(names.length)] as string;
        const b = await box(name);
        const have = rowsOf(await ix.messageColumns(b.row.id));
        const op = r(100);
        if (op < 40 || bases.length === 0) {
          const base = `s${step}`;
          const parent = bases.length > 0 && r(2) === 0 ? bases[r(bases.length)] : undefined;
          const ph = parent ? headers.get(parent) : undefined;
          headers.set(base, th(`${base}@x`, ph ? ph.subject : `subject ${step}`, ph?.messageId ? [ph.messageId] : []));
          bases.push(base);
          await b.append(base, {
            letters: r(2) === 0 ? 'S' : '',
            thread: headers.get(base) as ThreadHeaders,
            size: r(500),
          });
        } else if (op < 55) {
          const from = rowsOf(await ix.messageColumns((await box(names[r(names.length)] as string)).row.id));
          const m = from[r(from.length)];
          if (m && !have.some((h) => h.base === m.base)) await b.append(m.base, { letters: m.letters, thread: null });
        } else if (op < 80) {
          const m = have[r(have.length)];
          if (m) await b.flags(m.uid, m.letters.includes('S') ? m.letters.replace('S', '') : `${m.letters}S`);
        } else if (op < 96) {
          const m = have[r(have.length)];
          if (m) await b.expunge(m.uid);
        } else {
          await ix.deleteMailbox(b.row.id);
          boxes.delete(name);
        }
        if (step % 10 !== 9) continue;
        for (const mb of await ix.mailboxes(a)) {
          const kept = await ix.mailboxThreads(a, mb.oid);
          const o = await oracle(ix, a, mb.id);
          assert.deepEqual(kept, { total: o.total, unread: o.unread }, `step ${step} ${mb.name}`);
          if (kept.unread > 0 && kept.total > kept.unread) mixed++;
          for (const sort of ['receivedAt', 'size'] as const)
            for (const descending of [false, true])
              for (const [position, limit] of [
                [0, 3],
                [2, 4],
                [0, 1000],
              ] as const) {
                const q = { sort, descending, collapseThreads: true, position, limit };
                const what = `step ${step} ${mb.name} ${sort} ${descending} ${position} ${limit}`;
                const inBox = await ix.accountMessages(a, { ...q, mailboxId: mb.oid });
                assert.deepEqual(inBox, { ids: o.collapsed(o.rows, q), total: o.total }, what);
                const all = await ix.accountMessages(a, q);
                const every = await accountOracle(ix, a, new Map(bases.map((x) => [emailId(x), x])));
                assert.deepEqual(
                  all,
                  { ids: o.collapsed(every, q), total: new Set(every.map((e) => e.thread)).size },
                  what,
                );
              }
        }
      }
      assert.ok(mixed > 3, 'threads with read and unread messages were counted');
    }),
  );

  test(
    `${name}: both journals are pruned 100,000 behind; below the floor is null, above it whole`,
    withIndex(async (ix, a) => {
      const box = await ix.createMailbox(a, 'INBOX', true);
      const start = await ix.accountState(a);
      let uid = 0;
      for (let k = 0; k < 101; k++) {
        const ins: MessageRow[] = Array.from({ length: 1000 }, () => {
          uid++;
          return { uid, base: `p${uid}`, inNew: false, letters: '', modseq: uid + 1, size: 10, internalDate: uid };
        });
        await ix.write(box.id, {
          insert: ins,
          journal: ins.map((m) => ({ modseq: m.modseq, kind: 'append' as const, uid: m.uid, base: m.base })),
          counters: { uidnext: uid + 1, highestmodseq: uid + 1 },
        });
      }
      let modseq = uid + 1;
      for (let k = 0; k < 260; k++) {
        modseq++;
        await ix.write(box.id, {
          update: [{ uid: 1 + k, inNew: false, letters: 'S', modseq }],
          journal: [{ modseq, kind: 'flags', uid: 1 + k, base: `p${1 + k}` }],
          counters: { uidnext: uid + 1, highestmodseq: modseq },
        });
      }
      const last = await ix.accountState(a);
      assert.equal(last, start + 101_000 + 260);
      assert.equal(await ix.accountChangesSince(a, start, 10), null, 'below the floor');
      // The prune ran at the 256th write (the 155th flag change): 100,000 behind the last then.
      assert.equal(await ix.accountChangesSince(a, last - 100_261, 10), null);
      const recent = await ix.accountChangesSince(a, last - 1000, 2000);
      assert.equal(recent?.length, 1000);
      assert.equal(recent?.at(-1)?.aseq, last);
      assert.ok(await ix.accountChangesSince(a, last - 90_000, 5), 'well above the floor');
      // The mailbox's journal: flag entries 100,000 MODSEQs behind are gone, expunges stay.
      const floor = 101_001 + 155 - 100_000;
      assert.equal(await ix.changesSince(box.id, floor - 1), null);
      assert.equal(await ix.catchUp(box.id, floor - 1), null);
      assert.equal((await ix.changesSince(box.id, floor))?.[0]?.modseq, floor + 1);
      assert.equal((await ix.catchUp(box.id, modseq - 5))?.changed.count, 5);
    }),
  );
}

type Page = { sort: 'receivedAt' | 'size'; descending: boolean; position: number; limit: number };
interface OracleRow {
  readonly id: string;
  readonly base: string;
  readonly thread: string;
  readonly date: number;
  readonly size: number;
}

/** The thread counts of a mailbox by a full scan, and collapsed pages by sorting everything. */
async function oracle(ix: MailIndexBackend, account: string, mailbox: number) {
  const msgs = rowsOf(await ix.messageColumns(mailbox));
  const located = new Map(
    (
      await ix.locate(
        account,
        msgs.map((m) => emailId(m.base)),
      )
    ).map((l) => [l.emailId, l]),
  );
  const rows: OracleRow[] = msgs.map((m) => ({
    id: emailId(m.base),
    base: m.base,
    thread: located.get(emailId(m.base))?.threadId as string,
    date: m.date,
    size: m.size,
  }));
  const unreadThreads = new Set(
    msgs
      .filter((m) => !m.letters.includes('S') && !m.letters.includes('D'))
      .map((m) => rows.find((x) => x.base === m.base)?.thread),
  );
  return {
    rows,
    total: new Set(rows.map((x) => x.thread)).size,
    unread: unreadThreads.size,
    collapsed(list: readonly OracleRow[], q: Page): string[] {
      const key = (x: OracleRow) => (q.sort === 'size' ? x.size : x.date);
      const sorted = [...list].sort((x, y) => {
        const d = key(x) - key(y) || (x.base < y.base ? -1 : x.base > y.base ? 1 : 0);
        return q.descending ? -d : d;
      });
      const seen = new Set<string>();
      const firsts = sorted.filter((x) => !seen.has(x.thread) && seen.add(x.thread));
      return firsts.slice(q.position, q.position + q.limit).map((x) => x.id);
    },
  };
}

/** Every email of the account (one per base) with its thread, date and size. */
async function accountOracle(
  ix: MailIndexBackend,
  account: string,
  bases: ReadonlyMap<string, string>,
): Promise<OracleRow[]> {
  const page = await ix.accountMessages(account, {
    sort: 'receivedAt',
    descending: false,
    position: 0,
    limit: 100_000,
  });
  return (await ix.locate(account, page.ids)).map((l) => ({
    id: l.emailId,
    base: bases.get(l.emailId) as string,
    thread: l.threadId,
    date: l.internalDate,
    size: l.size,
  }));
}
