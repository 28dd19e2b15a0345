// Queue policy over real sockets: delay warnings and expiry, the smarthost relay with AUTH,
// concurrency limits per destination, and the `arcline queue` commands against a running server.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { runCli } from '../harness/process.ts';
import { startTestServer } from '../harness/server.ts';
import { submitter, waitUntil } from '../harness/submit.ts';

describe('queue policy', () => {
  let dns: TestDnsServer;
  let sink: FakeMx;
  let slow: FakeMx;

  before(async () => {
    sink = await startFakeMx({ dataDelayMs: 150 });
    // Always "try again later": for delay warnings and expiry.
    slow = await startFakeMx({
      host: '127.0.0.4',
      port: sink.port,
      onRcpt: () => ({ code: 451, message: '4.7.1 Please try again later' }),
    });
    dns = await startTestDns([
      { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
      { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
      { type: 'MX', name: 'slow.test', preference: 10, exchange: 'mx.slow.test' },
      { type: 'A', name: 'mx.slow.test', address: '127.0.0.4' },
      { type: 'MX', name: 'down.test', preference: 10, exchange: 'mx.down.test' },
      { type: 'A', name: 'mx.down.test', address: '127.0.0.5' },
    ]);
  });

  after(async () => {
    await sink?.close();
    await slow?.close();
    await dns?.close();
  });

  test('a long delay warns the sender once, then the message expires and bounces', async () => {
    const t = await startTestServer({
      submission: true,
      extra: `[delivery]\nport = ${sink.port}\nretry_schedule = ["100ms"]\ndelay_warning = "300ms"\nmax_lifetime = "3s"\n[dns]\nservers = ["${dns.address}"]`,
    });
    try {
      await submitter(t.submissionPort).sendMail({
        from: 'alice@example.test',
        to: 'k@slow.test',
        subject: 'patience',
        text: 'x',
      });
      const msgs = await waitUntil(
        'a warning and a bounce',
        async () => {
          const m = (await t.messages('alice@example.test').catch(() => [])).map((b) => b.toString());
          return m.some((x) => x.includes('Action: failed')) ? m : null;
        },
        15000,
      );
      const warnings = msgs.filter((m) => m.includes('Action: delayed'));
      assert.equal(warnings.length, 1, 'exactly one delay warning');
      assert.match(warnings[0] ?? '', /Subject: Delayed Mail \(still being retried\)/);
      assert.match(warnings[0] ?? '', /Will-Retry-Until: /);
      assert.match(warnings[0] ?? '', /Status: 4\.7\.1/);
      const bounce = msgs.find((m) => m.includes('Action: failed')) ?? '';
      assert.match(bounce, /Subject: Undelivered Mail Returned to Sender/);
      assert.match(bounce, /Status: 4\.7\.1/, 'the last temporary status is reported');
      assert.match(bounce, /Diagnostic-Code: smtp; 451 4\.7\.1 Please try again later/);
      // The bounce is delivered before the expired message leaves the queue (same round).
      await waitUntil('the expired message out of the queue', async () => (await t.admin.queue.list()).length === 0);
    } finally {
      await t.stop();
    }
  });

  test('deliveries to one domain stay within max_connections_per_domain', async () => {
    const t = await startTestServer({
      submission: true,
      extra: `[delivery]\nport = ${sink.port}\nmax_connections_per_domain = 2\n[dns]\nservers = ["${dns.address}"]`,
    });
    try {
      const before = sink.mails.length;
      const s = submitter(t.submissionPort);
      for (let i = 0; i < 8; i++) {
        await s.sendMail({ from: 'alice@example.test', to: `c${i}@remote.test`, subject: `c${i}`, text: 'x' });
      }
      await sink.waitFor(before + 8);
      assert.ok(sink.maxOpen <= 2, `at most 2 connections at once, saw ${sink.maxOpen}`);
      assert.equal(sink.maxOpen, 2, 'and the limit was used');
    } finally {
      await t.stop();
    }
  });

  test('relay: everything goes through the smarthost with STARTTLS and AUTH; a bad password defers', async () => {
    // The relay is an address: no SNI server name for it (no DEP0123 warning from Node's TLS).
    const warnings: string[] = [];
    const onWarning = (w: Error & { code?: string }) => warnings.push(w.code ?? w.name);
    process.on('warning', onWarning);
    after(() => process.off('warning', onWarning));
    const relay = await startFakeMx({ users: { relayuser: 'relay-pw' } });
    const secrets = await mkdtemp(join(tmpdir(), 'arcline-relay-'));
    const relayConfig = (file: string) =>
      `[delivery]\nrelay = "127.0.0.1:${relay.port}"\nrelay_username = "relayuser"\nrelay_password_file = "${file}"\nrelay_verify_tls = false\nretry_schedule = ["200ms"]\n[dns]\nservers = ["${dns.address}"]`;
    await writeFile(join(secrets, 'good.pw'), 'relay-pw\n');
    await writeFile(join(secrets, 'bad.pw'), 'wrong\n');
    after(async () => {
      await relay.close();
      await rm(secrets, { recursive: true, force: true });
    });
    const good = await startTestServer({ submission: true, extra: relayConfig(join(secrets, 'good.pw')) });
    try {
      await submitter(good.submissionPort).sendMail({
        from: 'alice@example.test',
        to: 'z@no-dns.test',
        subject: 'r',
        text: 'x',
      });
      const [mail] = await relay.waitFor(1);
      assert.equal(mail?.user, 'relayuser');
      assert.equal(mail?.secure, true);
      assert.deepEqual(mail?.to, ['z@no-dns.test']);
      assert.ok(!warnings.includes('DEP0123'), `warnings: ${warnings.join(', ')}`);
    } finally {
      await good.stop();
    }
    const bad = await startTestServer({ submission: true, extra: relayConfig(join(secrets, 'bad.pw')) });
    try {
      await submitter(bad.submissionPort).sendMail({
        from: 'alice@example.test',
        to: 'y@no-dns.test',
        subject: 'r2',
        text: 'x',
      });
      const line = await waitUntil('deferral', async () => bad.logs.find((l) => l.msg === 'deferred'));
      assert.match(String(line.reply), /535/);
      assert.equal((await bad.admin.queue.list()).length, 1, 'kept in the queue, not bounced');
      assert.equal((await bad.messages('alice@example.test').catch(() => [])).length, 0);
    } finally {
      await bad.stop();
    }
  });

  test('arcline queue list | show | retry | delete work against the running server', async () => {
    const t = await startTestServer({
      submission: true,
      extra: `[delivery]\nport = ${sink.port}\nconnect_timeout = "500ms"\n[dns]\nservers = ["${dns.address}"]`,
    });
    const cli = (...args: string[]) => runCli(['--config', t.configFile, 'queue', ...args]);
    try {
      await submitter(t.submissionPort).sendMail({
        from: 'alice@example.test',
        to: 'q@down.test',
        subject: 'stuck',
        text: 'x',
      });
      const m = await waitUntil('an attempt', async () => {
        const q = (await t.admin.queue.list())[0];
        return q?.recipients[0]?.attempts ? q : null;
      });
      const list = await cli('list');
      assert.equal(list.code, 0);
      assert.match(list.stdout, new RegExp(`^${m.id} +\\S+ +\\S+ +alice@example\\.test +1 +in `, 'm'));
      assert.match(list.stdout, /1 message\(s\), 1 recipient\(s\) queued/);
      const show = await cli('show', m.id);
      assert.equal(show.code, 0);
      assert.match(show.stdout, /q@down\.test: queued, 1 attempt\(s\)/);
      assert.match(show.stdout, /last reply: +mx\.down\.test \[127\.0\.0\.5\]: /);
      const retry = await cli('retry', m.id);
      assert.equal(retry.code, 0);
      assert.match(retry.stdout, /^1 recipient\(s\) of \S+ due now/);
      await waitUntil(
        'the retried attempt',
        async () => ((await t.admin.queue.get(m.id))?.recipients[0]?.attempts ?? 0) >= 2,
      );
      assert.equal((await cli('retry', '--all')).code, 0);
      const del = await cli('delete', m.id);
      assert.equal(del.code, 0);
      assert.equal(await t.admin.queue.get(m.id), null);
      assert.equal((await cli('delete', m.id)).code, 1);
      assert.equal((await cli('show', 'nope')).code, 1);
      assert.equal((await cli('retry')).code, 2);
    } finally {
      await t.stop();
    }
  });

  test('more than 100 recipients at one domain go in several transactions of the same attempt', async () => {
    const big = await startFakeMx({
      host: '127.0.0.7',
      port: sink.port,
      // RFC 5321 §4.5.3.1.8: a server need take only 100 recipients per transaction.
      onRcpt: (_a, session) =>
        session.envelope.rcptTo.length >= 100 ? { code: 452, message: '4.5.3 Too many recipients' } : null,
    });
    dns.add({ type: 'MX', name: 'many.test', preference: 10, exchange: 'mx.many.test' });
    dns.add({ type: 'A', name: 'mx.many.test', address: '127.0.0.7' });
    const t = await startTestServer({
      submission: true,
      smtp: 'max_recipients = 250',
      extra: `[delivery]\nport = ${sink.port}\n[dns]\nservers = ["${dns.address}"]`,
    });
    try {
      const to = Array.from({ length: 230 }, (_, i) => `r${i}@many.test`);
      await submitter(t.submissionPort).sendMail({ from: 'alice@example.test', to, subject: 'many', text: 'x' });
      const mails = await big.waitFor(3);
      assert.deepEqual(
        mails.map((m) => m.to.length),
        [100, 100, 30],
      );
      assert.equal(new Set(mails.flatMap((m) => m.to)).size, 230);
      assert.ok(!t.logs.some((l) => l.msg === 'deferred'), 'nothing had to wait for a retry');
    } finally {
      await t.stop();
      await big.close();
    }
  });
});
