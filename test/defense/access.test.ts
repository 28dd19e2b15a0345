// The IP allow and deny lists and the auto-ban against the real server, from several loopback
// addresses (127.0.0.x): `arcline ip` through the real CLI while the server runs changes who may
// connect on every listener (SMTP, IMAP, HTTP) within a poll, without a restart; failed logins,
// unknown recipients and protocol abuse ban the client; `arcline ban` lists and lifts bans;
// an owner's network and 127.0.0.1 are never banned; the admin API manages the same lists.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';
import { RawImap } from '../harness/imap-client.ts';
import { runCli } from '../harness/process.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';

let s: TestServer;
let http: number;
let admin: string;

const cli = async (...args: string[]) => {
  const r = await runCli(['--config', s.configFile, ...args]);
  assert.equal(r.code, 0, r.stderr);
  return r.stdout;
};

/** The first line the SMTP listener says to a client from `from`. */
async function smtpGreeting(from: string): Promise<string> {
  const c = await RawSmtp.connect(s.port, '127.0.0.1', from);
  try {
    return (await c.read()).text;
  } finally {
    c.close();
  }
}

async function imapGreeting(from: string): Promise<string> {
  const { client, greeting } = await RawImap.connect(s.imapPort, from);
  client.write('x LOGOUT\r\n');
  return greeting;
}

/** The status line of a plain HTTP request from `from` (or the socket error). */
function httpStatus(from: string): Promise<string> {
  return new Promise((resolve) => {
    const sock = net.connect({ port: http, host: '127.0.0.1', localAddress: from });
    let data = '';
    sock.setEncoding('latin1');
    sock.on('connect', () => sock.write('GET /healthz/live HTTP/1.1\r\nhost: x\r\nconnection: close\r\n\r\n'));
    sock.on('data', (d: string) => {
      data += d;
    });
    sock.on('error', (e) => resolve(`error ${e.message}`));
    sock.on('close', () => resolve(data.split('\r\n')[0] ?? ''));
  });
}

/** Awaits `check` returning true (the server polls the lists once a second). */
async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 5000): Promise<void> {
  const end = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > end) assert.fail(`not within ${timeoutMs} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function api(method: string, path: string, body?: unknown) {
  const r = await fetch(`http://127.0.0.1:${http}${path}`, {
    method,
    headers: { authorization: `Bearer ${admin}`, ...(body ? { 'content-type': 'application/json' } : {}) },
    ...(body ? { body: JSON.stringify(body) } : {}),
  });
  const text = await r.text();
  return { status: r.status, body: text ? JSON.parse(text) : null };
}

before(async () => {
  s = await startTestServer({
    // No login slow-down: the throttle is tested elsewhere, bans are tested here.
    auth: 'failure_delay = "0s"\nmax_delay = "10ms"\nmax_address_delay = "10ms"',
    extra: [
      '[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = []',
      // Only 127.0.0.1 trusted: the other loopback addresses are "the internet" here.
      '[hygiene]\ntrusted_networks = ["127.0.0.1/32"]',
      '[ban]\nauth_failures = 3\nunknown_recipients = 3\nprotocol_errors = 2\nfirst_duration = "10m"',
    ].join('\n'),
  });
  http = s.server.http[0]?.port ?? 0;
  admin = (await s.admin.access.create({ role: { kind: 'admin' } })).token;
});
after(() => s?.stop());

