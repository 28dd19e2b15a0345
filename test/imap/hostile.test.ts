// Hostile IMAP clients against the real server over loopback (issue #10, items 2, 3 and 8 on the
// IMAP side): bounds before the bytes arrive, deadlines that no trickle of bytes extends, the
// global connection cap. Resource figures (RSS, fds, SIGTERM) are in hostile-resources.test.ts.

import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { constants, createInflateRaw, deflateRawSync } from 'node:zlib';
import nodemailer from 'nodemailer';
import { LIMITS } from '../../src/core/limits.ts';
import { Output } from '../../src/imap/output.ts';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const LOGIN = 'LOGIN alice@example.test secret-password';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function spoolFiles(s: TestServer): Promise<string[]> {
  return readdir(join(s.config.storage.state, 'spool')).catch(() => []);
}

async function loggedIn(port: number): Promise<RawImap> {
  const { client } = await RawImap.connect(port);
  assert.match((await client.cmd(LOGIN)).at(-1) ?? '', /^t1 OK /);
  return client;
}

/** Writes `data` in pieces of `size` bytes every `everyMs` until done or the server closed. */
async function trickle(c: RawImap, data: string, size: number, everyMs: number): Promise<void> {
  for (let i = 0; i < data.length && !c.closed; i += size) {
    c.write(data.slice(i, i + size));
    await sleep(everyMs);
  }
}

describe('hostile IMAP clients: bounds before the bytes', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.stop());

  test('before login, APPEND and SELECT get BAD instead of "+", nothing is spooled; APPEND {n+} gets BYE', async () => {
    const { client } = await RawImap.connect(s.imapPort);
    client.write('a APPEND INBOX {20000000}\r\n');
    // RFC 9051 §7.5: the synchronizing literal is refused, so the client never sends it.
    assert.equal(await client.readLine(), 'a BAD APPEND not allowed now');
    client.write('b SELECT {5}\r\n');
    assert.equal(await client.readLine(), 'b BAD SELECT not allowed now');
    assert.match((await client.cmd('NOOP')).at(-1) ?? '', /^t1 OK /);
    client.close();
    // RFC 7888 §4: a non-synchronizing literal the server will not take ends the connection.
    const { client: plus } = await RawImap.connect(s.imapPort);
    plus.write(`c APPEND INBOX {20000000+}\r\n${'x'.repeat(60_000)}`);
    assert.equal(await plus.readLine(), '* BYE APPEND not allowed now');
    await plus.waitClosed();
    assert.deepEqual(await spoolFiles(s), []);
  });

  test('LOGIN with literals works; before login one command holds at most 64 KiB, checked before "+"', async () => {
    const { client } = await RawImap.connect(s.imapPort);
    client.write('a LOGIN {18}\r\n');
    assert.match(await client.readLine(), /^\+ /);
    client.write('alice@example.test {15}\r\n');
    assert.match(await client.readLine(), /^\+ /);
    client.write('secret-password\r\n');
    assert.match(await client.readLine(), /^a OK /);
    client.close();

    const { client: big } = await RawImap.connect(s.imapPort);
    big.write('a LOGIN {70000}\r\n');
    assert.equal(await big.readLine(), 'a BAD Literal too large');
    big.write('b LOGIN {40000}\r\n');
    assert.match(await big.readLine(), /^\+ /);
    big.write(`${'u'.repeat(40_000)} {40000}\r\n`);
    // Both literals together pass the budget: refused before the second "+".
    assert.equal(await big.readLine(), 'b NO [LIMIT] Command too large');
    assert.match((await big.cmd('NOOP')).at(-1) ?? '', /^t1 OK /);
    big.close();

    const { client: plus } = await RawImap.connect(s.imapPort);
    plus.write(`a LOGIN {262144+}\r\n${'p'.repeat(100_000)}`);
    assert.equal(await plus.readLine(), '* BYE Literal too large');
    await plus.waitClosed();
    assert.ok(
      s.logs.some((l) => l.msg === 'imap hangup' && l.reason === 'protocol' && l.ip === '127.0.0.1'),
      'the hangup is logged with the address',
    );
  });

  test('a command pipelined after LOGIN is framed once the login took effect', async () => {
    const { client } = await RawImap.connect(s.imapPort);
    client.write(`a ${LOGIN}\r\nb APPEND INBOX {7}\r\n`);
    assert.match(await client.readLine(), /^a OK /);
    assert.match(await client.readLine(), /^\+ /);
    client.write('Hello\r\n\r\n');
    assert.match(await client.readLine(), /^b OK \[APPENDUID /);
    client.close();
  });

  test('after login, the literals of one command are bounded in memory: NO [LIMIT] instead of "+"', async () => {
    const client = await loggedIn(s.imapPort);
    assert.match((await client.cmd('SELECT INBOX')).at(-1) ?? '', /^t2 OK /);
    client.write('a SEARCH TEXT {250000}\r\n');
    let sent = 0;
    let line = await client.readLine();
    for (; line.startsWith('+') && sent < 60; sent++) {
      client.write(`${'z'.repeat(250_000)} TEXT {250000}\r\n`);
      line = await client.readLine();
    }
    assert.equal(line, 'a NO [LIMIT] Command too large');
    assert.ok(sent >= 7 && sent < 9, `refused after ${sent} literals of 250 kB (2 MiB budget)`);
    assert.match((await client.cmd('NOOP')).at(-1) ?? '', /^t3 OK /);
    client.close();
  });

  test('COMPRESS: bytes sent right behind the command in the same packet are inflated, not lost', async () => {
    const sock = net.connect(s.imapPort, '127.0.0.1');
    let plain = Buffer.alloc(0);
    let text = '';
    let compressed = false;
    const inflate = createInflateRaw();
    inflate.on('error', () => {});
    inflate.on('data', (d: Buffer) => {
      text += d.toString('latin1');
    });
    sock.on('data', (d: Buffer) => {
      if (compressed) {
        inflate.write(d);
        return;
      }
      plain = Buffer.concat([plain, d]);
      const ok = plain.indexOf('a2 OK DEFLATE active\r\n');
      if (ok >= 0) {
        compressed = true;
        inflate.write(plain.subarray(ok + 'a2 OK DEFLATE active\r\n'.length));
      }
    });
    const until = async (cond: () => boolean) => {
      const deadline = Date.now() + 10_000;
      while (!cond()) {
        assert.ok(Date.now() < deadline, `timed out; plain ${JSON.stringify(plain.toString())}, inflated ${text}`);
        await sleep(20);
      }
    };
    await new Promise<void>((r) => sock.once('connect', () => r()));
    sock.write(`a1 ${LOGIN}\r\n`);
    await until(() => plain.includes('a1 OK '));
    const next = deflateRawSync('a3 NOOP\r\n', { finishFlush: constants.Z_SYNC_FLUSH });
    sock.write(Buffer.concat([Buffer.from('a2 COMPRESS DEFLATE\r\n'), next]));
    await until(() => text.includes('a3 OK '));
    sock.destroy();
  });
});

