// Inbound SMTP against the real server on a loopback port: nodemailer for whole flows, raw
// sockets where the exact bytes on the wire matter.

import assert from 'node:assert/strict';
import { readdir, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

function rawMessage(subject: string, body = 'Hello.\r\n'): string {
  return `From: Sender <sender@remote.example>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nMessage-ID: <${subject.replace(/\W/g, '')}@remote.example>\r\n\r\n${body}`;
}

async function send(port: number, from: string, to: string[], raw: string, tlsMode: 'none' | 'starttls' = 'none') {
  const transport = nodemailer.createTransport({
    host: '127.0.0.1',
    port,
    secure: false,
    ignoreTLS: tlsMode === 'none',
    requireTLS: tlsMode === 'starttls',
    tls: { rejectUnauthorized: false },
    name: 'client.remote.example',
  });
  try {
    return await transport.sendMail({ envelope: { from, to }, raw });
  } finally {
    transport.close();
  }
}

/** Splits a stored file into the trace header block we added and the message as sent. */
function splitTrace(file: Buffer): { trace: string; message: string } {
  const text = file.toString('utf8');
  const m =
    /^(Return-Path: [^\r]*\r\nDelivered-To: [^\r]*\r\nAuthentication-Results: [^\r]*\r\nReceived: (?:[^\r]|\r\n\t)*\r\n)/.exec(
      text,
    );
  assert.ok(m, `no trace headers in ${JSON.stringify(text.slice(0, 300))}`);
  return { trace: m[1] ?? '', message: text.slice((m[1] ?? '').length) };
}

describe('inbound SMTP', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      smtp: 'max_connections_per_ip = 100', // every test client comes from 127.0.0.1
      domains: ['example.test', 'other.test', 'bücher.example'],
      users: ['alice@example.test', 'bob@example.test', 'carol@other.test', 'info@other.test', 'jürgen@bücher.example'],
    });
    await s.admin.ops.addAlias('team@example.test', ['alice@example.test', 'bob@example.test']);
    await s.admin.ops.addAlias('postmaster@example.test', ['alice@example.test']);
    await s.admin.ops.setCatchAll('other.test', 'info@other.test');
  });
  after(() => s.stop());

  test('nodemailer -> server -> the exact bytes in the right Maildir', async () => {
    const raw = rawMessage('exact bytes', 'Line one\r\n.leading dot\r\n..two dots\r\n\r\nlast line\r\n');
    const info = await send(s.port, 'sender@remote.example', ['alice@example.test'], raw);
    assert.match(info.response, /^250 2\.0\.0 Ok: message m\S+ delivered$/);
    const [file, ...rest] = await s.messages('alice@example.test');
    assert.equal(rest.length, 0);
    assert.ok(file);
    const { trace, message } = splitTrace(file);
    assert.equal(message, raw);
    assert.match(trace, /^Return-Path: <sender@remote\.example>\r\nDelivered-To: alice@example\.test\r\n/);
    assert.match(
      trace,
      /Received: from client\.remote\.example \(\[127\.0\.0\.1\]\)\r\n\tby mx\.test\.example \(arcline\) with ESMTP id m\S+\r\n\tfor <alice@example\.test>;\r\n\t\w{3}, \d+ \w{3} \d{4} /,
    );
    // The Maildir file name carries the size (S=) as Dovecot expects.
    const [name] = await s.newFiles('alice@example.test');
    assert.equal(Number(/,S=(\d+)/.exec(name ?? '')?.[1]), file.length);
    // The message id in the reply is the one in the logs.
    const id = /message (m\S+) delivered/.exec(info.response)?.[1];
    await s.logged((l) => l.msg_id === id && l.msg === 'message delivered');
  });

  test('unknown domain: 550 5.7.1 at RCPT; unknown user: 550 5.1.1; nothing accepted', async () => {
    const c = await RawSmtp.connect(s.port);
    const [, , mail, relay, unknown, good] = [
      null,
      ...(await envelope(c, 'x@remote.example', ['victim@gmail.example', 'nobody@example.test', 'alice@example.test'])),
    ];
    assert.equal(mail?.code, 250);
    assert.equal(relay?.text, '550 5.7.1 Relay access denied');
    assert.equal(unknown?.text, '550 5.1.1 Recipient address rejected: user unknown');
    assert.equal(good?.code, 250);
    c.close();
    // Domain literal and syntax errors
    const d = await RawSmtp.connect(s.port);
    await envelope(d, 'x@remote.example', []);
    assert.equal((await d.cmd('RCPT TO:<alice@[127.0.0.1]>')).code, 501);
    d.close();
  });

  test('postmaster: postmaster@ every local domain and a bare <Postmaster> are accepted (RFC 5321 §4.5.1)', async () => {
    const before = (await s.newFiles('alice@example.test')).length;
    const c = await RawSmtp.connect(s.port);
    const replies = await envelope(c, 'x@remote.example', [
      'postmaster@example.test',
      'Postmaster',
      'abuse@example.test',
    ]);
    assert.deepEqual(
      replies.slice(2).map((r) => r.code),
      [250, 250, 250],
    );
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: to the postmaster\r\n\r\nhello\r\n.\r\n');
    assert.equal((await c.read()).code, 250);
    c.close();
    // All three lead to alice (the domain's first user): one copy.
    assert.equal((await s.newFiles('alice@example.test')).length, before + 1);
  });

  test('aliases, catch-all, plus-addressing, case and IDN resolve at RCPT', async () => {
    const before = {
      alice: (await s.newFiles('alice@example.test')).length,
      bob: (await s.newFiles('bob@example.test')).length,
      info: (await s.newFiles('info@other.test')).length,
      carol: (await s.newFiles('carol@other.test')).length,
      jurgen: (await s.newFiles('jürgen@xn--bcher-kva.example')).length,
    };
    await send(s.port, 'a@remote.example', ['team@example.test'], rawMessage('alias'));
    await send(s.port, 'a@remote.example', ['whoever@other.test'], rawMessage('catchall'));
    await send(s.port, 'a@remote.example', ['carol+lists@other.test'], rawMessage('plus'));
    await send(s.port, 'a@remote.example', ['ALICE@Example.TEST'], rawMessage('case'));
    await send(s.port, 'a@remote.example', ['postmaster@example.test'], rawMessage('postmaster'));
    const c = await RawSmtp.connect(s.port);
    await c.read();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('MAIL FROM:<a@remote.example> SMTPUTF8')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<jürgen@bücher.example>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(Buffer.from('Subject: idn\r\n\r\nHallo Jürgen\r\n.\r\n', 'utf8'));
    assert.equal((await c.read()).code, 250);
    c.close();
    assert.equal((await s.newFiles('alice@example.test')).length, before.alice + 3); // alias, case, postmaster
    assert.equal((await s.newFiles('bob@example.test')).length, before.bob + 1);
    assert.equal((await s.newFiles('info@other.test')).length, before.info + 1);
    assert.equal((await s.newFiles('carol@other.test')).length, before.carol + 1);
    const idn = await s.messages('jürgen@xn--bcher-kva.example');
    assert.equal(idn.length, before.jurgen + 1);
    const last = idn.at(-1)?.toString('utf8') ?? '';
    assert.match(last, /with UTF8SMTP id/);
    assert.ok(last.endsWith('Hallo Jürgen\r\n'));
  });

  test('one copy per account, each with its own Delivered-To; no "for" with several recipients', async () => {
    const countA = (await s.newFiles('alice@example.test')).length;
    const countB = (await s.newFiles('bob@example.test')).length;
    // team -> alice, bob; alice named again directly: still one copy each.
    await send(s.port, 'a@remote.example', ['team@example.test', 'alice@example.test'], rawMessage('dedupe'));
    const a = (await s.messages('alice@example.test')).map((b) => b.toString());
    const b = (await s.messages('bob@example.test')).map((b) => b.toString());
    assert.equal(a.length, countA + 1);
    assert.equal(b.length, countB + 1);
    const copyA = a.find((m) => m.includes('Subject: dedupe')) ?? '';
    const copyB = b.find((m) => m.includes('Subject: dedupe')) ?? '';
    assert.match(copyA, /^Return-Path: <a@remote\.example>\r\nDelivered-To: alice@example\.test\r\n/);
    assert.match(copyB, /^Return-Path: <a@remote\.example>\r\nDelivered-To: bob@example\.test\r\n/);
    assert.doesNotMatch(copyA, /\tfor </);
  });

  test('null sender is accepted and recorded as Return-Path: <>', async () => {
    await send(s.port, '', ['bob@example.test'], rawMessage('bounce'));
    const b = (await s.messages('bob@example.test')).map((m) => m.toString());
    assert.ok(b.some((m) => m.startsWith('Return-Path: <>\r\n') && m.includes('Subject: bounce')));
  });

  test('MAIL/RCPT parameters of extensions we do not offer get 555 (RFC 5321 §4.1.1.11)', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    await c.cmd('EHLO client.example');
    for (const p of ['FOO=BAR', 'BODY=BINARYMIME']) {
      assert.equal(
        (await c.cmd(`MAIL FROM:<x@remote.example> ${p}`)).text.slice(0, 9),
        p === 'BODY=BINARYMIME' ? '501 5.5.4' : '555 5.5.4',
        p,
      );
    }
    assert.equal((await c.cmd('MAIL FROM:<x@remote.example> BODY=8BITMIME SIZE=100 SMTPUTF8')).code, 250);
    for (const p of ['XYZ=1', 'NOTIFY=NEVER XYZ=1']) {
      assert.equal((await c.cmd(`RCPT TO:<alice@example.test> ${p}`)).text.slice(0, 9), '555 5.5.4', p);
    }
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    c.close();
  });

  test('DSN parameters (RFC 3461 §4): accepted when well formed, refused with 501 otherwise', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    await c.cmd('EHLO client.example');
    const badMail = [
      'RET=FOO',
      'RET',
      'RET=HDRS RET=FULL',
      'ENVID=abc ENVID=def',
      'ENVID=+4',
      'ENVID=+zz',
      'ENVID=+0A',
      `ENVID=${'a'.repeat(101)}`,
    ];
    for (const p of badMail) {
      assert.equal((await c.cmd(`MAIL FROM:<x@remote.example> ${p}`)).text.slice(0, 9), '501 5.5.4', p);
    }
    c.close();
    // A fresh session for the RCPT cases: the session's error limit (20) would end this one.
    const r = await RawSmtp.connect(s.port);
    await r.read();
    await r.cmd('EHLO client.example');
    assert.equal((await r.cmd(`MAIL FROM:<x@remote.example> RET=hdrs ENVID=${'a'.repeat(100)}`)).code, 250);
    const badRcpt = [
      'NOTIFY=NEVER,SUCCESS',
      'NOTIFY=SOMETIMES',
      'NOTIFY=SUCCESS,SUCCESS',
      'NOTIFY=',
      'NOTIFY=DELAY NOTIFY=FAILURE',
      'ORCPT=x@y',
      'ORCPT=;x@y',
      'ORCPT=rfc822;',
      'ORCPT=rfc822;a+ZZb@y',
      'ORCPT=rfc822;a+0Db@y',
      `ORCPT=rfc822;${'a'.repeat(500)}@y`,
      'ORCPT=rfc822;a@y ORCPT=rfc822;b@y',
    ];
    for (const p of badRcpt) {
      assert.match((await r.cmd(`RCPT TO:<alice@example.test> ${p}`)).text, /^501 5\.5\.4/, p);
    }
    const ok = await r.cmd('RCPT TO:<alice@example.test> NOTIFY=delay,failure ORCPT=rfc822;Alice+2Bx@example.test');
    assert.equal(ok.code, 250);
    assert.equal((await r.cmd('RCPT TO:<bob@example.test> NOTIFY=NEVER')).code, 250);
    r.close();
  });

  test('EHLO advertises the promised extensions and no AUTH', async () => {
    const c = await RawSmtp.connect(s.port);
    const greeting = await c.read();
    assert.match(greeting.text, /^220 mx\.test\.example ESMTP/);
    const ehlo = await c.cmd('EHLO client.example');
    const caps = ehlo.lines.slice(1).map((l) => l.slice(4));
    for (const cap of ['PIPELINING', '8BITMIME', 'SMTPUTF8', 'ENHANCEDSTATUSCODES', 'STARTTLS', 'DSN']) {
      assert.ok(caps.includes(cap), `${cap} in ${caps.join(',')}`);
    }
    assert.ok(caps.includes(`SIZE ${s.config.smtp.max_message_size}`));
    assert.ok(!caps.some((c) => c.startsWith('AUTH')));
    const auth = await c.cmd('AUTH PLAIN AGFsaWNlAHNlY3JldA==');
    assert.equal(auth.text, '500 5.5.2 Error: command not recognized');
    c.close();
  });

  test('STARTTLS: delivery over TLS is recorded as ESMTPS with the cipher', async () => {
    await send(s.port, 'tls@remote.example', ['bob@example.test'], rawMessage('over tls'), 'starttls');
    const b = (await s.messages('bob@example.test')).map((m) => m.toString());
    const m = b.find((x) => x.includes('Subject: over tls')) ?? '';
    assert.match(m, /with ESMTPS id \S+\r\n\t\(using TLSv1\.[23] with cipher /);
  });

  test('pipelining: a whole transaction in one write gets every reply in order', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    await c.cmd('EHLO client.example');
    c.write(
      'MAIL FROM:<p@remote.example>\r\nRCPT TO:<nobody@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\n',
    );
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.read()).code, 550);
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.read()).code, 354);
    c.write('Subject: pipelined\r\n\r\nbody\r\n.\r\nQUIT\r\n');
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.read()).code, 221);
    const a = (await s.messages('alice@example.test')).map((m) => m.toString());
    assert.ok(a.some((m) => m.endsWith('Subject: pipelined\r\n\r\nbody\r\n')));
  });

  for (const [name, seq] of [
    ['\\n.\\n', '\n.\n'],
    ['\\r.\\r', '\r.\r'],
    ['\\n.\\r\\n', '\n.\r\n'],
    ['\\r\\n.\\r', '\r\n.\r'],
  ] as const) {
    test(`SMTP smuggling with ${name} is refused whole and nothing is stored`, async () => {
      const before = (await s.newFiles('alice@example.test')).length;
      const c = await RawSmtp.connect(s.port);
      await envelope(c, 'sender@remote.example', ['alice@example.test']);
      assert.equal((await c.cmd('DATA')).code, 354);
      c.write(
        `Subject: outer\r\n\r\nouter body${seq}MAIL FROM:<ceo@example.test>\r\nRCPT TO:<alice@example.test>\r\nDATA\r\nSubject: smuggled\r\n\r\nsmuggled\r\n.\r\n`,
      );
      const r = await c.read();
      assert.equal(r.text, '554 5.6.0 Message contains bare CR or LF characters; use CRLF line endings');
      // The session goes on and is usable: no smuggled command was executed.
      assert.equal((await c.cmd('NOOP')).code, 250);
      assert.equal((await c.cmd('RSET')).code, 250);
      c.close();
      assert.equal((await s.newFiles('alice@example.test')).length, before);
    });
  }

  test('a 100 KB command line and a NUL byte get errors; the server stays up', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    c.write(`EHLO ${'a'.repeat(100 * 1024)}\r\n`);
    const r = await c.read();
    // RFC 5321 §4.5.3.1.4: 500 for a line too long; the rest of the line is discarded, never
    // buffered, and the session goes on.
    assert.equal(r.text, '500 5.5.2 Error: line too long');
    assert.equal((await c.cmd('NOOP')).code, 250);
    c.close();
    const d = await RawSmtp.connect(s.port);
    await d.read();
    const nul = await d.cmd('EHLO a\0b');
    assert.ok(nul.code >= 500, nul.text);
    const mail = await d.cmd('MAIL FROM:<a\0b@remote.example>');
    assert.ok(mail.code >= 500, mail.text);
    d.close();
    await send(s.port, 'a@remote.example', ['bob@example.test'], rawMessage('still up'));
  });

  test('50 parallel senders all land, each exactly once', async () => {
    const before = (await s.newFiles('bob@example.test')).length;
    await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        send(s.port, `p${i}@remote.example`, ['bob@example.test'], rawMessage(`parallel ${i}`, `n=${i}\r\n`)),
      ),
    );
    const msgs = (await s.messages('bob@example.test')).map((m) => m.toString());
    assert.equal(msgs.length, before + 50);
    for (let i = 0; i < 50; i++) {
      assert.equal(msgs.filter((m) => m.endsWith(`\r\n\r\nn=${i}\r\n`)).length, 1, `message ${i}`);
    }
  });

  test('a message that has passed 50 hops is refused as a loop (554 5.4.6), 49 is fine', async () => {
    const before = (await s.newFiles('carol@other.test')).length;
    for (const [hops, expect] of [
      [50, '554 5.4.6 Too many hops: mail forwarding loop'],
      [49, null],
    ] as const) {
      const c = await RawSmtp.connect(s.port);
      await envelope(c, 'a@remote.example', ['carol@other.test']);
      await c.cmd('DATA');
      const trace = 'Received: from a.example by b.example; Tue, 24 Nov 2026 06:00:00 +0000\r\n'.repeat(hops);
      c.write(`${trace}Subject: loop\r\n\r\nbody\r\n.\r\n`);
      const r = await c.read();
      if (expect) assert.equal(r.text, expect);
      else assert.equal(r.code, 250);
      c.close();
    }
    assert.equal((await s.newFiles('carol@other.test')).length, before + 1);
  });

  test('a storage failure is a temporary 451 4.3.0 and leaves nothing behind', async () => {
    const dir = s.mailboxDir('carol@other.test');
    const before = await s.newFiles('carol@other.test');
    await rm(join(dir, 'tmp'), { recursive: true });
    await writeFile(join(dir, 'tmp'), 'not a directory');
    try {
      const c = await RawSmtp.connect(s.port);
      await envelope(c, 'a@remote.example', ['carol@other.test']);
      await c.cmd('DATA');
      c.write('Subject: fails\r\n\r\nbody\r\n.\r\n');
      assert.equal((await c.read()).text, '451 4.3.0 Temporary local problem, please try again later');
      c.close();
      assert.deepEqual(await s.newFiles('carol@other.test'), before);
      await s.logged((l) => l.level === 50 && typeof l.conn === 'string' && typeof l.msg_id === 'string');
    } finally {
      await rm(join(dir, 'tmp'));
      await s.admin.store.createAccount('carol@other.test' as never);
    }
    await send(s.port, 'a@remote.example', ['carol@other.test'], rawMessage('recovered'));
    assert.equal((await readdir(join(dir, 'new'))).length, before.length + 1);
  });

  test('a client that vanishes mid-DATA leaves no file anywhere', async () => {
    const dir = s.mailboxDir('alice@example.test');
    const before = await s.newFiles('alice@example.test');
    const c = await RawSmtp.connect(s.port);
    await envelope(c, 'a@remote.example', ['alice@example.test']);
    await c.cmd('DATA');
    c.write(`Subject: vanish\r\n\r\n${'x'.repeat(200_000)}`);
    await new Promise((r) => setTimeout(r, 100));
    c.close();
    await new Promise((r) => setTimeout(r, 200));
    assert.deepEqual(await s.newFiles('alice@example.test'), before);
    assert.deepEqual(await readdir(join(dir, 'tmp')), []);
  });
});