describe('IP lists', () => {
  test('arcline ip deny refuses a network on every listener within a poll; allow wins; del restores', async () => {
    assert.match(await smtpGreeting('127.0.1.8'), /^220 /);
    assert.match(
      await cli('ip', 'deny', '127.0.1.0/24', '--comment', 'test scanners'),
      /127\.0\.1\.0\/24 is on the deny list/,
    );
    assert.match(await cli('ip', 'allow', '127.0.1.9'), /127\.0\.1\.9\/32 is on the allow list/);
    await eventually('SMTP refuses 127.0.1.8', async () => (await smtpGreeting('127.0.1.8')).startsWith('554'));
    assert.equal(
      await smtpGreeting('127.0.1.8'),
      '554 5.7.1 Service unavailable; client [127.0.1.8] is not allowed to connect',
    );
    assert.equal(await imapGreeting('127.0.1.8'), '* BYE Access denied');
    assert.equal(await httpStatus('127.0.1.8'), 'HTTP/1.1 403 Forbidden');
    // The allow list wins inside the denied network; other addresses are untouched.
    await eventually('SMTP accepts 127.0.1.9', async () => (await smtpGreeting('127.0.1.9')).startsWith('220'));
    assert.match(await imapGreeting('127.0.1.9'), /^\* OK/);
    assert.equal(await httpStatus('127.0.1.9'), 'HTTP/1.1 200 OK');
    assert.match(await smtpGreeting('127.0.2.8'), /^220 /);
    const list = await cli('ip', 'list');
    assert.match(list, /deny\s+127\.0\.1\.0\/24\s+\S+\s+cli\s+test scanners/);
    assert.match(list, /allow\s+127\.0\.1\.9\/32/);
    assert.match(
      await cli('ip', 'check', '127.0.1.9'),
      /127\.0\.1\.9: allow\n {2}on the allow list as 127\.0\.1\.9\/32\n {2}on the deny list as 127\.0\.1\.0\/24/,
    );
    await cli('ip', 'del', '127.0.1.0/24');
    await eventually('SMTP accepts 127.0.1.8 again', async () => (await smtpGreeting('127.0.1.8')).startsWith('220'));
    const refused = await runCli(['--config', s.configFile, 'ip', 'deny', '127.0.0.0/8']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /contains 127\.0\.0\.1/);
    await cli('ip', 'del', '127.0.1.9');
  });

  test('the admin API: PUT, GET, explain, DELETE of networks; readonly may read only', async () => {
    let r = await api('PUT', '/api/v1/networks/127.0.3.0/24', { list: 'deny', comment: 'from the API' });
    assert.equal(r.status, 200, JSON.stringify(r.body));
    assert.equal(r.body.cidr, '127.0.3.0/24');
    assert.equal(r.body.createdBy.length > 0, true);
    r = await api('PUT', '/api/v1/networks/127.0.3.0/24', { list: 'deny', comment: 'from the API' });
    assert.equal(r.status, 200, 'idempotent');
    await eventually('SMTP refuses 127.0.3.3', async () => (await smtpGreeting('127.0.3.3')).startsWith('554'));
    r = await api('GET', '/api/v1/networks?list=deny');
    assert.deepEqual(
      r.body.items.map((e: { cidr: string }) => e.cidr),
      ['127.0.3.0/24'],
    );
    r = await api('GET', '/api/v1/networks/explain?ip=127.0.3.3');
    assert.equal(r.body.verdict, 'deny');
    r = await api('PUT', '/api/v1/networks/127.0.0.0/8', { list: 'deny' });
    assert.equal(r.status, 422);
    r = await api('PUT', '/api/v1/networks/nonsense/99', { list: 'deny' });
    assert.equal(r.status, 422);
    const readonly = (await s.admin.access.create({ role: { kind: 'readonly' } })).token;
    const ro = await fetch(`http://127.0.0.1:${http}/api/v1/networks/127.0.4.0/24`, {
      method: 'PUT',
      headers: { authorization: `Bearer ${readonly}`, 'content-type': 'application/json' },
      body: JSON.stringify({ list: 'deny' }),
    });
    assert.equal(ro.status, 403);
    assert.equal((await api('DELETE', '/api/v1/networks/127.0.3.0/24')).status, 204);
    assert.equal((await api('DELETE', '/api/v1/networks/127.0.3.0/24')).status, 204, 'idempotent');
    await eventually('SMTP accepts 127.0.3.3 again', async () => (await smtpGreeting('127.0.3.3')).startsWith('220'));
  });
});

