// IMAP4rev2 (RFC 9051) once enabled, SEARCHRES (RFC 5182) and BINARY (RFC 3516), byte-exact.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import nodemailer from 'nodemailer';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer();
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
  for (const [subject, body] of [
    ['plain one', 'first'],
    ['plain two', 'second'],
  ]) {
    await t.sendMail({
      envelope: { from: 'a@remote.example', to: ['alice@example.test'] },
      raw: `Subject: ${subject}\r\n\r\n${body}\r\n`,
    });
  }
  // A message with a base64 part holding NUL bytes, a quoted-printable part and an unknown CTE.
  const b64 = Buffer.from([0x00, 0x01, 0x02, 0xff, 0x41]).toString('base64');
  const mime = [
    'Subject: binary parts',
    'MIME-Version: 1.0',
    'Content-Type: multipart/mixed; boundary="b"',
    '',
    '--b',
    'Content-Type: application/octet-stream',
    'Content-Transfer-Encoding: base64',
    '',
    b64,
    '--b',
    'Content-Type: text/plain; charset=utf-8',
    'Content-Transfer-Encoding: quoted-printable',
    '',
    'Gr=C3=BC=C3=9Fe',
    '--b',
    'Content-Type: text/plain',
    'Content-Transfer-Encoding: x-uuencode',
    '',
    'begin 644 x',
    '--b--',
    '',
  ].join('\r\n');
  await t.sendMail({ envelope: { from: 'a@remote.example', to: ['alice@example.test'] }, raw: mime });
  t.close();
});
after(() => s?.stop());

const login = async () => {
  const { client } = await RawImap.connect(s.imapPort);
  assert.match((await client.cmd('LOGIN alice@example.test secret-password')).at(-1) ?? '', /OK/);
  return client;
};

test('ENABLE IMAP4rev2: no RECENT or \\Recent, a LIST line in SELECT, ESEARCH answers, CLOSED', async () => {
  const c = await login();
  assert.ok(((await c.cmd('CAPABILITY'))[0] ?? '').split(' ').includes('IMAP4rev2'));
  assert.deepEqual((await c.cmd('ENABLE IMAP4rev2'))[0], '* ENABLED IMAP4rev2');
  const sel = await c.cmd('SELECT INBOX');
  assert.ok(!sel.some((l) => / RECENT$/.test(l) || l.includes('[UNSEEN ')), sel.join('|'));
  assert.ok(sel.includes('* LIST (\\HasNoChildren) "." INBOX'), sel.join('|'));
  const f = await c.cmd('FETCH 1:* (FLAGS)');
  assert.ok(f.every((l) => !l.includes('\\Recent')));
  assert.match((await c.cmd('SEARCH ALL'))[0] ?? '', /^\* ESEARCH \(TAG "t\d+"\) ALL 1:3$/);
  assert.match((await c.cmd('UID SEARCH SUBJECT nothing'))[0] ?? '', /^\* ESEARCH \(TAG "t\d+"\) UID$/);
  assert.match((await c.cmd('STATUS INBOX (RECENT)')).at(-1) ?? '', /^t\d+ BAD /);
  assert.equal((await c.cmd('SELECT INBOX'))[0], '* OK [CLOSED] Previous mailbox closed');
  c.close();
});

test('SEARCHRES: RETURN (SAVE) and "$" in FETCH, STORE, UID SEARCH; MIN/MAX-only saves', async () => {
  const c = await login();
  await c.cmd('SELECT INBOX');
  const saved = await c.cmd('SEARCH RETURN (SAVE) SUBJECT plain');
  assert.equal(saved.length, 1, 'SAVE alone: no ESEARCH response');
  assert.deepEqual(
    (await c.cmd('FETCH $ (UID)')).slice(0, -1).map((l) => l.replace(/UID \d+/, 'UID n')),
    ['* 1 FETCH (UID n)', '* 2 FETCH (UID n)'],
  );
  assert.match((await c.cmd('STORE $ +FLAGS (\\Flagged)')).at(-1) ?? '', /OK/);
  assert.match((await c.cmd('SEARCH FLAGGED'))[0] ?? '', /^\* SEARCH 1 2$/);
  const both = await c.cmd('SEARCH RETURN (SAVE MAX) ALL');
  assert.match(both[0] ?? '', /^\* ESEARCH \(TAG "t\d+"\) MAX 3$/);
  assert.match((await c.cmd('FETCH $ (FLAGS)'))[0] ?? '', /^\* 3 FETCH /);
  assert.match((await c.cmd('UID SEARCH UID $'))[0] ?? '', /^\* SEARCH \d+$/);
  c.close();
});

