// Clients that make errors on purpose (issue #10 item 9, SMTP part): every RCPT counts against
// max_recipients; refused recipients and bad commands slow a session and then end it (Postfix
// smtpd_soft_error_limit / smtpd_hard_error_limit), and on port 25 the errors of an address
// follow it into its next session; a NUL byte in a message is refused on both ports.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { authenticatedSubmission, envelope, RawSmtp, type Reply } from '../harness/smtp-client.ts';

const PASSWORD = 'secret-password';

/** Sends each line and reads its reply, with the time each reply took. */
async function timed(c: RawSmtp, lines: readonly string[]): Promise<{ reply: Reply; ms: number }[]> {
  const out: { reply: Reply; ms: number }[] = [];
  for (const line of lines) {
    const started = performance.now();
    const reply = await c.cmd(line);
    out.push({ reply, ms: performance.now() - started });
    if (c.closed) break;
  }
  return out;
}

// In the main thread and in two SMTP threads (docs/architecture.md §8): a client's next session
// is slowed whichever thread takes it.
for (const threads of [0, 2])
  describe(`recipient limit and error limits (soft 3, hard 6, delay 200ms; SMTP threads: ${threads})`, () => {
    let s: TestServer;
    before(async () => {
      s = await startTestServer({
        smtp: `max_connections_per_ip = 100\nsoft_error_limit = 3\nhard_error_limit = 6\nerror_delay = "200ms"\nthreads = ${threads}`,
        submission: 'max_connections_per_ip = 100',
      });
    });
    after(() => s.stop());

    test('1,001 RCPTs of the same recipient: 100 accepted, the rest 452 4.5.3, one copy delivered', async () => {
      const c = await RawSmtp.connect(s.port);
      await envelope(c, 'a@remote.example', []);
      c.write('RCPT TO:<alice@example.test>\r\n'.repeat(1001));
      const codes: number[] = [];
      for (let i = 0; i < 1001; i++) codes.push((await c.read()).code);
      assert.equal(codes.filter((x) => x === 250).length, 100);
      assert.deepEqual(new Set(codes.slice(100)), new Set([452]));
      // The 452s are not errors: the session goes on (Postfix smtpd_recipient_overshoot_limit).
      assert.equal((await c.cmd('DATA')).code, 354);
      c.write('Subject: many rcpts\r\n\r\nx\r\n.\r\n');
      assert.equal((await c.read()).code, 250);
      assert.equal((await s.newFiles('alice@example.test')).length, 1);
      c.close();
    });

    test('unknown users: replies slow down past the soft limit, the hard limit closes with 421', async () => {
      const c = await RawSmtp.connect(s.port, '127.0.0.1', '127.0.0.2');
      await envelope(c, 'a@remote.example', []);
      const r = await timed(
        c,
        Array.from({ length: 6 }, (_, i) => `RCPT TO:<nobody${i}@example.test>`),
      );
      assert.deepEqual(
        r.map((x) => x.reply.code),
        [550, 550, 550, 550, 550, 550],
      );
      // Errors 1-3 at full speed; the 4th reply waits 200 ms, the 5th 400, the 6th 600.
      for (const i of [0, 1, 2]) assert.ok((r[i]?.ms ?? 0) < 150, `reply ${i + 1}: ${r[i]?.ms} ms`);
      for (const [i, min] of [
        [3, 190],
        [4, 390],
        [5, 590],
      ] as const)
        assert.ok((r[i]?.ms ?? 0) >= min, `reply ${i + 1}: ${r[i]?.ms} ms`);
      assert.equal((await c.read()).text, '421 4.7.0 Too many errors, closing connection');
      await c.waitClosed();
      await s.logged((l) => l.msg === 'client disconnected: too many errors' && l.ip === '127.0.0.2');
    });

    test('port 25: the next session of that address starts slowed; another address does not', async () => {
      // Several sessions: with SMTP threads they land on different threads (the memory is shared).
      for (let i = 0; i < 4; i++) {
        const c = await RawSmtp.connect(s.port, '127.0.0.1', '127.0.0.2');
        await envelope(c, 'a@remote.example', []);
        const [first] = await timed(c, ['RCPT TO:<nobody@example.test>']);
        assert.ok((first?.ms ?? 0) >= 190, `first reply of new session ${i + 1}: ${first?.ms} ms`);
        c.close();
      }
      const other = await RawSmtp.connect(s.port, '127.0.0.1', '127.0.0.3');
      await envelope(other, 'a@remote.example', []);
      const [fast] = await timed(other, ['RCPT TO:<nobody@example.test>']);
      assert.ok((fast?.ms ?? 0) < 150, `another address: ${fast?.ms} ms`);
      other.close();
    });

    test('bad commands count as errors too', async () => {
      const c = await RawSmtp.connect(s.port, '127.0.0.1', '127.0.0.4');
      await c.read();
      await c.cmd('EHLO client.example');
      const r = await timed(c, [
        'MAIL FROM:<broken',
        'RCPT TO:<x@example.test>',
        'MAIL FROM:<',
        'DATA',
        'VRFY',
        'MAIL FROM:<>>',
      ]);
      assert.deepEqual(
        r.map((x) => Math.floor(x.reply.code / 100)),
        [5, 5, 5, 5, 5, 5],
      );
      assert.equal((await c.read()).text, '421 4.7.0 Too many errors, closing connection');
    });

    test('submission: errors count per session only (a household behind one address is not slowed)', async () => {
      const session = () => authenticatedSubmission(s.submissionPort, 'alice@example.test', PASSWORD, '127.0.0.5');
      const c = await session();
      const r = await timed(
        c,
        Array.from({ length: 6 }, (_, i) => `RCPT TO:<nobody${i}@example.test>`),
      );
      assert.equal(r.at(-1)?.reply.code, 550);
      assert.equal((await c.read()).text, '421 4.7.0 Too many errors, closing connection');
      const next = await session();
      const [fast] = await timed(next, ['RCPT TO:<nobody@example.test>']);
      assert.ok((fast?.ms ?? 0) < 150, `first error of the next session: ${fast?.ms} ms`);
      next.close();
    });

    test('a NUL byte in DATA is refused on port 25 and on submission; nothing is stored', async () => {
      const c = await RawSmtp.connect(s.port, '127.0.0.1', '127.0.0.6');
      await envelope(c, 'a@remote.example', ['bob@example.test']);
      assert.equal((await c.cmd('DATA')).code, 354);
      c.write('Subject: nul\r\n\r\nbefore\0after\r\n.\r\n');
      assert.equal((await c.read()).text, '554 5.6.0 Message contains NUL characters');
      c.close();
      assert.deepEqual(await s.newFiles('bob@example.test'), []);
      const sub = await authenticatedSubmission(s.submissionPort, 'alice@example.test', PASSWORD, '127.0.0.6');
      assert.equal((await sub.cmd('RCPT TO:<bob@example.test>')).code, 250);
      assert.equal((await sub.cmd('DATA')).code, 354);
      sub.write('From: alice@example.test\r\nSubject: nul\r\n\r\n\0\r\n.\r\n');
      assert.equal((await sub.read()).text, '554 5.6.0 Message contains NUL characters');
      sub.close();
      assert.deepEqual(await s.newFiles('bob@example.test'), []);
    });
  });
