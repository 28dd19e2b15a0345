// Slowloris against SMTP and submission (issue #10 item 8): bytes that trickle in never keep a
// connection alive. A command line, a DATA, a TLS handshake, the login (submission) and the
// session each have a deadline; an honest slow client within them is served.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

const PASSWORD = 'secret-password';
const plain = (user: string) => Buffer.from(`\0${user}\0${PASSWORD}`).toString('base64');

/** Writes `data` one byte every `everyMs` until the connection closes; resolves with the time
 *  it took the server to close it. */
async function trickle(c: RawSmtp, data: string, everyMs: number): Promise<number> {
  const started = Date.now();
  for (let i = 0; !c.closed; i = (i + 1) % data.length) {
    c.write(data[i] ?? 'x');
    await new Promise((r) => setTimeout(r, everyMs));
    if (Date.now() - started > 20_000) throw new Error('still open after 20 s');
  }
  return Date.now() - started;
}

/** Reads replies until the connection closes; returns the last one. */
async function lastReply(c: RawSmtp): Promise<string> {
  let last = '';
  for (;;) {
    try {
      last = (await c.read(25_000)).text;
    } catch {
      return last;
    }
  }
}

async function submissionTls(s: TestServer): Promise<RawSmtp> {
  const c = await RawSmtp.connect(s.submissionPort);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.test')).code, 250);
  await c.startTls();
  assert.equal((await c.cmd('EHLO client.test')).code, 250);
  return c;
}

