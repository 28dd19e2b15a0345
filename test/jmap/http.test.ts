// JMAP over real HTTP against the real server (RFC 8620): the session resource, every
// request-level problem and method-level error, result references (the RFC's §3.7 example
// through Core/echo), uploads and downloads, Blob/copy, the EventSource with PushHub, ping and
// closeafter, PushSubscription verification to a loopback sink and the URL pattern refusal,
// Basic and Bearer authentication with throttling, CORS, the concurrency limit; and the
// independent client library jmap-jam.

import assert from 'node:assert/strict';
import { createServer, request, type Server } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { jmapCalls } from '../../src/core/metrics.ts';
import { MethodError } from '../../src/jmap/core/errors.ts';
import { MethodRegistry } from '../../src/jmap/core/registry.ts';
import { JmapHttp } from '../../src/jmap/http.ts';
import { PushHub } from '../../src/jmap/push.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { pushAgent } from '../harness/web-push.ts';

let s: TestServer;
let base: string;
let sink: Server;
let sinkPort: number;
const pushed: { path: string; body: Record<string, unknown>; raw: Buffer; encoding: string }[] = [];
const pushWaiters = new Set<() => void>();
let userToken: string;
let adminToken: string;
const ALICE = `Basic ${Buffer.from('alice@example.test:secret-password').toString('base64')}`;
const CORE = 'urn:ietf:params:jmap:core';
const aliceId = accountIdOf('alice@example.test' as AccountId);

interface Reply {
  status: number;
  headers: Headers;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers of many shapes, asserted field by field
  body: any;
}

async function call(
  method: string,
  path: string,
  body?: string | Uint8Array,
  headers: Record<string, string> = {},
): Promise<Reply> {
  const r = await fetch(`${base}${path}`, {
    method,
    headers: { authorization: ALICE, ...headers },
    ...(body !== undefined ? { body } : {}),
  });
  const text = await r.text();
  const type = r.headers.get('content-type') ?? '';
  return { status: r.status, headers: r.headers, body: text && type.includes('json') ? JSON.parse(text) : text };
}

const api = (req: unknown, headers: Record<string, string> = {}) =>
  call('POST', '/jmap/api', typeof req === 'string' ? req : JSON.stringify(req), {
    'content-type': 'application/json',
    ...headers,
  });

const calls = (...methodCalls: unknown[]) => api({ using: [CORE], methodCalls });

function problem(r: Reply, status: number, type: string, limit?: string): void {
  assert.equal(r.status, status, JSON.stringify(r.body));
  assert.match(r.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(r.body.type, `urn:ietf:params:jmap:error:${type}`);
  assert.equal(r.body.status, status);
  if (limit) assert.equal(r.body.limit, limit);
}

function waitPush(pred: (p: (typeof pushed)[number]) => boolean): Promise<(typeof pushed)[number]> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error('no push within 5 s')), 5000);
    const check = () => {
      const hit = pushed.find(pred);
      if (!hit) return;
      pushWaiters.delete(check);
      clearTimeout(timer);
      resolve(hit);
    };
    pushWaiters.add(check);
    check();
  });
}

before(async () => {
  sink = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const raw = Buffer.concat(chunks);
      const encoding = String(req.headers['content-encoding'] ?? '');
      pushed.push({ path: req.url ?? '', body: encoding ? {} : JSON.parse(raw.toString()), raw, encoding });
      res.writeHead(201).end();
      for (const w of pushWaiters) w();
    });
  });
  await new Promise<void>((r) => sink.listen(0, '127.0.0.1', r));
  sinkPort = (sink.address() as AddressInfo).port;
  s = await startTestServer({
    auth: 'failure_delay = "0s"',
    extra: `[http]
listen = ["127.0.0.1:0"]
tls_listen = ["127.0.0.1:0"]
[jmap]
max_size_upload = 4096
max_size_request = 4000
max_calls_in_request = 5
max_concurrent_requests = 1
max_concurrent_upload = 1
push_url_patterns = ["http://127.0.0.1:${sinkPort}/push/*"]
`,
  });
  base = `http://127.0.0.1:${s.server.http[0]?.port}`;
  userToken = s.admin.access.create({ role: { kind: 'user', user: 'alice@example.test' } }).token;
  adminToken = s.admin.access.create({ role: { kind: 'admin' } }).token;
});