test('output a client does not read is bounded: past LIMITS.imap.maxQueuedOutputBytes it is dropped', async () => {
  // IDLE updates are sent without waiting; a client that never reads must not make them pile up.
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const client = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  client.pause();
  const sock = await accepted;
  let overflows = 0;
  const out = new Output(sock, {
    maxQueued: LIMITS.imap.maxQueuedOutputBytes,
    onOverflow: () => {
      overflows++;
      sock.destroy();
    },
  });
  const part = Buffer.alloc(256 * 1024, 0x2a);
  for (let i = 0; i < 64; i++) void out.send([part]); // 16 MB, nobody reading
  assert.equal(overflows, 1);
  assert.ok(sock.destroyed);
  client.destroy();
  server.close();
});

describe('hostile IMAP clients: deadlines', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      imap: 'login_timeout = "2s"\ncommand_timeout = "1s"\nmin_data_rate = "2KB"',
    });
  });
  after(() => s.stop());

  test('login_timeout: a client that keeps talking without logging in gets BYE and is closed', async () => {
    const { client } = await RawImap.connect(s.imapPort);
    const start = Date.now();
    const lines: string[] = [];
    while (!client.closed && Date.now() - start < 15_000) {
      client.write('a NOOP\r\n');
      lines.push(await client.readLine().catch(() => ''));
      await sleep(100);
    }
    await client.waitClosed(1000);
    for (;;) {
      const rest = await client.readLine(100).catch(() => null);
      if (rest === null) break;
      lines.push(rest);
    }
    assert.ok(lines.includes('* BYE Took too long to log in'), lines.join('|'));
    assert.ok(Date.now() - start >= 1900, 'not before the deadline');
    assert.ok(s.logs.some((l) => l.msg === 'imap hangup' && l.reason === 'login-timeout' && l.ip === '127.0.0.1'));
  });

  test('login_timeout no longer applies once logged in', async () => {
    const client = await loggedIn(s.imapPort);
    await sleep(2500);
    assert.match((await client.cmd('NOOP')).at(-1) ?? '', /^t2 OK /);
    client.close();
  });

  test('command_timeout: a command line trickled byte by byte is cut off', async () => {
    const client = await loggedIn(s.imapPort);
    const start = Date.now();
    void trickle(client, `a NOOP ${'x'.repeat(200)}\r\n`, 1, 50);
    assert.equal(await client.readLine(10_000), '* BYE Command took too long');
    await client.waitClosed();
    assert.ok(Date.now() - start >= 900, 'not before the deadline');
  });

  test('command_timeout: an APPEND above min_data_rate outlasts it; one below is cut off', async () => {
    const client = await loggedIn(s.imapPort);
    const message = `Subject: slow link\r\n\r\n${'0123456789'.repeat(1200)}`;
    client.write(`a APPEND INBOX {${message.length}}\r\n`);
    assert.match(await client.readLine(), /^\+ /);
    const start = Date.now();
    await trickle(client, message, 1000, 250); // 4 KB/s for 3 s
    client.write('\r\n');
    assert.match(await client.readLine(), /^a OK \[APPENDUID /);
    assert.ok(Date.now() - start > 2000, 'took longer than command_timeout');
    client.close();

    const slow = await loggedIn(s.imapPort);
    slow.write(`a APPEND INBOX {${message.length}}\r\n`);
    assert.match(await slow.readLine(), /^\+ /);
    void trickle(slow, message, 100, 250); // 400 B/s
    assert.equal(await slow.readLine(10_000), '* BYE Command took too long');
    await slow.waitClosed();
    assert.ok(s.logs.some((l) => l.msg === 'imap hangup' && l.reason === 'command-timeout'));
  });

  test('IDLE is not a command in progress: an idling client outlasts command_timeout and gets new mail', async () => {
    const client = await loggedIn(s.imapPort);
    await client.cmd('SELECT INBOX');
    client.write('i IDLE\r\n');
    assert.match(await client.readLine(), /^\+ /);
    await sleep(1500);
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
    await t.sendMail({
      envelope: { from: 'a@remote.example', to: ['alice@example.test'] },
      raw: 'Subject: while idling\r\n\r\nhi\r\n',
    });
    t.close();
    assert.match(await client.readLine(), /^\* \d+ EXISTS$/);
    client.write('DONE\r\n');
    const rest = await client.until('i');
    assert.match(rest.at(-1) ?? '', /^i OK /);
    client.close();
  });
});

