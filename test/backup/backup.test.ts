// `arcline backup` of a running server under load, and `arcline restore` into an empty machine
// layout (new directories, a new config): the restored server shows the same UIDVALIDITY, UIDs,
// flags, bodies, folders and subscriptions over IMAP, and has the DKIM keys and the queued
// message. Also: restore refuses a non-empty target and a running server, --force moves the old
// data aside, and a damaged backup is caught by its checksums before anything is written.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { appendFile, mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import nodemailer from 'nodemailer';
import { runCli } from '../harness/process.ts';
import { startTestServer, TEST_CONFIG, type TestServer } from '../harness/server.ts';

const PASSWORD = 'secret-password';

interface MessageState {
  readonly uid: number;
  readonly flags: string[];
  readonly sha: string;
}
interface MailboxState {
  readonly uidValidity: string;
  readonly messages: MessageState[];
}
type AccountState = Map<string, MailboxState>;

function imap(port: number, user: string): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port,
    secure: false,
    auth: { user, pass: PASSWORD },
    logger: false,
    tls: { rejectUnauthorized: false },
  });
  return c.connect().then(() => c);
}

async function deliver(port: number, to: string, id: string): Promise<void> {
  const raw =
    `From: <sender@remote.example>\r\nTo: <${to}>\r\nSubject: message ${id}\r\nMessage-ID: <${id}@remote.example>\r\n` +
    `Date: Sun, 06 Dec 2026 12:00:00 +0000\r\n\r\nBody of ${id}.\r\n${'x'.repeat(200)}\r\n`;
  const t = nodemailer.createTransport({ host: '127.0.0.1', port, secure: false, ignoreTLS: true });
  try {
    await t.sendMail({ envelope: { from: 'sender@remote.example', to: [to] }, raw });
  } finally {
    t.close();
  }
}

/** Every mailbox of the account with its UIDVALIDITY and each message's UID, flags and body hash. */
async function accountState(c: ImapFlow): Promise<{ mailboxes: AccountState; subscribed: string[] }> {
  const out: AccountState = new Map();
  const list = await c.list();
  for (const mb of list) {
    const lock = await c.getMailboxLock(mb.path);
    try {
      const opened = c.mailbox;
      assert.ok(opened);
      const messages: MessageState[] = [];
      if (opened.exists > 0) {
        for await (const m of c.fetch('1:*', { uid: true, flags: true, source: true })) {
          messages.push({
            uid: m.uid,
            flags: [...(m.flags ?? [])].sort(),
            sha: createHash('sha256')
              .update(m.source ?? '')
              .digest('hex'),
          });
        }
      }
      out.set(mb.path, { uidValidity: String(opened.uidValidity), messages });
    } finally {
      lock.release();
    }
  }
  const subscribed = (await c.list({ statusQuery: {} }))
    .filter((m) => m.subscribed)
    .map((m) => m.path)
    .sort();
  return { mailboxes: out, subscribed };
}

