// Messages delivered with flags (Sieve imap4flags and fileinto :flags, issue #16) as an IMAP
// client sees them: FLAGS at once, keywords announced, \Seen not counted as unseen. The copies
// are written by a delivery-only Maildir store beside the server, as an inbound SMTP thread
// writes them (docs/architecture.md §8); the server's IMAP side finds them in cur/.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import type { AccountId } from '../../src/core/ids.ts';
import { silentLogger } from '../../src/core/log.ts';
import { createMaildirStore, type MaildirStore } from '../../src/store/maildir/index.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { spoolOf } from '../harness/store.ts';

const ALICE = 'alice@example.test' as AccountId;

describe('IMAP: messages delivered with flags', () => {
  let s: TestServer;
  let writer: MaildirStore;
  const clients: ImapFlow[] = [];
  before(async () => {
    s = await startTestServer();
    writer = createMaildirStore({
      root: s.config.storage.maildir,
      spoolDir: join(s.dir, 'writer-spool'),
      indexPath: join(s.config.storage.state, 'mailindex.db'),
      log: silentLogger(),
    });
  });
  after(async () => {
    for (const c of clients) await c.logout().catch(() => {});
    await writer.close();
    await s.stop();
  });

  const imap = async () => {
    const c = new ImapFlow({
      host: '127.0.0.1',
      port: s.imapPort,
      secure: false,
      auth: { user: ALICE, pass: 'secret-password' },
      logger: false,
      tls: { rejectUnauthorized: false },
    });
    await c.connect();
    clients.push(c);
    return c;
  };
  const deliver = async (subject: string, flags?: readonly string[], mailbox = 'INBOX') => {
    const msg = await spoolOf(writer, `From: a@remote.example\r\nSubject: ${subject}\r\n`, '\r\nHello.\r\n');
    try {
      await writer.deliver([{ account: ALICE, mailbox, prefix: Buffer.alloc(0), ...(flags ? { flags } : {}) }], msg);
    } finally {
      await msg.dispose();
    }
  };

  test('FETCH FLAGS shows the flags, FLAGS announces the keyword, STATUS and SEARCH count \\Seen as seen', async () => {
    const c = await imap();
    await c.mailboxOpen('INBOX');
    await deliver('plain');
    await deliver('filed', ['\\Seen', '\\Flagged', 'Work', '\\Recent', 'not an atom']);
    // The selected session learns of both (IDLE or NOOP); await the condition, bounded.
    const deadline = Date.now() + 5000;
    while ((c.mailbox ? c.mailbox.exists : 0) < 2) {
      assert.ok(Date.now() < deadline, 'EXISTS 2');
      await c.noop();
    }
    const got = new Map<string, string[]>();
    for await (const m of c.fetch('1:*', { flags: true, envelope: true })) {
      got.set(m.envelope?.subject ?? '', [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort());
    }
    assert.deepEqual(Object.fromEntries(got), { plain: [], filed: ['Work', '\\Flagged', '\\Seen'] });
    assert.deepEqual(await c.search({ seen: false }, { uid: false }), [1]);
    assert.deepEqual(await c.search({ keyword: 'Work' }, { uid: false }), [2]);
    // Another session: STATUS UNSEEN and the keyword in FLAGS at SELECT.
    const other = await imap();
    const st = await other.status('INBOX', { messages: true, unseen: true });
    assert.ok(st);
    assert.deepEqual({ messages: st.messages, unseen: st.unseen }, { messages: 2, unseen: 1 });
    const box = await other.mailboxOpen('INBOX', { readOnly: true });
    assert.ok(box.flags.has('Work'), `FLAGS ${[...box.flags].join(' ')}`);
  });

  test('a folder made by the delivery (create, the default) shows the message with its flags', async () => {
    assert.equal(await writer.mailboxExists(ALICE, 'Lists'), false);
    await deliver('list', ['\\Answered', '$Forwarded'], 'Lists');
    assert.equal(await writer.mailboxExists(ALICE, 'Lists'), true);
    const c = await imap();
    const st = await c.status('Lists', { messages: true, unseen: true });
    assert.ok(st);
    assert.deepEqual({ messages: st.messages, unseen: st.unseen }, { messages: 1, unseen: 1 });
    await c.mailboxOpen('Lists');
    const m = await c.fetchOne('1', { flags: true });
    assert.ok(m);
    assert.deepEqual([...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort(), ['$Forwarded', '\\Answered']);
  });
});
