// An independent submission client: Python's smtplib (standard library) over STARTTLS (587)
// and implicit TLS (465), AUTH, a refused sender, and a message to a local and a remote
// recipient, which arrives at a remote MX found through the test DNS server.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const hasPython = spawnSync('python3', ['-c', 'import smtplib']).status === 0;
let s: TestServer;
let mx: FakeMx;
let dns: TestDnsServer;

before(async () => {
  mx = await startFakeMx();
  dns = await startTestDns([
    { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
    { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
  ]);
  s = await startTestServer({
    submission: true,
    extra: `[delivery]\nport = ${mx.port}\n[dns]\nservers = ["${dns.address}"]`,
  });
});
after(async () => {
  await s?.stop();
  await mx?.close();
  await dns?.close();
});

const SCRIPT = String.raw`
import json, smtplib, ssl, sys
from email.message import EmailMessage
port, sport = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = {}
S = smtplib.SMTP('127.0.0.1', port)
S.ehlo('python.client.test')
out['auth_before_tls'] = S.has_extn('auth')
S.starttls(context=ctx)
S.ehlo('python.client.test')
out['auth_after_tls'] = S.esmtp_features.get('auth', '').strip()
try:
    S.login('alice@example.test', 'wrong-password')
except smtplib.SMTPAuthenticationError as e:
    out['bad_login'] = e.smtp_code
out['login'] = S.login('alice@example.test', 'secret-password')[0]
m = EmailMessage()
m['From'] = 'Alice <alice@example.test>'
m['To'] = 'bob@example.test, carol@remote.test'
m['Subject'] = 'from python'
m.set_content('Hello from smtplib, with ünïcödé.')
out['refused'] = S.send_message(m)
try:
    S.sendmail('mallory@example.test', ['bob@example.test'], 'Subject: x\r\n\r\nx\r\n')
except smtplib.SMTPSenderRefused as e:
    out['bad_sender'] = e.smtp_code
S.quit()
T = smtplib.SMTP_SSL('127.0.0.1', sport, context=ctx)
out['ssl_login'] = T.login('alice@example.test', 'secret-password')[0]
T.quit()
print(json.dumps(out))
`;

test('Python smtplib submits over STARTTLS and implicit TLS; local and remote copies arrive', {
  skip: !hasPython && 'python3 is not installed',
}, async () => {
  const { stdout } = await promisify(execFile)(
    'python3',
    ['-c', SCRIPT, String(s.submissionPort), String(s.submissionTlsPort)],
    { encoding: 'utf8' },
  );
  const out = JSON.parse(stdout) as Record<string, unknown>;
  assert.equal(out.auth_before_tls, false);
  assert.equal(out.auth_after_tls, 'PLAIN LOGIN');
  assert.equal(out.bad_login, 535);
  assert.equal(out.login, 235);
  assert.deepEqual(out.refused, {});
  assert.equal(out.bad_sender, 553);
  assert.equal(out.ssl_login, 235);
  const [local] = await s.messages('bob@example.test');
  assert.match(local?.toString() ?? '', /Subject: from python/);
  const [remote] = await mx.waitFor(1);
  assert.deepEqual(remote?.to, ['carol@remote.test']);
  assert.match(remote?.data.toString() ?? '', /Subject: from python/);
});
