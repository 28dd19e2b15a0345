// Hostile clients against the SMTP listeners of a spawned server (the real `arcline serve`):
// connections refused at the limits are closed and forgotten (open fds measured before and
// after), a client reconnecting for every message never trips the per-address limit, and the
// implicit-TLS listener is bounded the same way.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import { runCli, type ServerProcess, spawnServer } from '../harness/process.ts';
import { resourcesOf } from '../harness/resources.ts';
import { TEST_CONFIG } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

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
  await writeFile(config, text);
  for (const args of [
    ['domain', 'add', 'example.test'],
    ['user', 'add', 'alice@example.test', '--password-stdin'],
  ]) {
    const r = await runCli(['--config', config, ...args], { stdin: 'secret-password\n' });
    assert.equal(r.code, 0, r.stderr);
  }
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

  test('2,000 connections refused by the per-address limit, each sending a byte and closing, leave no fd open', async () => {
    const port = srv.port;
    // Three sessions hold the address at its limit for the whole attack.
    const holders = await Promise.all([0, 1, 2].map(() => RawSmtp.connect(port)));
    for (const h of holders) assert.equal((await h.read()).code, 220);
    const before = await resourcesOf(srv.child.pid!);
    const refused = await RawSmtp.connect(port);
    assert.equal((await refused.read()).text, '421 4.7.0 Too many connections from your address, try again later');
    await refused.waitClosed();
    let t0 = Date.now();
    await inBatches(2000, 100, () => hitAndRun(port, 'x'));
    console.log('attack ms', Date.now() - t0);
    t0 = Date.now();
    // Refused connections are closed by the server: the count comes back to where it was.
    const after = await waitUntil(
      'fds back to the level before the attack',
      async () => {
        const r = await resourcesOf(srv.child.pid!);
        return r.fds <= before.fds + 5 ? r : null;
      },
      15_000,
    ).catch(async () => resourcesOf(srv.child.pid!));
    console.log('wait ms', Date.now() - t0, before, after);
    assert.ok(after.fds <= before.fds + 5, `fds before ${before.fds}, after ${after.fds}`);
    // The holders were never disturbed and the address is still usable once they leave.
    for (const h of holders) assert.equal((await h.cmd('NOOP')).code, 250);
    for (const h of holders) h.write('QUIT\r\n');
    for (const h of holders) await h.read();
    const next = await RawSmtp.connect(port);
    assert.equal((await next.read()).code, 220);
    next.close();
  });
});