after(async () => {
  await s?.stop();
  await new Promise<void>((r) => sink?.close(() => r()));
});

describe('session resource (§2)', () => {
  test('capabilities, the account, URLs, state', async () => {
    const r = await call('GET', '/.well-known/jmap');
    assert.equal(r.status, 200);
    const core = r.body.capabilities[CORE];
    assert.deepEqual(
      { ...core, collationAlgorithms: undefined },
      {
        maxSizeUpload: 4096,
        maxConcurrentUpload: 1,
        maxSizeRequest: 4000,
        maxConcurrentRequests: 1,
        maxCallsInRequest: 5,
        maxObjectsInGet: 500,
        maxObjectsInSet: 500,
        collationAlgorithms: undefined,
      },
    );
    assert.ok(core.collationAlgorithms.includes('i;unicode-casemap'));
    assert.match(aliceId, /^A[A-Za-z0-9_-]{24}$/);
    const { accountCapabilities, ...account } = r.body.accounts[aliceId];
    assert.deepEqual(account, { name: 'alice@example.test', isPersonal: true, isReadOnly: false });
    // Every capability but core is the account's too (the data types: RFC 8621 and others).
    assert.deepEqual(
      Object.keys(accountCapabilities).sort(),
      Object.keys(r.body.capabilities)
        .filter((k) => k !== CORE)
        .sort(),
    );
    assert.equal(accountCapabilities['urn:ietf:params:jmap:mail'].maxSizeAttachmentsPerEmail, 4096);
    assert.equal(r.body.username, 'alice@example.test');
    assert.equal(r.body.apiUrl, `${base}/jmap/api`);
    assert.equal(r.body.downloadUrl, `${base}/jmap/download/{accountId}/{blobId}/{name}?type={type}`);
    assert.equal(r.body.uploadUrl, `${base}/jmap/upload/{accountId}`);
    assert.equal(r.body.eventSourceUrl, `${base}/jmap/eventsource?types={types}&closeafter={closeafter}&ping={ping}`);
    assert.match(r.body.state, /^[A-Za-z0-9_-]{16}$/);
    assert.equal((await call('GET', '/.well-known/jmap')).body.state, r.body.state);
  });
  test('401 with WWW-Authenticate without credentials; 405 for POST', async () => {
    const r = await fetch(`${base}/.well-known/jmap`);
    assert.equal(r.status, 401);
    assert.match(r.headers.get('www-authenticate') ?? '', /^Basic realm="arcline JMAP", charset="UTF-8", Bearer/);
    await r.body?.cancel();
    assert.equal((await call('POST', '/.well-known/jmap', '')).status, 405);
  });
});