describe('inbound SMTP limits', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({
      smtp: 'max_message_size = "10KB"\nmax_recipients = 3\nmax_connections_per_ip = 3',
    });
    for (const u of ['u1', 'u2', 'u3', 'u4'])
      await s.admin.ops.addUser(`${u}@example.test`, { password: 'pw-secret-1' });
  });
  after(() => s.stop());

  test('message size: SIZE is advertised, an over-size declaration and an over-size body get 552 5.3.4', async () => {
    const c = await RawSmtp.connect(s.port);
    await c.read();
    const ehlo = await c.cmd('EHLO client.example');
    assert.ok(ehlo.lines.some((l) => l.endsWith('SIZE 10240')));
    const declared = await c.cmd('MAIL FROM:<a@remote.example> SIZE=20000');
    assert.equal(declared.code, 552);
    assert.equal((await c.cmd('MAIL FROM:<a@remote.example>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`Subject: big\r\n\r\n${'y'.repeat(80)}\r\n`.repeat(200));
    c.write('.\r\n');
    assert.equal((await c.read()).text, '552 5.3.4 Message size exceeds fixed limit of 10240 bytes');
    assert.equal((await c.cmd('NOOP')).code, 250);
    c.close();
    assert.deepEqual(await s.newFiles('alice@example.test'), []);
  });

  test('recipients per message: the fourth gets 452 4.5.3, the first three are delivered', async () => {
    const c = await RawSmtp.connect(s.port);
    const replies = await envelope(c, 'a@remote.example', [
      'u1@example.test',
      'u2@example.test',
      'u3@example.test',
      'u4@example.test',
    ]);
    assert.deepEqual(
      replies.slice(2).map((r) => r.code),
      [250, 250, 250, 452],
    );
    assert.equal(replies[5]?.text, '452 4.5.3 Too many recipients');
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: three\r\n\r\nx\r\n.\r\n');
    assert.equal((await c.read()).code, 250);
    c.close();
    for (const u of ['u1', 'u2', 'u3']) assert.equal((await s.newFiles(`${u}@example.test`)).length, 1);
    assert.equal((await s.newFiles('u4@example.test')).length, 0);
  });

  test('connections per IP: the one over the limit gets 421 4.7.0, others are unaffected', async () => {
    const conns = await Promise.all([1, 2, 3].map(() => RawSmtp.connect(s.port)));
    for (const c of conns) assert.equal((await c.read()).code, 220);
    const extra = await RawSmtp.connect(s.port);
    const r = await extra.read();
    assert.equal(r.text, '421 4.7.0 Too many connections from your address, try again later');
    await extra.waitClosed();
    assert.equal((await conns[0]!.cmd('NOOP')).code, 250);
    conns[0]!.close();
    await new Promise((r) => setTimeout(r, 100));
    const again = await RawSmtp.connect(s.port);
    assert.equal((await again.read()).code, 220);
    again.close();
    for (const c of conns.slice(1)) c.close();
  });
});

describe('inbound SMTP pre-greet test', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ smtp: 'greeting_delay = "400ms"' });
  });
  after(() => s.stop());

  test('with greeting_delay, a client that talks before the greeting is refused', async () => {
    const early = await RawSmtp.connect(s.port);
    early.write('EHLO spambot.example\r\n');
    const r = await early.read();
    assert.match(r.text, /^421 .*You talk too soon/);
    early.close();
    const polite = await RawSmtp.connect(s.port);
    assert.equal((await polite.read()).code, 220);
    assert.equal((await polite.cmd('EHLO client.example')).code, 250);
    polite.close();
  });
});