describe('hostile IMAP clients: the global connection cap', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ imap: 'max_connections = 2' });
  });
  after(() => s.stop());

  test('max_connections: one more gets BYE and is closed by the server, on both ports', async () => {
    const a = await RawImap.connect(s.imapPort);
    const b = await RawImap.connect(s.imapPort);
    assert.match(a.greeting, /^\* OK /);
    const { client: over, greeting } = await RawImap.connect(s.imapPort);
    assert.equal(greeting, '* BYE Too many connections, try again later');
    over.write('x'); // and never closes: the server does
    await over.waitClosed();

    const secure = tls.connect({ port: s.imapsPort, host: '127.0.0.1', rejectUnauthorized: false });
    secure.on('error', () => {});
    let got = '';
    secure.on('data', (d: Buffer) => {
      got += d.toString('latin1');
    });
    await new Promise<void>((r) => secure.once('close', () => r()));
    assert.equal(got, '* BYE Too many connections, try again later\r\n');
    assert.ok(s.logs.some((l) => l.msg === 'imap connection refused' && l.reason === 'total'));

    // A place freed is a place taken again.
    a.client.close();
    const deadline = Date.now() + 10_000;
    for (;;) {
      const c = await RawImap.connect(s.imapPort);
      c.client.close();
      if (c.greeting.startsWith('* OK ')) break;
      assert.ok(Date.now() < deadline, 'the freed place was never given again');
      await sleep(50);
    }
    b.client.close();
  });
});