describe('API requests (§3)', () => {
  test('Core/echo (§4.1), counted in arcline_jmap_method_calls_total', async () => {
    const count = async (method: string, result: string) =>
      (await jmapCalls.get()).values.find((v) => v.labels.method === method && v.labels.result === result)?.value ?? 0;
    const before = await count('Core/echo', 'ok');
    const unknown = await count('other', 'unknownMethod');
    const r = await calls(['Core/echo', { hello: true, high: 5 }, 'b3ff'], ['No/such', {}, 'x']);
    assert.equal(await count('Core/echo', 'ok'), before + 1);
    assert.equal(await count('other', 'unknownMethod'), unknown + 1);
    r.body.methodResponses.pop();
    assert.equal(r.status, 200);
    assert.deepEqual(r.body.methodResponses, [['Core/echo', { hello: true, high: 5 }, 'b3ff']]);
    assert.equal(typeof r.body.sessionState, 'string');
    assert.equal(r.body.createdIds, undefined);
  });
  test('request-level problems (§3.6.1)', async () => {
    problem(await api('{"using": ['), 400, 'notJSON');
    // Nesting past LIMITS.jmap.maxJsonDepth: refused before it is built (it was a 500 once
    // Core/echo's answer overflowed the stack).
    const deep = `${'['.repeat(100)}${']'.repeat(100)}`;
    problem(await api(`{"using":["${CORE}"],"methodCalls":[["Core/echo",{"a":${deep}},"c"]]}`), 400, 'notJSON');
    // §3.1: the request MUST be application/json; anything else (or no type) is notJSON (§3.6.1).
    const echo = JSON.stringify({ using: [CORE], methodCalls: [['Core/echo', {}, 'c']] });
    problem(await api(echo, { 'content-type': 'text/plain' }), 400, 'notJSON');
    problem(await api(echo, { 'content-type': 'application/jsonx' }), 400, 'notJSON');
    problem(await call('POST', '/jmap/api', echo), 400, 'notJSON'); // fetch: text/plain;charset=UTF-8
    for (const type of ['application/json; charset=utf-8', 'Application/JSON;charset=UTF-8', 'application/json'])
      assert.equal((await api(echo, { 'content-type': type })).status, 200, type);
    problem(await api('[1,2]'), 400, 'notRequest');
    problem(await api({ using: [CORE] }), 400, 'notRequest');
    problem(await api({ using: [CORE, 'urn:example:nope'], methodCalls: [] }), 400, 'unknownCapability');
    problem(
      await api({ using: [CORE], methodCalls: Array(6).fill(['Core/echo', {}, 'c']) }),
      400,
      'limit',
      'maxCallsInRequest',
    );
    problem(
      await api({ using: [CORE], methodCalls: [['Core/echo', { x: 'y'.repeat(5000) }, 'c']] }),
      413,
      'limit',
      'maxSizeRequest',
    );
  });
  test('method-level errors (§3.6.2)', async () => {
    const r = await calls(
      ['Nope/get', {}, 'a'],
      ['Blob/copy', { fromAccountId: aliceId, accountId: 'Aother', blobIds: [] }, 'b'],
      ['Blob/copy', { fromAccountId: aliceId }, 'c'],
      ['Core/echo', { x: 1, '#x': { resultOf: 'a', name: 'Nope/get', path: '/' } }, 'd'],
      ['Core/echo', { '#x': { resultOf: 'zz', name: 'Core/echo', path: '/' } }, 'e'],
    );
    const types = r.body.methodResponses.map((m: [string, { type: string }, string]) => [m[0], m[1].type, m[2]]);
    assert.deepEqual(types, [
      ['error', 'unknownMethod', 'a'],
      ['error', 'accountNotFound', 'b'],
      ['error', 'invalidArguments', 'c'],
      ['error', 'invalidArguments', 'd'],
      ['error', 'invalidResultReference', 'e'],
    ]);
  });
  test('every §3.6.2 error type on the wire, from methods registered for the test', async () => {
    const registry = s.server.jmap?.registry;
    assert.ok(registry);
    const types = [
      'serverUnavailable',
      'serverPartialFail',
      'forbidden',
      'accountNotSupportedByMethod',
      'accountReadOnly',
    ] as const;
    registry.capability('urn:arcline:test', {});
    for (const t of types)
      registry.method('urn:arcline:test', `Test/${t}`, () => {
        throw new MethodError(t);
      });
    registry.method('urn:arcline:test', 'Test/throw', () => {
      throw new Error('a bug');
    });
    const r = await api({ using: [CORE, 'urn:arcline:test'], methodCalls: types.map((t) => [`Test/${t}`, {}, t]) });
    assert.deepEqual(
      r.body.methodResponses,
      types.map((t) => ['error', { type: t }, t]),
    );
    const f = await api({ using: [CORE, 'urn:arcline:test'], methodCalls: [['Test/throw', {}, 'x']] });
    assert.deepEqual(f.body.methodResponses, [['error', { type: 'serverFail' }, 'x']]);
    await s.logged((l) => l.msg === 'jmap: method failed' && l.method === 'Test/throw' && l.err === 'a bug');
  });
  test('result references: the RFC §3.7 example shape through Core/echo', async () => {
    const ok = await calls(
      ['Core/echo', { created: ['f1', 'f4'] }, 't0'],
      ['Core/echo', { '#ids': { resultOf: 't0', name: 'Core/echo', path: '/created' } }, 't1'],
      [
        'Core/echo',
        {
          list: [
            { id: 'f1', barIds: ['b1'] },
            { id: 'f4', barIds: ['b2', 'b3'] },
          ],
        },
        't2',
      ],
      ['Core/echo', { '#ids': { resultOf: 't2', name: 'Core/echo', path: '/list/*/barIds' } }, 't3'],
      ['Core/echo', { '#ids': { resultOf: 't2', name: 'Foo/get', path: '/list' } }, 't4'],
    );
    const m = ok.body.methodResponses;
    assert.deepEqual(m[1], ['Core/echo', { ids: ['f1', 'f4'] }, 't1']);
    assert.deepEqual(m[3], ['Core/echo', { ids: ['b1', 'b2', 'b3'] }, 't3']);
    assert.equal(m[4][0], 'error');
    assert.equal(m[4][1].type, 'invalidResultReference');
  });
  test('createdIds are returned when sent (§3.3)', async () => {
    const r = await api({ using: [CORE], methodCalls: [['Core/echo', {}, 'a']], createdIds: { k1: 'X1' } });
    assert.deepEqual(r.body.createdIds, { k1: 'X1' });
  });
});