describe('backup and restore', () => {
  let s: TestServer;
  let work: string;
  let backupDir: string;
  let alice: Awaited<ReturnType<typeof accountState>>;
  let bobBefore: Map<string, number>; // Message-ID -> UID, acknowledged before the backup began
  let bobAll: Map<string, number>; // every Message-ID -> UID on the original server
  let queued: { id: string; recipients: string[]; file: Buffer };
  let dkim: string[];
  let restoredDir: string;

  before(async () => {
    work = await mkdtemp(join(tmpdir(), 'arcline-backup-'));
    backupDir = join(work, 'backup');
    s = await startTestServer();
    await s.admin.dkim.generate('example.test', { selector: 'second', algorithm: 'ed25519' });
    await s.admin.ops.addAlias('fwd@example.test', ['someone@remote.example']);
  });
  after(async () => {
    await s?.stop().catch(() => {});
    await rm(work, { recursive: true, force: true });
  });

  test('a backup taken under load restores into an empty machine with the same UIDs, flags and folders', async () => {
    // The mail: deliveries, folders, subscriptions, flags, an expunge, a queued message.
    for (let i = 0; i < 12; i++) await deliver(s.port, 'alice@example.test', `a${i}`);
    await deliver(s.port, 'fwd@example.test', 'forwarded');
    const a = await imap(s.imapPort, 'alice@example.test');
    await a.mailboxCreate('Projects.2026');
    await a.mailboxSubscribe('Projects.2026');
    await a.mailboxUnsubscribe('Junk');
    await a.mailboxOpen('INBOX');
    await a.messageFlagsAdd('1:3', ['\\Seen']);
    await a.messageFlagsAdd('2', ['\\Flagged', '$Important']);
    await a.messageFlagsAdd('4', ['\\Deleted']);
    await a.messageCopy('5:7', 'Projects.2026');
    await a.mailboxClose(); // CLOSE expunges message 4
    alice = await accountState(a);
    await a.logout();
    assert.equal(alice.mailboxes.get('INBOX')?.messages.length, 11);
    assert.equal(alice.mailboxes.get('Projects.2026')?.messages.length, 3);
    assert.ok(alice.subscribed.includes('Projects.2026') && !alice.subscribed.includes('Junk'));
    const q = await s.admin.queue.list();
    assert.equal(q.length, 1);
    const qm = q[0] as (typeof q)[number];
    queued = {
      id: qm.id,
      recipients: qm.recipients.map((r) => r.address),
      file: await readFile(join(s.config.storage.state, 'queue', `${qm.id}.eml`)),
    };
    dkim = (await s.admin.dkim.keys('example.test')).map((k) => `${k.selector} ${k.privateKeyPem}`).sort();
    assert.equal(dkim.length, 2);

    // Bob's INBOX is open in an IMAP session (deliveries are indexed as they arrive) while
    // messages keep coming during the backup.
    const b = await imap(s.imapPort, 'bob@example.test');
    await b.mailboxOpen('INBOX');
    for (let i = 0; i < 5; i++) await deliver(s.port, 'bob@example.test', `b${i}`);
    const uidsOf = async () => {
      const m = new Map<string, number>();
      for await (const x of b.fetch('1:*', { uid: true, envelope: true })) m.set(x.envelope?.messageId ?? '', x.uid);
      return m;
    };
    await b.noop();
    bobBefore = await uidsOf();
    assert.equal(bobBefore.size, 5);
    let backupDone = false;
    let during = 0;
    const load = (async () => {
      for (let i = 0; !backupDone; i++) {
        await deliver(s.port, 'bob@example.test', `load${i}`);
        during++;
      }
    })();
    const r = await runCli(['--config', s.configFile, 'backup', backupDir]);
    backupDone = true;
    await load;
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^backed up .* to .*\n {2}\d+ database\(s\) \(/);
    // Every database of the state directory, with its schema version (the report stores too).
    for (const db of ['arcline', 'defense', 'jmap', 'mailindex', 'queue', 'dmarc-reports', 'tls-reports'])
      assert.match(r.stdout, new RegExp(`[(, ]${db}\\.db v\\d+[,)]`), db);
    assert.ok(during > 0);
    await b.noop();
    bobAll = await uidsOf();
    await b.logout();
    await s.stop();

    // The new machine: other directories, a config naming them, nothing else.
    restoredDir = join(work, 'restored');
    await mkdir(restoredDir);
    const config = join(restoredDir, 'arcline.toml');
    await writeFile(config, TEST_CONFIG(restoredDir));
    const rr = await runCli(['--config', config, 'restore', backupDir]);
    assert.equal(rr.code, 0, rr.stderr);
    assert.match(rr.stdout, /^restored .* into .*\n {2}\d+ message\(s\), \d+ file\(s\), .*, checksums verified\n$/);

    const s2 = await startTestServer({ dir: restoredDir });
    try {
      const a2 = await imap(s2.imapPort, 'alice@example.test');
      const restored = await accountState(a2);
      await a2.logout();
      assert.deepEqual(restored.subscribed, alice.subscribed);
      assert.deepEqual([...restored.mailboxes.keys()].sort(), [...alice.mailboxes.keys()].sort());
      for (const [name, mb] of alice.mailboxes) assert.deepEqual(restored.mailboxes.get(name), mb, name);

      // Bob: everything acknowledged before the backup began, with its UID; what came during
      // the backup is there or not, once at most, with the original's UID when indexed at the
      // snapshot, or a UID above every one handed out before.
      const b2 = await imap(s2.imapPort, 'bob@example.test');
      const mb = await b2.mailboxOpen('INBOX');
      const seen = new Map<string, number>();
      for await (const x of b2.fetch('1:*', { uid: true, envelope: true })) {
        const id = x.envelope?.messageId ?? '';
        assert.ok(!seen.has(id), `${id} twice`);
        seen.set(id, x.uid);
      }
      await b2.logout();
      for (const [id, uid] of bobBefore) assert.equal(seen.get(id), uid, id);
      for (const [id, uid] of seen) assert.ok(bobAll.has(id), `${id} came from nowhere (UID ${uid})`);
      assert.ok(Number(mb.uidNext) > Math.max(...bobBefore.values()));

      // The queue entry and its message; both DKIM keys.
      const q2 = await s2.admin.queue.list();
      assert.deepEqual(
        q2.map((m) => [m.id, m.recipients.map((x) => x.address)]),
        [[queued.id, queued.recipients]],
      );
      assert.deepEqual(await readFile(join(s2.config.storage.state, 'queue', `${queued.id}.eml`)), queued.file);
      const keys2 = (await s2.admin.dkim.keys('example.test')).map((k) => `${k.selector} ${k.privateKeyPem}`).sort();
      assert.deepEqual(keys2, dkim);

      // A server runs on the target: restore refuses, whatever the options.
      const busy = await runCli(['--config', config, 'restore', '--force', backupDir]);
      assert.equal(busy.code, 1);
      assert.match(busy.stderr, /^arcline: a server is running on .*: stop it before restoring\n$/);
    } finally {
      await s2.stop();
    }
    // Stopped: the target is not empty, so only --force restores, moving the old data aside.
    const full = await runCli(['--config', config, 'restore', backupDir]);
    assert.equal(full.code, 1);
    assert.match(full.stderr, /not empty: restore goes into empty directories \(--force moves what is there aside\)/);
    const forced = await runCli(['--config', config, 'restore', '--force', backupDir]);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /^moved .*\/state aside to .*\/state\.before-restore-\d{8}T\d{6}\n/m);
    const aside = (await readdir(restoredDir)).filter((n) => n.includes('.before-restore-'));
    assert.equal(aside.length, 2);
  });

  test('backup wants a new directory; a damaged backup is refused before anything is written', async () => {
    const again = await runCli(['--config', join(restoredDir, 'arcline.toml'), 'backup', backupDir]);
    assert.equal(again.code, 1);
    assert.match(again.stderr, /is not empty: a backup goes into a new directory/);

    const ok = await runCli(['restore', '--check', backupDir]);
    assert.equal(ok.code, 0, ok.stderr);
    assert.match(ok.stdout, /: \d+ file\(s\) match the manifest \(backup of mx\.test\.example, /);
    const manifest = JSON.parse(await readFile(join(backupDir, 'manifest.json'), 'utf8')) as {
      files: { path: string }[];
    };
    const victim = manifest.files.find((f) => /\/cur\/.*:2,/.test(f.path));
    assert.ok(victim);
    await appendFile(join(backupDir, victim.path), 'X');
    const check = await runCli(['restore', '--check', backupDir]);
    assert.equal(check.code, 1);
    assert.match(check.stderr, /is damaged \(1 file\(s\)\): maildir\/.*: size \d+, the manifest says \d+\n$/);

    const fresh = await mkdtemp(join(work, 'fresh-'));
    const config = join(fresh, 'arcline.toml');
    await writeFile(config, TEST_CONFIG(fresh));
    const r = await runCli(['--config', config, 'restore', backupDir]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /is damaged/);
    assert.deepEqual(await readdir(join(fresh, 'state')), []);
    assert.deepEqual(await readdir(join(fresh, 'mail')), []);
  });
});
