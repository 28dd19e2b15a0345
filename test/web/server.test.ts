// The HTTP/HTTPS listeners (src/web/server.ts) in-process with a real TlsManager and a real
// tls-alpn-01 challenge certificate from acme-client: which handshake gets which certificate
// (RFC 8737 §3), the http-01 and MTA-STS routes, methods, hosts and bounds.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { request } from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import tls from 'node:tls';
import acme from 'acme-client';
import { silentLogger } from '../../src/core/log.ts';
import { TlsManager } from '../../src/tls/certs.ts';
import { acmeHttpRoute, mtaStsRoute, Router } from '../../src/web/routes.ts';
import { WebServer } from '../../src/web/server.ts';

const HOST = 'mx.example.test';
let dir: string;
let web: WebServer;
let httpPort: number;
let httpsPort: number;
let challengeCert: X509Certificate;

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-web-'));
  const log = silentLogger();
  const tlsManager = await TlsManager.open({ files: null, stateDir: dir, hostname: HOST }, log);
  const authz = { identifier: { type: 'dns', value: HOST } } as unknown as acme.Authorization;
  const [key, cert] = await acme.crypto.createAlpnCertificate(
    authz,
    'token.thumbprint',
    await acme.crypto.createPrivateEcdsaKey(),
  );
  challengeCert = new X509Certificate(cert);
  const alpn = tls.createSecureContext({ key, cert });
  const router = new Router()
    .add(
      mtaStsRoute(
        HOST,
        { mode: 'enforce', maxAgeMs: 86_400_000, mx: ['*.backup.test'] },
        async (d) => d === 'example.test',
      ),
    )
    .add(acmeHttpRoute((t) => (t === 'tok_en-1' ? 'tok_en-1.thumb' : null)));
  web = new WebServer({
    log,
    tls: tlsManager,
    router,
    alpnChallenge: (n) => (n === HOST ? alpn : null),
    maxConnections: 4,
    timeoutMs: 2000,
  });
  const bound = await web.listen(['127.0.0.1:0'], ['127.0.0.1:0']);
  httpPort = bound[0]?.port ?? 0;
  httpsPort = bound[1]?.port ?? 0;
});

after(async () => {
  await web.close();
  await rm(dir, { recursive: true, force: true });
});

function handshake(
  servername: string,
  ALPNProtocols: string[],
): Promise<{ cert: X509Certificate; alpn: string | false | null } | 'closed'> {
  return new Promise((resolve) => {
    const s = tls.connect({ port: httpsPort, host: '127.0.0.1', servername, ALPNProtocols, rejectUnauthorized: false });
    s.once('secureConnect', () => {
      const cert = s.getPeerX509Certificate();
      resolve(cert ? { cert, alpn: s.alpnProtocol } : 'closed');
      s.destroy();
    });
    s.once('error', () => resolve('closed'));
    s.once('close', () => resolve('closed'));
  });
}

function http(
  method: string,
  path: string,
  host: string,
  secure = false,
): Promise<{ status: number; body: string; headers: Record<string, unknown> }> {
  return new Promise((resolve, reject) => {
    const opts = { port: secure ? httpsPort : httpPort, host: '127.0.0.1', method, path, headers: { host } };
    const req = secure
      ? tls
          .connect({ port: httpsPort, host: '127.0.0.1', servername: host, rejectUnauthorized: false })
          .once('secureConnect', function (this: tls.TLSSocket) {
            this.write(`${method} ${path} HTTP/1.1\r\nHost: ${host}\r\nConnection: close\r\n\r\n`);
            let raw = '';
            this.on('data', (d) => {
              raw += d;
            });
            this.on('end', () => {
              const [head = '', body = ''] = raw.split('\r\n\r\n');
              resolve({ status: Number(head.split(' ')[1]), body, headers: {} });
            });
          })
      : request(opts, (res) => {
          let body = '';
          res.on('data', (d) => {
            body += d;
          });
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
        });
    req.on('error', reject);
    if (!secure) (req as ReturnType<typeof request>).end();
  });
}

