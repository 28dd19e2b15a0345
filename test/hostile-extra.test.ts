// Red-team review of issue #10 as merged: attacks the first round did not cover, each against a
// spawned `arcline serve` over real sockets (loopback only). Every test here failed on the code
// before its fix.

import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, type TestContext, test } from 'node:test';
import { RawImap } from './harness/imap-client.ts';
import { provisionAlice, type ServerProcess, spawnServer } from './harness/process.ts';
import { resourcesOf } from './harness/resources.ts';
import { TEST_CONFIG } from './harness/server.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A spawned server with alice@example.test, whose INBOX holds `messages` small messages. */
async function serve(
  t: TestContext,
  opts: { messages?: number; imap?: string; extra?: string } = {},
): Promise<{ srv: ServerProcess; imap: number; smtp: number; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-red-'));
  dirs.push(dir);
  const config = join(dir, 'arcline.toml');
  const text = TEST_CONFIG(dir, opts.extra ?? '')
    .replace('level = "debug"', 'level = "info"')
    .replace('bcrypt_cost = 4', 'bcrypt_cost = 4\npassword_scheme = "bcrypt"')
    .replace('[imap]\n', `[imap]\n${opts.imap ?? ''}\n`);
  await provisionAlice(config, text, 'pw-secret-1');
  const inbox = join(dir, 'mail', 'example.test', 'alice', 'new');
  for (let i = 0; i < (opts.messages ?? 0); i++) {
    await writeFile(
      join(inbox, `1700000000.M${i}P1.red`),
      `From: a@example.org\r\nTo: alice@example.test\r\nSubject: m${i}\r\nMessage-ID: <${i}@red>\r\n\r\nbody ${i}\r\n`,
    );
  }
  const srv = await spawnServer(config);
  t.after(() => srv.child.kill('SIGKILL'));
  return { srv, imap: srv.ports.imap?.[0] ?? 0, smtp: srv.port, dir };
}

async function login(port: number): Promise<RawImap> {
  const { client } = await RawImap.connect(port);
  client.timeoutMs = 120_000;
  const r = await client.cmd('LOGIN alice@example.test pw-secret-1');
  assert.match(r.at(-1) ?? '', /OK/);
  return client;
}

/** CPU time (user + system, ms) the process has used, from /proc/PID/stat. */
async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'latin1');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100; // utime, stime in 1/100 s
}

/** Time from connect to the first byte of the greeting on `port`. */
function greetingMs(port: number): Promise<number> {
  const start = performance.now();
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('data', () => {
      resolve(performance.now() - start);
      sock.destroy();
    });
    sock.once('error', reject);
  });
}

/** Runs `work` while greetings are fetched one after the other; returns the slowest greeting. */
async function slowestGreeting(port: number, work: () => Promise<void>): Promise<number> {
  let slowest = 0;
  let running = true;
  const probe = (async () => {
    while (running) {
      slowest = Math.max(slowest, await greetingMs(port));
      await new Promise((r) => setTimeout(r, 20));
    }
  })();
  try {
    await work();
  } finally {
    running = false;
    await probe;
  }
  return slowest;
}

describe('IMAP: sequence sets and SEARCH of a logged-in user', () => {
  test('a sequence set of 10,000 copies of "1:*" costs what one does (FETCH, STORE, UID SEARCH)', async (t) => {
    const { srv, imap } = await serve(t, { messages: 5000 });
    const pid = srv.child.pid as number;
    const c = await login(imap);
    assert.match((await c.cmd('SELECT INBOX')).at(-1) ?? '', /OK/);
    const repeated = Array(10_000).fill('1:*').join(',');
    const fetch = await c.cmd(`FETCH ${repeated} (FLAGS)`);
    assert.equal(fetch.length, 5001, 'every message once, in one FETCH response each');
    assert.match(fetch.at(-1) ?? '', /OK FETCH/);
    assert.match((await c.cmd(`STORE ${repeated} +FLAGS.SILENT (red)`)).at(-1) ?? '', /OK STORE/);
    // Commands whose answer is small, so the CPU measured is the resolution of the set.
    const before = await cpuMs(pid);
    for (let i = 0; i < 4; i++) {
      const search = await c.cmd(`UID SEARCH UID ${repeated}`);
      assert.equal(search[0]?.split(' ').length, 2 + 5000);
      assert.match((await c.cmd(`STORE ${repeated} +FLAGS.SILENT (red)`)).at(-1) ?? '', /OK STORE/);
    }
    const used = (await cpuMs(pid)) - before;
    t.diagnostic(`server CPU for 4 x (UID SEARCH + STORE) with 10,000 repeated ranges: ${used} ms`);
    // Before: every range walked every message (10,000 x 5,000 = 50 million steps a command,
    // about 0.5 s of CPU each, other clients stalled meanwhile). Now the set is merged first.
    assert.ok(used < 1500, `${used} ms of CPU`);
    c.close();
  });

  test('a SEARCH of more than 1,000 keys is refused, BAD [LIMIT], and the server stays up', async (t) => {
    const { srv, imap } = await serve(t, { messages: 2000 });
    const c = await login(imap);
    assert.match((await c.cmd('SELECT INBOX')).at(-1) ?? '', /OK/);
    const before = await resourcesOf(srv.child.pid as number);
    // One 60 KB line: before, each "1:*" key was resolved into a set of every UID (15,000 sets
    // of 2,000), gigabytes for a larger mailbox (a 20,000-message INBOX killed the process
    // with "JavaScript heap out of memory").
    const r = await c.cmd(`SEARCH ${Array(15_000).fill('1:*').join(' ')}`);
    assert.match(r.at(-1) ?? '', /^t\d+ BAD \[LIMIT\] Too many search keys/);
    const ok = await c.cmd(`SEARCH ${Array(1000).fill('1:*').join(' ')}`);
    assert.equal(ok[0]?.split(' ').length, 2 + 2000);
    const afterIt = await resourcesOf(srv.child.pid as number);
    t.diagnostic(`RSS ${(before.rss / 1e6).toFixed(1)} -> ${(afterIt.rss / 1e6).toFixed(1)} MB`);
    assert.ok(afterIt.rss - before.rss < 200e6, `RSS grew by ${afterIt.rss - before.rss}`);
    c.close();
  });

  test('a long SEARCH on index data lets other clients in (greetings during it)', async (t) => {
    const { imap, smtp } = await serve(t, { messages: 10_000 });
    const c = await login(imap);
    assert.match((await c.cmd('SELECT INBOX')).at(-1) ?? '', /OK/);
    // 1,000 true keys per message: 10 million evaluations, seconds of CPU that ran without
    // ever yielding (every other client waited; 4.3 s for 20,000 messages).
    const keys = Array(1000).fill('UNSEEN').join(' ');
    let hits = 0;
    const slowest = await slowestGreeting(smtp, async () => {
      const r = await c.cmd(`SEARCH ${keys}`);
      hits = (r[0]?.split(' ').length ?? 2) - 2;
    });
    t.diagnostic(`slowest SMTP greeting during the SEARCH: ${slowest.toFixed(0)} ms`);
    assert.equal(hits, 10_000);
    assert.ok(slowest < 500, `a greeting took ${slowest.toFixed(0)} ms`);
    c.close();
  });
});