describe('auto-ban', () => {
  test('failed IMAP logins ban the client on every listener; arcline ban lists and lifts it', async () => {
    const from = '127.0.5.1';
    for (let i = 0; i < 3; i++) {
      const { client } = await RawImap.connect(s.imapPort, from);
      const lines = await client.cmd('LOGIN alice@example.test wrong-password');
      assert.match(lines.at(-1) ?? '', /NO/);
      client.write('x LOGOUT\r\n');
    }
    // The ban is the main thread's own write: in force at once.
    assert.equal(await imapGreeting(from), '* BYE [UNAVAILABLE] Temporarily banned for abuse, try again later');
    assert.match(await smtpGreeting(from), /^421 4\.7\.1 Client \[127\.0\.5\.1\] temporarily banned for abuse until /);
    assert.equal(await httpStatus(from), 'HTTP/1.1 403 Forbidden');
    assert.match(await smtpGreeting('127.0.5.2'), /^220 /, 'a neighbour is not banned');
    await s.logged((l) => l.msg === 'client banned' && l.ip === from && l.offence === 'auth');
    assert.match(
      await cli('ban', 'list'),
      /127\.0\.5\.1\/32 banned until \S+ for auth \(3 failed logins in \d+ s; ban number 1\)/,
    );
    const bans = await api('GET', '/api/v1/bans');
    assert.equal(bans.body.items[0].network, '127.0.5.1/32');
    await cli('ban', 'del', from);
    await eventually('IMAP greets 127.0.5.1 again', async () => (await imapGreeting(from)).startsWith('* OK'));
  });

  test('unknown recipients on port 25 ban the client; the API lifts the ban', async () => {
    const from = '127.0.6.1';
    const c = await RawSmtp.connect(s.port, '127.0.0.1', from);
    await c.read();
    await c.cmd('EHLO probe.example');
    await c.cmd('MAIL FROM:<probe@example.net>');
    for (const u of ['a', 'b', 'c']) assert.equal((await c.cmd(`RCPT TO:<${u}@example.test>`)).code, 550);
    c.close();
    assert.match(await smtpGreeting(from), /^421 4\.7\.1 /);
    const r = await api('DELETE', `/api/v1/bans/${from}`);
    assert.equal(r.status, 204);
    await eventually('SMTP greets 127.0.6.1 again', async () => (await smtpGreeting(from)).startsWith('220'));
  });

  test('unknown recipients after an accepted one (a mailing list with stale addresses) ban nobody', async () => {
    const from = '127.0.6.2';
    const c = await RawSmtp.connect(s.port, '127.0.0.1', from);
    await c.read();
    await c.cmd('EHLO lists.example');
    await c.cmd('MAIL FROM:<list-bounces@lists.example>');
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    for (const u of ['gone1', 'gone2', 'gone3', 'gone4']) {
      assert.equal((await c.cmd(`RCPT TO:<${u}@example.test>`)).code, 550);
    }
    await c.cmd('RSET');
    c.close();
    assert.match(await smtpGreeting(from), /^220 /);
    assert.equal(s.logs.filter((l) => l.msg === 'client banned' && l.ip === from).length, 0);
  });

  test('sessions ended for protocol errors ban the client', async () => {
    const from = '127.0.7.1';
    for (let i = 0; i < 2; i++) {
      const c = await RawSmtp.connect(s.port, '127.0.0.1', from);
      await c.read();
      // Bad commands until the hard error limit ends the session.
      for (let k = 0; k < 30 && !c.closed; k++) c.write('BOGUS\r\n');
      await c.waitClosed(15_000);
    }
    await s.logged((l) => l.msg === 'client banned' && l.ip === from && l.offence === 'protocol');
    assert.match(await smtpGreeting(from), /^421 4\.7\.1 /);
  });

  test('an owner who logged in from a network is never banned from it; nor is 127.0.0.1', async () => {
    for (const from of ['127.0.8.1', '127.0.0.1']) {
      const { client } = await RawImap.connect(s.imapPort, from);
      const ok = await client.cmd('LOGIN alice@example.test secret-password');
      assert.match(ok.at(-1) ?? '', /OK/);
      client.write('x LOGOUT\r\n');
      for (let i = 0; i < 4; i++) {
        const c = (await RawImap.connect(s.imapPort, from)).client;
        await c.cmd('LOGIN alice@example.test wrong');
        c.write('x LOGOUT\r\n');
      }
      await s.logged((l) => l.msg === 'client not banned: exempt' && l.ip === from);
      assert.match(await imapGreeting(from), /^\* OK/);
    }
  });
});
