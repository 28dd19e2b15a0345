// `npm run bench:store-query`: the account-wide listing JMAP Email/query is built on
// (Mailboxes.accountMessages, store/index/db.ts; issue #17) on an account of `--messages`
// (100,000) messages in 4 mailboxes, a tenth of them with a copy in a second mailbox (one email,
// two messages). The index is filled directly (MailIndex.write, as a reconcile of that many files
// does); every query goes through the index worker (IndexClient), as the server's do. Reported:
// the median and worst time of a 50-result page, first and deep (position 50,000), by date and by
// size, account-wide and in one mailbox; and of locate() for those 50 ids.
//
//   npm run bench:store-query [-- --messages 100000 --rounds 50]

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { IndexClient } from '../src/store/index/client.ts';
import { MailIndex, type MessageRow } from '../src/store/index/db.ts';

const { values } = parseArgs({ options: { messages: { type: 'string' }, rounds: { type: 'string' } } });
const N = Number(values.messages ?? 100_000);
const ROUNDS = Number(values.rounds ?? 50);
const ACCOUNT = 'bench@example.test';

const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-query-'));
const path = join(dir, 'mailindex.db');
try {
  const fillStart = performance.now();
  const index = new MailIndex(path);
  const boxes = ['INBOX', 'Archive', 'Sent', 'Lists'].map((name) => index.createMailbox(ACCOUNT, name, true));
  const next = boxes.map(() => 1);
  const pending: MessageRow[][] = boxes.map(() => []);
  const flush = (b: number) => {
    const rows = pending[b] as MessageRow[];
    if (rows.length === 0) return;
    const last = rows.at(-1) as MessageRow;
    index.write((boxes[b] as { id: number }).id, {
      insert: rows,
      journal: rows.map((r) => ({ modseq: r.modseq, kind: 'append', uid: r.uid, base: r.base })),
      counters: { uidnext: last.uid + 1, highestmodseq: last.modseq },
    });
    pending[b] = [];
  };
  const add = (b: number, base: string, i: number) => {
    const uid = next[b] as number;
    next[b] = uid + 1;
    (pending[b] as MessageRow[]).push({
      uid,
      base,
      inNew: false,
      letters: i % 3 === 0 ? 'S' : '',
      modseq: uid + 1,
      size: 1000 + ((i * 7919) % 200_000),
      internalDate: Date.UTC(2020, 0, 1) + i * 60_000 + ((i * 104_729) % 3_600_000),
    });
    if ((pending[b] as MessageRow[]).length >= 5000) flush(b);
  };
  for (let i = 0; i < N; i++) {
    const base = `${1_600_000_000 + i}.M${i}P1Q${i}.bench,S=${1000 + i},W=${1000 + i}`;
    add(i % 4, base, i);
    if (i % 10 === 0) add((i + 1) % 4, base, i); // a copy: the same email in a second mailbox
  }
  for (const b of boxes.keys()) flush(b);
  index.close();
  const fillMs = performance.now() - fillStart;

  const client = new IndexClient(path);
  await client.open();
  const inbox = (boxes[0] as { oid: string }).oid;
  const cases: [string, Parameters<IndexClient['accountMessages']>[1]][] = [
    ['date, newest first, first page', { sort: 'receivedAt', descending: true, position: 0, limit: 50 }],
    ['date, position 50,000', { sort: 'receivedAt', descending: true, position: 50_000, limit: 50 }],
    ['size, largest first, first page', { sort: 'size', descending: true, position: 0, limit: 50 }],
    ['date, oldest first, first page', { sort: 'receivedAt', descending: false, position: 0, limit: 50 }],
    [
      'INBOX only, date, first page',
      { sort: 'receivedAt', descending: true, mailboxId: inbox, position: 0, limit: 50 },
    ],
  ];
  const timeIt = async (fn: () => Promise<unknown>) => {
    const ms: number[] = [];
    await fn(); // warm the statement and the page cache
    for (let r = 0; r < ROUNDS; r++) {
      const t = performance.now();
      await fn();
      ms.push(performance.now() - t);
    }
    ms.sort((a, b) => a - b);
    return { median: ms[Math.floor(ms.length / 2)] as number, worst: ms.at(-1) as number };
  };
  const out: string[] = [];
  let total = 0;
  let page: string[] = [];
  for (const [name, q] of cases) {
    const r = await timeIt(async () => {
      const res = await client.accountMessages(ACCOUNT, q);
      if (page.length === 0) {
        page = res.ids;
        total = res.total;
      }
    });
    out.push(`${name.padEnd(36)} median ${r.median.toFixed(2)} ms, worst ${r.worst.toFixed(2)} ms`);
  }
  const loc = await timeIt(() => client.locate(ACCOUNT, page));
  out.push(`${'locate() of 50 ids'.padEnd(36)} median ${loc.median.toFixed(2)} ms, worst ${loc.worst.toFixed(2)} ms`);
  await client.close();
  console.log(
    `${N + N / 10} messages (${total} emails account-wide) in 4 mailboxes, index filled in ${(fillMs / 1000).toFixed(1)} s; ${ROUNDS} rounds each:`,
  );
  for (const l of out) console.log(`  ${l}`);
} finally {
  await rm(dir, { recursive: true, force: true });
}