describe('blobs (§6)', () => {
  const bytes = Uint8Array.from({ length: 3000 }, (_, i) => (i * 7) % 256);
  test('upload and download round trip (binary), Content-Disposition, Blob/copy', async () => {
    const up = await call('POST', `/jmap/upload/${aliceId}`, bytes, { 'content-type': 'image/png' });
    assert.equal(up.status, 201);
    assert.equal(up.body.accountId, aliceId);
    assert.equal(up.body.type, 'image/png');
    assert.equal(up.body.size, 3000);
    assert.match(up.body.blobId, /^B[A-Za-z0-9_-]{32}$/);
    const name = encodeURIComponent('résumé "1".png');
    const r = await fetch(`${base}/jmap/download/${aliceId}/${up.body.blobId}/${name}?type=image/png`, {
      headers: { authorization: ALICE },
    });
    assert.equal(r.status, 200);
    assert.equal(r.headers.get('content-type'), 'image/png');
    assert.equal(
      r.headers.get('content-disposition'),
      `attachment; filename="r_sum_ _1_.png"; filename*=UTF-8''r%C3%A9sum%C3%A9%20%221%22.png`,
    );
    assert.deepEqual(new Uint8Array(await r.arrayBuffer()), bytes);
    const copy = await calls([
      'Blob/copy',
      { fromAccountId: aliceId, accountId: aliceId, blobIds: [up.body.blobId, 'Bnope'] },
      'c',
    ]);
    assert.deepEqual(copy.body.methodResponses[0], [
      'Blob/copy',
      {
        fromAccountId: aliceId,
        accountId: aliceId,
        copied: { [up.body.blobId]: up.body.blobId },
        notCopied: { Bnope: { type: 'notFound' } },
      },
      'c',
    ]);
    const other = await calls(['Blob/copy', { fromAccountId: 'Aelse', accountId: aliceId, blobIds: [] }, 'c']);
    assert.equal(other.body.methodResponses[0][1].type, 'fromAccountNotFound');
    const missing = await call('GET', `/jmap/download/${aliceId}/Bnope/x`);
    assert.equal(missing.status, 404);
    assert.equal((await call('POST', '/jmap/upload/Aelse', bytes)).status, 404);
  });
  test('an upload over maxSizeUpload: 413 with the limit problem, by Content-Length and as it arrives', async () => {
    problem(await call('POST', `/jmap/upload/${aliceId}`, new Uint8Array(5000)), 413, 'limit', 'maxSizeUpload');
    // Streamed without a length, more than the server reads: it answers 413 and stops.
    let sent = 0;
    const chunked = new ReadableStream<Uint8Array>({
      pull(c) {
        if (sent++ < 1000) c.enqueue(new Uint8Array(1000));
        else c.close();
      },
    });
    const r = await fetch(`${base}/jmap/upload/${aliceId}`, {
      method: 'POST',
      headers: { authorization: ALICE },
      body: chunked,
      duplex: 'half',
    } as RequestInit);
    assert.equal(r.status, 413);
    assert.equal(((await r.json()) as { limit: string }).limit, 'maxSizeUpload');
  });
});

