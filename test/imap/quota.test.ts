// QUOTA (RFC 9208) seen from IMAP and enforced at SMTP delivery and IMAP APPEND/COPY; STATUS
// SIZE/DELETED (RFC 8438, RFC 9051), LIST-STATUS (RFC 5819), LIST (SPECIAL-USE), APPENDLIMIT.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

const PASSWORD = 'secret-password';

async function smtp(s: TestServer, to: string, bytes: number): Promise<string> {
  const c = await RawSmtp.connect(s.port);
  const replies = await envelope(c, 'a@remote.example', [to]);
  const rcpt = replies.at(-1);
  if (rcpt?.code !== 250) {
    c.close();
    return rcpt?.text ?? '';
  }
  await c.cmd('DATA');
  c.write(`Subject: q\r\n\r\n${'x'.repeat(76)}\r\n`.repeat(Math.ceil(bytes / 78)));
  c.write('.\r\n');
  const r = await c.read();
  c.close();
  return r.text;
}

describe('QUOTA and mailbox sizes', () => {
  let s: TestServer;

  before(async () => {
    s = await startTestServer();
    await s.admin.ops.setQuota('alice@example.test', 20 * 1024);
  });
  after(() => s?.stop());

  const login = async (user = 'alice@example.test') => {
    const { client } = await RawImap.connect(s.imapPort);
    assert.match((await client.cmd(`LOGIN ${user} ${PASSWORD}`)).at(-1) ?? '', /OK/);
    return client;
  };

  test('capabilities list QUOTA, QUOTA=RES-STORAGE, LIST-STATUS, STATUS=SIZE and APPENDLIMIT', async () => {
    const c = await login();
    const caps = (await c.cmd('CAPABILITY')).find((l) => l.startsWith('* CAPABILITY')) ?? '';
    for (const cap of ['QUOTA', 'QUOTA=RES-STORAGE', 'LIST-EXTENDED', 'LIST-STATUS', 'STATUS=SIZE']) {
      assert.ok(caps.split(' ').includes(cap), cap);
    }
    assert.match(caps, / APPENDLIMIT=52428800( |$)/);
    c.close();
  });

  test('GETQUOTAROOT / GETQUOTA report usage and limit in KiB; a user without quota has no root', async () => {
    assert.match(await smtp(s, 'alice@example.test', 4000), /^250 /);
    const c = await login();
    const r = await c.cmd('GETQUOTAROOT INBOX');
    assert.equal(r[0], '* QUOTAROOT INBOX ""');
    const m = /^\* QUOTA "" \(STORAGE (\d+) 20\)$/.exec(r[1] ?? '');
    assert.ok(m, r.join('|'));
    assert.ok(Number(m[1]) >= 4);
    assert.deepEqual((await c.cmd('GETQUOTA ""')).slice(0, 1), [r[1]]);
    assert.match((await c.cmd('GETQUOTA "other"')).at(-1) ?? '', /^t\d+ NO \[NONEXISTENT\]/);
    c.close();
    const b = await login('bob@example.test');
    const rb = await b.cmd('GETQUOTAROOT INBOX');
    assert.equal(rb[0], '* QUOTAROOT INBOX');
    assert.match(rb[1] ?? '', /^t\d+ OK /);
    assert.match((await b.cmd('GETQUOTA ""')).at(-1) ?? '', /^t\d+ NO /);
    b.close();
  });

  test('APPEND and COPY over quota get NO [OVERQUOTA]; nothing is stored', async () => {
    const c = await login();
    const big = `Subject: big\r\n\r\n${'y'.repeat(30 * 1024)}\r\n`;
    c.write(`a1 APPEND INBOX {${big.length}+}\r\n${big}\r\n`);
    const r = await c.until('a1');
    assert.match(r.at(-1) ?? '', /^a1 NO \[OVERQUOTA\] /);
    const sel = await c.cmd('SELECT INBOX');
    const exists = Number(/^\* (\d+) EXISTS/.exec(sel[0] ?? '')?.[1]);
    assert.equal(exists, 1, 'the refused message was not stored');
    const small = 'Subject: small\r\n\r\nhi\r\n';
    c.write(`a2 APPEND INBOX {${small.length}+}\r\n${small}\r\n`);
    assert.match((await c.until('a2')).at(-1) ?? '', /^a2 OK \[APPENDUID/);
    // Copy the 4 KB message until the quota stops it: the usage never passes the limit.
    let refused = '';
    for (let i = 0; i < 10 && !refused; i++) {
      const r2 = (await c.cmd('COPY 1 Trash')).at(-1) ?? '';
      if (!/ OK /.test(r2)) refused = r2;
    }
    assert.match(refused, /^t\d+ NO \[OVERQUOTA\] /);
    const q = /STORAGE (\d+) 20\)/.exec((await c.cmd('GETQUOTA ""'))[0] ?? '');
    assert.ok(Number(q?.[1]) <= 20, `usage ${q?.[1]} KiB`);
    c.close();
  });

  test('SMTP: a message that would exceed the quota gets 552 5.2.2 at DATA; a full mailbox at RCPT', async () => {
    assert.equal(await smtp(s, 'alice@example.test', 10_000), '552 5.2.2 Mailbox full: the recipient is over quota');
    await s.admin.ops.setQuota('alice@example.test', 1024);
    s.admin.store.quota.invalidate('alice@example.test' as never);
    s.server; // the running server caches usage briefly; its RCPT check sees the new limit at once
    assert.equal(await smtp(s, 'alice@example.test', 10), '552 5.2.2 Mailbox full: the recipient is over quota');
    assert.match(await smtp(s, 'bob@example.test', 10), /^250 /, 'other users are not affected');
    await s.admin.ops.setQuota('alice@example.test', null);
    assert.match(await smtp(s, 'alice@example.test', 10_000), /^250 /);
  });

  test('STATUS SIZE and DELETED; LIST RETURN (STATUS ...); LIST (SPECIAL-USE)', async () => {
    const c = await login('bob@example.test');
    await c.cmd('SELECT INBOX');
    await c.cmd('STORE 1 +FLAGS (\\Deleted)');
    const st = await c.cmd('STATUS INBOX (MESSAGES SIZE DELETED)');
    assert.match(st[0] ?? '', /^\* STATUS INBOX \(MESSAGES 1 SIZE \d+ DELETED 1\)$/);
    const list = await c.cmd('LIST "" "*" RETURN (STATUS (MESSAGES UNSEEN))');
    const i = list.findIndex((l) => l.endsWith('"." INBOX'));
    assert.match(list[i + 1] ?? '', /^\* STATUS INBOX \(MESSAGES 1 UNSEEN 1\)$/);
    assert.ok(list.some((l) => /^\* STATUS Junk \(MESSAGES 0 UNSEEN 0\)$/.test(l)));
    const special = await c.cmd('LIST (SPECIAL-USE) "" "*"');
    assert.deepEqual(
      special
        .slice(0, -1)
        .map((l) => l.replace(/^\* LIST \(([^)]*)\) "\." /, '$1 '))
        .sort(),
      [
        '\\HasNoChildren \\Drafts Drafts',
        '\\HasNoChildren \\Junk Junk',
        '\\HasNoChildren \\Sent Sent',
        '\\HasNoChildren \\Trash Trash',
      ],
    );
    c.close();
  });
});
