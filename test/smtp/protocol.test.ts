// Our SMTP protocol core over real sockets (src/smtp/connection.ts, issue #12): replies to
// pipelined commands in one write (RFC 2920 §3.2), the STARTTLS command injection (RFC 3207 §4,
// CVE-2011-0411), AUTH exchanges (RFC 4954 §4), sequence errors, and the connection slot freed
// the moment a session ends.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

const PASSWORD = 'secret-password';
const b64 = (s: string) => Buffer.from(s).toString('base64');

/** Reads from `sock` until `n` complete replies arrived; returns the chunks they came in. */
function readReplies(sock: net.Socket | tls.TLSSocket, n: number): Promise<string[]> {
  return new Promise((resolve, reject) => {
    const chunks: string[] = [];
    const onData = (d: Buffer) => {
      chunks.push(d.toString('latin1'));
      const finals = chunks
        .join('')
        .split('\r\n')
        .filter((l) => /^\d{3} /.test(l)).length;
      if (finals >= n) {
        sock.off('data', onData);
        resolve(chunks);
      }
    };
    sock.on('data', onData);
    sock.once('error', reject);
  });
}

describe('SMTP protocol core', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ submission: true, users: ['alice@example.test'] });
  });
  after(() => s.stop());

  test('RFC 2920: the replies to a pipelined group go out in one write', async () => {
    const sock = net.connect(s.port, '127.0.0.1');
    // RFC 5321 §4.2: "220 <domain> ESMTP <text>", the product named once.
    assert.deepEqual(await readReplies(sock, 1), ['220 mx.test.example ESMTP arcline\r\n']);
    sock.write('EHLO client.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nNOOP\r\n');
    const chunks = await readReplies(sock, 4);
    assert.equal(chunks.length, 1, JSON.stringify(chunks));
    assert.match(
      chunks[0] ?? '',
      /^250-mx\.test\.example[\s\S]*\r\n250 2\.1\.0 Ok\r\n250 2\.1\.5 Ok\r\n250 2\.0\.0 Ok\r\n$/,
    );
    sock.write('DATA\r\n');
    assert.match((await readReplies(sock, 1)).join(''), /^354 /);
    sock.write('Subject: batched\r\n\r\nx\r\n.\r\nQUIT\r\n');
    const end = await readReplies(sock, 2);
    assert.equal(end.length, 1, JSON.stringify(end));
    assert.match(end[0] ?? '', /^250 2\.0\.0 Ok: message \S+ delivered\r\n221 2\.0\.0 Bye\r\n$/);
    sock.destroy();
  });

  test('a client that pipelines and never reads the replies is not buffered for: the server stops reading', async () => {
    const sock = net.connect(s.port, '127.0.0.1');
    await readReplies(sock, 1);
    sock.pause(); // never read again: our replies pile up in the kernel, then in the server
    const chunk = Buffer.from('EHLO flood.example\r\nNOOP\r\n'.repeat(2000));
    let accepted = 0;
    const until = Date.now() + 4000;
    // Write as fast as the kernel takes it; once the server stops reading, writes stall.
    while (Date.now() < until) {
      const more = sock.write(chunk);
      accepted += chunk.length;
      if (!more) {
        const drained = await Promise.race([
          new Promise<boolean>((r) => sock.once('drain', () => r(true))),
          new Promise<boolean>((r) => setTimeout(() => r(false), until - Date.now())),
        ]);
        if (!drained) break;
      }
    }
    sock.destroy();
    // Unbounded, the server answered ~10 MB of commands a second here (EHLO replies are 25
    // times their command); bounded, it takes what fills the socket buffers and then waits.
    assert.ok(accepted < 16 * 2 ** 20, `the server kept reading: ${(accepted / 2 ** 20).toFixed(1)} MB`);
  });

  test('STARTTLS: commands sent with it before the handshake are discarded (CVE-2011-0411)', async () => {
    const sock = net.connect(s.port, '127.0.0.1');
    await readReplies(sock, 1);
    sock.write('EHLO client.example\r\n');
    await readReplies(sock, 1);
    sock.write('STARTTLS\r\nMAIL FROM:<injected@remote.example>\r\n');
    assert.match((await readReplies(sock, 1)).join(''), /^220 2\.0\.0 /);
    sock.removeAllListeners('data');
    const t = tls.connect({ socket: sock, rejectUnauthorized: false });
    await new Promise((resolve, reject) => {
      t.once('secureConnect', resolve);
      t.once('error', reject);
    });
    // The injected MAIL was never run: the session starts afresh and MAIL needs EHLO again.
    t.write('MAIL FROM:<a@remote.example>\r\n');
    assert.equal((await readReplies(t, 1)).join(''), '503 5.5.1 Error: send HELO/EHLO first\r\n');
    t.write('EHLO client.example\r\n');
    const ehlo = (await readReplies(t, 1)).join('');
    assert.ok(!ehlo.includes('STARTTLS'), ehlo);
    t.write('STARTTLS\r\n');
    assert.match((await readReplies(t, 1)).join(''), /^503 5\.5\.1 /);
    t.destroy();
  });

  test('sequence errors: 503 5.5.1; unknown commands: 500 5.5.2; EXPN 502; VRFY 252; HELP 214', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    assert.equal((await c.cmd('MAIL FROM:<a@remote.example>')).text, '503 5.5.1 Error: send HELO/EHLO first');
    await c.cmd('HELO client.example');
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).text, '503 5.5.1 Error: need MAIL command');
    assert.equal((await c.cmd('DATA')).text, '503 5.5.1 Error: need MAIL command');
    assert.equal((await c.cmd('MAIL FROM:<a@remote.example>')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<a@remote.example>')).text, '503 5.5.1 Error: nested MAIL command');
    assert.equal((await c.cmd('DATA')).text, '503 5.5.1 Error: need RCPT command');
    assert.equal((await c.cmd('BDAT 10 LAST')).text, '500 5.5.2 Error: command not recognized');
    assert.equal((await c.cmd('EXPN staff')).text, '502 5.5.1 Error: EXPN not implemented');
    // Not UTF-8 (RFC 6531 §3.3): refused, not decoded into U+FFFD and accepted.
    c.write(Buffer.from('RCPT TO:<\xff\xfe@example.test>\r\n', 'latin1'));
    assert.equal((await c.read()).text, '501 5.5.2 Syntax error: command is not valid UTF-8');
    assert.equal((await c.cmd('VRFY alice')).code, 252);
    assert.equal((await c.cmd('HELP')).code, 214);
    assert.equal((await c.cmd('MAIL FROM:<a@remote.example> SIZE=999999999999')).code, 503); // still in MAIL
    assert.equal((await c.cmd('RSET')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<a@remote.example> SIZE=999999999999')).text.slice(0, 9), '552 5.3.4');
    c.close();
  });

  test('AUTH (RFC 4954 §4): "*" cancels with 501, "=" is an empty initial response, LOGIN in steps', async () => {
    const c = await RawSmtp.connect(s.submissionPort);
    await c.read();
    await c.cmd('EHLO client.test');
    await c.startTls();
    const ehlo = await c.cmd('EHLO client.test');
    assert.ok(ehlo.lines.some((l) => l === '250-AUTH PLAIN LOGIN' || l === '250 AUTH PLAIN LOGIN'));
    assert.equal((await c.cmd('AUTH PLAIN')).text, '334 ');
    assert.equal((await c.cmd('*')).text, '501 5.7.0 Authentication canceled');
    assert.equal((await c.cmd('AUTH PLAIN =')).code, 501);
    assert.equal((await c.cmd('AUTH CRAM-MD5')).code, 504);
    assert.equal((await c.cmd('AUTH LOGIN')).text, '334 VXNlcm5hbWU6');
    assert.equal((await c.cmd('not base64!')).code, 501);
    assert.equal((await c.cmd(`AUTH LOGIN ${b64('alice@example.test')}`)).text, '334 UGFzc3dvcmQ6');
    assert.equal((await c.cmd(b64(PASSWORD))).text, '235 2.7.0 Authentication successful');
    assert.equal((await c.cmd(`AUTH PLAIN ${b64(`\0alice@example.test\0${PASSWORD}`)}`)).code, 503);
    c.close();
  });
});

