// A real client: mbsync (Debian package isync) synchronises a mailbox with arcline both ways,
// then re-synchronises with nothing to do. .ci/run installs isync.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const hasMbsync = spawnSync('mbsync', ['--version']).status === 0;
let s: TestServer;

before(async () => {
  s = await startTestServer();
});
after(() => s.stop());

async function files(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const sub of ['new', 'cur'])
    out.push(...(await readdir(join(dir, sub)).catch(() => [])).map((f) => join(dir, sub, f)));
  return out;
}

test('mbsync syncs both ways, carries flags, and a re-sync changes nothing', {
  skip: !hasMbsync && 'mbsync (isync) is not installed',
}, async () => {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
  for (const n of [1, 2, 3])
    await t.sendMail({ from: 'a@remote.example', to: 'alice@example.test', subject: `sync ${n}`, text: `m${n}` });
  t.close();
  const local = join(s.dir, 'local');
  await mkdir(local);
  const rc = join(s.dir, 'mbsyncrc');
  await writeFile(
    rc,
    [
      'IMAPAccount arc',
      'Host 127.0.0.1',
      `Port ${s.imapPort}`,
      'User alice@example.test',
      'Pass secret-password',
      'SSLType None',
      'AuthMechs PLAIN',
      '',
      'IMAPStore remote',
      'Account arc',
      '',
      'MaildirStore local',
      `Path ${local}/`,
      `Inbox ${local}/INBOX`,
      'SubFolders Verbatim',
      '',
      'Channel arc',
      'Far :remote:',
      'Near :local:',
      'Patterns *',
      'Create Both',
      'Expunge Both',
      'SyncState *',
      '',
    ].join('\n'),
  );
  const sync = async () => {
    const r = await promisify(execFile)('mbsync', ['-c', rc, 'arc'], { encoding: 'utf8' }).catch(
      (e: { code: number; stderr: string }) => e,
    );
    assert.equal('code' in r ? r.code : 0, 0, 'stderr' in r ? r.stderr : '');
  };
  await sync();
  const inbox = join(local, 'INBOX');
  assert.equal((await files(inbox)).length, 3);
  assert.deepEqual((await readdir(local)).sort(), ['Drafts', 'INBOX', 'Junk', 'Sent', 'Trash']);
  // Local -> remote: a new message and a flag; remote -> local: a flag set over IMAP.
  await writeFile(join(inbox, 'new', '1700000001.local.host'), 'Subject: from local\r\n\r\nhi\r\n');
  const { client } = await RawImap.connect(s.imapPort);
  await client.cmd('LOGIN alice@example.test secret-password');
  await client.cmd('SELECT INBOX');
  await client.cmd('STORE 1 +FLAGS (\\Flagged)');
  client.close();
  await sync();
  const remote = await files(s.mailboxDir('alice@example.test'));
  assert.equal(remote.length, 4);
  const texts = await Promise.all(remote.map((f) => readFile(f, 'utf8')));
  assert.ok(texts.some((x) => x.includes('Subject: from local')));
  assert.ok(
    (await files(inbox)).some((f) => /:2,[A-Z]*F/.test(f)),
    'the \\Flagged set over IMAP reached the local copy',
  );
  // Nothing left to do: a third run changes no file on either side.
  const before = [...(await files(inbox)), ...remote].sort();
  await sync();
  const afterRun = [...(await files(inbox)), ...(await files(s.mailboxDir('alice@example.test')))].sort();
  assert.deepEqual(afterRun, before);
});
