// ManageSieve's STARTTLS uses the server's certificate ([tls] cert/key) and follows its reload
// (SIGHUP: TlsManager.reload) without a restart, as IMAP does.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import type tls from 'node:tls';
import { silentLogger } from '../../src/core/log.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { opensslReq } from '../harness/test-ca.ts';
import { RawSieve } from './client.ts';

let dir: string;
let s: TestServer;

async function makeCert(cn: string): Promise<void> {
  await opensslReq(`/CN=${cn}`, join(dir, 'key.pem'), join(dir, 'cert.pem'), ['-x509', '-days', '2']);
}

async function servedName(): Promise<string> {
  const c = await RawSieve.connect(s.managesievePort);
  await c.reply();
  await c.startTls();
  const cert = (c.socket as tls.TLSSocket).getPeerCertificate();
  c.close();
  return String(cert.subject.CN);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-msieve-tls-'));
  await makeCert('first.test');
  s = await startTestServer({
    extra: `[managesieve]\nlisten = ["127.0.0.1:0"]\n[tls]\ncert = "${dir}/cert.pem"\nkey = "${dir}/key.pem"`,
  });
});
after(async () => {
  await s.stop();
  await rm(dir, { recursive: true, force: true });
});

test('STARTTLS serves [tls] cert and the reloaded one after SIGHUP', async () => {
  assert.equal(await servedName(), 'first.test');
  await makeCert('second.test');
  await s.server.tls.reload(silentLogger());
  assert.equal(await servedName(), 'second.test');
});
