// `npm run bench:index-insert`: what indexing new messages costs, threads included (issue #17):
// `--messages` (10,000) messages delivered into an INBOX (Maildir files in new/, as delivery
// leaves them; a third of them replies naming an earlier one in In-Reply-To and References),
// then the first sync of the mailbox, which indexes them all (the index worker reads each new
// file's header block for its thread, docs/jmap-email.md "Threads"). Reported per round: the
// time of that sync, and of an index rebuild (the index deleted, the store reopened, the same
// sync), wall time and the process's CPU time (all threads: steadier on a busy machine). The
// files are written before the clock starts. Run on a commit before threads for the
// cost without them (the script needs only createMaildirStore and Mailbox.sync).
//
//   npm run bench:index-insert [-- --messages 10000 --rounds 3]

import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import type { AccountId } from '../src/core/ids.ts';
import { silentLogger } from '../src/core/log.ts';
import { createMaildirStore } from '../src/store/maildir/index.ts';

const { values } = parseArgs({ options: { messages: { type: 'string' }, rounds: { type: 'string' } } });
const N = Number(values.messages ?? 10_000);
const ROUNDS = Number(values.rounds ?? 3);
const ACCOUNT = 'bench@example.test' as AccountId;

function message(i: number): Buffer {
  const reply = i % 3 !== 0;
  const root = i - (i % 3);
  const refs = reply ? `In-Reply-To: <m${i - 1}@bench.example>\r\nReferences: <m${root}@bench.example>\r\n` : '';
  return Buffer.from(
    `Return-Path: <a@sender.example>\r\nFrom: A <a@sender.example>\r\nTo: <${ACCOUNT}>\r\n` +
      `Subject: ${reply ? 'Re: ' : ''}topic ${root}\r\nDate: Mon, 7 Dec 2026 10:00:00 +0000\r\n` +
      `Message-ID: <m${i}@bench.example>\r\n${refs}MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n` +
      `${'Some words of a body. '.repeat(40)}\r\n`,
  );
}

const fmt = (ms: number[]) => ms.map((m) => `${(m / 1000).toFixed(2)} s`).join(', ');
const synced: number[] = [];
const rebuilt: number[] = [];
/** CPU time of the process (every thread: the index worker's too) per sync, in order. */
const cpu: number[] = [];
for (let r = 0; r < ROUNDS; r++) {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-insert-'));
  const open = () =>
    createMaildirStore({
      root: join(dir, 'mail'),
      spoolDir: join(dir, 'spool'),
      indexPath: join(dir, 'index.db'),
      log: silentLogger(),
    });
  let store = open();
  try {
    await store.createAccount(ACCOUNT);
    const inbox = join(dir, 'mail', 'example.test', 'bench', 'new');
    await mkdir(inbox, { recursive: true });
    for (let i = 0; i < N; i++) {
      const raw = message(i);
      await writeFile(join(inbox, `${1_800_000_000 + i}.M${i}P1Q1.bench,S=${raw.length}`), raw);
    }
    const sync = async () => {
      await store.openIndex();
      const t = performance.now();
      const c = process.cpuUsage();
      const box = await store.accounts.open(ACCOUNT, 'INBOX');
      const s = await box.sync();
      if (s.messages.length !== N) throw new Error(`${s.messages.length} messages indexed`);
      store.accounts.release(ACCOUNT, box);
      const used = process.cpuUsage(c);
      cpu.push((used.user + used.system) / 1000);
      return performance.now() - t;
    };
    synced.push(await sync());
    await store.close();
    for (const f of ['index.db', 'index.db-wal', 'index.db-shm']) await rm(join(dir, f), { force: true });
    store = open();
    rebuilt.push(await sync());
  } finally {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  }
}
console.log(`${N} new messages indexed by the first sync of INBOX, ${ROUNDS} rounds:`);
console.log(`  delivered files indexed: ${fmt(synced)}`);
console.log(`  after an index rebuild:  ${fmt(rebuilt)}`);
console.log(`  CPU time (all threads), each sync in turn: ${fmt(cpu)}`);
