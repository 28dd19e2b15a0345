// Several milters in order, the failure policy, a Unix socket, and the stage in an inbound SMTP
// thread: real pymilter milters (test/fixtures/milter/test_milter.py), real SMTP sessions.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type MilterPeer, startTestMilter } from '../harness/milter.ts';
import { freePort } from '../harness/pebble.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

async function send(port: number, mode: string): Promise<string> {
  const c = await RawSmtp.connect(port);
  try {
    await c.read();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('MAIL FROM:<sender@remote.example>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(
      `From: sender@remote.example\r\nTo: alice@example.test\r\nSubject: ${mode}\r\nX-Test-Mode: ${mode}\r\n\r\nOriginal body.\r\n.\r\n`,
    );
    return (await c.read(10_000)).text;
  } finally {
    c.close();
  }
}

function milterToml(name: string, address: string, extra = ''): string {
  return `[[milter]]\nname = "${name}"\naddress = "${address}"\nconnect_timeout = "1s"\ncommand_timeout = "2s"\neom_timeout = "2s"\n${extra}\n`;
}

describe('a chain of milters, in an SMTP thread', () => {
  let dir: string;
  let a: MilterPeer;
  let b: MilterPeer;
  let s: TestServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-milter-'));
    [a, b] = await Promise.all([startTestMilter('A'), startTestMilter('B', { unixPath: join(dir, 'b.sock') })]);
    const gone = `inet:127.0.0.1:${await freePort()}`;
    s = await startTestServer({
      smtp: 'threads = 1',
      extra:
        milterToml('gone', gone, 'on_failure = "accept"') +
        milterToml('submission-only', gone, 'on_failure = "reject"\nservices = ["submission"]') +
        milterToml('A', a.address) +
        milterToml('B', b.address),
    });
  });
  after(async () => {
    await s?.stop();
    await Promise.all([a?.stop(), b?.stop()]);
    await rm(dir, { recursive: true, force: true });
  });

  test('each milter sees the message as the ones before it left it; the last state is delivered', async () => {
    assert.match(await send(s.port, 'chain'), /^250 /);
    const files = await waitUntil('a delivery', async () => {
      const f = await s.messages('alice@example.test');
      return f.length > 0 ? f : null;
    });
    const text = (files[0] as Buffer).toString('latin1');
    const [head, body] = text.split('\r\n\r\n') as [string, string];
    assert.equal(body, 'Body rewritten by A\r\n');
    const seenA = /^X-Seen-By-A: (.*)$/m.exec(head)?.[1];
    const seenB = /^X-Seen-By-B: (.*)$/m.exec(head)?.[1];
    assert.ok(seenA && seenB, head);
    const repA = JSON.parse(seenA.trimEnd());
    const repB = JSON.parse(seenB.trimEnd());
    assert.equal(repA.sha256, createHash('sha256').update('Original body.\r\n').digest('hex'));
    // B got A's header and A's body, over its Unix socket.
    assert.ok(repB.names.includes('X-From-A') && repB.names.includes('X-Seen-By-A'), repB.names.join());
    assert.equal(repB.sha256, createHash('sha256').update('Body rewritten by A\r\n').digest('hex'));
    assert.match(head, /\r\nX-From-A: hello from A\r\nX-Seen-By-A: [^\r]+\r\nX-Seen-By-B: /);
    // The unreachable milter was skipped (on_failure = "accept"), and said so.
    await s.logged((l) => l.msg === 'milter failed' && l.milter === 'gone' && l.on_failure === 'accept');
    assert.ok(!s.logs.some((l) => l.milter === 'submission-only'), 'a submission milter is not asked on port 25');
  });

  test('a refusal by the second milter refuses the message (on port 25 in a thread)', async () => {
    assert.match(await send(s.port, 'reject'), /^550 5\.7\.1 /);
  });
});

describe('failure policy: on_failure = "reject"', () => {
  let c: MilterPeer;
  let s: TestServer;

  before(async () => {
    c = await startTestMilter('C');
    s = await startTestServer({ smtp: 'threads = 0', extra: milterToml('C', c.address, 'on_failure = "reject"') });
  });
  after(async () => {
    await s?.stop();
    await c?.stop();
  });

  test('a milter that dies mid-message, then one that is gone: 550 5.7.1 each time, nothing kept', async () => {
    assert.match(await send(s.port, 'none'), /^250 /);
    assert.match(await send(s.port, 'crash'), /^550 5\.7\.1 /);
    assert.equal(await c.exited, 3);
    assert.match(await send(s.port, 'none'), /^550 5\.7\.1 /);
    assert.equal((await s.messages('alice@example.test')).length, 1);
    await s.logged((l) => l.msg === 'milter failed' && String(l.error).startsWith('connect: ECONNREFUSED'));
  });
});
