// Moving from Dovecot (issue #13), against a real Dovecot from Debian: a private instance is
// filled over IMAP with Python's imaplib (dovecot_fixture.py: APPEND into INBOX and folders, a
// nested one and a non-ASCII one, flags and keywords, expunges that leave UID gaps,
// subscriptions), one more message is dropped into new/ as a delivery agent would, then
// `arcline import passwd-file` and `arcline import dovecot` run (the real CLI, while the arcline
// server runs), and both servers are read over IMAP by the same script: UIDVALIDITY, UIDNEXT,
// UIDs, flags and keywords, internal dates, sizes, bodies byte for byte, folders and
// subscriptions must match, and the user logs in to arcline with the password Dovecot had.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chown, lstat, readdir, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { sha512Crypt } from '../../src/directory/sha512-crypt.ts';
import { startDovecot } from '../harness/dovecot.ts';
import { runCli } from '../harness/process.ts';
import { startTestServer } from '../harness/server.ts';

const FIXTURE = fileURLToPath(new URL('./dovecot_fixture.py', import.meta.url));
const USER = 'user@example.test';
const PASSWORD = 'dovecot-pass-1';
/** Folders arcline makes for every account (store/maildir/layout.ts DEFAULT_FOLDERS). */
const ARCLINE_DEFAULTS = ['Drafts', 'Junk', 'Sent', 'Trash'];

interface Dump {
  folders: { name: string; noselect: boolean }[];
  subscribed: string[];
  mailboxes: Record<
    string,
    {
      uidvalidity: number;
      uidnext: number;
      messages: { uid: number; flags: string[]; internaldate: number; size: number; body: string }[];
    }
  >;
}

function py(cmd: 'populate' | 'dump', port: number, user: string, password: string): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      '/usr/bin/python3',
      [FIXTURE, cmd, '127.0.0.1', String(port), user, password],
      { timeout: 20_000, maxBuffer: 16 * 1024 * 1024 },
      (err, stdout, stderr) => (err ? reject(new Error(`${cmd}: ${err.message}\n${stderr}`)) : resolve(stdout)),
    );
  });
}

/** Every file and directory of a tree with its size and mtime (the source must not change). */
async function snapshot(dir: string, out = new Map<string, string>(), rel = ''): Promise<Map<string, string>> {
  for (const name of (await readdir(join(dir, rel))).sort()) {
    const path = join(dir, rel, name);
    const st = await lstat(path);
    out.set(join(rel, name), `${st.mode} ${st.size} ${st.mtimeMs}`);
    if (st.isDirectory()) await snapshot(dir, out, join(rel, name));
  }
  return out;
}