describe('connection slots (issue #12)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ smtp: 'max_connections_per_ip = 5' });
  });
  after(() => s.stop());

  // Regression (issue #12): smtp-source -s 20 with max_connections_per_ip = 20 got 421 because
  // sessions that had sent QUIT still counted. Here the client pipelines the end of DATA and
  // QUIT, and closes as soon as it has the 221, or without waiting for it.
  test('exactly max_connections_per_ip sessions, QUIT pipelined, reconnecting at once: never refused', async () => {
    const greetings: number[] = [];
    const worker = async (w: number) => {
      for (let i = 0; i < 20; i++) {
        const c = await RawSmtp.connect(s.port);
        const g = await c.read();
        greetings.push(g.code);
        if (g.code !== 220) {
          c.close();
          continue;
        }
        c.write(`EHLO w${w}.example\r\nMAIL FROM:<a@remote.example>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n`);
        for (let r = 0; r < 4; r++) await c.read();
        c.write(`Subject: ${w}-${i}\r\n\r\nx\r\n.\r\nQUIT\r\n`);
        assert.equal((await c.read()).code, 250);
        if (i % 2 === 0) assert.equal((await c.read()).code, 221);
        c.close();
      }
    };
    await Promise.all(Array.from({ length: 5 }, (_, w) => worker(w)));
    assert.deepEqual(
      greetings.filter((g) => g !== 220),
      [],
    );
    assert.equal(greetings.length, 100);
  });
});

describe('SMTP on a dual-stack listener', () => {
  test('an IPv4 client shows as a.b.c.d, not ::ffff:a.b.c.d, in Received and the logs', async () => {
    // A socket bound to an IPv4-mapped address gets IPv4 peers as ::ffff:a.b.c.d, as "[::]:25"
    // (the package's listener) does, without listening on every interface in a test.
    const t = await startTestServer({ smtpListen: '[::ffff:127.0.0.1]:0', users: ['alice@example.test'] });
    try {
      const c = await RawSmtp.connect(t.port, '127.0.0.1');
      await envelope(c, 'x@remote.example', ['alice@example.test']);
      assert.equal((await c.cmd('DATA')).code, 354);
      c.write('Subject: mapped\r\n\r\nx\r\n.\r\n');
      assert.equal((await c.read()).code, 250);
      c.close();
      const [msg] = (await t.messages('alice@example.test')).map((b) => b.toString());
      assert.match(msg ?? '', /^Received: from client\.example \(\[127\.0\.0\.1\]\)/m);
      assert.doesNotMatch(msg ?? '', /ffff/i);
      const connect = await t.logged((l) => l.msg === 'smtp connect');
      assert.equal(connect.ip, '127.0.0.1');
    } finally {
      await t.stop();
    }
  });
});
