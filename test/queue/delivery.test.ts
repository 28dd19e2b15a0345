// The outbound path end to end, over real sockets only: nodemailer submits to our submission
// port, arcline resolves MX records from a real DNS server on 127.0.0.1 (test/harness/dns.ts)
// and delivers to real SMTP servers on loopback addresses standing in for remote MXes.

import assert from 'node:assert/strict';
import { mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, type ReceivedMail, startFakeMx } from '../harness/mx.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { submitter, waitUntil } from '../harness/submit.ts';

/** The messages in a Maildir's new/ once there are at least n. */
function mailbox(t: TestServer, address: string, n: number, ms?: number): Promise<Buffer[]> {
  return waitUntil(
    `${n} message(s) for ${address}`,
    async () => {
      const m = await t.messages(address).catch(() => []);
      return m.length >= n ? m : null;
    },
    ms,
  );
}

function headerOf(mail: Buffer | ReceivedMail, name: string): string | null {
  const text = (Buffer.isBuffer(mail) ? mail : mail.data).toString('utf8');
  const head = text.slice(0, text.indexOf('\r\n\r\n'));
  const m = new RegExp(`^${name}:[ \\t]*(.*(?:\\r\\n[ \\t].*)*)`, 'im').exec(head);
  return m ? (m[1] ?? '').replace(/\r\n[ \t]+/g, ' ') : null;
}