test('a Dovecot Maildir and passwd-file move to arcline: same UIDVALIDITY, UIDs, flags, bodies, folders, subscriptions, passwords', async (t) => {
  const hash = sha512Crypt(PASSWORD, `$6$${randomBytes(12).toString('base64').replace(/[+/=]/g, '.')}`) as string;
  const dovecot = await startDovecot(`${USER}:{SHA512-CRYPT}${hash}::::::\n`);
  t.after(() => dovecot.stop());
  await py('populate', dovecot.port, USER, PASSWORD);

  // Delivered by an LDA after Dovecot last synced: not in dovecot-uidlist; both servers must
  // give it Dovecot's next UID.
  const src = dovecot.maildir(USER);
  const late = join(src, 'new', `${Math.floor(Date.now() / 1000)}.M1P1.lda`);
  await writeFile(late, 'From: late@example.org\nSubject: late\n\nDelivered behind Dovecot.\n');
  if (process.getuid?.() === 0) {
    await chown(late, 65534, 65534);
  }
  const before = await snapshot(src);

  const server = await startTestServer({ users: [] });
  t.after(() => server.stop());
  const cli = (...args: string[]) => runCli(['--config', server.configFile, ...args]);

  const passwd = join(server.dir, 'users');
  await writeFile(
    passwd,
    [
      '# Dovecot passwd-file',
      `user:{SHA512-CRYPT}${hash}:1000:1000::/home/user::userdb_quota_rule=*:storage=1G`,
      'plain@example.test:{PLAIN}plain-pass-2::::::',
      'weak@example.test:{MD5-CRYPT}$1$abcdefgh$0123456789abcdefghijkl::::::',
      '',
    ].join('\n'),
  );
  const users = await cli('import', 'passwd-file', passwd, '--domain', 'example.test');
  assert.equal(users.code, 1, users.stderr); // one user skipped
  assert.match(users.stdout, /^added user@example\.test \(hash kept\)$/m);
  assert.match(users.stdout, /^added plain@example\.test \(password hashed with arcline’s scheme\)$/m);
  assert.match(users.stdout, /^skipped line 4 \(weak@example\.test\): \{MD5-CRYPT\} is not a scheme/m);
  assert.match(users.stdout, /^note: user@example\.test: extra fields not imported: userdb_quota_rule/m);

  const started = Date.now();
  const imported = await cli('import', 'dovecot', '--maildir', src, '--user', USER);
  const importMs = Date.now() - started;
  assert.equal(imported.code, 0, imported.stdout + imported.stderr);
  assert.match(
    imported.stdout,
    /^imported INBOX: 6 message\(s\), UIDVALIDITY \d+, UIDNEXT 9 \(1 not in dovecot-uidlist/m,
  );
  assert.match(imported.stdout, /^imported Réunions 2026: 3 message\(s\)/m);
  assert.match(imported.stdout, /^subscriptions: INBOX, Archive, Projects\.Alpha, Réunions 2026$/m);
  t.diagnostic(`import dovecot (CLI process, 6 folders, 23 messages): ${importMs} ms`);
  assert.deepEqual(await snapshot(src), before, 'the Dovecot tree is left as it was');

  // The same client reads both servers; arcline with the password hash Dovecot had.
  const theirs = JSON.parse(await py('dump', dovecot.port, USER, PASSWORD)) as Dump;
  const ours = JSON.parse(await py('dump', server.imapPort, USER, PASSWORD)) as Dump;
  assert.deepEqual(Object.keys(ours.mailboxes).sort(), [...Object.keys(theirs.mailboxes), ...ARCLINE_DEFAULTS].sort());
  for (const [name, box] of Object.entries(theirs.mailboxes)) {
    assert.deepEqual(ours.mailboxes[name], box, `mailbox ${name}`);
  }
  const inbox = theirs.mailboxes.INBOX;
  assert.deepEqual(
    inbox?.messages.map((m) => m.uid),
    [1, 2, 3, 5, 7, 8],
    'UID gaps of the expunges, and the late delivery at the old UIDNEXT',
  );
  assert.deepEqual(inbox?.messages[2]?.flags, ['$Important', 'NonJunk', '\\Draft']);
  assert.ok(theirs.mailboxes['Projects.Alpha']?.messages.some((m) => m.flags.includes('$Forwarded')));
  const folders = (d: Dump) => d.folders.map((f) => f.name).sort();
  assert.deepEqual(folders(ours), [...folders(theirs), ...ARCLINE_DEFAULTS].sort());
  assert.deepEqual(ours.subscribed.filter((n) => !ARCLINE_DEFAULTS.includes(n)).sort(), [...theirs.subscribed].sort());

  // The {PLAIN} user logs in with its password (hashed on import).
  const plain = JSON.parse(await py('dump', server.imapPort, 'plain@example.test', 'plain-pass-2')) as Dump;
  assert.equal(plain.mailboxes.INBOX?.messages.length, 0);

  // Importing again is refused: the mailboxes have messages now; nothing changes.
  const again = await cli('import', 'dovecot', '--maildir', src, '--user', USER);
  assert.equal(again.code, 1);
  assert.match(again.stdout, /^skipped INBOX: not imported: the mailbox already has messages$/m);
  const still = JSON.parse(await py('dump', server.imapPort, USER, PASSWORD)) as Dump;
  assert.deepEqual(still.mailboxes, ours.mailboxes);
});

test('LAYOUT=fs: folders as Parent/Child directories import the same way (--layout fs)', async (t) => {
  const hash = sha512Crypt(PASSWORD, '$6$layoutfs') as string;
  const dovecot = await startDovecot(`${USER}:{SHA512-CRYPT}${hash}::::::\n`, { layout: 'fs' });
  t.after(() => dovecot.stop());
  await py('populate', dovecot.port, USER, PASSWORD);
  const src = dovecot.maildir(USER);
  const server = await startTestServer();
  t.after(() => server.stop());
  const cli = (...args: string[]) => runCli(['--config', server.configFile, ...args]);
  const usage = await cli('import', 'dovecot', '--maildir', src);
  assert.equal(usage.code, 2);
  assert.match(usage.stderr, /--maildir DIR and --user ADDR are required/);
  const nobody = await cli('import', 'dovecot', '--maildir', src, '--user', USER);
  assert.equal(nobody.code, 1);
  assert.match(nobody.stderr, /no user user@example\.test \(create it first/);
  await server.admin.ops.addUser(USER, { password: PASSWORD });
  const imported = await cli('import', 'dovecot', '--maildir', src, '--user', USER, '--layout', 'fs');
  assert.equal(imported.code, 0, imported.stdout + imported.stderr);
  assert.match(imported.stdout, /^imported Projects\.Alpha: 3 message\(s\)/m);
  const theirs = JSON.parse(await py('dump', dovecot.port, USER, PASSWORD)) as Dump;
  const ours = JSON.parse(await py('dump', server.imapPort, USER, PASSWORD)) as Dump;
  for (const [name, box] of Object.entries(theirs.mailboxes)) {
    assert.deepEqual(ours.mailboxes[name], box, `mailbox ${name}`);
  }
  assert.deepEqual(ours.subscribed.filter((n) => !ARCLINE_DEFAULTS.includes(n)).sort(), [...theirs.subscribed].sort());
});
