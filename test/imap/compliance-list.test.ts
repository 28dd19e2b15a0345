// LIST-EXTENDED and subscription answers that Dovecot's imaptest compliance scripts found wrong
// (listext, subscribe), byte for byte over a raw socket.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(() => s?.stop());

async function login(): Promise<RawImap> {
  const { client } = await RawImap.connect(s.imapPort);
  assert.match((await client.cmd('LOGIN bob@example.test secret-password')).at(-1) ?? '', /OK/);
  return client;
}

async function ok(c: RawImap, command: string): Promise<string[]> {
  const lines = await c.cmd(command);
  assert.match(lines.at(-1) ?? '', /^t\d+ OK /, `${command}: ${lines.join(' | ')}`);
  return lines.slice(0, -1);
}

test('imaptest listext: unknown selection or return options and RECURSIVEMATCH alone are BAD', async () => {
  const c = await login();
  for (const bad of [
    'LIST (imaptest) "" ""',
    'LIST (RECURSIVEMATCH) "" ""',
    'LIST (RECURSIVEMATCH REMOTE) "" ""',
    'LIST "" "" RETURN (imaptest)',
  ]) {
    assert.match((await c.cmd(bad)).at(-1) ?? '', /^t\d+ BAD /, bad);
  }
  await ok(c, 'LIST (REMOTE) "" %');
  await ok(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" %');
  c.close();
});

test('imaptest listext: CREATE does not subscribe, DELETE keeps the subscription (\\NonExistent), RECURSIVEMATCH gives CHILDINFO', async () => {
  const c = await login();
  for (const name of ['lx.a', 'lx.b.c', 'lx.d', 'lx.e.e', 'lx.f.f', 'lx.f.g']) await ok(c, `CREATE ${name}`);
  for (const name of ['lx.a', 'lx.b.c', 'lx.d', 'lx.e.e', 'lx.f.g']) await ok(c, `SUBSCRIBE ${name}`);
  await ok(c, 'DELETE lx.d');
  assert.deepEqual(await ok(c, 'LIST (SUBSCRIBED) "" lx.*'), [
    '* LIST (\\HasNoChildren \\Subscribed) "." lx.a',
    '* LIST (\\HasNoChildren \\Subscribed) "." lx.b.c',
    '* LIST (\\HasNoChildren \\Subscribed) "." lx.e.e',
    '* LIST (\\HasNoChildren \\Subscribed) "." lx.f.g',
    '* LIST (\\NonExistent \\Subscribed) "." lx.d',
  ]);
  // Parents made by CREATE are not subscribed; the deleted name is no mailbox for plain LIST.
  assert.deepEqual(await ok(c, 'LIST "" lx.% RETURN (SUBSCRIBED CHILDREN)'), [
    '* LIST (\\HasNoChildren \\Subscribed) "." lx.a',
    '* LIST (\\HasChildren) "." lx.b',
    '* LIST (\\HasChildren) "." lx.e',
    '* LIST (\\HasChildren) "." lx.f',
  ]);
  // RFC 5258 §3.5: a subscribed descendant the pattern leaves out makes its parent appear.
  assert.deepEqual(await ok(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" lx.b% RETURN (CHILDREN)'), [
    '* LIST (\\HasChildren) "." lx.b ("CHILDINFO" ("SUBSCRIBED"))',
  ]);
  assert.deepEqual(await ok(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" lx*e'), [
    '* LIST (\\HasNoChildren \\Subscribed) "." lx.e.e',
  ]);
  assert.deepEqual(await ok(c, 'LIST (SUBSCRIBED RECURSIVEMATCH) "" lx*f'), [
    '* LIST (\\HasChildren) "." lx.f ("CHILDINFO" ("SUBSCRIBED"))',
  ]);
  c.close();
});

test('imaptest subscribe: LSUB with "%" shows unsubscribed superiors of subscribed names as \\Noselect', async () => {
  const c = await login();
  for (const name of ['sb.t', 'sb.t2.t', 'sb.t3.t3']) await ok(c, `CREATE ${name}`);
  for (const name of ['sb.t', 'sb.t2.t', 'sb.t3.t3']) await ok(c, `SUBSCRIBE ${name}`);
  const other = await login(); // another session sees the same subscriptions
  assert.deepEqual(await ok(other, 'LSUB "" sb.%'), [
    '* LSUB () "." sb.t',
    '* LSUB (\\Noselect) "." sb.t2',
    '* LSUB (\\Noselect) "." sb.t3',
  ]);
  assert.deepEqual(await ok(other, 'LSUB "" sb*t'), ['* LSUB () "." sb.t', '* LSUB () "." sb.t2.t']);
  await ok(c, 'UNSUBSCRIBE sb.t3.t3');
  assert.deepEqual(await ok(other, 'LSUB "" sb.%'), ['* LSUB () "." sb.t', '* LSUB (\\Noselect) "." sb.t2']);
  c.close();
  other.close();
});
