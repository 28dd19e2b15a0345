// Submission (587 STARTTLS / 465 implicit TLS) rules against the real server: who may send,
// as whom, and that port 25 never relays. Raw sockets where the exact replies matter.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';

const PASSWORD = 'secret-password';
const plain = (user: string, pass: string) => Buffer.from(`\0${user}\0${pass}`).toString('base64');

async function tlsSession(t: TestServer): Promise<RawSmtp> {
  const c = await RawSmtp.connect(t.submissionPort);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.test')).code, 250);
  await c.startTls();
  const ehlo = await c.cmd('EHLO client.test');
  assert.ok(
    ehlo.lines.some((l) => /AUTH PLAIN LOGIN/.test(l)),
    ehlo.lines.join('|'),
  );
  return c;
}

async function authed(t: TestServer, user = 'alice@example.test'): Promise<RawSmtp> {
  const c = await tlsSession(t);
  assert.equal((await c.cmd(`AUTH PLAIN ${plain(user, PASSWORD)}`)).code, 235);
  return c;
}

describe('submission', () => {
  let t: TestServer;

  before(async () => {
    t = await startTestServer({ submission: true, users: ['alice@example.test', 'bob@example.test'] });
    await t.admin.ops.addAlias('sales@example.test', ['alice@example.test']);
  });

  after(async () => {
    await t?.stop();
  });

  test('before STARTTLS, AUTH is not offered and is refused with 530 5.7.0', async () => {
    const c = await RawSmtp.connect(t.submissionPort);
    await c.read();
    const ehlo = await c.cmd('EHLO client.test');
    assert.ok(ehlo.lines.some((l) => l.includes('STARTTLS')));
    assert.ok(!ehlo.lines.some((l) => l.includes('AUTH')), 'no AUTH before TLS');
    assert.equal(
      (await c.cmd(`AUTH PLAIN ${plain('alice@example.test', PASSWORD)}`)).text,
      '530 5.7.0 Must issue a STARTTLS command first',
    );
    c.write('QUIT\r\n');
  });

  test('MAIL before AUTH: 530 5.7.0', async () => {
    const c = await tlsSession(t);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).text, '530 5.7.0 Authentication required');
    c.write('QUIT\r\n');
  });

  test('a wrong password: 535 5.7.8, slowed down, counted', async () => {
    const c = await tlsSession(t);
    const started = Date.now();
    assert.equal(
      (await c.cmd(`AUTH PLAIN ${plain('alice@example.test', 'wrong')}`)).text,
      '535 5.7.8 Authentication credentials invalid',
    );
    assert.ok(Date.now() - started >= 900, 'the failure answer was delayed');
    // AUTH LOGIN with the right password works on the same connection.
    assert.equal((await c.cmd('AUTH LOGIN')).code, 334);
    assert.equal((await c.cmd(Buffer.from('alice@example.test').toString('base64'))).code, 334);
    assert.equal((await c.cmd(Buffer.from(PASSWORD).toString('base64'))).code, 235);
    c.write('QUIT\r\n');
    const line = t.logs.find((l) => l.msg === 'auth failed');
    assert.equal(line?.user, 'alice@example.test');
    assert.ok(!JSON.stringify(t.logs).includes(PASSWORD), 'no password in any log line');
  });

  test('an envelope sender the user does not own: 553 5.7.1; own address and own alias: 250', async () => {
    const c = await authed(t);
    assert.equal(
      (await c.cmd('MAIL FROM:<bob@example.test>')).text,
      '553 5.7.1 Sender address not owned by the authenticated user',
    );
    assert.equal((await c.cmd('MAIL FROM:<someone@remote.test>')).code, 553);
    assert.equal((await c.cmd('MAIL FROM:<sales@example.test>')).code, 250);
    assert.equal((await c.cmd('RSET')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<Alice@Example.TEST>')).code, 250);
    c.write('QUIT\r\n');
  });

  test('a From: header the user does not own: 550 5.7.1 at the end of DATA, nothing delivered', async () => {
    const c = await authed(t);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    const r = await c.cmd('From: Bob <bob@example.test>\r\nSubject: forged\r\n\r\nx\r\n.');
    assert.equal(r.text, '553 5.7.1 From: header address not owned by the authenticated user');
    assert.equal((await t.messages('bob@example.test').catch(() => [])).length, 0);
    // Two From fields, or none, are refused too.
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    assert.equal((await c.cmd('Subject: no from\r\n\r\nx\r\n.')).code, 550);
    c.write('QUIT\r\n');
  });

  test('a good message: local delivery with ESMTPSA, Message-ID and Date added, line endings fixed', async () => {
    const c = await authed(t);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    // A sloppy client: bare LF inside the message. Submission normalises instead of refusing.
    const r = await c.cmd(
      'From: Sales <sales@example.test>\r\nSubject: hi\nTo: bob@example.test\r\n\r\nline1\nline2\r\n.',
    );
    assert.match(r.text, /^250 2\.0\.0 Ok: message m\S+ delivered$/);
    const [file] = await t.messages('bob@example.test');
    const text = file?.toString() ?? '';
    assert.match(
      text,
      /^Return-Path: <alice@example\.test>\r\nDelivered-To: bob@example\.test\r\nReceived: from client\.test/,
    );
    assert.match(text, /with ESMTPSA id m/);
    assert.match(text, /\r\nMessage-ID: <m\S+@mx\.test\.example>\r\n/);
    assert.match(text, /\r\nDate: \w{3}, \d{1,2} \w{3} \d{4} /);
    assert.match(text, /Subject: hi\r\nTo: bob@example\.test\r\n\r\nline1\r\nline2\r\n$/);
    assert.doesNotMatch(text, /(?<!\r)\n/, 'CRLF everywhere');
    c.write('QUIT\r\n');
  });

  test('implicit TLS (465) with nodemailer; the existing Message-ID is kept', async () => {
    const transport = nodemailer.createTransport({
      host: '127.0.0.1',
      port: t.submissionTlsPort,
      secure: true,
      tls: { rejectUnauthorized: false },
      auth: { user: 'alice@example.test', pass: PASSWORD },
    });
    const before = (await t.messages('bob@example.test').catch(() => [])).length;
    const info = await transport.sendMail({
      from: 'alice@example.test',
      to: 'bob@example.test',
      subject: 'via 465',
      text: 'x',
      messageId: '<kept@client.test>',
    });
    assert.match(info.response, /^250 /);
    const all = await t.messages('bob@example.test');
    assert.equal(all.length, before + 1);
    const text = all.map((b) => b.toString()).find((m) => m.includes('via 465')) ?? '';
    assert.match(text, /Message-ID: <kept@client\.test>/i);
    assert.equal(text.match(/^Message-ID:/gim)?.length, 1);
    transport.close();
  });

  test('a local recipient that does not exist is refused at RCPT (550 5.1.1), not bounced later', async () => {
    const c = await authed(t);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
    assert.equal(
      (await c.cmd('RCPT TO:<nobody@example.test>')).text,
      '550 5.1.1 Recipient address rejected: user unknown',
    );
    c.write('QUIT\r\n');
  });

  test('port 25 is no open relay: remote recipients are refused with and without AUTH attempts', async () => {
    const c = await RawSmtp.connect(t.port);
    await c.read();
    const ehlo = await c.cmd('EHLO client.test');
    assert.ok(!ehlo.lines.some((l) => l.includes('AUTH')), 'no AUTH on port 25');
    assert.ok((await c.cmd(`AUTH PLAIN ${plain('alice@example.test', PASSWORD)}`)).code >= 500);
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<victim@remote.test>')).text, '550 5.7.1 Relay access denied');
    // Classic relay tricks: source routes, percent hack, quoted local parts with @.
    for (const rcpt of [
      '<@example.test:victim@remote.test>',
      '<victim%remote.test@example.test>',
      '<"victim@remote.test"@example.test>',
    ]) {
      const r = await c.cmd(`RCPT TO:${rcpt}`);
      assert.ok(r.code >= 500, `${rcpt} -> ${r.text}`);
    }
    c.write('QUIT\r\n');
    assert.equal((await t.admin.queue.list()).length, 0, 'nothing was queued');
  });
});
