// Issue #10 item 9: every file and directory the server creates is private (0600/0700) whatever
// the umask and the mode of a directory that already existed. The issue found arcline.db (bcrypt
// hashes) created 0644 when the state directory already existed. The server runs in-process
// here with the test's umask of 022, so nothing but the modes the code gives decides.

import assert from 'node:assert/strict';
import { chmod, mkdir, mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { openDatabase } from '../../src/core/sqlite.ts';
import { notPrivate, walk } from '../harness/files.ts';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';
import { PASSWORD, submitter, waitUntil } from '../harness/submit.ts';

describe('file modes', () => {
  let savedUmask = 0;
  const dirs: string[] = [];
  before(() => {
    savedUmask = process.umask(0o022);
  });
  after(async () => {
    process.umask(savedUmask);
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test('umask 022 and a state directory made 0755 beforehand: everything under state and maildir is 0600/0700', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arcline-modes-'));
    dirs.push(dir);
    await mkdir(join(dir, 'state'));
    await mkdir(join(dir, 'mail'));
    await chmod(join(dir, 'state'), 0o755);
    await chmod(join(dir, 'mail'), 0o755);
    let t: TestServer | undefined;
    try {
      t = await startTestServer({ dir, submission: true });
      await t.admin.ops.addDomain('example.test'); // with its DKIM key
      await t.admin.ops.addUser('alice@example.test', { password: PASSWORD });
      // Inbound delivery: a small message, and one big enough to be spooled to a file first.
      for (const body of ['hello', 'x'.repeat(76).concat('\r\n').repeat(20_000)]) {
        const c = await RawSmtp.connect(t.port);
        await envelope(c, 'someone@remote.example', ['alice@example.test']);
        assert.equal((await c.cmd('DATA')).code, 354);
        c.write(`Subject: modes\r\n\r\n${body}\r\n.\r\n`);
        assert.equal((await c.read()).code, 250);
        c.close();
      }
      // Outbound: a queue file.
      await submitter(t.submissionPort).sendMail({
        from: 'alice@example.test',
        to: 'friend@remote.example',
        subject: 'queued',
        text: 'hi',
      });
      // IMAP: the index database, a hierarchy of folders, a keyword (dovecot-keywords), APPEND.
      const { client } = await RawImap.connect(t.imapPort);
      assert.match((await client.cmd(`LOGIN alice@example.test ${PASSWORD}`)).at(-1) ?? '', /^t1 OK/);
      assert.match((await client.cmd('CREATE Projects.2024')).at(-1) ?? '', /^t2 OK/);
      assert.match((await client.cmd('SELECT INBOX')).at(-1) ?? '', /^t3 OK/);
      assert.match((await client.cmd('STORE 1 +FLAGS ($Important)')).at(-1) ?? '', /^t4 OK/);
      client.write('t5 APPEND Projects.2024 {12+}\r\nSubject: a\r\n\r\n');
      assert.match((await client.until('t5')).at(-1) ?? '', /^t5 OK/);
      client.close();
      const under = async () =>
        [...(await walk(join(dir, 'state'))), ...(await walk(join(dir, 'mail')))].filter(
          (e) => e.path !== join(dir, 'state') && e.path !== join(dir, 'mail'),
        );
      const all = await waitUntil('the queue file', async () => {
        const found = await under();
        return found.some((e) => e.path.endsWith('.eml')) ? found : null;
      });
      for (const want of ['arcline.db', 'arcline.db-wal', 'queue.db', 'mailindex.db', 'selfsigned-key.pem']) {
        assert.ok(
          all.some((e) => e.path.endsWith(`/${want}`)),
          `${want} exists: ${all.map((e) => e.path).join(' ')}`,
        );
      }
      assert.ok(all.some((e) => e.path.endsWith('.ed25519.pem')));
      assert.ok(all.some((e) => e.path.endsWith('/dovecot-keywords')));
      assert.ok(all.some((e) => e.path.includes('/.Projects.2024/cur/') || e.path.includes('/.Projects.2024/new/')));
      assert.deepEqual(notPrivate(all), []);
    } finally {
      await t?.stop();
    }
    assert.deepEqual(notPrivate((await walk(join(dir, 'state'))).filter((e) => e.path !== join(dir, 'state'))), []);
  });

  test('a database left 0644 (with its -wal and -shm) by an older version is narrowed to 0600 when opened', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arcline-modes-'));
    dirs.push(dir);
    const path = join(dir, 'old.db');
    openDatabase(path, { migrations: ['CREATE TABLE t (x)'] }).close();
    for (const f of [path, `${path}-wal`, `${path}-shm`]) {
      await writeFile(f, '', { flag: 'a' });
      await chmod(f, 0o644);
    }
    const db = openDatabase(path, { migrations: ['CREATE TABLE t (x)'] });
    try {
      for (const f of [path, `${path}-wal`, `${path}-shm`]) assert.equal((await stat(f)).mode & 0o777, 0o600, f);
    } finally {
      db.close();
    }
  });
});