test('BINARY: base64 and quoted-printable decoded, NUL bytes as literal8, BINARY.SIZE, UNKNOWN-CTE', async () => {
  const c = await login();
  await c.cmd('SELECT INBOX');
  const b1 = await c.cmd('FETCH 3 (BINARY.PEEK[1] BINARY.SIZE[2])');
  assert.match(b1[0] ?? '', /^\* 3 FETCH \(BINARY\[1\] ~\{5\}$/);
  assert.deepEqual(Buffer.from(`${b1[1]}`.slice(0, 5), 'latin1'), Buffer.from([0x00, 0x01, 0x02, 0xff, 0x41]));
  assert.match(b1[1] ?? '', / BINARY\.SIZE\[2\] 7\)$/);
  const qp = await c.cmd('FETCH 3 (BINARY.PEEK[2])');
  assert.match(qp[0] ?? '', /^\* 3 FETCH \(BINARY\[2\] \{7\}$/);
  assert.equal(Buffer.from((qp[1] ?? '').slice(0, 7), 'latin1').toString('utf8'), 'Grüße');
  const partial = await c.cmd('FETCH 3 (BINARY.PEEK[2]<2.3>)');
  assert.match(partial[0] ?? '', /^\* 3 FETCH \(BINARY\[2\]<2> \{3\}$/);
  assert.match((await c.cmd('FETCH 3 (BINARY.PEEK[3])')).at(-1) ?? '', /^t\d+ NO \[UNKNOWN-CTE\] /);
  assert.match((await c.cmd('FETCH 3 (BINARY.PEEK[1.HEADER])')).at(-1) ?? '', /^t\d+ BAD /);
  // APPEND takes a literal8 (~{n}) too (RFC 3516 §4.4).
  const raw = Buffer.from('Subject: via literal8\r\n\r\nbinary ok\r\n');
  c.write(Buffer.concat([Buffer.from(`a8 APPEND INBOX ~{${raw.length}+}\r\n`), raw, Buffer.from('\r\n')]));
  assert.match((await c.until('a8')).at(-1) ?? '', /^a8 OK \[APPENDUID /);
  // BINARY without PEEK sets \Seen.
  const seen = await c.cmd('FETCH 1 (BINARY[1])');
  assert.ok(
    seen.some((l) => l.includes('\\Seen')),
    seen.join('|'),
  );
  c.close();
});

test('CREATE-SPECIAL-USE: a use given at CREATE is listed, kept across RENAME; virtual or double uses refused', async () => {
  const c = await login();
  assert.ok(((await c.cmd('CAPABILITY'))[0] ?? '').split(' ').includes('CREATE-SPECIAL-USE'));
  assert.match((await c.cmd('CREATE Old-Mail (USE (\\Archive))')).at(-1) ?? '', /OK/);
  assert.ok((await c.cmd('LIST (SPECIAL-USE) "" "*"')).includes('* LIST (\\HasNoChildren \\Archive) "." Old-Mail'));
  assert.match((await c.cmd('RENAME Old-Mail Archive-2025')).at(-1) ?? '', /OK/);
  assert.ok((await c.cmd('LIST "" "Archive-2025"')).includes('* LIST (\\HasNoChildren \\Archive) "." Archive-2025'));
  assert.match((await c.cmd('CREATE Everything (USE (\\All))')).at(-1) ?? '', /^t\d+ NO \[USEATTR\] /);
  assert.match((await c.cmd('CREATE Two (USE (\\Sent \\Trash))')).at(-1) ?? '', /^t\d+ NO \[USEATTR\] /);
  assert.match((await c.cmd('LIST "" "Everything"')).at(-1) ?? '', /OK/);
  assert.equal((await c.cmd('LIST "" "Everything"')).length, 1, 'nothing was created');
  c.close();
});

test('header SEARCH gives the same answer from the files and from the index cache it fills', async () => {
  const c = await login();
  await c.cmd('EXAMINE INBOX');
  const first = await c.cmd('SEARCH SUBJECT plain');
  const again = await c.cmd('SEARCH SUBJECT PLAIN');
  assert.equal(first[0], '* SEARCH 1 2');
  assert.equal(again[0], first[0]);
  assert.equal((await c.cmd('SEARCH OR SUBJECT binary HEADER X-None x'))[0], '* SEARCH 3');
  assert.equal((await c.cmd('SEARCH NOT SUBJECT plain SUBJECT binary'))[0], '* SEARCH 3');
  c.close();
});

test('DELETE of a name that exists only through its children: NO [HASCHILDREN] (RFC 9051 §6.3.5)', async () => {
  const c = await login();
  assert.match((await c.cmd('CREATE Parent.Child')).at(-1) ?? '', /OK/);
  assert.match(
    (await c.cmd('DELETE Parent')).at(-1) ?? '',
    /OK/,
    'Parent was a real mailbox: deleted, becomes \\Noselect',
  );
  assert.match((await c.cmd('DELETE Parent')).at(-1) ?? '', /^t\d+ NO \[HASCHILDREN\] /);
  assert.match((await c.cmd('DELETE Parent.Child')).at(-1) ?? '', /OK/);
  c.close();
});
