// The admin API's edges against a real server of their own: bad tokens are slowed and then
// refused with 429 per address (the login throttle, [auth] max_delay small here) while a valid
// token still passes at once; the API over the HTTPS listener; and what disabling a user
// means (docs/api.md): no IMAP login, no API login, mail to it still accepted.

import assert from 'node:assert/strict';
import { request as httpRequest } from 'node:http';
import { after, before, test } from 'node:test';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

let s: TestServer;
let admin: string;

before(async () => {
  s = await startTestServer({
    auth: 'failure_delay = "0s"\nmax_delay = "1s"\nmax_address_delay = "1s"',
    extra: '[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = ["127.0.0.1:0"]\n',
  });
  admin = (await s.admin.access.create({ role: { kind: 'admin' } })).token;
});
after(() => s?.stop());

const get = (path: string, token: string, port = s.server.http[0]?.port) =>
  fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: `Bearer ${token}` } });

test('bad tokens: slowed, then 429 per address; a valid token is not slowed', async () => {
  const bad = 'arc_0123456789abcdef_0123';
  // One connection each (no keep-alive pool), all at once: an attacker's parallel guesses.
  const once = () =>
    new Promise<{ status: number; type: string }>((resolve, reject) => {
      const r = httpRequest(
        {
          host: '127.0.0.1',
          port: s.server.http[0]?.port,
          path: '/api/v1/me',
          agent: false,
          headers: { authorization: `Bearer ${bad}` },
        },
        (res) => {
          res.resume();
          res.on('end', () => resolve({ status: res.statusCode ?? 0, type: String(res.headers['content-type']) }));
        },
      );
      r.on('error', reject);
      r.end();
    });
  const answers = await Promise.all(Array.from({ length: 8 }, once));
  const codes = answers.map((r) => r.status).sort();
  assert.ok(codes.includes(401) && codes.includes(429), codes.join(' '));
  assert.equal(answers.find((r) => r.status === 429)?.type, 'application/problem+json');
  await s.logged((l) => l.msg === 'auth refused' && l.service === 'http');
  const started = performance.now();
  assert.equal((await get('/api/v1/me', admin)).status, 200);
  assert.ok(performance.now() - started < 400);
});

test('disabled user: no IMAP login, no API login, mail still accepted; enabled again: logs in', async () => {
  const put = (enabled: boolean) =>
    fetch(`http://127.0.0.1:${s.server.http[0]?.port}/api/v1/users/bob@example.test`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${admin}`, 'content-type': 'application/json' },
      body: JSON.stringify({ enabled }),
    });
  const session = await s.admin.access.create({
    role: { kind: 'user', user: 'bob@example.test' },
    kind: 'session',
    ttlMs: 60_000,
  });
  assert.equal((await get('/api/v1/me', session.token)).status, 200);
  assert.equal((await put(false)).status, 200);
  assert.equal((await get('/api/v1/me', session.token)).status, 401, 'a disabled user loses its sessions');
  const { client } = await RawImap.connect(s.imapPort);
  assert.match((await client.cmd('LOGIN bob@example.test secret-password')).at(-1) ?? '', /NO/);
  client.close();
  const login = await fetch(`http://127.0.0.1:${s.server.http[0]?.port}/api/v1/login`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ username: 'bob@example.test', password: 'secret-password' }),
  });
  assert.equal(login.status, 401);
  const smtp = await RawSmtp.connect(s.port);
  const replies = await envelope(smtp, 'someone@remote.example', ['bob@example.test']);
  assert.equal(replies.at(-1)?.code, 250);
  smtp.close();
  assert.equal((await put(true)).status, 200);
  assert.equal((await get('/api/v1/me', session.token)).status, 200);
  const again = await RawImap.connect(s.imapPort);
  assert.match((await again.client.cmd('LOGIN bob@example.test secret-password')).at(-1) ?? '', /OK/);
  again.client.close();
});

test('the API on the HTTPS listener', async () => {
  const { request } = await import('node:https');
  const body = await new Promise<string>((resolve, reject) => {
    const r = request(
      {
        host: '127.0.0.1',
        port: s.server.http[1]?.port,
        path: '/api/v1/me',
        headers: { authorization: `Bearer ${admin}` },
        rejectUnauthorized: false,
      },
      (res) => {
        let t = '';
        res.on('data', (d) => {
          t += d;
        });
        res.on('end', () => resolve(`${res.statusCode} ${t}`));
      },
    );
    r.on('error', reject);
    r.end();
  });
  assert.match(body, /^200 \{"role":"admin"/);
  // The API's requests get the listeners' access line too (docs/logging.md), query left out.
  await get('/api/v1/users?q=secret', admin);
  const line = await s.logged((l) => l.msg === 'http access' && l.path === '/api/v1/users');
  assert.deepEqual([line.method, line.status, line.client], ['GET', 200, '127.0.0.1']);
});
