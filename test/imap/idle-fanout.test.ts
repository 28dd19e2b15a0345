// Many sessions idling on one mailbox (issue #11, IDLE at scale): each delivery reaches every
// one of them as `* n EXISTS`, the message is \Recent for exactly one (RFC 3501 §2.3.2), and the
// updates of one change arrive together (one flush and one write per session; src/imap/selected.ts).

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';

const SESSIONS = 40;

/** A raw connection that keeps every line it received; wait() resolves at the first line (from
 *  `from` on) that matches. */
async function lines(port: number) {
  const sock = net.connect(port, '127.0.0.1');
  await new Promise((r) => sock.once('connect', r));
  const got: string[] = [];
  let buf = '';
  let wake: (() => void) | null = null;
  sock.setEncoding('latin1');
  sock.on('data', (d: string) => {
    buf += d;
    for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
      got.push(buf.slice(0, i));
      buf = buf.slice(i + 2);
    }
    wake?.();
  });
  const wait = async (match: RegExp, from = 0) => {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const i = got.findIndex((l, k) => k >= from && match.test(l));
      if (i >= 0) return i;
      assert.ok(Date.now() < deadline, `timed out waiting for ${match}: ${got.slice(-5).join(' | ')}`);
      await new Promise<void>((r) => {
        wake = r;
        setTimeout(r, 100);
      });
    }
  };
  return { got, wait, send: (s: string) => sock.write(s), close: () => sock.destroy() };
}

describe('IDLE fan-out: many sessions idling on one mailbox', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ imap: `max_connections_per_ip = ${SESSIONS + 10}` });
  });
  after(() => s.stop());

  const deliver = async (smtp: RawSmtp, subject: string) => {
    assert.equal((await smtp.cmd('MAIL FROM:<a@remote.example>')).code, 250);
    assert.equal((await smtp.cmd('RCPT TO:<alice@example.test>')).code, 250);
    assert.equal((await smtp.cmd('DATA')).code, 354);
    assert.equal((await smtp.cmd(`Subject: ${subject}\r\n\r\nx\r\n.`)).code, 250);
  };

  test(`a delivery reaches all ${SESSIONS} idling sessions, \\Recent for exactly one`, async () => {
    const clients = await Promise.all(Array.from({ length: SESSIONS }, () => lines(s.imapPort)));
    for (const c of clients) c.send('a LOGIN alice@example.test secret-password\r\n');
    await Promise.all(clients.map((c) => c.wait(/^a OK /)));
    for (const c of clients) c.send('b SELECT INBOX\r\n');
    await Promise.all(clients.map((c) => c.wait(/^b OK /)));
    for (const c of clients) c.send('c IDLE\r\n');
    const idling = await Promise.all(clients.map((c) => c.wait(/^\+ /)));

    const smtp = await RawSmtp.connect(s.port);
    await smtp.read();
    await smtp.cmd('EHLO client.example');
    await deliver(smtp, 'one');
    const at = await Promise.all(clients.map((c, i) => c.wait(/^\* 1 EXISTS$/, idling[i])));
    // RFC 3501 §7.3.2: RECENT follows EXISTS; the new message is recent in one session only.
    const recent = clients.map((c, i) => c.got[(at[i] as number) + 1]);
    assert.equal(recent.filter((l) => l === '* 1 RECENT').length, 1, recent.join(' | '));
    assert.equal(recent.filter((l) => l === '* 0 RECENT').length, SESSIONS - 1);

    await deliver(smtp, 'two');
    await Promise.all(clients.map((c, i) => c.wait(/^\* 2 EXISTS$/, (at[i] as number) + 1)));
    smtp.close();

    // DONE ends IDLE with the tagged OK; the view is consistent (both messages fetchable).
    for (const c of clients) c.send('DONE\r\nd UID FETCH 1:* (UID)\r\n');
    for (const c of clients) {
      const done = await c.wait(/^d /);
      assert.match(c.got[done] ?? '', /^d OK /);
      assert.deepEqual(
        c.got.slice(done - 2, done),
        ['* 1 FETCH (UID 1)', '* 2 FETCH (UID 2)'],
        c.got.slice(-6).join(' | '),
      );
      assert.ok(c.got.includes('c OK IDLE terminated'));
      // Every update line appeared once: no EXISTS twice for the same message.
      assert.equal(c.got.filter((l) => l === '* 2 EXISTS').length, 1);
      c.close();
    }
  });
});
