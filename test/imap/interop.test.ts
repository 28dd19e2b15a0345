// Interop: the Maildir that arcline writes (delivery, IMAP flags, folders) read by another
// Maildir implementation, Python's standard `mailbox` module; and the login rules of the session.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import nodemailer from 'nodemailer';
import { Authenticator } from '../../src/auth/authenticator.ts';
import { silentLogger } from '../../src/core/log.ts';
import { Session } from '../../src/imap/session.ts';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const python = spawnSync('python3', ['-c', 'import mailbox'], { encoding: 'utf8' }).status === 0;

describe('Maildir interop and login rules', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.stop());

  const login = async () => {
    const { client } = await RawImap.connect(s.imapPort);
    await client.cmd('LOGIN alice@example.test secret-password');
    return client;
  };

  test('a Maildir written by arcline is read correctly by Python mailbox (flags, folders, bytes)', {
    skip: !python && 'python3 is not installed',
  }, async () => {
    const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
    await t.sendMail({ from: 'a@remote.example', to: 'alice@example.test', subject: 'interop one', text: 'first' });
    await t.sendMail({ from: 'a@remote.example', to: 'alice@example.test', subject: 'interop two', text: 'second' });
    t.close();
    const c = await login();
    await c.cmd('SELECT INBOX');
    await c.cmd('STORE 1 +FLAGS (\\Seen \\Flagged)');
    await c.cmd('STORE 2 +FLAGS (\\Answered $Work)');
    await c.cmd('CREATE Archive.2024');
    await c.cmd('COPY 1 Archive.2024');
    c.close();
    const script = `
import mailbox, json, sys
md = mailbox.Maildir(sys.argv[1], create=False)
msgs = sorted(((m['Subject'], m.get_flags(), m.get_subdir()) for m in md), key=lambda x: x[0])
print(json.dumps({"folders": sorted(md.list_folders()), "inbox": msgs,
  "archive": [m['Subject'] for m in md.get_folder('Archive.2024')]}))
`;
    const r = spawnSync('python3', ['-c', script, s.mailboxDir('alice@example.test')], { encoding: 'utf8' });
    assert.equal(r.status, 0, r.stderr);
    const out = JSON.parse(r.stdout) as { folders: string[]; inbox: [string, string, string][]; archive: string[] };
    assert.deepEqual(out.folders, ['Archive', 'Archive.2024', 'Drafts', 'Junk', 'Sent', 'Trash']);
    assert.deepEqual(out.inbox, [
      ['interop one', 'FS', 'cur'],
      ['interop two', 'Ra', 'cur'],
    ]);
    assert.deepEqual(out.archive, ['interop one']);
  });

  test('RENAME INBOX moves its messages to a new mailbox and leaves INBOX empty', async () => {
    const c = await login();
    const r = await c.cmd('RENAME INBOX Old-Inbox');
    assert.match(r.at(-1) ?? '', /OK RENAME completed/);
    const st = await c.cmd('STATUS INBOX (MESSAGES)');
    assert.equal(st[0], '* STATUS INBOX (MESSAGES 0)');
    const old = await c.cmd('STATUS Old-Inbox (MESSAGES)');
    assert.match(old[0] ?? '', /^\* STATUS Old-Inbox \(MESSAGES [1-9]\d*\)$/);
    c.close();
  });

  test('plaintext login is refused without TLS from a non-loopback address (LOGINDISABLED)', async () => {
    const sent: string[] = [];
    const session = new Session({
      directory: s.admin.directory,
      store: s.admin.store,
      authenticator: new Authenticator({
        directory: s.admin.directory,
        log: silentLogger(),
        hashing: { scheme: 'bcrypt', bcryptCost: 4 },
      }),
      log: silentLogger(),
      hostname: 'mx.test',
      appendLimit: 1024 * 1024,
      send: async (parts) => {
        sent.push(parts.map(String).join(''));
      },
      push: (text) => {
        sent.push(text);
      },
      startTls: async () => {},
      secure: () => false,
      remoteAddress: '192.0.2.10',
      loopback: false,
      streamedLiteral: () => Promise.reject(new Error('none')),
    });
    assert.match(session.greeting(), /STARTTLS LOGINDISABLED\]/);
    assert.doesNotMatch(session.greeting(), /AUTH=PLAIN/);
    await session.handle({ parts: [Buffer.from('a LOGIN alice@example.test secret-password')], literals: [] });
    await session.handle({
      parts: [Buffer.from('b AUTHENTICATE PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQtcGFzc3dvcmQ=')],
      literals: [],
    });
    assert.deepEqual(sent, [
      'a NO [PRIVACYREQUIRED] Use STARTTLS or port 993 first\r\n',
      'b NO [PRIVACYREQUIRED] Use STARTTLS or port 993 first\r\n',
    ]);
    assert.equal(session.state.kind, 'notAuthenticated');
  });
});
