// `npm run bench:imap`: IMAP on a mailbox of N messages (default 10,000; `-- --messages 100000`).
// Measures the first SELECT (indexing every new file and moving it to cur/), later SELECTs,
// UID FETCH 1:* (UID FLAGS), FETCH 1:* (ENVELOPE BODYSTRUCTURE) cold and from the index cache,
// a NOOP rescan and a header SEARCH. The full IMAP benchmark set comes with issue #6.

import { parseArgs } from 'node:util';
import type { AccountId } from '../src/core/ids.ts';
import { RawImap } from '../test/harness/imap-client.ts';
import { startTestServer } from '../test/harness/server.ts';

const { values } = parseArgs({ options: { messages: { type: 'string' } } });
const N = Number(values.messages ?? 10_000);
const s = await startTestServer();
const store = s.admin.store;
const body = Buffer.from(`From: a@b.example\r\nSubject: bench\r\n\r\n${'x'.repeat(2000)}\r\n`);
const row = (what: string, ms: number) => console.log(`| ${what} | ${ms.toFixed(0)} ms |`);
let t = performance.now();
for (let i = 0; i < N; i += 100) {
  await Promise.all(
    Array.from({ length: Math.min(100, N - i) }, async () => {
      const w = store.createSpool();
      await w.write(body);
      await store.deliver([{ account: 'alice@example.test' as AccountId, prefix: Buffer.alloc(0) }], await w.finish());
    }),
  );
}
console.log(`# IMAP on ${N} messages of 2 KB\n\n| operation | time |\n|---|---:|`);
row(`deliver ${N} messages (store, 100 at a time)`, performance.now() - t);
const { client: c } = await RawImap.connect(s.imapPort);
await c.cmd('LOGIN alice@example.test secret-password');
const timed = async (what: string, cmd: string) => {
  t = performance.now();
  await c.cmd(cmd);
  row(what, performance.now() - t);
};
await timed('first SELECT (indexes every new file, new/ -> cur/)', 'SELECT INBOX');
await timed('SELECT again', 'SELECT INBOX');
await timed('UID FETCH 1:* (UID FLAGS)', 'UID FETCH 1:* (UID FLAGS)');
await timed('FETCH 1:* (ENVELOPE BODYSTRUCTURE), cold', 'FETCH 1:* (ENVELOPE BODYSTRUCTURE)');
await timed('FETCH 1:* (ENVELOPE BODYSTRUCTURE), from the index cache', 'FETCH 1:* (ENVELOPE BODYSTRUCTURE)');
await timed('NOOP (rescan of new/ and cur/)', 'NOOP');
await timed('SEARCH SUBJECT (reads every header)', 'SEARCH SUBJECT bench');
console.log(
  `\nprocess RSS at the end: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB (server and client in one process)`,
);
c.close();
await s.stop();
