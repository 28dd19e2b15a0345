// Inbound SMTP in several threads (src/smtp/threads/, docs/architecture.md §8): connections
// really spread over the threads, and what must be one for the server still is: the
// per-client connection limit counts a client's connections in every thread, the messages of
// every thread reach the one store, and /metrics sums the threads' counters.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

const THREADS = 2;
const PER_IP = 24;

describe('inbound SMTP in threads', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      smtp: `threads = ${THREADS}\nmax_connections_per_ip = ${PER_IP}`,
      extra: '[metrics]\nlisten = ["127.0.0.1:0"]',
      users: ['alice@example.test'],
    });
  });
  after(() => s.stop());

  test('a client at max_connections_per_ip is refused whichever thread it reaches', async () => {
    const open: RawSmtp[] = [];
    for (let i = 0; i < PER_IP; i++) {
      const c = await RawSmtp.connect(s.port);
      assert.equal((await c.read()).code, 220);
      await c.cmd(`EHLO c${i}.example`);
      open.push(c);
    }
    // The sessions were spread over the threads (each thread logs its id): the limit below is
    // the shared one, not one thread's. 24 connections all on one of 2 threads: p = 2^-23.
    const threads = new Set<unknown>();
    for (let i = 0; i < PER_IP; i++) {
      const line = await s.logged((l) => l.msg === 'smtp connect' && threads.size < THREADS && !threads.has(l.thread));
      threads.add(line.thread);
      if (threads.size === THREADS) break;
    }
    assert.equal(threads.size, THREADS);
    for (let i = 0; i < 6; i++) {
      const extra = await RawSmtp.connect(s.port);
      const r = await extra.read();
      assert.equal(r.code, 421, r.text);
      assert.match(r.text, /^421 4\.7\.0 /);
      extra.close();
    }
    // One session ends: its slot is free at once, for a connection on any thread.
    await open.pop()?.cmd('QUIT');
    const again = await RawSmtp.connect(s.port);
    assert.equal((await again.read()).code, 220);
    again.close();
    for (const c of open) c.close();
  });

  test('messages taken by every thread are delivered to the one store, and /metrics adds them up', async () => {
    const before = (await s.newFiles('alice@example.test')).length;
    const N = 40;
    // Two rounds of 20 sessions at once (the per-client limit is 24).
    const send = (from: number) =>
      Promise.all(
        Array.from({ length: N / 2 }, async (_, k) => {
          const i = from + k;
          const c = await RawSmtp.connect(s.port);
          await envelope(c, 'a@remote.example', ['alice@example.test']);
          await c.cmd('DATA');
          c.write(`Subject: threads ${i}\r\n\r\nmessage ${i}\r\n.\r\n`);
          assert.equal((await c.read()).code, 250);
          await c.cmd('QUIT');
          c.close();
        }),
      );
    await send(0);
    await send(N / 2);
    assert.equal((await s.newFiles('alice@example.test')).length, before + N);
    const port = s.server.metrics[0]?.port;
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
    const counted = /^arcline_smtp_messages_total\{service="smtp"\} (\d+)$/m.exec(text);
    assert.ok(counted, 'the SMTP threads\u2019 counter is in /metrics');
    assert.ok(Number(counted[1]) >= N, text);
    // Process-wide metrics once (the main thread's), not once per thread.
    assert.equal(text.match(/^arcline_process_cpu_seconds_total /gm)?.length, 1);
  });
});
