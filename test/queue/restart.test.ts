// The queue survives restarts and crashes: every message acknowledged with 250 is delivered
// exactly once after the restart, and one already delivered before it is not sent again.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { provisionAlice, spawnServer } from '../harness/process.ts';
import { startTestServer, TEST_CONFIG } from '../harness/server.ts';
import { PASSWORD, submitter } from '../harness/submit.ts';

function subjects(mx: FakeMx): string[] {
  return mx.mails.map((m) => /\r\nSubject: ([^\r]*)/.exec(`\r\n${m.data.toString()}`)?.[1] ?? '');
}

describe('queue across restarts', () => {
  let dns: TestDnsServer;
  let up: FakeMx;

  before(async () => {
    up = await startFakeMx();
    dns = await startTestDns([
      { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
      { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
      // later.test's MX is down until the test starts a server on 127.0.0.3.
      { type: 'MX', name: 'later.test', preference: 10, exchange: 'mx.later.test' },
      { type: 'A', name: 'mx.later.test', address: '127.0.0.3' },
    ]);
  });

  after(async () => {
    await up?.close();
    await dns?.close();
  });

  const extra = () =>
    `[delivery]\nport = ${up.port}\nretry_schedule = ["200ms"]\nconnect_timeout = "1s"\n[dns]\nservers = ["${dns.address}"]`;

  test('a restart with a full queue: nothing lost, nothing sent twice', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arcline-restart-'));
    let later: FakeMx | null = null;
    try {
      let t = await startTestServer({ dir, submission: true, extra: extra() });
      await t.admin.ops.addDomain('example.test');
      await t.admin.ops.addUser('alice@example.test', { password: PASSWORD });
      const sender = submitter(t.submissionPort);
      const before = up.mails.length;
      await sender.sendMail({
        from: 'alice@example.test',
        to: 'x@remote.test',
        subject: 'delivered-before',
        text: '.',
      });
      await up.waitFor(before + 1);
      for (let i = 0; i < 5; i++) {
        await sender.sendMail({ from: 'alice@example.test', to: `r${i}@later.test`, subject: `held-${i}`, text: '.' });
      }
      sender.close();
      assert.equal((await t.admin.queue.list()).length, 5);
      await t.stop();

      later = await startFakeMx({ host: '127.0.0.3', port: up.port });
      t = await startTestServer({ dir, submission: true, extra: extra() });
      await later.waitFor(5);
      const deadline = Date.now() + 5000;
      while ((await t.admin.queue.list()).length > 0 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 20));
      assert.equal((await t.admin.queue.list()).length, 0);
      assert.deepEqual(subjects(later).sort(), ['held-0', 'held-1', 'held-2', 'held-3', 'held-4']);
      await new Promise((r) => setTimeout(r, 300));
      assert.equal(subjects(up).filter((s) => s === 'delivered-before').length, 1, 'not sent again');
      await t.stop();
    } finally {
      await later?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  test('kill -9 while messages are being submitted: every acknowledged one is delivered once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arcline-kill-'));
    let later: FakeMx | null = null;
    try {
      const configFile = join(dir, 'arcline.toml');
      const text = TEST_CONFIG(dir, extra())
        .replace(
          '[submission]\nlisten = []\ntls_listen = []',
          '[submission]\nlisten = ["127.0.0.1:0"]\ntls_listen = []',
        )
        .replace('level = "debug"', 'level = "info"');
      await provisionAlice(configFile, text, PASSWORD);
      let srv = await spawnServer(configFile);
      const port = srv.logs.find((l) => l.msg === 'listening' && l.service === 'submission')?.port as number;
      const acked: string[] = [];
      const senders = Array.from({ length: 4 }, () => submitter(port));
      const loops = senders.map(async (s, n) => {
        for (let i = 0; ; i++) {
          const subject = `crash-${n}-${i}`;
          try {
            await s.sendMail({ from: 'alice@example.test', to: `k${n}@later.test`, subject, text: 'x'.repeat(2000) });
            acked.push(subject);
          } catch {
            return; // the server died under us: this one was not acknowledged
          }
        }
      });
      while (acked.length < 20) await new Promise((r) => setTimeout(r, 5));
      srv.child.kill('SIGKILL');
      await srv.exited;
      await Promise.all(loops);
      for (const s of senders) s.close();

      later = await startFakeMx({ host: '127.0.0.3', port: up.port });
      srv = await spawnServer(configFile);
      const deadline = Date.now() + 15_000;
      while (Date.now() < deadline) {
        const got = new Set(subjects(later));
        if (acked.every((s) => got.has(s))) break;
        await new Promise((r) => setTimeout(r, 50));
      }
      const got = subjects(later);
      for (const s of acked) assert.equal(got.filter((g) => g === s).length, 1, `${s} delivered exactly once`);
      srv.child.kill('SIGTERM');
      assert.equal((await srv.exited).code, 0);
    } finally {
      await later?.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
