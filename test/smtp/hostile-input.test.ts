// Input built to make a parser work hard (issue #10: no super-linear work on client input, in
// our code or in smtp-server's): each command line and message below is answered promptly, and
// another client is served meanwhile. The regular expressions of src/smtp are all linear (one
// character class, anchored, or a fixed word); address lists of author fields are parsed within
// a fixed budget (LIMITS.smtp.maxAuthorFieldBytes).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

const LINES = [
  `MAIL FROM:<${'@a,'.repeat(1300)}>`, // source route without its colon
  `MAIL FROM:<@${'a,@'.repeat(1300)}b:x@y.test>`,
  `GET /${' '.repeat(4000)}`, // smtp-server's HTTP check
  `GET /${' HTTP/1.1'.repeat(440)}x`,
  `RCPT TO:<${'a'.repeat(60)}@${'a.'.repeat(1900)}test>`,
  `RCPT TO:<"${'\\\\'.repeat(1900)}"@example.test>`,
  `EHLO ${'a'.repeat(4000)}`,
  `MAIL FROM:<a@remote.example> ${'SIZE=1 '.repeat(550)}`,
  `MAIL FROM:<${'+'.repeat(3000)}@remote.example> ENVID=${'+41'.repeat(300)}`,
  `RCPT TO:<${'x@'.repeat(1900)}example.test>`,
];

describe('hostile input', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ smtp: 'max_connections_per_ip = 100\nsoft_error_limit = 100\nhard_error_limit = 200' });
  });
  after(() => s.stop());

  test('command lines built against the parsers are answered promptly', async () => {
    for (const line of LINES) {
      const c = await RawSmtp.connect(s.port);
      await c.read();
      if (!line.startsWith('EHLO') && !line.startsWith('GET')) await c.cmd('EHLO client.example');
      if (line.startsWith('RCPT')) await c.cmd('MAIL FROM:<a@remote.example>');
      const started = performance.now();
      const r = await c.cmd(line);
      const ms = performance.now() - started;
      assert.ok(r.code >= 200, line.slice(0, 40));
      assert.ok(ms < 1000, `${ms} ms for ${JSON.stringify(line.slice(0, 40))}`);
      c.close();
    }
  });

  test('a message whose From: is a 200 KB address list is delivered without holding the server', async () => {
    const c = await RawSmtp.connect(s.port);
    await envelope(c, 'a@remote.example', ['alice@example.test']);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`From: ${'a,'.repeat(100_000)}b@remote.example\r\nSubject: long From\r\n\r\nbody\r\n.\r\n`);
    const other = await RawSmtp.connect(s.port);
    const started = performance.now();
    assert.equal((await other.read()).code, 220);
    assert.equal((await other.cmd('NOOP')).code, 250);
    const otherMs = performance.now() - started;
    assert.equal((await c.read(10_000)).code, 250);
    assert.ok(otherMs < 1000, `another client waited ${otherMs} ms`);
    c.close();
    other.close();
  });
});