describe('outbound delivery', () => {
  let dns: TestDnsServer;
  let mx: FakeMx;
  let t: TestServer;
  let greylisted = 0;

  before(async () => {
    mx = await startFakeMx({
      onRcpt: (address) => {
        if (address.startsWith('nobody@')) return { code: 550, message: '5.1.1 <nobody>: user unknown' };
        if (address.startsWith('greylist@') && greylisted++ === 0) {
          return { code: 451, message: '4.7.1 greylisted, try again later' };
        }
        return null;
      },
    });
    dns = await startTestDns([
      { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
      { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
      // First MX refuses connections (nothing listens on 127.0.0.2), the second takes mail.
      { type: 'MX', name: 'backup.test', preference: 10, exchange: 'down.backup.test' },
      { type: 'MX', name: 'backup.test', preference: 20, exchange: 'up.backup.test' },
      { type: 'A', name: 'down.backup.test', address: '127.0.0.2' },
      { type: 'A', name: 'up.backup.test', address: '127.0.0.1' },
      { type: 'MX', name: 'nullmx.test', preference: 0, exchange: '.' },
      // No MX: the domain's own address is the implicit MX (RFC 5321 §5.1).
      { type: 'A', name: 'implicit.test', address: '127.0.0.1' },
    ]);
    t = await startTestServer({
      submission: true,
      extra: `[delivery]\nport = ${mx.port}\nretry_schedule = ["300ms"]\n[dns]\nservers = ["${dns.address}"]\n[metrics]\nlisten = ["127.0.0.1:0"]`,
    });
  });

  after(async () => {
    await t?.stop();
    await mx?.close();
    await dns?.close();
  });

  test('a message to a remote domain is delivered to its MX over STARTTLS, and leaves the queue', async () => {
    const before = mx.mails.length;
    const info = await submitter(t.submissionPort).sendMail({
      from: 'Alice <alice@example.test>',
      to: 'carol@remote.test',
      subject: 'hello remote',
      text: 'Hi Carol',
    });
    assert.match(info.response, /^250 2\.0\.0 Ok: queued as m/);
    const [mail] = (await mx.waitFor(before + 1)).slice(before);
    assert.ok(mail);
    assert.equal(mail.from, 'alice@example.test');
    assert.deepEqual(mail.to, ['carol@remote.test']);
    assert.equal(mail.secure, true, 'opportunistic STARTTLS was used');
    assert.equal(mail.helo, 'mx.test.example');
    assert.equal(headerOf(mail, 'Subject'), 'hello remote');
    assert.match(headerOf(mail, 'Received') ?? '', /with ESMTPSA id m/);
    assert.ok(headerOf(mail, 'Message-ID'));
    assert.equal(headerOf(mail, 'Delivered-To'), null, 'no local trace headers on the remote copy');
    await waitUntil('queue empty', async () => (await t.admin.queue.list()).length === 0);
    // The row goes first, then the spool file (a crash in between leaves an orphan file that the
    // next start removes, never a row without its file): await the file too.
    await waitUntil(
      'spool file removed',
      async () => (await readdir(join(t.config.storage.state, 'queue'))).length === 0,
    );
  });

  test('one message to a local and a remote recipient: local copy stored, remote copy sent', async () => {
    const before = mx.mails.length;
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: ['bob@example.test', 'dave@remote.test'],
      subject: 'both',
      text: 'x',
    });
    const [local] = await mailbox(t, 'bob@example.test', 1);
    assert.match(local?.toString() ?? '', /^Return-Path: <alice@example\.test>\r\nDelivered-To: bob@example\.test\r\n/);
    const [mail] = (await mx.waitFor(before + 1)).slice(before);
    assert.deepEqual(mail?.to, ['dave@remote.test']);
    assert.equal(headerOf(mail as ReceivedMail, 'Subject'), 'both');
  });

  test('a 4xx reply is retried on the schedule and then delivered', async () => {
    const before = mx.mails.length;
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: 'greylist@remote.test',
      subject: 'grey',
      text: 'x',
    });
    const [mail] = (await mx.waitFor(before + 1)).slice(before);
    assert.deepEqual(mail?.to, ['greylist@remote.test']);
    const deferred = await waitUntil('deferred log', async () =>
      t.logs.find((l) => l.msg === 'deferred' && l.rcpt === 'greylist@remote.test'),
    );
    assert.ok(deferred, 'the first attempt was logged as deferred');
    assert.match(String(deferred.reply), /^451 4\.7\.1 greylisted/);
    assert.equal(deferred.status, '4.7.1');
    assert.ok(deferred.next_retry);
  });

  test('a 5xx reply bounces: an RFC 3464 report lands in the sender Maildir with the original headers', async () => {
    const have = (await t.messages('alice@example.test').catch(() => [])).length;
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: ['nobody@remote.test', 'erin@remote.test'],
      subject: 'will bounce',
      text: 'x',
    });
    const msgs = await mailbox(t, 'alice@example.test', have + 1);
    const dsn = msgs.map((m) => m.toString()).find((m) => m.includes('Final-Recipient: rfc822; nobody@remote.test'));
    assert.ok(dsn, 'a bounce for nobody@remote.test arrived');
    assert.match(dsn, /^Return-Path: <>\r\n/);
    assert.match(dsn, /Content-Type: multipart\/report; report-type=delivery-status;/);
    assert.match(dsn, /Auto-Submitted: auto-replied/);
    assert.match(dsn, /Action: failed\r\nStatus: 5\.1\.1\r\nRemote-MTA: dns; mx\.remote\.test/);
    assert.match(dsn, /Diagnostic-Code: smtp; 550 5\.1\.1 <nobody>: user unknown/);
    assert.match(dsn, /Content-Type: text\/rfc822-headers\r\n\r\n[\s\S]*Subject: will bounce/);
    assert.doesNotMatch(dsn, /erin@remote\.test>?: /, 'the accepted recipient is not in the bounce');
    // One transaction for the domain: erin got the message, nobody was refused at RCPT.
    const erin = mx.mails.find((m) => m.to.includes('erin@remote.test'));
    assert.deepEqual(erin?.to, ['erin@remote.test']);
  });

  test('a bounce that cannot be stored is not lost: the recipient stays queued until it can', async () => {
    const box = t.mailboxDir('bob@example.test');
    await rm(join(box, 'tmp'), { recursive: true });
    await writeFile(join(box, 'tmp'), 'storage is broken');
    const before = (await t.messages('bob@example.test').catch(() => [])).length;
    try {
      await submitter(t.submissionPort, 'bob@example.test').sendMail({
        from: 'bob@example.test',
        to: 'nobody@remote.test',
        subject: 'bounce later',
        text: 'x',
      });
      await waitUntil('the failed notice', async () =>
        t.logs.find((l) => l.msg === 'could not deliver the notice to the sender'),
      );
      const m = await waitUntil('recorded as still queued', async () =>
        (await t.admin.queue.list()).find((q) =>
          q.recipients.some((r) => r.address === 'nobody@remote.test' && r.attempts > 0),
        ),
      );
      assert.equal(m.recipients[0]?.state, 'queued');
    } finally {
      await rm(join(box, 'tmp'));
      await mkdir(join(box, 'tmp'));
    }
    const queued = (await t.admin.queue.list()).find((q) => q.sender === 'bob@example.test');
    assert.ok(queued);
    await t.admin.queue.retry(queued.id);
    const msgs = await mailbox(t, 'bob@example.test', before + 1);
    assert.ok(msgs.some((x) => x.toString().includes('Final-Recipient: rfc822; nobody@remote.test')));
    await waitUntil('queue entry gone', async () => (await t.admin.queue.get(queued.id)) === null);
  });

  test('a null MX (RFC 7505) bounces at once with 5.1.10, without a connection', async () => {
    const have = (await t.messages('alice@example.test').catch(() => [])).length;
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: 'x@nullmx.test',
      subject: 'null',
      text: 'x',
    });
    const msgs = await mailbox(t, 'alice@example.test', have + 1);
    const dsn = msgs.map((m) => m.toString()).find((m) => m.includes('x@nullmx.test'));
    assert.match(dsn ?? '', /Status: 5\.1\.10/);
    assert.match(dsn ?? '', /null MX/);
  });

  test('an unknown domain (NXDOMAIN) bounces with 5.1.2', async () => {
    const have = (await t.messages('alice@example.test').catch(() => [])).length;
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: 'x@nowhere.test',
      subject: 'nx',
      text: 'x',
    });
    const msgs = await mailbox(t, 'alice@example.test', have + 1);
    assert.match(msgs.map((m) => m.toString()).find((m) => m.includes('x@nowhere.test')) ?? '', /Status: 5\.1\.2/);
  });

  test('first MX down, second up: delivered through the second', async () => {
    const before = mx.mails.length;
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: 'frank@backup.test',
      subject: 'mx2',
      text: 'x',
    });
    const [mail] = (await mx.waitFor(before + 1)).slice(before);
    assert.deepEqual(mail?.to, ['frank@backup.test']);
    const line = await waitUntil('delivered log', async () =>
      t.logs.find((l) => l.msg === 'delivered' && l.rcpt === 'frank@backup.test'),
    );
    assert.match(String(line?.host), /^up\.backup\.test \[127\.0\.0\.1\]/);
  });

  test('an MX with only an IPv6 address is reached over IPv6', async () => {
    const v6 = await startFakeMx({ host: '::1', port: mx.port });
    dns.add({ type: 'MX', name: 'six.test', preference: 10, exchange: 'mx.six.test' });
    dns.add({ type: 'AAAA', name: 'mx.six.test', address: '::1' });
    try {
      await submitter(t.submissionPort).sendMail({
        from: 'alice@example.test',
        to: 'v@six.test',
        subject: 'v6',
        text: 'x',
      });
      const [mail] = await v6.waitFor(1);
      assert.deepEqual(mail?.to, ['v@six.test']);
      const line = await waitUntil('delivered log', async () =>
        t.logs.find((l) => l.msg === 'delivered' && l.rcpt === 'v@six.test'),
      );
      assert.equal(line.host, 'mx.six.test [::1]');
    } finally {
      await v6.close();
    }
  });

  test('no MX record: the A record of the domain is used', async () => {
    const before = mx.mails.length;
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: 'gina@implicit.test',
      subject: 'a',
      text: 'x',
    });
    const [mail] = (await mx.waitFor(before + 1)).slice(before);
    assert.deepEqual(mail?.to, ['gina@implicit.test']);
  });

  test('one connection carries several messages in a row (connection cache)', async () => {
    await new Promise((r) => setTimeout(r, 2200)); // let earlier cached connections expire
    const before = { mails: mx.mails.length, conns: mx.connections };
    const s = submitter(t.submissionPort);
    for (let i = 0; i < 3; i++) {
      await s.sendMail({ from: 'alice@example.test', to: `reuse${i}@remote.test`, subject: `r${i}`, text: 'x' });
      await mx.waitFor(before.mails + i + 1);
    }
    assert.equal(mx.connections - before.conns, 1, 'one connection for three messages');
  });

  test('a cached connection the server closed is not used: the next message still goes out', async () => {
    const strict = await startFakeMx({ host: '127.0.0.6', port: mx.port, idleTimeoutMs: 200 });
    dns.add({ type: 'MX', name: 'strict.test', preference: 10, exchange: 'mx.strict.test' });
    dns.add({ type: 'A', name: 'mx.strict.test', address: '127.0.0.6' });
    try {
      const s = submitter(t.submissionPort);
      await s.sendMail({ from: 'alice@example.test', to: 'a@strict.test', subject: 's1', text: 'x' });
      await strict.waitFor(1);
      await new Promise((r) => setTimeout(r, 600)); // the server has closed the idle connection
      await s.sendMail({ from: 'alice@example.test', to: 'b@strict.test', subject: 's2', text: 'x' });
      await strict.waitFor(2);
      assert.equal(strict.connections, 2);
    } finally {
      await strict.close();
    }
  });

  test('a DNS failure (SERVFAIL) defers, never bounces', async () => {
    dns.failing.add('flaky.test');
    try {
      await submitter(t.submissionPort).sendMail({
        from: 'alice@example.test',
        to: 'h@flaky.test',
        subject: 'f',
        text: 'x',
      });
      const line = await waitUntil('deferral', async () =>
        t.logs.find((l) => l.msg === 'deferred' && l.rcpt === 'h@flaky.test'),
      );
      assert.equal(line.status, '4.4.3');
      const queued = (await t.admin.queue.list()).find((m) => m.recipients.some((r) => r.address === 'h@flaky.test'));
      assert.ok(queued, 'still queued');
      assert.equal(await t.admin.queue.drop(queued.id), true);
    } finally {
      dns.failing.delete('flaky.test');
    }
  });

  test('inbound mail to an alias that forwards outside is queued and delivered', async () => {
    await t.admin.ops.addAlias('fwd@example.test', ['ivan@remote.test']);
    const before = mx.mails.length;
    const port25 = nodemailer.createTransport({ host: '127.0.0.1', port: t.port, secure: false, ignoreTLS: true });
    const info = await port25.sendMail({
      envelope: { from: 'someone@elsewhere.test', to: ['fwd@example.test'] },
      raw: 'From: someone@elsewhere.test\r\nTo: fwd@example.test\r\nSubject: forwarded\r\n\r\nhi\r\n',
    });
    assert.match(info.response, /queued as/);
    const [mail] = (await mx.waitFor(before + 1)).slice(before);
    assert.deepEqual(mail?.to, ['ivan@remote.test']);
    // The envelope sender is rewritten with SRS under the alias's domain (docs/srs.md).
    assert.match(mail?.from ?? '', /^SRS0=[^=]+=[^=]+=elsewhere\.test=someone@example\.test$/);
    assert.equal(headerOf(mail as ReceivedMail, 'Subject'), 'forwarded');
  });

  test('a bounce is never sent for a message with a null sender', async () => {
    const port25 = nodemailer.createTransport({ host: '127.0.0.1', port: t.port, secure: false, ignoreTLS: true });
    await t.admin.ops.addAlias('fwd2@example.test', ['nobody@remote.test']);
    await port25.sendMail({
      envelope: { from: '', to: ['fwd2@example.test'] },
      raw: 'From: x@elsewhere.test\r\nSubject: null sender\r\n\r\nhi\r\n',
    });
    await waitUntil('bounce decision', async () => t.logs.find((l) => l.msg === 'no notice: null sender'));
  });

  test('queue files are spooled durably: the spool file is complete when the row exists', async () => {
    // A message to a host that never answers stays queued; its file holds exactly what is sent.
    dns.add({ type: 'MX', name: 'stuck.test', preference: 10, exchange: 'down.backup.test' });
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: 'j@stuck.test',
      subject: 'stuck',
      text: 'body',
    });
    const m = await waitUntil('queued', async () =>
      (await t.admin.queue.list()).find((q) => q.recipients.some((r) => r.address === 'j@stuck.test')),
    );
    const file = await readFile(join(t.config.storage.state, 'queue', `${m.id}.eml`));
    assert.equal(file.length, m.size);
    assert.match(file.toString(), /^Received: from [\s\S]*Subject: stuck\r\n[\s\S]*\r\n\r\nbody\r\n$/);
    assert.equal(await t.admin.queue.drop(m.id), true);
  });

  test('a queued message whose file was lost (damaged storage) is bounced, not retried for days', async () => {
    const have = (await t.messages('alice@example.test').catch(() => [])).length;
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: 'k@stuck.test',
      subject: 'lost',
      text: 'body',
    });
    const m = await waitUntil('queued', async () =>
      (await t.admin.queue.list()).find((q) =>
        q.recipients.some((r) => r.address === 'k@stuck.test' && r.attempts > 0),
      ),
    );
    await rm(join(t.config.storage.state, 'queue', `${m.id}.eml`));
    await t.admin.queue.retry(m.id);
    const msgs = await mailbox(t, 'alice@example.test', have + 1);
    const dsn = msgs.map((x) => x.toString()).find((x) => x.includes('k@stuck.test')) ?? '';
    assert.match(dsn, /Status: 5\.3\.0/);
    assert.match(dsn, /message file is missing/);
  });

  test('GET /metrics reports attempts, notices and the queue size (Prometheus text format)', async () => {
    const at = t.server.metrics[0];
    assert.ok(at, 'metrics listener bound');
    const res = await fetch(`http://127.0.0.1:${at.port}/metrics`);
    assert.equal(res.status, 200);
    const text = await res.text();
    const value = (re: RegExp) => Number(re.exec(text)?.[1] ?? Number.NaN);
    assert.ok(value(/^arcline_queue_attempts_total\{result="sent",tls="yes"\} (\d+)/m) >= 5);
    assert.ok(value(/^arcline_queue_attempts_total\{result="failed",tls="(?:yes|no)"\} (\d+)/m) >= 1);
    assert.ok(value(/^arcline_queue_notices_total\{kind="failed"\} (\d+)/m) >= 3);
    assert.ok(value(/^arcline_smtp_messages_total\{service="submission"\} (\d+)/m) >= 5);
    assert.match(text, /^arcline_queue_messages \d+/m);
    assert.match(text, /^arcline_queue_attempt_duration_seconds_bucket/m);
    assert.equal((await fetch(`http://127.0.0.1:${at.port}/other`)).status, 404);
  });
});