describe('deadlines (timeout = 1s)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      smtp: 'timeout = "1s"\nmax_connections_per_ip = 100',
      submission: 'max_connections_per_ip = 100\nlogin_timeout = "3s"',
    });
  });
  after(() => s.stop());

  test('port 25: a command line sent one byte at a time is cut off after timeout from its first byte', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    const [took, reply] = await Promise.all([trickle(c, 'EHLO slow.example.net', 200), lastReply(c)]);
    assert.equal(reply, '421 4.4.2 Timeout: command not completed in time, closing connection');
    assert.ok(took >= 900 && took < 5000, `closed after ${took} ms`);
    await s.logged((l) => l.msg === 'client disconnected: deadline exceeded' && l.deadline === 'command');
  });

  test('port 25: a DATA trickling below min_data_rate is cut off; nothing is stored', async () => {
    const c = await RawSmtp.connect(s.port);
    await envelope(c, 'a@remote.example', ['bob@example.test']);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: slow\r\n\r\n');
    // Complete lines, 5 bytes/s: each line keeps the idle timer going, the rate does not.
    const [took, reply] = await Promise.all([trickle(c, 'line\r\n', 200), lastReply(c)]);
    assert.equal(reply, '421 4.4.2 Timeout: message data too slow, closing connection');
    assert.ok(took < 5000, `closed after ${took} ms`);
    assert.deepEqual(await s.newFiles('bob@example.test'), []);
  });

  test('port 25: an honest slow DATA above min_data_rate is accepted even though it takes longer than timeout', async () => {
    const c = await RawSmtp.connect(s.port);
    await envelope(c, 'a@remote.example', ['alice@example.test']);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: slow but honest\r\n\r\n');
    const started = Date.now();
    const line = `${'x'.repeat(98)}\r\n`; // 100 bytes every 50 ms: 2,000 bytes/s for 2.5 s
    while (Date.now() - started < 2500) {
      c.write(line);
      await new Promise((r) => setTimeout(r, 50));
    }
    c.write('.\r\n');
    assert.equal((await c.read()).code, 250);
    c.close();
  });

  test('port 25: complete commands keep a session alive within its limits (the idle timeout still applies)', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    for (let i = 0; i < 8; i++) {
      assert.equal((await c.cmd('NOOP')).code, 250);
      await new Promise((r) => setTimeout(r, 300));
    }
    c.close();
  });

  test('submission: a command line trickled after STARTTLS is cut off too', async () => {
    const c = await submissionTls(s);
    const [took, reply] = await Promise.all([trickle(c, 'AUTH PLAIN', 200), lastReply(c)]);
    assert.match(reply, /^421 4\.4\.2 /);
    assert.ok(took < 5000, `closed after ${took} ms`);
  });

  test('submission: a client that has not authenticated within login_timeout is disconnected, whatever it sends', async () => {
    const c = await submissionTls(s);
    const started = Date.now();
    let reply = '';
    while (Date.now() - started < 10_000) {
      const r = await c.cmd('NOOP').catch(() => null);
      if (!r) break;
      reply = r.text;
      if (r.code !== 250) break;
      // Slower than smtp-server's limit of 10 commands before AUTH would notice.
      await new Promise((res) => setTimeout(res, 700));
    }
    assert.equal(reply, '421 4.7.0 Authentication not completed in time, closing connection');
    const took = Date.now() - started;
    assert.ok(took >= 2000 && took < 6000, `closed after ${took} ms`);
  });

  test('submission: an authenticated client is not held to login_timeout', async () => {
    const c = await submissionTls(s);
    assert.equal((await c.cmd(`AUTH PLAIN ${plain('alice@example.test')}`)).code, 235);
    for (let i = 0; i < 14; i++) {
      assert.equal((await c.cmd('NOOP')).code, 250);
      await new Promise((r) => setTimeout(r, 300));
    }
    c.close();
  });

  test('implicit TLS (465): a handshake sent one byte at a time is cut off', async () => {
    const started = Date.now();
    const sock = net.connect(s.submissionTlsPort, '127.0.0.1');
    await new Promise((r) => sock.once('connect', r));
    let closed = false;
    sock.on('close', () => {
      closed = true;
    });
    sock.on('error', () => {});
    // The start of a TLS ClientHello record, one byte every 200 ms.
    const hello = Buffer.from('16030100c8010000c40303', 'hex');
    for (let i = 0; !closed && Date.now() - started < 20_000; i++) {
      sock.write(hello.subarray(i % hello.length, (i % hello.length) + 1));
      await new Promise((r) => setTimeout(r, 200));
    }
    const took = Date.now() - started;
    assert.ok(closed && took < 5000, `closed after ${took} ms`);
  });

  test('STARTTLS: a handshake that never completes is cut off', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    await c.cmd('EHLO client.test');
    assert.equal((await c.cmd('STARTTLS')).code, 220);
    const started = Date.now();
    const [took] = await Promise.all([trickle(c, '\x16\x03\x01\x00', 200)]);
    assert.ok(took < 5000, `closed after ${took} ms (${Date.now() - started})`);
  });

  test('implicit TLS sessions are served normally', async () => {
    const sock = tls.connect({ port: s.submissionTlsPort, host: '127.0.0.1', rejectUnauthorized: false });
    const greeting = await new Promise<string>((resolve, reject) => {
      sock.once('data', (d) => resolve(d.toString()));
      sock.once('error', reject);
    });
    assert.match(greeting, /^220 /);
    sock.destroy();
  });
});

describe('session limit (max_session_time = 2s)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ smtp: 'max_session_time = "2s"\nmax_connections_per_ip = 100' });
  });
  after(() => s.stop());

  test('a client sending a NOOP every 300 ms is disconnected when its session time is up', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    const started = Date.now();
    let reply = '';
    while (Date.now() - started < 10_000) {
      const r = await c.cmd('NOOP').catch(() => null);
      if (!r) break;
      reply = r.text;
      if (r.code !== 250) break;
      await new Promise((res) => setTimeout(res, 300));
    }
    assert.equal(reply, '421 4.4.2 Session time limit reached, closing connection');
    const took = Date.now() - started;
    assert.ok(took >= 1700 && took < 5000, `closed after ${took} ms`);
  });

  test('a DATA in progress when the session time is up is answered first, then the session ends', async () => {
    const c = await RawSmtp.connect(s.port);
    await envelope(c, 'a@remote.example', ['alice@example.test']);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: long session\r\n\r\n');
    const started = Date.now();
    while (Date.now() - started < 2600) {
      c.write(`${'y'.repeat(198)}\r\n`);
      await new Promise((r) => setTimeout(r, 50));
    }
    c.write('.\r\n');
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.read()).text, '421 4.4.2 Session time limit reached, closing connection');
    await c.waitClosed();
  });
});
