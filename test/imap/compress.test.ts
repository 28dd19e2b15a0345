// COMPRESS=DEFLATE (RFC 4978) over a raw socket with node:zlib on the client side.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { constants, createDeflateRaw, createInflateRaw } from 'node:zlib';
import nodemailer from 'nodemailer';
import { startTestServer, type TestServer } from '../harness/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer();
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
  await t.sendMail({
    envelope: { from: 'a@remote.example', to: ['alice@example.test'] },
    raw: `From: a@remote.example\r\nSubject: squeeze\r\n\r\n${'compressible text '.repeat(2000)}\r\n`,
  });
  t.close();
});
after(() => s?.stop());

/** A line reader over a byte stream (plain first, then inflated). */
function lineReader() {
  let buf = Buffer.alloc(0);
  const waiters: (() => void)[] = [];
  return {
    push(d: Buffer) {
      buf = Buffer.concat([buf, d]);
      for (const w of waiters.splice(0)) w();
    },
    async line(): Promise<string> {
      for (;;) {
        const i = buf.indexOf('\r\n');
        if (i >= 0) {
          const l = buf.subarray(0, i).toString('latin1');
          buf = buf.subarray(i + 2);
          return l;
        }
        await new Promise<void>((r) => waiters.push(r));
      }
    },
    async bytes(n: number): Promise<Buffer> {
      while (buf.length < n) await new Promise<void>((r) => waiters.push(r));
      const out = buf.subarray(0, n);
      buf = buf.subarray(n);
      return out;
    },
  };
}

test('COMPRESS DEFLATE: everything after the OK is deflated both ways; a second COMPRESS is refused', async () => {
  const sock = net.connect(s.imapPort, '127.0.0.1');
  const reader = lineReader();
  let compressed = false;
  const inflate = createInflateRaw();
  inflate.on('data', (d: Buffer) => reader.push(d));
  let wireBytes = 0;
  sock.on('data', (d: Buffer) => {
    if (compressed) {
      wireBytes += d.length;
      inflate.write(d);
    } else reader.push(d);
  });
  const deflate = createDeflateRaw();
  const until = async (tag: string) => {
    const lines: string[] = [];
    for (;;) {
      const l = await reader.line();
      lines.push(l);
      if (l.startsWith(`${tag} `)) return lines;
      const lit = /\{(\d+)\}$/.exec(l);
      if (lit) lines.push((await reader.bytes(Number(lit[1]))).toString('latin1'));
    }
  };
  const send = (text: string) =>
    new Promise<void>((r) => {
      if (!compressed) {
        sock.write(text, () => r());
        return;
      }
      deflate.write(text);
      deflate.flush(constants.Z_SYNC_FLUSH, () => r());
    });
  assert.match(await reader.line(), /^\* OK \[CAPABILITY /);
  await send('a LOGIN alice@example.test secret-password\r\n');
  const login = await until('a');
  assert.match(login.at(-1) ?? '', /COMPRESS=DEFLATE/);
  await send('b COMPRESS DEFLATE\r\n');
  assert.deepEqual(await until('b'), ['b OK DEFLATE active']);
  compressed = true;
  deflate.on('data', (d: Buffer) => sock.write(d));
  await send('c SELECT INBOX\r\n');
  const sel = await until('c');
  assert.match(sel.at(-1) ?? '', /^c OK \[READ-WRITE\]/);
  await send('d FETCH 1 (BODY.PEEK[])\r\n');
  const body = await until('d');
  assert.ok(body.some((l) => l.includes('compressible text compressible text')));
  assert.match(body.at(-1) ?? '', /^d OK /);
  assert.ok(wireBytes < 10_000, `the 36 KB message crossed the wire deflated (${wireBytes} bytes)`);
  await send('e COMPRESS DEFLATE\r\n');
  assert.match((await until('e')).at(-1) ?? '', /^e NO \[COMPRESSIONACTIVE\]/);
  await send('f LOGOUT\r\n');
  assert.match((await until('f')).at(-1) ?? '', /^f OK /);
  sock.destroy();
});

test('COMPRESS with another mechanism is a BAD; before login it is not allowed', async () => {
  const sock = net.connect(s.imapPort, '127.0.0.1');
  const reader = lineReader();
  sock.on('data', (d: Buffer) => reader.push(d));
  await reader.line();
  sock.write('a COMPRESS DEFLATE\r\n');
  assert.match(await reader.line(), /^a BAD /);
  sock.write('b LOGIN alice@example.test secret-password\r\n');
  while (!(await reader.line()).startsWith('b ')) {}
  sock.write('c COMPRESS LZ4\r\n');
  assert.match(await reader.line(), /^c BAD Unsupported compression mechanism LZ4/);
  sock.destroy();
});