describe('web listeners', () => {
  test('tls-alpn-01: the challenge certificate only to "acme-tls/1" for a pending name (RFC 8737 §3)', async () => {
    const acmeTls = await handshake(HOST, ['acme-tls/1']);
    assert.notEqual(acmeTls, 'closed');
    if (acmeTls === 'closed') return;
    assert.equal(acmeTls.alpn, 'acme-tls/1');
    assert.equal(acmeTls.cert.fingerprint256, challengeCert.fingerprint256);
    // The same name without acme-tls/1: the server's certificate.
    const normal = await handshake(HOST, ['http/1.1']);
    assert.notEqual(normal, 'closed');
    if (normal === 'closed') return;
    assert.notEqual(normal.cert.fingerprint256, challengeCert.fingerprint256);
    assert.equal(normal.alpn, 'http/1.1');
    // acme-tls/1 for a name with no validation pending: closed, never the ordinary certificate.
    assert.equal(await handshake('other.example.test', ['acme-tls/1']), 'closed');
    // Not TLS at all: closed.
    const raw = net.connect(httpsPort, '127.0.0.1');
    raw.write('GET / HTTP/1.1\r\n\r\n');
    await new Promise((r) => raw.once('close', r));
  });

  test('http-01 on plain HTTP; GET and HEAD only; unknown tokens and paths 404', async () => {
    const ok = await http('GET', '/.well-known/acme-challenge/tok_en-1', HOST);
    assert.equal(ok.status, 200);
    assert.equal(ok.body, 'tok_en-1.thumb');
    const head = await http('HEAD', '/.well-known/acme-challenge/tok_en-1', HOST);
    assert.equal(head.status, 200);
    assert.equal(head.body, '');
    assert.equal((await http('POST', '/.well-known/acme-challenge/tok_en-1', HOST)).status, 405);
    assert.equal((await http('GET', '/.well-known/acme-challenge/other', HOST)).status, 404);
    assert.equal((await http('GET', '/.well-known/acme-challenge/a%2f..', HOST)).status, 404);
    assert.equal((await http('GET', '/', HOST)).status, 404);
    // The MTA-STS policy is HTTPS only (RFC 8461 §3.3).
    assert.equal((await http('GET', '/.well-known/mta-sts.txt', 'mta-sts.example.test')).status, 404);
  });

  test('MTA-STS policy over HTTPS for mta-sts.<local domain> only', async () => {
    const r = await http('GET', '/.well-known/mta-sts.txt', 'mta-sts.example.test', true);
    assert.equal(r.status, 200);
    assert.equal(r.body, `version: STSv1\r\nmode: enforce\r\nmx: ${HOST}\r\nmx: *.backup.test\r\nmax_age: 86400\r\n`);
    assert.equal((await http('GET', '/.well-known/mta-sts.txt', 'mta-sts.elsewhere.test', true)).status, 404);
    assert.equal((await http('GET', '/.well-known/mta-sts.txt', 'example.test', true)).status, 404);
    assert.equal((await http('DELETE', '/.well-known/mta-sts.txt', 'mta-sts.example.test', true)).status, 405);
  });

  test('bounds: an oversized header block gets 431; a silent client is cut off at the timeout', async () => {
    const big = await new Promise<string>((resolve) => {
      const s = net.connect(httpPort, '127.0.0.1');
      s.write(`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(10_000)}\r\n\r\n`);
      let got = '';
      s.on('data', (d) => {
        got += d;
      });
      s.on('close', () => resolve(got));
      s.on('error', () => resolve(got));
    });
    assert.match(big, /^HTTP\/1\.1 431/);
    const started = Date.now();
    const s = net.connect(httpsPort, '127.0.0.1');
    await new Promise((r) => s.once('close', r));
    assert.ok(Date.now() - started >= 1500, 'closed at the 2 s deadline, not before');
  });
});
