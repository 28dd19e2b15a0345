// `npm run bench:imap`: IMAP on a mailbox of N messages (default 10,000; `-- --messages 100000`).
// Measures the first SELECT (indexing every new file and moving it to cur/), later SELECTs,
// UID FETCH 1:* (UID FLAGS), FETCH 1:* (ENVELOPE BODYSTRUCTURE) cold and from the index cache,
// a NOOP rescan, SEARCH by header and by body, a QRESYNC resynchronisation after 100 flag
// changes made by another session, APPEND throughput, and the IDLE notification latency
// (SMTP 250 -> "* n EXISTS" on an idling connection, p50/p99 over 200 messages).

import net from 'node:net';
import { parseArgs } from 'node:util';
import type { AccountId } from '../src/core/ids.ts';
import { RawImap } from '../test/harness/imap-client.ts';
import { startTestServer } from '../test/harness/server.ts';
import { RawSmtp } from '../test/harness/smtp-client.ts';

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
c.timeoutMs = 600_000;
await c.cmd('LOGIN alice@example.test secret-password');
const timed = async (what: string, cmd: string) => {
  t = performance.now();
  await c.cmd(cmd);
  row(what, performance.now() - t);
};
await timed('first SELECT (indexes every new file, new/ -> cur/)', 'SELECT INBOX');
await timed('SELECT again at once (rescans: new/ and cur/ just changed)', 'SELECT INBOX');
// A directory listing is trusted to be complete 2 s after the directories last changed; from
// then on a SELECT only checks their mtimes (the steady state of a client re-selecting).
await new Promise((r) => setTimeout(r, 2500));
await timed('SELECT again, 2.5 s later (one rescan, then trusted)', 'SELECT INBOX');
await timed('SELECT again (steady state)', 'SELECT INBOX');
await timed('UID FETCH 1:* (UID FLAGS)', 'UID FETCH 1:* (UID FLAGS)');
await timed('FETCH 1:* (ENVELOPE BODYSTRUCTURE), cold', 'FETCH 1:* (ENVELOPE BODYSTRUCTURE)');
await timed('FETCH 1:* (ENVELOPE BODYSTRUCTURE), from the index cache', 'FETCH 1:* (ENVELOPE BODYSTRUCTURE)');
await timed('NOOP (rescan of new/ and cur/)', 'NOOP');
await timed('SEARCH SUBJECT, first time (reads every header)', 'SEARCH SUBJECT bench');
await timed('SEARCH FROM, later (header fields cached in the index)', 'SEARCH FROM nobody-matches');
await timed('SEARCH BODY (reads and decodes every body)', 'SEARCH BODY nomatch-zzz');

// QRESYNC: a phone comes back after another client changed 100 messages' flags.
{
  const { client: phone } = await RawImap.connect(s.imapPort);
  phone.timeoutMs = 600_000;
  await phone.cmd('LOGIN alice@example.test secret-password');
  await phone.cmd('ENABLE QRESYNC');
  const sel = await phone.cmd('SELECT INBOX');
  const validity = /UIDVALIDITY (\d+)/.exec(sel.join('\n'))?.[1];
  const modseq = /HIGHESTMODSEQ (\d+)/.exec(sel.join('\n'))?.[1];
  await phone.cmd('UNSELECT');
  await c.cmd('SELECT INBOX');
  await c.cmd(`STORE 1:100 +FLAGS.SILENT (\\Seen)`);
  t = performance.now();
  const re = await phone.cmd(`SELECT INBOX (QRESYNC (${validity} ${modseq}))`);
  row(
    `QRESYNC SELECT after 100 flag changes (${re.filter((l) => l.includes(' FETCH ')).length} FETCH lines)`,
    performance.now() - t,
  );
  t = performance.now();
  await phone.cmd(`UID FETCH 1:* (FLAGS) (CHANGEDSINCE ${modseq})`);
  row('UID FETCH 1:* (FLAGS) (CHANGEDSINCE) after them', performance.now() - t);
  phone.close();
}

// APPEND throughput: 500 messages of 2 KB, one after the other (each durable before its OK).
{
  const APPENDS = 500;
  t = performance.now();
  for (let i = 0; i < APPENDS; i++) {
    // One write per command: three small ones would meet Nagle and delayed ACKs (40 ms each).
    c.write(Buffer.concat([Buffer.from(`ap${i} APPEND Drafts {${body.length}+}\r\n`), body, Buffer.from('\r\n')]));
    await c.until(`ap${i}`);
  }
  const secs = (performance.now() - t) / 1000;
  console.log(
    `| APPEND ${APPENDS} x 2 KB, sequential | ${(secs * 1000).toFixed(0)} ms (${Math.round(APPENDS / secs)} msg/s) |`,
  );
}

// IDLE latency: from the SMTP 250 to "* n EXISTS" on an idling connection. Measured 2.5 s after
// the last change to cur/ above (within 2 s of one, a delivery also relists cur/; see
// docs/benchmarks.md).
await new Promise((r) => setTimeout(r, 2500));
{
  const idle = await rawLines(s.imapPort);
  idle.send('i1 LOGIN alice@example.test secret-password\r\n');
  await idle.wait((l) => l.startsWith('i1 '));
  idle.send('i2 SELECT INBOX\r\n');
  await idle.wait((l) => l.startsWith('i2 '));
  idle.send('i3 IDLE\r\n');
  await idle.wait((l) => l.startsWith('+'));
  const smtp = await RawSmtp.connect(s.port);
  await smtp.read();
  await smtp.cmd('EHLO bench');
  const lat: number[] = [];
  for (let i = 0; i < 200; i++) {
    await smtp.cmd('MAIL FROM:<a@b.example>');
    await smtp.cmd('RCPT TO:<alice@example.test>');
    await smtp.cmd('DATA');
    const exists = idle.wait((l) => / EXISTS$/.test(l));
    smtp.write(`Subject: idle ${i}\r\n\r\nx\r\n.\r\n`);
    await smtp.read();
    const t250 = performance.now();
    const tExists = await exists;
    lat.push(Math.max(0, tExists - t250));
  }
  smtp.close();
  idle.close();
  lat.sort((a, b) => a - b);
  const pct = (p: number) => lat[Math.min(lat.length - 1, Math.floor((p / 100) * lat.length))] ?? 0;
  console.log(
    `| IDLE latency, SMTP 250 -> EXISTS (200 messages) | p50 ${pct(50).toFixed(1)} ms, p99 ${pct(99).toFixed(1)} ms |`,
  );
}
console.log(
  `\nprocess RSS at the end: ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MB (server and client in one process)`,
);
c.close();
await s.stop();

/** A raw connection that timestamps every line as it arrives (for latency). */
async function rawLines(port: number) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  let buf = '';
  const waiters: { match: (l: string) => boolean; resolve: (t: number) => void }[] = [];
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => {
    const now = performance.now();
    buf += d;
    for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      const w = waiters.findIndex((x) => x.match(line));
      if (w >= 0) waiters.splice(w, 1)[0]?.resolve(now);
    }
  });
  return {
    send: (s: string) => sock.write(s),
    wait: (match: (l: string) => boolean) => new Promise<number>((resolve) => waiters.push({ match, resolve })),
    close: () => sock.destroy(),
  };
}
