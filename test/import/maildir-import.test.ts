// The import seam of the store (src/store/maildir/import.ts) and the reader of Dovecot trees
// (src/import/dovecot.ts) on hand-made trees: LAYOUT=fs, a version 1 uidlist, links that must
// not be followed, names arcline cannot store, arcline's empty default folders replaced, and the
// rules that keep an import and a running server from fighting (a mailbox the server has open is
// refused unless --replace-empty; one with messages always).

import assert from 'node:assert/strict';
import { mkdir, readdir, rm, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { importDovecotTree, readDovecotTree } from '../../src/import/dovecot.ts';
import { tempStore } from '../harness/store.ts';

const ACCOUNT = 'user@example.test' as AccountId;

async function maildir(dir: string, files: Record<string, string> = {}, extra: Record<string, string> = {}) {
  for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true });
  for (const [name, body] of Object.entries(files)) await writeFile(join(dir, name), body);
  for (const [name, body] of Object.entries(extra)) await writeFile(join(dir, name), body);
}

async function setup(t: import('node:test').TestContext) {
  const { dir, store, reopen } = await tempStore('arcline-import-');
  t.after(async () => {
    await store.close();
    await rm(dir, { recursive: true, force: true });
  });
  await store.createAccount(ACCOUNT);
  const sink = {
    importMailbox: store.importMailbox.bind(store),
    setSubscribed: (a: AccountId, n: string, on: boolean) => store.accounts.setSubscribed(a, n, on),
  };
  return { dir, store, reopen, sink, src: join(dir, 'dovecot') };
}

test('LAYOUT=fs with a version 1 uidlist: UIDs kept, unlisted files after them, links and unstorable names skipped', async (t) => {
  const { dir, store, sink, src } = await setup(t);
  await maildir(src, {}, { subscriptions: 'INBOX\nLists/dovecot\n' });
  await maildir(join(src, 'Lists', 'dovecot'), {
    'cur/1600000000.1_1.old:2,S': 'Subject: one\n\nfirst\n',
    'cur/1600000001.2_1.old:2,RS': 'Subject: two\n\nsecond\n',
    'new/1600000009.9_1.lda': 'Subject: three\n\nnot in the uidlist\n',
  });
  await writeFile(
    join(src, 'Lists', 'dovecot', 'dovecot-uidlist'),
    '1 1234567 40\n17 1600000000.1_1.old\n31 1600000001.2_1.old:2,S\n',
  );
  await utimes(join(src, 'Lists', 'dovecot', 'cur/1600000000.1_1.old:2,S'), 1_600_000_100, 1_600_000_100);
  await maildir(join(src, 'a.b')); // "." inside a level: not a name arcline can store
  await symlink('/etc', join(src, 'Etc')); // a folder link pointing out of the tree
  await symlink('/etc/hostname', join(src, 'Lists', 'dovecot', 'cur', '1600000005.5_1.evil:2,S'));

  // What an interrupted import left: removed by the next one.
  await mkdir(join(dir, 'mail', 'example.test', 'user', 'arcline-import.999999999.1', 'mailbox', 'cur'), {
    recursive: true,
  });
  const tree = await readDovecotTree(src, 'fs');
  const report = await importDovecotTree(sink, ACCOUNT, tree);
  assert.deepEqual(
    report.imported.map((m) => [m.name, m.uidValidity, m.uidNext, m.messages.map((x) => x.uid)]),
    [
      ['INBOX', report.imported[0]?.uidValidity, 1, []],
      ['Lists.dovecot', 1234567, 41, [17, 31, 40]],
    ],
  );
  assert.equal(report.imported[0]?.freshIdentity, true, 'INBOX had no uidlist');
  const why = Object.fromEntries(report.skipped.map((s) => [s.what.replace(`${src}/`, ''), s.why]));
  assert.match(why.Etc ?? '', /symbolic link/);
  assert.match(why['Lists/dovecot/cur/1600000005.5_1.evil:2,S'] ?? '', /symbolic link/);
  assert.match(why['a.b'] ?? '', /not a folder name arcline can store/);
  assert.deepEqual(report.subscribed, ['INBOX', 'Lists.dovecot']);

  const box = await store.accounts.open(ACCOUNT, 'Lists.dovecot');
  const st = await box.sync();
  assert.equal(st.uidValidity, 1234567);
  assert.equal(st.uidNext, 41);
  assert.deepEqual(
    st.messages.map((m) => [m.uid, m.flags, m.modseq]),
    [
      [17, ['\\Seen'], 1],
      [31, ['\\Answered', '\\Seen'], 1],
      [40, [], 1],
    ],
  );
  assert.equal(st.messages[0]?.internalDate.getTime(), 1_600_000_100_000, 'internal date from the mtime');
  assert.deepEqual(st.recent, [40], 'the new/ file is \\Recent, as it was for Dovecot');
  const body = await box.openMessage(17);
  const buf = Buffer.alloc(body?.size ?? 0);
  await body?.read(buf, 0, buf.length, 0);
  await body?.close();
  assert.equal(buf.toString(), 'Subject: one\r\n\r\nfirst\r\n', 'stored with CRLF');
  // A flag change after the import gets a MODSEQ above the imported ones.
  const changed = await box.storeFlags([17], 'add', ['\\Flagged']);
  assert.equal(changed.changed[0]?.modseq, 2);
  store.accounts.release(ACCOUNT, box);
  // The staging directories are gone (this import's, and the interrupted one's); the source is untouched.
  assert.deepEqual(
    (await readdir(join(dir, 'mail', 'example.test', 'user'))).filter((n) => n.startsWith('arcline-import')),
    [],
  );
  assert.deepEqual((await readdir(join(src, 'Lists', 'dovecot', 'new'))).length, 1);
});

