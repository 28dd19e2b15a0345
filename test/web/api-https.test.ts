// The admin API over plain HTTP answers this machine only; from elsewhere it is refused with a
// problem+json 403 and must be reached over HTTPS (web/server.ts). Every client of a test is on
// loopback, so "elsewhere" is simulated through the listener's plainApiClient predicate; the
// default predicate (core/ip.ts isLoopback) is checked on its own.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { isLoopback } from '../../src/core/ip.ts';
import { silentLogger } from '../../src/core/log.ts';
import { TlsManager } from '../../src/tls/certs.ts';
import { Router } from '../../src/web/routes.ts';
import { WebServer } from '../../src/web/server.ts';

const api = { fetch: () => Response.json({ ok: true }) };

function get(port: number, secure: boolean): Promise<{ status: number; type: string; body: string }> {
  return new Promise((resolve, reject) => {
    const req = (secure ? httpsRequest : httpRequest)(
      { host: '127.0.0.1', port, path: '/api/v1/me', rejectUnauthorized: false },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () =>
          resolve({
            status: res.statusCode ?? 0,
            type: String(res.headers['content-type'] ?? ''),
            body: Buffer.concat(chunks).toString(),
          }),
        );
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe('admin API over plain HTTP', () => {
  let dir: string;
  const servers: WebServer[] = [];
  const ports: Record<'local' | 'remote', { plain: number; tls: number }> = {
    local: { plain: 0, tls: 0 },
    remote: { plain: 0, tls: 0 },
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-api-https-'));
    const log = silentLogger();
    const tls = await TlsManager.open({ files: null, stateDir: dir, hostname: 'mx.test.example' }, log);
    for (const kind of ['local', 'remote'] as const) {
      const web = new WebServer({
        log,
        tls,
        router: new Router(),
        api,
        alpnChallenge: null,
        maxConnections: 8,
        timeoutMs: 2000,
        ...(kind === 'remote' ? { plainApiClient: () => false } : {}),
      });
      servers.push(web);
      const [plain, secure] = await web.listen(['127.0.0.1:0'], ['127.0.0.1:0']);
      ports[kind] = { plain: plain?.port ?? 0, tls: secure?.port ?? 0 };
    }
  });
  after(async () => {
    for (const s of servers) await s.close();
    await rm(dir, { recursive: true, force: true });
  });

  test('from this machine: answered over plain HTTP and HTTPS', async () => {
    assert.equal((await get(ports.local.plain, false)).status, 200);
    assert.equal((await get(ports.local.tls, true)).status, 200);
  });

  test('from elsewhere: plain HTTP is refused with problem+json, HTTPS is answered', async () => {
    const plain = await get(ports.remote.plain, false);
    assert.equal(plain.status, 403);
    assert.equal(plain.type, 'application/problem+json');
    assert.equal(JSON.parse(plain.body).title, 'HTTPS required');
    assert.equal((await get(ports.remote.tls, true)).status, 200);
  });

  test('this machine is 127.0.0.0/8 and ::1', () => {
    for (const ip of ['127.0.0.1', '127.9.8.7', '::1']) assert.ok(isLoopback(ip), ip);
    for (const ip of ['10.0.0.1', '192.0.2.1', '::2', '2001:db8::1', '']) assert.ok(!isLoopback(ip), ip);
  });
});
