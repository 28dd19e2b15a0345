// Changes made in a Maildir by another program (Dovecot's LDA, procmail, mbsync) reach IDLE
// clients within 1 s (src/store/maildir/watch.ts): the test plays that program with plain fs
// calls on the real server's files and reads the untagged responses on a raw IMAP socket.

import assert from 'node:assert/strict';
import fs from 'node:fs';
import { readdir, rename, unlink, utimes, writeFile } from 'node:fs/promises';
import { syncBuiltinESMExports } from 'node:module';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { MaildirMailbox } from '../../src/store/maildir/mailbox.ts';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const PASSWORD = 'secret-password';
const USER = 'alice@example.test';
let seq = 0;

/** A message delivered as Dovecot's LDA does: written in tmp/, renamed into new/ (or cur/). */
async function deliver(dir: string, into: 'new' | 'cur' = 'new', flags = ''): Promise<string> {
  const body = `Subject: outside ${++seq}\r\n\r\nbody ${seq}\r\n`;
  const base = `${Date.now()}.M${seq}P${process.pid}.outside,S=${Buffer.byteLength(body)}`;
  const name = into === 'new' ? base : `${base}:2,${flags}`;
  await writeFile(join(dir, 'tmp', base), body);
  await rename(join(dir, 'tmp', base), join(dir, into, name));
  return name;
}

/** Reads lines until one matches, failing after `ms`; returns the line and the time it took. */
async function expectLine(c: RawImap, re: RegExp, ms: number, from = performance.now()) {
  const deadline = from + ms;
  const seen: string[] = [];
  for (;;) {
    const left = deadline - performance.now();
    if (left <= 0) assert.fail(`no ${re} within ${ms} ms; got ${JSON.stringify(seen)}`);
    let line: string;
    try {
      line = await c.readLine(left);
    } catch {
      assert.fail(`no ${re} within ${ms} ms; got ${JSON.stringify(seen)}`);
    }
    seen.push(line);
    if (re.test(line)) return { line, ms: performance.now() - from };
  }
}

/** fs.watch handles of this process (the test server runs in it). */
const watchers = () => process.getActiveResourcesInfo().filter((r) => r === 'FSEventWrap').length;