/** Reads an event stream until `pred` matches what arrived; returns it all. */
async function readUntil(
  reader: ReadableStreamDefaultReader<Uint8Array>,
  pred: (text: string) => boolean,
): Promise<string> {
  let text = '';
  const dec = new TextDecoder();
  while (!pred(text)) {
    const { value, done } = await reader.read();
    if (done) break;
    text += dec.decode(value, { stream: true });
  }
  return text;
}

const openEvents = async (query: string) => {
  const r = await fetch(`${base}/jmap/eventsource?${query}`, { headers: { authorization: ALICE } });
  assert.equal(r.status, 200);
  assert.equal(r.headers.get('content-type'), 'text/event-stream');
  return { r, reader: (r.body as ReadableStream<Uint8Array>).getReader() };
};

const hub = () => {
  const h = s.server.jmap?.hub;
  assert.ok(h);
  return h;
};
const alice = 'alice@example.test' as AccountId;

describe('push (§7)', () => {
  test('EventSource: a state published through PushHub arrives within 100 ms; types filter', async () => {
    const { reader } = await openEvents('types=Email,Mailbox&closeafter=no&ping=0');
    while (hub().listeners(alice) === 0) await new Promise((r) => setImmediate(r));
    const t0 = performance.now();
    hub().publish(alice, { Thread: '9' });
    hub().publish(alice, { Email: '42', Thread: '9' });
    const text = await readUntil(reader, (t) => t.includes('\n\n'));
    assert.ok(performance.now() - t0 < 100, `took ${performance.now() - t0} ms`);
    assert.equal(
      text,
      `event: state\ndata: ${JSON.stringify({ '@type': 'StateChange', changed: { [aliceId]: { Email: '42' } } })}\n\n`,
    );
    await reader.cancel();
    while (hub().listeners(alice) > 0) await new Promise((r) => setImmediate(r));
  });
  test('ping events; closeafter=state ends the response', async () => {
    const p = await openEvents('types=*&closeafter=no&ping=1');
    const ping = await readUntil(p.reader, (t) => t.includes('\n\n'));
    assert.equal(ping, 'event: ping\ndata: {"interval":1}\n\n');
    await p.reader.cancel();
    const c = await openEvents('types=*&closeafter=state&ping=0');
    while (hub().listeners(alice) === 0) await new Promise((r) => setImmediate(r));
    hub().publish(alice, { Mailbox: '7' });
    const all = await readUntil(c.reader, () => false);
    assert.match(all, /^event: state\ndata: .*"Mailbox":"7".*\n\n$/);
    assert.equal(hub().listeners(alice), 0);
    const bad = await call('GET', '/jmap/eventsource?types=*&closeafter=maybe&ping=0');
    assert.equal(bad.status, 400);
  });
  test('PushSubscription: verification to the URL, StateChange after verifying, pattern refusal', async () => {
    const url = `http://127.0.0.1:${sinkPort}/push/dev1`;
    const r = await calls([
      'PushSubscription/set',
      {
        create: {
          k1: { deviceClientId: 'dev1', url, types: ['Email'] },
          k2: { deviceClientId: 'dev2', url: `http://127.0.0.1:${sinkPort}/elsewhere` },
          k3: { deviceClientId: 'dev3', url: `${url}-bad`, keys: { p256dh: 'x', auth: 'y' } },
        },
      },
      'a',
    ]);
    const res = r.body.methodResponses[0][1];
    const id = res.created.k1.id;
    assert.match(id, /^[A-Za-z0-9_-]+$/);
    assert.equal(res.notCreated.k2.type, 'forbidden');
    assert.equal(res.notCreated.k3.type, 'invalidProperties');
    const verification = await waitPush((p) => p.body['@type'] === 'PushVerification');
    assert.equal(verification.path, '/push/dev1');
    assert.equal(verification.body.pushSubscriptionId, id);
    const code = verification.body.verificationCode as string;
    // Not verified yet: nothing is sent.
    const wrong = await calls(['PushSubscription/set', { update: { [id]: { verificationCode: 'nope' } } }, 'b']);
    assert.equal(wrong.body.methodResponses[0][1].notUpdated[id].type, 'invalidProperties');
    const ok = await calls(['PushSubscription/set', { update: { [id]: { verificationCode: code } } }, 'c']);
    assert.deepEqual(ok.body.methodResponses[0][1].updated, { [id]: null });
    const got = await calls(['PushSubscription/get', { ids: null }, 'd']);
    const list = got.body.methodResponses[0][1].list;
    assert.equal(list.length, 1);
    assert.equal(list[0].verificationCode, code);
    assert.equal(list[0].url, undefined);
    assert.match(list[0].expires, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    hub().publish(alice, { Mailbox: '1' });
    hub().publish(alice, { Email: '5', Mailbox: '2' });
    const change = await waitPush((p) => p.body['@type'] === 'StateChange');
    assert.deepEqual(change.body.changed, { [aliceId]: { Email: '5' } });
    const gone = await calls(['PushSubscription/set', { destroy: [id] }, 'e']);
    assert.deepEqual(gone.body.methodResponses[0][1].destroyed, [id]);
  });
  test('PushSubscription with keys: every push encrypted (RFC 8291), decrypted by http_ece', async () => {
    const agent = pushAgent();
    const url = `http://127.0.0.1:${sinkPort}/push/enc`;
    const r = await calls([
      'PushSubscription/set',
      { create: { k: { deviceClientId: 'enc', url, keys: agent.keys } } },
      'a',
    ]);
    const id = r.body.methodResponses[0][1].created.k.id;
    const v = await waitPush((p) => p.path === '/push/enc');
    assert.equal(v.encoding, 'aes128gcm');
    assert.ok(!v.raw.includes(Buffer.from('PushVerification')));
    const verification = JSON.parse((await agent.decrypt(v.raw)).toString());
    assert.equal(verification['@type'], 'PushVerification');
    await calls([
      'PushSubscription/set',
      { update: { [id]: { verificationCode: verification.verificationCode } } },
      'b',
    ]);
    hub().publish(alice, { Email: '77' });
    const c = await waitPush((p) => p.path === '/push/enc' && p !== v);
    const change = JSON.parse((await agent.decrypt(c.raw)).toString());
    assert.deepEqual(change, { '@type': 'StateChange', changed: { [aliceId]: { Email: '77' } } });
    await calls(['PushSubscription/set', { destroy: [id] }, 'c']);
  });
});

/** Holds one request open (its body half sent) and asks `probe` until it gets the limit
 *  problem; then completes the held one, which must succeed. A probe may get in first (the
 *  held one then gets the problem and is started again). */
async function whileHeld(
  held: { path: string; body: Buffer; ok: number },
  probe: () => Promise<Reply>,
  limit: string,
): Promise<void> {
  for (let attempt = 0; attempt < 50; attempt++) {
    const req = request(`${base}${held.path}`, {
      method: 'POST',
      headers: { authorization: ALICE, 'content-type': 'application/json', 'content-length': held.body.length },
    });
    let status = 0;
    const done = new Promise<number>((resolve) =>
      req.on('response', (res) => {
        res.resume();
        status = res.statusCode ?? 0;
        resolve(status);
      }),
    );
    req.write(held.body.subarray(0, 10));
    let answer: Reply | null = null;
    while (status === 0) {
      answer = await probe();
      if (answer.status === 429) break;
    }
    if (answer?.status === 429 && status === 0) {
      problem(answer, 429, 'limit', limit);
      req.end(held.body.subarray(10));
      assert.equal(await done, held.ok);
      return;
    }
    req.end(held.body.subarray(10));
    await done;
  }
  assert.fail('the held request never held its slot');
}

describe('authentication, CORS, limits', () => {
  test('CORS: preflight and the header on answers', async () => {
    const r = await fetch(`${base}/jmap/api`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://webmail.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization,content-type',
      },
    });
    assert.equal(r.status, 204);
    assert.equal(r.headers.get('access-control-allow-origin'), '*');
    assert.match(r.headers.get('access-control-allow-headers') ?? '', /Authorization/);
    assert.match(r.headers.get('access-control-allow-methods') ?? '', /POST/);
    const e = await calls(['Core/echo', {}, 'a']);
    assert.equal(e.headers.get('access-control-allow-origin'), '*');
  });
  test('maxConcurrentUpload: a second upload while one is in progress gets the limit problem', async () => {
    await whileHeld(
      { path: `/jmap/upload/${aliceId}`, body: Buffer.alloc(100), ok: 201 },
      () => call('POST', `/jmap/upload/${aliceId}`, new Uint8Array(5)),
      'maxConcurrentUpload',
    );
  });
  test('maxConcurrentRequests: a second request while one is in progress gets the limit problem', async () => {
    const body = Buffer.from(JSON.stringify({ using: [CORE], methodCalls: [['Core/echo', { a: 1 }, 'x']] }));
    await whileHeld({ path: '/jmap/api', body, ok: 200 }, () => calls(['Core/echo', {}, 'y']), 'maxConcurrentRequests');
  });
});

