// UTF8=ACCEPT (RFC 6855): UTF-8 mailbox names on the wire once enabled, modified UTF-7 before;
// APPEND with UTF8 (literal8). The names on disk are the same either way (Dovecot's mUTF-7).

import assert from 'node:assert/strict';
import { readdir } from 'node:fs/promises';
import { after, before, test } from 'node:test';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(() => s?.stop());

const login = async () => {
  const { client } = await RawImap.connect(s.imapPort);
  assert.match((await client.cmd('LOGIN alice@example.test secret-password')).at(-1) ?? '', /OK/);
  return client;
};

test('UTF8=ACCEPT: names in UTF-8 after ENABLE, modified UTF-7 for other sessions, one folder on disk', async () => {
  const c = await login();
  assert.ok(((await c.cmd('CAPABILITY'))[0] ?? '').split(' ').includes('UTF8=ACCEPT'));
  assert.deepEqual((await c.cmd('ENABLE UTF8=ACCEPT')).slice(0, 1), ['* ENABLED UTF8=ACCEPT']);
  assert.match((await c.cmd('CREATE "Ünïcödé"')).at(-1) ?? '', /OK/);
  const list = await c.cmd('LIST "" "Ü*"');
  // Non-ASCII names go out as literals: "... {n}" then the UTF-8 bytes on the next line.
  assert.match(list[0] ?? '', /^\* LIST \(\\HasNoChildren\) "\." \{\d+\}$/);
  assert.equal(Buffer.from(list[1] ?? '', 'latin1').toString('utf8'), 'Ünïcödé');
  assert.match((await c.cmd('SELECT "Ünïcödé"')).at(-1) ?? '', /OK \[READ-WRITE\]/);
  c.close();
  const account = s.mailboxDir('alice@example.test');
  assert.ok((await readdir(account)).includes('.&ANw-n&AO8-c&APY-d&AOk-'), 'stored under its modified UTF-7 name');
  const old = await login();
  const l2 = await old.cmd('LIST "" "&ANw-*"');
  assert.equal(l2[0], '* LIST (\\HasNoChildren) "." &ANw-n&AO8-c&APY-d&AOk-');
  old.close();
});

test('APPEND with UTF8 (~{n}) needs UTF8=ACCEPT; with it, the message is stored', async () => {
  const msg = Buffer.from('From: Jörg <jörg@example.test>\r\nSubject: Grüße\r\n\r\nHallo\r\n');
  const c = await login();
  c.write(Buffer.concat([Buffer.from(`a1 APPEND INBOX UTF8 (~{${msg.length}+}\r\n`), msg, Buffer.from(')\r\n')]));
  assert.match((await c.until('a1')).at(-1) ?? '', /^a1 BAD /);
  await c.cmd('ENABLE UTF8=ACCEPT');
  c.write(Buffer.concat([Buffer.from(`a2 APPEND INBOX UTF8 (~{${msg.length}+}\r\n`), msg, Buffer.from(')\r\n')]));
  assert.match((await c.until('a2')).at(-1) ?? '', /^a2 OK \[APPENDUID \d+ \d+\]/);
  const found = await c.cmd('EXAMINE INBOX');
  assert.match(found[0] ?? '', /^\* [1-9]\d* EXISTS$/);
  c.close();
});
