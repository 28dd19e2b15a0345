// The admin HTTP API over real HTTP against the real server: every route, every role and its
// refusals, bad input answered as problem+json, pagination, idempotent PUT/DELETE, login with
// its throttling and log lines, the audit log, and `arcline token` through the real CLI.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../harness/process.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

let s: TestServer;
let base: string;
const tokens: Record<string, string> = {};

interface Reply {
  status: number;
  type: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of many shapes, asserted field by field
  body: any;
}

async function call(method: string, path: string, token: string | null, body?: unknown, headers = {}): Promise<Reply> {
  const init: RequestInit = {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  };
  const r = await fetch(`${base}${path}`, init);
  const text = await r.text();
  const type = r.headers.get('content-type') ?? '';
  return { status: r.status, type, body: text && type.includes('json') ? JSON.parse(text) : text };
}

const as = (role: string) => tokens[role] as string;
const problem = (r: Reply, status: number) => {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.match(r.type, /^application\/problem\+json/);
  assert.equal(r.body.status, status);
  assert.match(r.body.type, /^https:\/\/arcline\.dev\/problems\//);
};

before(async () => {
  s = await startTestServer({
    domains: ['example.test', 'other.test'],
    users: ['alice@example.test', 'bob@example.test', 'carol@other.test'],
    auth: 'failure_delay = "0s"',
    extra: '[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = []\n',
  });
  base = `http://127.0.0.1:${s.server.http[0]?.port}`;
  const a = s.admin.access;
  tokens.admin = (await a.create({ role: { kind: 'admin' }, name: 'ops' })).token;
  tokens.readonly = (await a.create({ role: { kind: 'readonly' } })).token;
  tokens.domain = (await a.create({ role: { kind: 'domain', domain: 'example.test' } })).token;
  tokens.user = (await a.create({ role: { kind: 'user', user: 'alice@example.test' } })).token;
});

after(() => s?.stop());

describe('admin API', () => {
  test('authentication: no token, bad token (logged like IMAP), me for every role', async () => {
    problem(await call('GET', '/api/v1/me', null), 401);
    const bad = await call('GET', '/api/v1/me', 'arc_0123456789abcdef_00');
    problem(bad, 401);
    const line = await s.logged((l) => l.msg === 'auth failed' && l.service === 'http');
    assert.equal(line.ip, '127.0.0.1');
    assert.equal(line.reason, 'token');
    assert.equal(line.user, '0123456789abcdef');
    // The documented fail2ban filter (docs/security.md) matches it.
    const failregex = /^\{.*"service":"(?:imap|submission|http)","ip":"(?<host>[0-9a-fA-F.:]+)",.*"msg":"auth failed"/;
    assert.equal(failregex.exec(JSON.stringify(line))?.groups?.host, '127.0.0.1');
    assert.deepEqual((await call('GET', '/api/v1/me', as('admin'))).body.role, 'admin');
    const d = await call('GET', '/api/v1/me', as('domain'));
    assert.deepEqual({ ...d.body, tokenId: 'x' }, { role: 'domain', domain: 'example.test', user: null, tokenId: 'x' });
    assert.equal((await call('GET', '/api/v1/me', as('user'))).body.user, 'alice@example.test');
    assert.equal((await call('GET', '/api/v1/me', as('readonly'))).body.role, 'readonly');
  });

  test('login: a user password gives a 12 h user session; wrong passwords 401', async () => {
    const ok = await call('POST', '/api/v1/login', null, {
      username: 'Alice@Example.test',
      password: 'secret-password',
    });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.user, 'alice@example.test');
    assert.equal(ok.body.role, 'user');
    const ttl = Date.parse(ok.body.expiresAt) - Date.now();
    assert.ok(ttl > 11.9 * 3600_000 && ttl <= 12 * 3600_000);
    assert.equal((await call('GET', '/api/v1/users/alice@example.test', ok.body.token)).status, 200);
    problem(await call('GET', '/api/v1/users/bob@example.test', ok.body.token), 403);
    problem(await call('POST', '/api/v1/login', null, { username: 'alice@example.test', password: 'nope' }), 401);
    await s.logged((l) => l.msg === 'auth failed' && l.service === 'http' && l.reason === 'password');
    problem(await call('POST', '/api/v1/login', null, { username: 'alice@example.test' }), 400);
  });

  test('logout ends a session; a new password ends every session of the user; API tokens stay', async () => {
    const login = async (password: string) =>
      (await call('POST', '/api/v1/login', null, { username: 'bob@example.test', password })).body.token as string;
    const first = await login('secret-password');
    const second = await login('secret-password');
    assert.equal((await call('GET', '/api/v1/me', first)).status, 200);
    assert.equal((await call('POST', '/api/v1/logout', first)).status, 204);
    problem(await call('GET', '/api/v1/me', first), 401);
    assert.equal((await call('GET', '/api/v1/me', second)).status, 200, 'another session is untouched');
    // An admin sets a new password: bob's remaining session ends; a new login works.
    // (Revoked tokens are checked in the token store from here on: every 401 over HTTP counts
    // as a bad token of this address and would slow the tests after this one.)
    const pw = await call('PUT', '/api/v1/users/bob@example.test/password', as('admin'), { password: 'pw-bob-2' });
    assert.equal(pw.status, 204);
    assert.equal(await s.admin.access.verify(second), null, 'the session ended with the new password');
    const third = await login('pw-bob-2');
    assert.equal((await call('GET', '/api/v1/me', third)).status, 200);
    assert.equal(
      (await call('PUT', '/api/v1/users/bob@example.test/password', third, { password: 'secret-password' })).status,
      204,
    );
    assert.equal(await s.admin.access.verify(third), null, 'its own session too');
    // Logging out with an API token leaves the token as it is (it is deleted with token del).
    assert.equal((await call('POST', '/api/v1/logout', as('readonly'))).status, 204);
    assert.equal((await call('GET', '/api/v1/me', as('readonly'))).status, 200);
  });

  test('domains: list, get, idempotent PUT and DELETE, 409 while not empty; roles', async () => {
    const list = await call('GET', '/api/v1/domains', as('admin'));
    assert.deepEqual(
      list.body.items.map((d: { name: string }) => d.name),
      ['example.test', 'other.test'],
    );
    assert.equal(list.body.next, null);
    const own = await call('GET', '/api/v1/domains', as('domain'));
    assert.deepEqual(
      own.body.items.map((d: { name: string }) => d.name),
      ['example.test'],
    );
    const one = await call('GET', '/api/v1/domains/example.test', as('readonly'));
    assert.deepEqual(one.body, { name: 'example.test', users: 2, aliases: 2, catchAll: null });
    problem(await call('GET', '/api/v1/domains/other.test', as('domain')), 403);
    problem(await call('GET', '/api/v1/domains/nowhere.test', as('admin')), 404);
    assert.equal((await call('PUT', '/api/v1/domains/new.test', as('admin'), {})).status, 201);
    assert.equal((await call('PUT', '/api/v1/domains/new.test', as('admin'), {})).status, 200);
    problem(await call('PUT', '/api/v1/domains/new2.test', as('domain'), {}), 403);
    problem(await call('PUT', '/api/v1/domains/new2.test', as('readonly'), {}), 403);
    problem(await call('PUT', '/api/v1/domains/new2.test', as('admin'), { extra: 1 }), 400);
    problem(await call('PUT', '/api/v1/domains/bad_name!', as('admin'), {}), 422);
    assert.equal((await call('DELETE', '/api/v1/domains/new.test', as('admin'))).status, 204);
    assert.equal((await call('DELETE', '/api/v1/domains/new.test', as('admin'))).status, 204);
    problem(await call('DELETE', '/api/v1/domains/other.test', as('admin')), 409);
  });

  test('catch-all, DKIM keys and DNS records (published: null when the resolver fails)', async () => {
    const ca = await call('PUT', '/api/v1/domains/example.test/catchall', as('domain'), {
      target: 'alice@example.test',
    });
    assert.equal(ca.body.catchAll, 'alice@example.test');
    problem(await call('PUT', '/api/v1/domains/other.test/catchall', as('domain'), { target: null }), 403);
    problem(
      await call('PUT', '/api/v1/domains/example.test/catchall', as('domain'), { target: 'not an address' }),
      422,
    );
    assert.equal(
      (await call('PUT', '/api/v1/domains/example.test/catchall', as('admin'), { target: null })).body.catchAll,
      null,
    );
    const keys = await call('GET', '/api/v1/domains/example.test/dkim', as('domain'));
    assert.equal(keys.body.items.length, 1);
    const k = await call('POST', '/api/v1/domains/example.test/dkim', as('domain'), {
      selector: 's2',
      algorithm: 'ed25519',
    });
    assert.equal(k.status, 201);
    assert.match(k.body.record, /^v=DKIM1; k=ed25519; p=/);
    problem(await call('POST', '/api/v1/domains/example.test/dkim', as('domain'), { selector: 's2' }), 409);
    problem(await call('POST', '/api/v1/domains/example.test/dkim', as('domain'), { size: 1 }), 400);
    // Without a selector: the default one is taken (made with the domain), so the next free one.
    const auto = await call('POST', '/api/v1/domains/example.test/dkim', as('domain'), {});
    assert.equal(auto.status, 201);
    assert.equal(auto.body.selector, `${keys.body.items[0].selector}-2`);
    assert.equal(
      (await call('DELETE', `/api/v1/domains/example.test/dkim/${auto.body.selector}`, as('domain'))).status,
      204,
    );
    assert.equal((await call('DELETE', '/api/v1/domains/example.test/dkim/s2', as('domain'))).status, 204);
    assert.equal((await call('DELETE', '/api/v1/domains/example.test/dkim/s2', as('domain'))).status, 204);
    problem(await call('DELETE', '/api/v1/domains/other.test/dkim/s2', as('domain')), 403);
    const dns = await call('GET', '/api/v1/domains/example.test/dns', as('readonly'));
    assert.equal(dns.status, 200);
    const types = new Set(dns.body.records.map((r: { type: string }) => r.type));
    for (const t of ['MX', 'TXT', 'SRV', 'CNAME']) assert.ok(types.has(t), t);
    const mx = dns.body.records.find((r: { type: string }) => r.type === 'MX');
    assert.deepEqual(mx, {
      name: 'example.test',
      type: 'MX',
      value: '10 mx.test.example',
      purpose: 'mail for the domain comes here',
      published: null,
      found: [],
    });
  });

  test('users: create, update, enable/disable (no login), password, quota, delete; roles', async () => {
    problem(await call('PUT', '/api/v1/users/dave@example.test', as('admin'), { quotaBytes: 5 }), 422);
    const c = await call('PUT', '/api/v1/users/dave@example.test', as('domain'), {
      password: 'pw-dave-1',
      quotaBytes: 1000,
    });
    assert.equal(c.status, 201);
    assert.deepEqual(c.body, { address: 'dave@example.test', quotaBytes: 1000, usedBytes: 0, enabled: true });
    problem(await call('PUT', '/api/v1/users/erin@other.test', as('domain'), { password: 'x' }), 403);
    problem(await call('PUT', '/api/v1/users/not-an-address', as('admin'), { password: 'x' }), 422);
    problem(await call('PUT', '/api/v1/users/dave@example.test', as('admin'), { password: 'x', admin: true }), 400);
    const off = await call('PUT', '/api/v1/users/dave@example.test', as('admin'), { enabled: false, quotaBytes: null });
    assert.deepEqual(off.body, { address: 'dave@example.test', quotaBytes: null, usedBytes: 0, enabled: false });
    problem(await call('POST', '/api/v1/login', null, { username: 'dave@example.test', password: 'pw-dave-1' }), 401);
    await call('PUT', '/api/v1/users/dave@example.test', as('admin'), { enabled: true });
    assert.equal(
      (await call('POST', '/api/v1/login', null, { username: 'dave@example.test', password: 'pw-dave-1' })).status,
      200,
    );
    // A user changes its own password, not another's, and cannot change its quota.
    assert.equal(
      (await call('PUT', '/api/v1/users/alice@example.test/password', as('user'), { password: 'new-pw' })).status,
      204,
    );
    problem(await call('PUT', '/api/v1/users/bob@example.test/password', as('user'), { password: 'x' }), 403);
    problem(await call('PUT', '/api/v1/users/alice@example.test', as('user'), { quotaBytes: 1 }), 403);
    problem(await call('PUT', '/api/v1/users/alice@example.test/password', as('readonly'), { password: 'x' }), 403);
    const listed = await call('GET', '/api/v1/users', as('user'));
    assert.deepEqual(
      listed.body.items.map((u: { address: string }) => u.address),
      ['alice@example.test'],
    );
    const inDomain = await call('GET', '/api/v1/users', as('domain'));
    assert.deepEqual(
      inDomain.body.items.map((u: { address: string }) => u.address),
      ['alice@example.test', 'bob@example.test', 'dave@example.test'],
    );
    problem(await call('GET', '/api/v1/users?domain=other.test', as('domain')), 403);
    assert.equal((await call('DELETE', '/api/v1/users/dave@example.test?purge=true', as('domain'))).status, 204);
    assert.equal((await call('DELETE', '/api/v1/users/dave@example.test', as('domain'))).status, 204);
    problem(await call('DELETE', '/api/v1/users/carol@other.test', as('domain')), 403);
    problem(await call('GET', '/api/v1/users/dave@example.test', as('admin')), 404);
  });

  test('allowlists: own for users, idempotent PUT/DELETE', async () => {
    const path = '/api/v1/users/alice@example.test/allow';
    assert.equal((await call('PUT', `${path}/news@shop.test`, as('user'))).status, 204);
    assert.equal((await call('PUT', `${path}/news@shop.test`, as('user'))).status, 204);
    assert.equal((await call('PUT', `${path}/@lists.test`, as('domain'))).status, 204);
    assert.deepEqual((await call('GET', path, as('user'))).body.items, [
      { sender: 'lists.test' },
      { sender: 'news@shop.test' },
    ]);
    problem(await call('GET', '/api/v1/users/bob@example.test/allow', as('user')), 403);
    problem(await call('PUT', '/api/v1/users/carol@other.test/allow/x.test', as('domain')), 403);
    assert.equal((await call('DELETE', `${path}/news@shop.test`, as('user'))).status, 204);
    assert.equal((await call('DELETE', `${path}/news@shop.test`, as('user'))).status, 204);
    assert.deepEqual((await call('GET', path, as('user'))).body.items, [{ sender: 'lists.test' }]);
  });

  test('aliases: replace the set, idempotent delete, domain scope', async () => {
    const a = await call('PUT', '/api/v1/aliases/team@example.test', as('domain'), {
      destinations: ['alice@example.test', 'bob@example.test'],
    });
    assert.deepEqual(a.body, { source: 'team@example.test', destinations: ['alice@example.test', 'bob@example.test'] });
    const b = await call('PUT', '/api/v1/aliases/team@example.test', as('domain'), {
      destinations: ['someone@remote.test'],
    });
    assert.deepEqual(b.body.destinations, ['someone@remote.test']);
    problem(await call('PUT', '/api/v1/aliases/team@other.test', as('domain'), { destinations: ['a@b.test'] }), 403);
    problem(
      await call('PUT', '/api/v1/aliases/team@example.test', as('domain'), { destinations: ['bad address'] }),
      422,
    );
    problem(await call('PUT', '/api/v1/aliases/team@example.test', as('domain'), { destinations: [] }), 400);
    const list = await call('GET', '/api/v1/aliases?q=team', as('domain'));
    assert.deepEqual(list.body.items, [{ source: 'team@example.test', destinations: ['someone@remote.test'] }]);
    problem(await call('GET', '/api/v1/aliases', as('user')), 403);
    assert.equal((await call('DELETE', '/api/v1/aliases/team@example.test', as('domain'))).status, 204);
    assert.equal((await call('DELETE', '/api/v1/aliases/team@example.test', as('domain'))).status, 204);
  });

  test('pagination: opaque cursor, limit bounds, q filter', async () => {
    for (let i = 0; i < 5; i++) await s.admin.ops.addUser(`p${i}@other.test`, { password: 'x' });
    const seen: string[] = [];
    let next: string | null = null;
    let pages = 0;
    do {
      const q: string = `/api/v1/users?domain=other.test&limit=2${next ? `&cursor=${next}` : ''}`;
      const r = await call('GET', q, as('readonly'));
      assert.ok(r.body.items.length <= 2);
      seen.push(...r.body.items.map((u: { address: string }) => u.address));
      next = r.body.next;
      pages++;
    } while (next);
    assert.equal(pages, 3);
    assert.deepEqual(seen, [
      'carol@other.test',
      'p0@other.test',
      'p1@other.test',
      'p2@other.test',
      'p3@other.test',
      'p4@other.test',
    ]);
    const filtered = await call('GET', '/api/v1/users?domain=other.test&q=P3', as('readonly'));
    assert.deepEqual(
      filtered.body.items.map((u: { address: string }) => u.address),
      ['p3@other.test'],
    );
    problem(await call('GET', '/api/v1/users?limit=0', as('admin')), 400);
    problem(await call('GET', '/api/v1/users?limit=501', as('admin')), 400);
    problem(await call('GET', '/api/v1/users?cursor=%25%25', as('admin')), 400);
    problem(await call('GET', '/api/v1/users?bogus=1', as('admin')), 400);
  });

  test('queue: list, show, hold (not handed to the runner), release, retry, delete; admin only', async () => {
    const spool = s.admin.store.createSpool();
    await spool.write(Buffer.from('From: a@example.test\r\nSubject: q\r\n\r\nhi\r\n'));
    const id = await s.admin.queue.enqueue({
      sender: 'alice@example.test',
      recipients: [{ address: 'x@remote.invalid' }],
      prefix: Buffer.alloc(0),
      message: await spool.finish(),
      origin: 'submission',
      logId: 'm1',
    });
    const list = await call('GET', '/api/v1/queue', as('readonly'));
    assert.equal(list.body.items.length, 1);
    assert.equal(list.body.items[0].id, id);
    assert.equal(list.body.items[0].held, false);
    problem(await call('GET', '/api/v1/queue', as('domain')), 403);
    problem(await call('POST', `/api/v1/queue/${id}/hold`, as('readonly')), 403);
    const held = await call('POST', `/api/v1/queue/${id}/hold`, as('admin'));
    assert.equal(held.body.held, true);
    // The runner's scan (QueueBackend.claim) does not hand out a held message, however late it is.
    assert.deepEqual(await s.admin.queue.claim(Date.now() + 1e10, 10, () => true), []);
    assert.equal((await call('GET', '/api/v1/summary', as('admin'))).body.queue.held, 1);
    assert.equal((await call('POST', `/api/v1/queue/${id}/release`, as('admin'))).body.held, false);
    assert.equal((await call('POST', `/api/v1/queue/${id}/retry`, as('admin'))).status, 200);
    problem(await call('POST', '/api/v1/queue/nope/retry', as('admin')), 404);
    problem(await call('GET', '/api/v1/queue/..%2Fx', as('admin')), 400);
    assert.equal((await call('DELETE', `/api/v1/queue/${id}`, as('admin'))).status, 204);
    assert.equal((await call('DELETE', `/api/v1/queue/${id}`, as('admin'))).status, 204);
    problem(await call('GET', `/api/v1/queue/${id}`, as('admin')), 404);
  });

  test('summary', async () => {
    const before = (await call('GET', '/api/v1/summary', as('readonly'))).body;
    const smtp = await RawSmtp.connect(s.port);
    assert.equal((await envelope(smtp, 'someone@remote.example', ['nobody@example.test'])).at(-1)?.code, 550);
    smtp.close();
    const r = await call('GET', '/api/v1/summary', as('readonly'));
    assert.equal(r.body.smtp.rejected, before.smtp.rejected + 1, 'the 550 to RCPT counts as a rejection');
    assert.equal(r.status, 200);
    assert.equal(typeof r.body.users, 'number');
    assert.equal(r.body.domains, 2);
    assert.ok(Date.parse(r.body.since) <= Date.now());
    assert.deepEqual(Object.keys(r.body.queue), ['total', 'deferred', 'held']);
    problem(await call('GET', '/api/v1/summary', as('user')), 403);
  });

  test('tokens: admin creates (shown once), lists and revokes; others refused', async () => {
    const t = await call('POST', '/api/v1/tokens', as('admin'), { role: 'domain:other.test', name: 'other' });
    assert.equal(t.status, 201);
    assert.match(t.body.token, /^arc_[0-9a-f]{16}_[0-9a-f]{64}$/);
    assert.equal((await call('GET', '/api/v1/domains/other.test', t.body.token)).status, 200);
    const list = await call('GET', '/api/v1/tokens', as('readonly'));
    const row = list.body.items.find((x: { id: string }) => x.id === t.body.id);
    assert.equal(row.role, 'domain:other.test');
    assert.equal(JSON.stringify(list.body).includes(t.body.token), false);
    problem(await call('POST', '/api/v1/tokens', as('admin'), { role: 'domain:nowhere.test' }), 404);
    problem(await call('POST', '/api/v1/tokens', as('admin'), { role: 'superuser' }), 422);
    problem(await call('POST', '/api/v1/tokens', as('domain'), { role: 'admin' }), 403);
    problem(await call('POST', '/api/v1/tokens', as('readonly'), { role: 'admin' }), 403);
    assert.equal((await call('DELETE', `/api/v1/tokens/${t.body.id}`, as('admin'))).status, 204);
    assert.equal((await call('DELETE', `/api/v1/tokens/${t.body.id}`, as('admin'))).status, 204);
    problem(await call('GET', '/api/v1/me', t.body.token), 401);
  });

  test('bad input: oversized body 413, not JSON 415, malformed JSON 400, unknown route 404', async () => {
    const big = JSON.stringify({ password: 'x'.repeat(70 * 1024) });
    problem(await call('PUT', '/api/v1/users/alice@example.test/password', as('admin'), big), 413);
    problem(
      await call('PUT', '/api/v1/users/alice@example.test/password', as('admin'), 'password=x', {
        'content-type': 'application/x-www-form-urlencoded',
      }),
      415,
    );
    problem(await call('PUT', '/api/v1/users/alice@example.test/password', as('admin'), '{"password":'), 400);
    const unknown = await call('PUT', '/api/v1/users/alice@example.test/password', as('admin'), {
      password: 'x',
      pw: 1,
    });
    problem(unknown, 400);
    assert.deepEqual(unknown.body.errors, [{ field: 'pw', message: 'unknown field' }]);
    problem(await call('GET', '/api/v1/nothing', as('admin')), 404);
  });

  test('audit: every change with who, role, from, what and result; admin and readonly only', async () => {
    const r = await call('GET', '/api/v1/audit?limit=500', as('readonly'));
    assert.equal(r.status, 200);
    const e = r.body.items.find(
      (x: { target: string; action: string; result: string }) =>
        x.action === 'PUT domains' && x.target === 'new.test' && x.result === '201',
    );
    assert.deepEqual(
      { ...e, time: 'x' },
      {
        time: 'x',
        actor: 'ops',
        role: 'admin',
        from: '127.0.0.1',
        action: 'PUT domains',
        target: 'new.test',
        result: '201',
      },
    );
    assert.ok(r.body.items.some((x: { result: string; role: string }) => x.result === '403' && x.role === 'readonly'));
    const page1 = await call('GET', '/api/v1/audit?limit=1', as('admin'));
    const page2 = await call('GET', `/api/v1/audit?limit=1&cursor=${page1.body.next}`, as('admin'));
    assert.notDeepEqual(page1.body.items, page2.body.items);
    problem(await call('GET', '/api/v1/audit', as('domain')), 403);
    problem(await call('GET', '/api/v1/audit', as('user')), 403);
  });

  test('arcline token add|list|del, user disable|enable through the real CLI', async () => {
    const add = await runCli(['--config', s.configFile, 'token', 'add', '--role', 'readonly', '--name', 'grafana']);
    assert.equal(add.code, 0, add.stderr);
    const token = add.stdout.trim();
    assert.match(token, /^arc_[0-9a-f]{16}_[0-9a-f]{64}$/);
    assert.equal((await call('GET', '/api/v1/me', token)).body.role, 'readonly');
    const list = await runCli(['--config', s.configFile, 'token', 'list']);
    assert.match(list.stdout, /readonly {2}grafana/);
    const id = token.slice(4, 20);
    assert.equal((await runCli(['--config', s.configFile, 'token', 'del', id])).code, 0);
    problem(await call('GET', '/api/v1/me', token), 401);
    const bad = await runCli(['--config', s.configFile, 'token', 'add', '--role', 'user:nobody@example.test']);
    assert.equal(bad.code, 1);
    // The CLI and the API share the rules and the row: disabled by one, seen by the other.
    assert.equal((await runCli(['--config', s.configFile, 'user', 'disable', 'bob@example.test'])).code, 0);
    assert.equal((await call('GET', '/api/v1/users/bob@example.test', as('admin'))).body.enabled, false);
    assert.match(
      (await runCli(['--config', s.configFile, 'user', 'list', 'example.test'])).stdout,
      /bob@example\.test \(disabled\)/,
    );
    assert.equal((await runCli(['--config', s.configFile, 'user', 'enable', 'bob@example.test'])).code, 0);
    assert.equal((await call('GET', '/api/v1/users/bob@example.test', as('admin'))).body.enabled, true);
  });
});