async function until(cond: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) assert.fail(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** Counts MaildirMailbox.refresh calls (the real method still runs) while `fn` runs. */
async function countRefreshes(fn: (count: () => number) => Promise<void>): Promise<void> {
  const refresh = MaildirMailbox.prototype.refresh;
  let refreshes = 0;
  MaildirMailbox.prototype.refresh = function (this: MaildirMailbox, ...args) {
    refreshes++;
    return refresh.apply(this, args);
  };
  try {
    await fn(() => refreshes);
  } finally {
    MaildirMailbox.prototype.refresh = refresh;
  }
}

async function idleOn(s: TestServer, beforeIdle?: (c: RawImap) => Promise<void>): Promise<RawImap> {
  const { client } = await RawImap.connect(s.imapPort);
  client.timeoutMs = 20_000;
  assert.match((await client.cmd(`LOGIN ${USER} ${PASSWORD}`)).at(-1) ?? '', /OK/);
  assert.match((await client.cmd('SELECT INBOX')).at(-1) ?? '', /OK/);
  await beforeIdle?.(client);
  client.write('i1 IDLE\r\n');
  await expectLine(client, /^\+ /, 20_000);
  return client;
}

async function logout(c: RawImap): Promise<void> {
  c.write('DONE\r\n');
  await c.until('i1');
  assert.match((await c.cmd('LOGOUT')).at(-1) ?? '', /OK/);
  c.close();
}

describe('outside changes reach IDLE clients (fs.watch)', () => {
  let s: TestServer;
  let dir: string;

  before(async () => {
    s = await startTestServer();
    dir = s.mailboxDir(USER);
  });
  after(async () => {
    await s?.stop();
  });

  test('a delivery into new/, a flag rename in cur/ and an unlink each reach an IDLE client within 1 s', async () => {
    const kept = await deliver(dir, 'cur'); // message 1, there before the SELECT
    const before = watchers();
    const c = await idleOn(s);
    assert.equal(watchers(), before + 2, 'one watcher for new/, one for cur/');

    let t = performance.now();
    await deliver(dir, 'new');
    const exists = await expectLine(c, /^\* 2 EXISTS$/, 1000, t);

    t = performance.now();
    await rename(join(dir, 'cur', kept), join(dir, 'cur', kept.replace(/:2,$/, ':2,S')));
    const flags = await expectLine(c, /^\* 1 FETCH \((UID 1 )?FLAGS \(\\Seen( \\Recent)?\)\)$/, 1000, t);

    t = performance.now();
    await unlink(join(dir, 'cur', kept.replace(/:2,$/, ':2,S')));
    const expunge = await expectLine(c, /^\* 1 EXPUNGE$/, 1000, t);
    console.log(
      `outside change -> IDLE: EXISTS ${exists.ms.toFixed(0)} ms, FETCH ${flags.ms.toFixed(0)} ms, EXPUNGE ${expunge.ms.toFixed(0)} ms`,
    );

    await logout(c);
    // The last subscriber left: both watchers are closed.
    await until(() => watchers() === before, 5000, 'the watchers to close');
  });

  test('a watch event forces the listing even when the directory mtime did not move', async () => {
    // new/ looks old, so the NOOP's listing of it is trusted and later skipped while its mtime
    // stays the same; another program (or a clock set back) puts the old mtime back.
    const old = new Date(Date.now() - 60_000);
    const c = await idleOn(s, async (c) => {
      await utimes(join(dir, 'new'), old, old);
      assert.match((await c.cmd('NOOP')).at(-1) ?? '', /OK/);
    });
    const n = (await readdir(join(dir, 'cur'))).length + (await readdir(join(dir, 'new'))).length;
    const t = performance.now();
    await deliver(dir, 'new');
    await utimes(join(dir, 'new'), old, old);
    await expectLine(c, new RegExp(`^\\* ${n + 1} EXISTS$`), 1000, t);
    await logout(c);
  });

  test('our own STORE and EXPUNGE are not taken for outside changes: cur/ is not listed again for them', async () => {
    for (let i = 0; i < 10; i++) await deliver(dir, 'cur');
    const c = await idleOn(s);
    const { client: other } = await RawImap.connect(s.imapPort);
    other.timeoutMs = 20_000;
    assert.match((await other.cmd(`LOGIN ${USER} ${PASSWORD}`)).at(-1) ?? '', /OK/);
    assert.match((await other.cmd('SELECT INBOX')).at(-1) ?? '', /OK/);
    const dirty: string[] = [];
    const markDirty = MaildirMailbox.prototype.markDirty;
    MaildirMailbox.prototype.markDirty = function (this: MaildirMailbox, sub) {
      dirty.push(sub);
      return markDirty.call(this, sub);
    };
    try {
      assert.match((await other.cmd('STORE 1:5 +FLAGS (\\Flagged \\Deleted)')).at(-1) ?? '', /OK/);
      assert.match((await other.cmd('EXPUNGE')).at(-1) ?? '', /OK/);
      // An outside delivery after them: inotify keeps order, so once it is seen, every event of
      // the STORE and EXPUNGE has been handled too.
      const t = performance.now();
      await deliver(dir, 'new');
      await expectLine(c, /EXISTS$/, 2000, t);
      assert.deepEqual(
        dirty.filter((d) => d === 'cur'),
        [],
        `own renames in cur/ forced listings: ${dirty.join(',')}`,
      );
      assert.ok(dirty.includes('new'), 'the outside delivery is still seen');
    } finally {
      MaildirMailbox.prototype.markDirty = markDirty;
    }
    assert.match((await other.cmd('LOGOUT')).at(-1) ?? '', /OK/);
    other.close();
    await logout(c);
  });

  test('a burst of 1,000 deliveries costs a few reconciles, not 1,000', async () => {
    await countRefreshes(async (refreshes) => {
      const c = await idleOn(s);
      const n = (await readdir(join(dir, 'cur'))).length + (await readdir(join(dir, 'new'))).length;
      const t = performance.now();
      for (let i = 0; i < 1000; i++) await deliver(dir, 'new');
      const took = performance.now() - t;
      const last = await expectLine(c, new RegExp(`^\\* ${n + 1000} EXISTS$`), 10_000, t);
      console.log(
        `1,000 outside deliveries in ${took.toFixed(0)} ms: ${refreshes()} refreshes, last EXISTS after ${last.ms.toFixed(0)} ms`,
      );
      assert.ok(refreshes() <= 100, `${refreshes()} refreshes for 1,000 deliveries`);
      await logout(c);
    });
  });
});

describe('outside changes when fs.watch is not available (ENOSPC)', () => {
  let s: TestServer;
  const realWatch = fs.watch;

  before(async () => {
    s = await startTestServer();
    // As when the inotify watch limit is reached (fs.inotify.max_user_watches).
    fs.watch = (() => {
      throw Object.assign(new Error('ENOSPC: System limit for number of file watchers reached'), { code: 'ENOSPC' });
    }) as typeof fs.watch;
    syncBuiltinESMExports();
  });
  after(async () => {
    fs.watch = realWatch;
    syncBuiltinESMExports();
    await s?.stop();
  });

  test('the mailbox is polled instead: a delivery reaches the IDLE client within the poll interval', async () => {
    const dir = s.mailboxDir(USER);
    const c = await idleOn(s);
    assert.equal(watchers(), 0);
    const t = performance.now();
    await deliver(dir, 'new');
    // One poll interval (1 s) plus the reconcile.
    const exists = await expectLine(c, /^\* 1 EXISTS$/, 2500, t);
    console.log(`polling fallback: EXISTS after ${exists.ms.toFixed(0)} ms`);
    assert.ok(
      s.logs.some((l) => l.event === 'maildir_watch_fallback' && l.code === 'ENOSPC'),
      'the fallback is logged',
    );
    await logout(c);
    // The poll stopped with the last subscriber: no refresh over two more intervals (an absence
    // has no event to await).
    await countRefreshes(async (refreshes) => {
      await new Promise((r) => setTimeout(r, 2500));
      assert.equal(refreshes(), 0, 'no poll left behind');
    });
  });
});
