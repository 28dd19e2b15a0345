// The DSN extension (RFC 3461) and the SMTPUTF8 downgrade refusal (RFC 6531 §3.4) end to end:
// nodemailer submits with DSN parameters, arcline delivers to real SMTP sinks on loopback
// addresses (one offering DSN, one without SMTPUTF8, one plain) found through a real DNS
// server, and its notices land in the sender's Maildir.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { submitter, waitUntil } from '../harness/submit.ts';

/** Alice submits a message to `to`, with the DSN options of nodemailer (RET, ENVID, NOTIFY, ORCPT). */
async function send(t: TestServer, to: string, subject: string, text: string, dsn?: object): Promise<void> {
  await submitter(t.submissionPort).sendMail({
    from: 'alice@example.test',
    to,
    subject,
    text,
    ...(dsn ? { dsn } : {}),
  });
}

/** The notices in alice's Maildir mentioning `marker`, once there is one. */
async function noticeFor(t: TestServer, marker: string): Promise<string> {
  return waitUntil(`a notice about ${marker}`, async () => {
    const all = (await t.messages('alice@example.test').catch(() => [])).map((m) => m.toString('utf8'));
    return all.find((m) => m.startsWith('Return-Path: <>') && m.includes(marker)) ?? null;
  });
}

describe('DSN parameters and SMTPUTF8 at the next hop', () => {
  let dns: TestDnsServer;
  let plain: FakeMx; // SMTPUTF8, no DSN; refuses nobody@
  let withDsn: FakeMx; // DSN offered
  let ascii: FakeMx; // no SMTPUTF8
  let t: TestServer;

  before(async () => {
    plain = await startFakeMx({
      onRcpt: (a) => (a.startsWith('nobody@') ? { code: 550, message: '5.1.1 <nobody>: user unknown' } : null),
    });
    // One delivery port for every MX ([delivery] port): the sinks differ by loopback address.
    withDsn = await startFakeMx({ host: '127.0.0.3', port: plain.port, dsn: true });
    ascii = await startFakeMx({ host: '127.0.0.4', port: plain.port, smtputf8: false });
    // plain.test, dsn.test and ascii.test: each domain's MX on its sink's address
    const sinks = { plain: '127.0.0.1', dsn: '127.0.0.3', ascii: '127.0.0.4' };
    dns = await startTestDns(
      Object.entries(sinks).flatMap(([d, address]) => [
        { type: 'MX' as const, name: `${d}.test`, preference: 10, exchange: `mx.${d}.test` },
        { type: 'A' as const, name: `mx.${d}.test`, address },
      ]),
    );
    t = await startTestServer({
      submission: true,
      extra: `[delivery]\nport = ${plain.port}\nretry_schedule = ["300ms"]\n[dns]\nservers = ["${dns.address}"]`,
    });
  });

  after(async () => {
    await t?.stop();
    for (const mx of [plain, withDsn, ascii]) await mx?.close();
    await dns?.close();
  });

  test('RET, ENVID, NOTIFY and ORCPT reach a next hop that offers DSN', async () => {
    await send(t, 'carol@dsn.test', 'dsn round trip', 'x', {
      id: 'env+id=1',
      return: 'headers',
      notify: ['success', 'failure'],
      recipient: 'Carol@dsn.test',
    });
    const [mail] = await withDsn.waitFor(1);
    assert.ok(mail);
    assert.equal(mail.dsn?.ret, 'HDRS');
    // "+" and "=" crossed both hops as xtext (+2B, +3D) and decode back to the sender's value
    assert.equal(mail.dsn?.envid, 'env+id=1');
    assert.deepEqual(mail.rcptDsn['carol@dsn.test']?.notify, ['SUCCESS', 'FAILURE']);
    assert.equal(mail.rcptDsn['carol@dsn.test']?.orcpt, 'rfc822;Carol@dsn.test');
  });

  test('inbound (port 25): an alias forwarding outside passes NOTIFY and ORCPT on', async () => {
    await t.admin.ops.addAlias('fwd@example.test', ['dan@dsn.test']);
    const port25 = nodemailer.createTransport({ host: '127.0.0.1', port: t.port, secure: false, ignoreTLS: true });
    await port25.sendMail({
      envelope: { from: 'someone@elsewhere.test', to: ['fwd@example.test'] },
      raw: 'From: someone@elsewhere.test\r\nSubject: forwarded with dsn\r\n\r\nhi\r\n',
      dsn: { id: 'inbound-env', notify: ['failure'], recipient: 'fwd@example.test' },
    });
    const mail = await waitUntil('the forward at the DSN sink', async () =>
      withDsn.mails.find((m) => m.to.includes('dan@dsn.test')),
    );
    assert.equal(mail.dsn?.envid, 'inbound-env');
    assert.deepEqual(mail.rcptDsn['dan@dsn.test']?.notify, ['FAILURE']);
    assert.equal(mail.rcptDsn['dan@dsn.test']?.orcpt, 'rfc822;fwd@example.test');
  });

  test('NOTIFY=SUCCESS through a next hop without DSN: a "relayed" notice with ENVID and ORCPT', async () => {
    await send(t, 'relay-me@plain.test', 'relayed please', 'x', {
      id: 'envelope-relayed',
      notify: 'success',
      recipient: 'Relay-Me@plain.test',
    });
    const dsn = await noticeFor(t, 'Final-Recipient: rfc822; relay-me@plain.test');
    assert.match(dsn, /Action: relayed\r\nStatus: 2\.\d\.\d/);
    assert.match(dsn, /Original-Envelope-Id: envelope-relayed\r\n/);
    assert.match(dsn, /Original-Recipient: rfc822;Relay-Me@plain\.test\r\n/);
    assert.ok(
      plain.mails.some((m) => m.to.includes('relay-me@plain.test')),
      'and the message went',
    );
  });

  test('NOTIFY=SUCCESS for a local recipient: a "delivered" notice', async () => {
    await send(t, 'bob@example.test', 'local success', 'x', { id: 'envelope-local', notify: ['success'] });
    const dsn = await noticeFor(t, 'Final-Recipient: rfc822; bob@example.test');
    assert.match(dsn, /Action: delivered\r\nStatus: 2\.0\.0/);
    assert.match(dsn, /Original-Envelope-Id: envelope-local\r\n/);
    assert.match(dsn, /Subject: local success/);
  });

  test('NOTIFY=NEVER: a permanent failure sends no bounce', async () => {
    const have = (await t.messages('alice@example.test').catch(() => [])).length;
    await send(t, 'nobody@plain.test', 'never tell', 'x', { notify: 'never' });
    await waitUntil('no-notice decision', async () =>
      t.logs.find((l) => l.msg === 'no failure notice: NOTIFY' && l.rcpt === 'nobody@plain.test'),
    );
    // The outcome is recorded after any notice is durable: once the entry is gone, a bounce
    // would be in the Maildir already.
    await waitUntil('queue empty', async () => (await t.admin.queue.list()).length === 0);
    const now = (await t.messages('alice@example.test').catch(() => [])).map((m) => m.toString());
    assert.equal(now.filter((m) => m.includes('never tell')).length, 0);
    assert.equal(now.length, have);
  });

  test('RET=HDRS: the bounce has the header block and no body; RET=FULL returns the whole message', async () => {
    await send(t, 'nobody@plain.test', 'headers only please', 'BODY-MARKER-HDRS', {
      return: 'headers',
      id: 'env-hdrs',
    });
    const hdrs = await noticeFor(t, 'Original-Envelope-Id: env-hdrs');
    assert.match(hdrs, /Content-Type: text\/rfc822-headers\r\n\r\n[\s\S]*Subject: headers only please/);
    assert.ok(!hdrs.includes('BODY-MARKER-HDRS'), 'no body in the bounce');
    await send(t, 'nobody@plain.test', 'full please', 'BODY-MARKER-FULL', { return: 'full', id: 'env-full' });
    const full = await noticeFor(t, 'Original-Envelope-Id: env-full');
    assert.match(full, /Content-Type: message\/rfc822\r\n\r\n[\s\S]*Subject: full please[\s\S]*BODY-MARKER-FULL/);
  });

  test('a UTF-8 address to a next hop without SMTPUTF8 bounces with 5.6.7; with it, it is delivered', async () => {
    await send(t, 'jürgen@ascii.test', 'utf8 refused', 'x');
    const dsn = await noticeFor(t, 'Final-Recipient: rfc822; jürgen@ascii.test');
    assert.match(dsn, /Action: failed\r\nStatus: 5\.6\.7/);
    assert.match(dsn, /Diagnostic-Code: smtp; 550 5\.6\.7 .*SMTPUTF8/);
    assert.equal(ascii.mails.length, 0, 'nothing was sent to the host without SMTPUTF8');
    const before = plain.mails.length;
    await send(t, 'jürgen@plain.test', 'utf8 delivered', 'x');
    const [mail] = (await plain.waitFor(before + 1)).slice(before);
    assert.deepEqual(mail?.to, ['jürgen@plain.test']);
  });

  test('UTF-8 in a header field (RFC 6532) needs SMTPUTF8 too: 5.6.7 from a host without it', async () => {
    const raw = 'From: Jürgen <alice@example.test>\r\nTo: dora@ascii.test\r\nSubject: header utf8\r\n\r\nx\r\n';
    await submitter(t.submissionPort).sendMail({
      envelope: { from: 'alice@example.test', to: ['dora@ascii.test'] },
      raw,
    });
    const dsn = await noticeFor(t, 'Final-Recipient: rfc822; dora@ascii.test');
    assert.match(dsn, /Status: 5\.6\.7/);
    assert.equal(ascii.mails.length, 0);
  });
});