interface Jam {
  session: Promise<{ accounts: Record<string, unknown> }>;
  getPrimaryAccount(): Promise<string | undefined>;
  request(call: [string, Record<string, unknown>]): Promise<[Record<string, unknown>, unknown]>;
  uploadBlob(accountId: string, body: Blob): Promise<{ blobId: string; size: number }>;
  downloadBlob(o: { accountId: string; blobId: string; mimeType: string; fileName: string }): Promise<Response>;
}

describe('jmap-jam (an independent client)', () => {
  test('session, Core/echo, upload and download', async () => {
    // Loaded by a computed name: its types import jmap-rfc-types' .ts sources, which our
    // compiler settings (erasableSyntaxOnly) reject; this is the part of its API used here.
    const name = 'jmap-jam';
    const { JamClient } = (await import(name)) as { JamClient: new (c: object) => Jam };
    const jam = new JamClient({ bearerToken: userToken, sessionUrl: `${base}/.well-known/jmap` });
    const session = await jam.session;
    assert.deepEqual(Object.keys(session.accounts), [aliceId]);
    // The library's primary account is the Mail capability's (test/jmap/mailbox.test.ts).
    assert.equal(await jam.getPrimaryAccount(), aliceId);
    const [echo] = await jam.request(['Core/echo', { hello: 'jam' }]);
    assert.deepEqual(echo, { hello: 'jam' });
    const up = await jam.uploadBlob(aliceId, new Blob(['hello jam']));
    assert.equal(up.size, 9);
    const down = await jam.downloadBlob({
      accountId: aliceId,
      blobId: up.blobId,
      mimeType: 'text/plain',
      fileName: 'a.txt',
    });
    assert.equal(await down.text(), 'hello jam');
  });
});

