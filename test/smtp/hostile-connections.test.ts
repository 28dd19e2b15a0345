// Hostile clients against the SMTP listeners of a spawned server (the real `arcline serve`):
// connections refused at the limits are closed and forgotten (open fds measured before and
// after), a client reconnecting for every message never trips the per-address limit, and the
// implicit-TLS listener is bounded the same way.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { provisionAlice, type ServerProcess, spawnServer } from '../harness/process.ts';
import { resourcesOf, settledResources } from '../harness/resources.ts';
import { startTestServer, TEST_CONFIG, type TestServer } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';

async function spawnWith(smtp: string, submission = ''): Promise<{ dir: string; srv: ServerProcess }> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-hostile-'));
  const config = join(dir, 'arcline.toml');
  let text = TEST_CONFIG(dir)
    .replace('level = "debug"', 'level = "info"')
    .replace('reverse_lookup = false', `reverse_lookup = false\n${smtp}`);
  text = text.replace(
    '[submission]\nlisten = []\ntls_listen = []',
    `[submission]\nlisten = ["127.0.0.1:0"]\ntls_listen = ["127.0.0.1:0"]\n${submission}`,
  );
  await provisionAlice(config, text, 'secret-password');
  return { dir, srv: await spawnServer(config) };
}

/** Connects, optionally sends `bytes`, closes at once (or after the first line it reads). */
function hitAndRun(port: number, bytes: string): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.on('connect', () => {
      if (bytes) s.write(bytes);
      s.end();
    });
    s.resume(); // read the reply, and so see the server's FIN
    setTimeout(() => s.destroy(), 5000).unref();
  });
}

const mb = (n: number) => (n / 1024 / 1024).toFixed(1);

async function inBatches(n: number, batch: number, f: (i: number) => Promise<void>): Promise<void> {
  for (let i = 0; i < n; i += batch) {
    await Promise.all(Array.from({ length: Math.min(batch, n - i) }, (_, k) => f(i + k)));
  }
}

describe('SMTP listeners under connection floods (spawned server)', () => {
  let dir: string;
  let srv: ServerProcess;
  before(async () => {
    ({ dir, srv } = await spawnWith('max_connections_per_ip = 3', 'max_connections_per_ip = 3'));
  });
  after(async () => {
    srv.child.kill('SIGTERM');
    await srv.exited;
    await rm(dir, { recursive: true, force: true });
  });

  test('2,000 connections refused by the per-address limit, each sending a byte and closing, leave no fd open', async (t) => {
    const port = srv.port;
    // Three sessions hold the address at its limit for the whole attack.
    const holders = await Promise.all([0, 1, 2].map(() => RawSmtp.connect(port)));
    for (const h of holders) assert.equal((await h.read()).code, 220);
    const before = await resourcesOf(srv.child.pid!);
    const refused = await RawSmtp.connect(port);
    assert.equal((await refused.read()).text, '421 4.7.0 Too many connections from your address, try again later');
    await refused.waitClosed();
    const started = Date.now();
    await inBatches(2000, 100, () => hitAndRun(port, 'x'));
    const attackMs = Date.now() - started;
    // Refused connections are closed by the server: the count comes back to where it was.
    const after = await settledResources(srv.child.pid!, before.fds + 5);
    t.diagnostic(
      `attack ${attackMs} ms; fds ${before.fds} -> ${after.fds}; rss ${mb(before.rss)} -> ${mb(after.rss)} MB`,
    );
    assert.ok(after.fds <= before.fds + 5, `fds before ${before.fds}, after ${after.fds}`);
    // The holders were never disturbed and the address is still usable once they leave.
    for (const h of holders) assert.equal((await h.cmd('NOOP')).code, 250);
    for (const h of holders) h.write('QUIT\r\n');
    for (const h of holders) await h.read();
    const next = await RawSmtp.connect(port);
    assert.equal((await next.read()).code, 220);
    next.close();
  });

  test('implicit TLS (465): 1,000 refused connections leave no fd open; the sessions holding the limit go on', async (t) => {
    const port = srv.ports.submission?.[1] ?? 0;
    const holders = await Promise.all(
      [0, 1, 2].map(
        () =>
          new Promise<tls.TLSSocket>((resolve, reject) => {
            const sock = tls.connect({ port, host: '127.0.0.1', rejectUnauthorized: false });
            sock.once('data', () => resolve(sock));
            sock.once('error', reject);
          }),
      ),
    );
    const before = await resourcesOf(srv.child.pid!);
    const started = Date.now();
    await inBatches(1000, 100, () => hitAndRun(port, '\x16\x03\x01'));
    const attackMs = Date.now() - started;
    const after = await settledResources(srv.child.pid!, before.fds + 5);
    t.diagnostic(
      `attack ${attackMs} ms; fds ${before.fds} -> ${after.fds}; rss ${mb(before.rss)} -> ${mb(after.rss)} MB`,
    );
    assert.ok(after.fds <= before.fds + 5, `fds before ${before.fds}, after ${after.fds}`);
    for (const h of holders) {
      const reply = new Promise<string>((resolve) => h.once('data', (d) => resolve(d.toString())));
      h.write('NOOP\r\n');
      assert.match(await reply, /^250 /);
      h.destroy();
    }
  });
});

