// `npm run bench:index-backends`: the mail index's two backends side by side in one run
// (issue #18, docs/cluster.md "The mail index"): IndexClient (SQLite in its worker threads) and
// PostgresMailIndex on the PostgreSQL of this machine (or ARCLINE_TEST_PG), sequential calls:
//   append:              one message inserted with its journal entry and counters, checked
//                        against the counters it was computed from (the Maildir store's APPEND
//                        and delivery path), p50/p99 over APPENDS;
//   messageColumns:      a mailbox of 10,000 messages read whole (SELECT of a big mailbox);
//   catchUp of 100:      the changes of 100 flag writes read back after their MODSEQ.
//
//   npm run bench:index-backends                 APPENDS = 1000
//   npm run bench:index-backends -- --appends 3000

import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { MailIndexBackend } from '../src/store/index/backend.ts';
import { IndexClient } from '../src/store/index/client.ts';
import type { MessageRow } from '../src/store/index/db.ts';
import { PostgresMailIndex } from '../src/store/index/postgres.ts';
import { freshDatabase } from '../test/harness/postgres.ts';

const { values } = parseArgs({ options: { appends: { type: 'string' } } });
const APPENDS = Number(values.appends ?? 1000);
const ACCOUNT = 'bench@example.test';

const pct = (ms: number[], p: number) => {
  const s = [...ms].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor((s.length * p) / 100))] as number;
};
const fmt = (ms: number[]) => `${pct(ms, 50).toFixed(2)} / ${pct(ms, 99).toFixed(2)} ms`;

async function timed(n: number, fn: (i: number) => Promise<unknown>): Promise<number[]> {
  const ms: number[] = [];
  for (let i = 0; i < n; i++) {
    const t0 = performance.now();
    await fn(i);
    ms.push(performance.now() - t0);
  }
  return ms;
}

const row = (uid: number, modseq: number, prefix: string): MessageRow => ({
  uid,
  base: `${prefix}${uid}.M${uid}P1.bench,S=1000`,
  inNew: false,
  letters: '',
  modseq,
  size: 1000,
  internalDate: 1_700_000_000_000 + uid,
  thread: { messageId: `${prefix}${uid}@bench`, inReplyTo: [], references: [], subject: `subject ${uid % 50}` },
});

async function run(ix: MailIndexBackend): Promise<Record<string, string>> {
  await ix.open();
  const out: Record<string, string> = {};
  // Appends one at a time.
  const box = await ix.createMailbox(ACCOUNT, 'INBOX', true);
  let uidnext = 1;
  let modseq = 1;
  out.append = fmt(
    await timed(APPENDS, async () => {
      const expect = { uidnext, highestmodseq: modseq };
      const m = row(uidnext++, ++modseq, 'a');
      await ix.write(
        box.id,
        {
          insert: [m],
          journal: [{ modseq, kind: 'append', uid: m.uid, base: m.base }],
          counters: { uidnext, highestmodseq: modseq },
        },
        expect,
      );
    }),
  );
  // A mailbox of 10,000 read whole.
  const big = await ix.createMailbox(ACCOUNT, 'Big', true);
  for (let k = 0; k < 10; k++) {
    const rows = Array.from({ length: 1000 }, (_, i) => row(k * 1000 + i + 1, 2, 'b'));
    await ix.write(big.id, { insert: rows, counters: { uidnext: (k + 1) * 1000 + 1, highestmodseq: 2 } });
  }
  out['messageColumns 10,000'] = fmt(await timed(20, () => ix.messageColumns(big.id)));
  // 100 flag changes, then catchUp from before them.
  const mark = modseq;
  for (let i = 0; i < 100; i++) {
    modseq++;
    await ix.write(box.id, {
      update: [{ uid: i + 1, inNew: false, letters: 'S', modseq }],
      journal: [{ modseq, kind: 'flags', uid: i + 1 }],
      counters: { uidnext, highestmodseq: modseq },
    });
  }
  out['catchUp of 100 changes'] = fmt(
    await timed(100, async () => {
      const c = await ix.catchUp(box.id, mark);
      if (c?.changed.count !== 100) throw new Error('catchUp: wrong count');
    }),
  );
  return out;
}

const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-ix-'));
const db = await freshDatabase();
try {
  const sqlite = new IndexClient(join(dir, 'index.db'), null);
  const s = await run(sqlite);
  await sqlite.close();
  const pool = await db.open();
  const p = await run(new PostgresMailIndex(pool, null));
  console.log(`| operation (p50 / p99) | PostgreSQL | SQLite |\n| --- | --- | --- |`);
  for (const k of Object.keys(s)) console.log(`| ${k} | ${p[k]} | ${s[k]} |`);
} finally {
  await db.drop();
  await rm(dir, { recursive: true, force: true });
}