describe('HTTPS', () => {
  test('the session over TLS names https URLs; Basic works', async () => {
    const port = s.server.http[1]?.port;
    const r = await new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          port,
          path: '/.well-known/jmap',
          rejectUnauthorized: false,
          headers: { authorization: ALICE },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString() }));
        },
      );
      req.on('error', reject);
      req.end();
    });
    assert.equal(r.status, 200);
    assert.equal(JSON.parse(r.body).apiUrl, `https://127.0.0.1:${port}/jmap/api`);
  });
});

describe('plain HTTP from another machine', () => {
  test('is refused before any credential is read (403)', async () => {
    let asked = false;
    const j = new JmapHttp({
      registry: new MethodRegistry(),
      limits: {
        maxSizeUpload: 1,
        maxConcurrentUpload: 1,
        maxSizeRequest: 1,
        maxConcurrentRequests: 1,
        maxCallsInRequest: 1,
        maxObjectsInGet: 1,
        maxObjectsInSet: 1,
      },
      auth: {
        authenticator: {
          login: async () => {
            asked = true;
            return { ok: false, reason: 'failed' };
          },
          throttle: {} as never,
        },
        tokens: null,
        loginName: () => null,
        userEnabled: async () => false,
        log: { info() {}, warn() {} } as never,
      },
      blobs: {} as never,
      hub: new PushHub(),
      log: {} as never,
      baseUrl: '',
      hostname: 'mx.test.example',
      plainClient: () => false,
    });
    const server = createServer((req, res) => j.handle(req, res));
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      const r = await fetch(`http://127.0.0.1:${(server.address() as AddressInfo).port}/.well-known/jmap`, {
        headers: { authorization: ALICE },
      });
      assert.equal(r.status, 403);
      assert.match(((await r.json()) as { type: string }).type, /https-required/);
      assert.equal(asked, false);
    } finally {
      server.closeAllConnections();
      await new Promise<void>((r) => server.close(() => r()));
    }
  });
});

