// DKIM key rotation end to end (admin/dkim-rotation.ts): a rotation makes a pending key that
// does not sign; its activation is refused until the record is in DNS (a real DNS server on
// loopback answers the server's resolver), then the new key signs submitted mail and the old one
// is retired. Through the API and through the CLI (one operation behind both).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { runCli } from '../harness/process.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { submitter } from '../harness/submit.ts';

interface Key {
  selector: string;
  algorithm: string;
  record: string;
  state: string;
}

describe('DKIM key rotation', () => {
  let s: TestServer;
  let dns: TestDnsServer;
  let mx: FakeMx;
  let base: string;
  let token: string;
  // biome-ignore lint/suspicious/noExplicitAny: JSON answers, checked by the assertions
  const call = async (method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> => {
    const res = await fetch(`${base}${path}`, {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body ? { 'content-type': 'application/json' } : {}) },
      ...(body ? { body: JSON.stringify(body) } : {}),
    });
    return { status: res.status, body: res.status === 204 ? null : await res.json() };
  };
  const keys = async (): Promise<Key[]> => (await call('GET', '/api/v1/domains/example.test/dkim')).body.items;
  /** The selector of the DKIM-Signature of a message sent through submission now (signed
   *  copies are those that leave: the fake MX of remote.test receives it). */
  const signingSelector = async (): Promise<string | undefined> => {
    const before = mx.mails.length;
    await submitter(s.submissionPort).sendMail({
      from: 'alice@example.test',
      to: 'carol@remote.test',
      subject: 'signed?',
      text: 'x',
    });
    const [mail] = (await mx.waitFor(before + 1)).slice(before);
    return /^DKIM-Signature:[\s\S]*?\bs=([a-z0-9.-]+);/im.exec(mail?.data.toString() ?? '')?.[1];
  };

  before(async () => {
    mx = await startFakeMx();
    dns = await startTestDns([
      { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
      { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
    ]);
    s = await startTestServer({
      submission: true,
      users: ['alice@example.test'],
      extra: `[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = []\n[dns]\nservers = ["${dns.address}"]\n[delivery]\nport = ${mx.port}\n`,
    });
    base = `http://127.0.0.1:${s.server.http[0]?.port}`;
    token = (await s.admin.access.create({ role: { kind: 'admin' }, name: 'rotation' })).token;
  });
  after(async () => {
    await s.stop();
    await dns.close();
    await mx.close();
  });

  test('rotate, refused until published, activate: the new key signs, the old one is retired', async () => {
    const [old] = await keys();
    assert.ok(old && old.state === 'active');
    const rotated = await call('POST', '/api/v1/domains/example.test/dkim/rotate');
    assert.equal(rotated.status, 201);
    const [fresh] = rotated.body.items as Key[];
    assert.ok(fresh && fresh.state === 'pending' && fresh.selector !== old.selector, JSON.stringify(fresh));
    assert.match(fresh.selector, new RegExp(`^${old.selector}-\\d{8}$`));
    assert.deepEqual(
      (await keys()).map((k) => `${k.selector}:${k.state}`),
      [`${old.selector}:active`, `${fresh.selector}:pending`],
    );
    // A pending key does not sign.
    assert.equal(await signingSelector(), old.selector);

    // Not in DNS yet: refused (409), nothing changes.
    const early = await call('POST', `/api/v1/domains/example.test/dkim/${fresh.selector}/activate`, {});
    assert.equal(early.status, 409, JSON.stringify(early.body));
    assert.match(early.body.detail, /not published yet/);

    dns.add({ type: 'TXT', name: `${fresh.selector}._domainkey.example.test`, text: fresh.record });
    const done = await call('POST', `/api/v1/domains/example.test/dkim/${fresh.selector}/activate`, {});
    assert.equal(done.status, 200, JSON.stringify(done.body));
    assert.equal(done.body.state, 'active');
    assert.deepEqual(
      (await keys()).map((k) => `${k.selector}:${k.state}`),
      [`${fresh.selector}:active`],
    );
    assert.equal(await signingSelector(), fresh.selector);
  });

  test('the CLI: dkim rotate, dkim list shows the pending key, dkim activate --force', async () => {
    const cli = (args: string[]) => runCli(['--config', s.configFile, ...args]);
    const r = await cli(['dkim', 'rotate', 'example.test']);
    assert.equal(r.code, 0, r.stderr);
    const selector = /selector (\S+)/.exec(r.stdout)?.[1];
    assert.ok(selector, r.stdout);
    assert.match(
      (await cli(['dkim', 'list', 'example.test'])).stdout,
      new RegExp(`; pending.*\\n${selector}\\._domainkey`),
    );
    const refused = await cli(['dkim', 'activate', 'example.test', selector]);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not published yet/);
    const forced = await cli(['dkim', 'activate', 'example.test', selector, '--force']);
    assert.equal(forced.code, 0, forced.stderr);
    assert.match(forced.stdout, /signs from now on/);
    assert.deepEqual(
      (await keys()).map((k) => `${k.selector}:${k.state}`),
      [`${selector}:active`],
    );
  });

  test('rotate with an algorithm and a grace: the retired key is kept published for that grace', async () => {
    const bad = await call('POST', '/api/v1/domains/example.test/dkim/rotate', { grace: 'soon' });
    assert.equal(bad.status, 400, JSON.stringify(bad.body));
    const rotated = await call('POST', '/api/v1/domains/example.test/dkim/rotate', {
      algorithm: 'ed25519',
      grace: '2d',
    });
    assert.equal(rotated.status, 201, JSON.stringify(rotated.body));
    const [fresh] = rotated.body.items as Key[];
    assert.equal(fresh?.algorithm, 'ed25519');
    const [old] = await s.admin.dkim.keys('example.test');
    const start = Date.now();
    const done = await call('POST', `/api/v1/domains/example.test/dkim/${fresh?.selector}/activate`, { force: true });
    assert.equal(done.status, 200, JSON.stringify(done.body));
    const retired = (await s.admin.dkim.retiredKeys('example.test')).find((k) => k.selector === old?.selector);
    assert.ok(retired && !retired.gone);
    const left = retired.removableAt.getTime() - start;
    assert.ok(left >= 2 * 86_400_000 && left < 2 * 86_400_000 + 60_000, String(left));
  });
});