describe('connection limits (in-process server)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ smtp: 'max_connections = 4\nmax_connections_per_ip = 100' });
  });
  after(() => s.stop());

  test('max_connections in total: the one over the limit gets 421 4.3.2 and is closed', async () => {
    const holders = await Promise.all([2, 3, 4, 5].map((n) => RawSmtp.connect(s.port, '127.0.0.1', `127.0.0.${n}`)));
    for (const h of holders) assert.equal((await h.read()).code, 220);
    const over = await RawSmtp.connect(s.port, '127.0.0.1', '127.0.0.6');
    assert.equal((await over.read()).text, '421 4.3.2 Too many connections, try again later');
    await over.waitClosed();
    holders[0]?.write('QUIT\r\n');
    assert.equal((await holders[0]!.read()).code, 221);
    // The QUIT freed the slot at once, before the socket is closed.
    const next = await RawSmtp.connect(s.port, '127.0.0.1', '127.0.0.6');
    assert.equal((await next.read()).code, 220);
    for (const h of [...holders, next]) h.close();
  });
});

describe('pre-greet talkers (greeting_delay, in-process server)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ smtp: 'greeting_delay = "300ms"\nmax_connections_per_ip = 1000' });
  });
  after(() => s.stop());

  test('500 clients that talk before the greeting are refused and closed; fds come back', async (t) => {
    const before = await resourcesOf();
    // Half of them close at once, half keep their side open: the server closes those.
    await inBatches(500, 100, (i) => (i % 2 ? hitAndRun(s.port, 'EHLO early\r\n') : talkAndWait(s.port)));
    const after = await settledResources(process.pid, before.fds + 5);
    t.diagnostic(
      `fds ${before.fds} -> ${after.fds}; rss ${mb(before.rss)} -> ${mb(after.rss)} MB (test and server process)`,
    );
    assert.ok(after.fds <= before.fds + 5, `fds before ${before.fds}, after ${after.fds}`);
    const c = await RawSmtp.connect(s.port);
    assert.equal((await c.read(2000)).code, 220);
    c.close();
  });
});

/** Talks before the greeting and never closes: resolves when the server has closed it. */
function talkAndWait(port: number): Promise<void> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    s.on('error', () => resolve());
    s.on('close', () => resolve());
    s.on('connect', () => s.write('EHLO early\r\n'));
    s.on('end', () => s.end());
    s.resume();
    setTimeout(() => s.destroy(), 10_000).unref();
  });
}

describe('a client reconnecting for every message (in-process server)', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer(); // max_connections_per_ip = 20, the default
  });
  after(() => s.stop());

  test('exactly max_connections_per_ip sessions at a time, a new connection per message: never 421', async () => {
    const greetings: number[] = [];
    const worker = async (w: number) => {
      for (let i = 0; i < 10; i++) {
        const c = await RawSmtp.connect(s.port);
        const greeting = await c.read();
        greetings.push(greeting.code);
        if (greeting.code !== 220) {
          c.close();
          continue;
        }
        await c.cmd('EHLO client.example');
        await c.cmd('MAIL FROM:<a@remote.example>');
        await c.cmd('RCPT TO:<alice@example.test>');
        await c.cmd('DATA');
        c.write(`Subject: ${w}-${i}\r\n\r\nx\r\n.\r\n`);
        assert.equal((await c.read()).code, 250);
        c.write('QUIT\r\n');
        assert.equal((await c.read()).code, 221);
        c.close();
      }
    };
    await Promise.all(Array.from({ length: 20 }, (_, w) => worker(w)));
    assert.deepEqual(
      greetings.filter((g) => g !== 220),
      [],
    );
    assert.equal(greetings.length, 200);
  });
});