test('an import and a running server: an opened mailbox is refused unless --replace-empty, one with messages always', async (t) => {
  const { store, reopen, sink, src } = await setup(t);
  await maildir(
    src,
    { 'cur/1600000000.1_1.h:2,S': 'Subject: a\n\nx\n' },
    { 'dovecot-uidlist': '3 V777 N9\n8 :1600000000.1_1.h\n' },
  );
  await maildir(
    join(src, '.Sent'),
    { 'cur/1600000002.1_1.h:2,S': 'Subject: s\n\nsent\n' },
    { 'dovecot-uidlist': '3 V778 N3\n2 :1600000002.1_1.h\n' },
  );
  // The "server": a session has INBOX open (its index entry exists and the server holds it).
  const server = reopen();
  t.after(() => server.close());
  const inbox = await server.accounts.open(ACCOUNT, 'INBOX');
  await inbox.sync();

  const first = await importDovecotTree(sink, ACCOUNT, await readDovecotTree(src, 'maildir++'));
  assert.deepEqual(
    first.imported.map((m) => m.name),
    ['Sent'],
    'arcline’s empty default Sent is replaced; INBOX is refused',
  );
  assert.match(
    first.skipped.find((s) => s.what === 'INBOX')?.why ?? '',
    /arcline already has this mailbox.*--replace-empty/,
  );
  assert.equal((await inbox.sync()).messages.length, 0, 'the server’s INBOX is as it was');
  server.accounts.release(ACCOUNT, inbox);
  await server.close();

  // With the server stopped, --replace-empty takes the empty INBOX.
  const second = await importDovecotTree(sink, ACCOUNT, await readDovecotTree(src, 'maildir++'), {
    replaceEmpty: true,
  });
  assert.deepEqual(
    second.imported.map((m) => m.name),
    ['INBOX'],
  );
  assert.match(second.skipped.find((s) => s.what === 'Sent')?.why ?? '', /already has messages/);
  const after = reopen();
  for (const [name, validity, uid] of [
    ['INBOX', 777, 8],
    ['Sent', 778, 2],
  ] as const) {
    const box = await after.accounts.open(ACCOUNT, name);
    const st = await box.sync();
    assert.equal(st.uidValidity, validity);
    assert.deepEqual(
      st.messages.map((m) => m.uid),
      [uid],
    );
    after.accounts.release(ACCOUNT, box);
  }
  // A mailbox created later gets a UIDVALIDITY above the imported ones (RFC 9051 §2.3.1.1).
  await after.accounts.create(ACCOUNT, 'Later');
  const later = await after.accounts.open(ACCOUNT, 'Later');
  assert.ok((await later.sync()).uidValidity > 778);
  after.accounts.release(ACCOUNT, later);
  await after.close();

  // Starting a user again: `user del --purge` removes its mail and its index entries, so the
  // same import goes through again without --replace-empty.
  await store.purgeAccount(ACCOUNT);
  await store.createAccount(ACCOUNT);
  const third = await importDovecotTree(sink, ACCOUNT, await readDovecotTree(src, 'maildir++'));
  assert.deepEqual(
    third.imported.map((m) => m.name),
    ['INBOX', 'Sent'],
  );
});

test('CONTROL=: dovecot-uidlist, dovecot-keywords and subscriptions read from their own tree (--control)', async (t) => {
  const { store, sink, src, dir } = await setup(t);
  const control = join(dir, 'control');
  await maildir(src, { 'cur/1600000000.1_1.h:2,Sa': 'Subject: a\n\nx\n' });
  await maildir(join(src, '.Work'), { 'cur/1600000001.1_1.h:2,': 'Subject: w\n\ny\n' });
  await mkdir(join(control, '.Work'), { recursive: true });
  await writeFile(join(control, 'dovecot-uidlist'), '3 V901 N12\n11 :1600000000.1_1.h\n');
  await writeFile(join(control, 'dovecot-keywords'), '0 $Label1\n');
  await writeFile(join(control, 'subscriptions'), 'V\t2\n\nWork\n');
  await writeFile(join(control, '.Work', 'dovecot-uidlist'), '3 V902 N6\n5 :1600000001.1_1.h\n');
  const report = await importDovecotTree(sink, ACCOUNT, await readDovecotTree(src, 'maildir++', control));
  assert.deepEqual(
    report.imported.map((m) => [m.name, m.uidValidity, m.messages.map((x) => [x.uid, x.flags])]),
    [
      ['INBOX', 901, [[11, ['\\Seen', '$Label1']]]],
      ['Work', 902, [[5, []]]],
    ],
  );
  assert.deepEqual(report.subscribed, ['Work']);
  const list = await store.accounts.list(ACCOUNT);
  assert.deepEqual(
    list.filter((e) => e.subscribed).map((e) => e.name),
    ['Drafts', 'Junk', 'Sent', 'Trash', 'Work'],
    'INBOX is not subscribed (it was not in Dovecot); arcline’s own folders are',
  );
});