// Last: the failures below slow down later logins from this address (the throttle).
describe('failed logins', () => {
  test('Bearer: a user:ADDR token works, an admin token does not', async () => {
    const ok = await call('GET', '/.well-known/jmap', undefined, { authorization: `Bearer ${userToken}` });
    assert.equal(ok.status, 200);
    assert.equal(ok.body.username, 'alice@example.test');
    const no = await call('GET', '/.well-known/jmap', undefined, { authorization: `Bearer ${adminToken}` });
    assert.equal(no.status, 401);
    // The line the documented fail2ban filter matches (docs/security.md).
    const line = await s.logged((l) => l.msg === 'auth failed' && l.reason === 'token');
    assert.match(
      JSON.stringify(line),
      /"service":"(?:imap|submission|http)","ip":"127\.0\.0\.1",.*"msg":"auth failed"/,
    );
  });
  test('a wrong password: 401, logged and throttled like IMAP', async () => {
    const bad = `Basic ${Buffer.from('alice@example.test:wrong').toString('base64')}`;
    const r1 = await call('GET', '/.well-known/jmap', undefined, { authorization: bad });
    assert.equal(r1.status, 401);
    assert.ok(r1.headers.get('www-authenticate'));
    await s.logged((l) => l.msg === 'auth failed' && l.service === 'http' && l.user === 'alice@example.test');
    const r2 = await call('GET', '/.well-known/jmap', undefined, { authorization: bad });
    assert.equal(r2.status, 401);
    await s.logged((l) => l.msg === 'auth delayed' && l.service === 'http');
  });
});
