// DKIM signing of submitted mail, checked by two verifiers (mailauth through a real DNS server,
// and Python's dkim module, an independent implementation), the reverse interop (Python signs,
// arcline verifies), and the key and DNS-record commands.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { generateKeyPairSync } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { dkimVerify } from 'mailauth';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { dkimRecordName, dkimTxtValue } from '../../src/hygiene/dkim-keys.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { runCli } from '../harness/process.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';
import { submitter, waitUntil } from '../harness/submit.ts';

// Debian's Python, where python3-dkim and python3-nacl (Ed25519) are installed by .ci/run.
const PYTHON = '/usr/bin/python3';
const hasPythonDkim = spawnSync(PYTHON, ['-c', 'import dkim, nacl']).status === 0;
const run = promisify(execFile);

describe('DKIM signing and DNS records', () => {
  let dns: TestDnsServer;
  let mx: FakeMx;
  let t: TestServer;

  before(async () => {
    mx = await startFakeMx();
    dns = await startTestDns([
      { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
      { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
    ]);
    t = await startTestServer({
      submission: true,
      extra: `[delivery]\nport = ${mx.port}\n[dns]\nservers = ["${dns.address}"]\n[hygiene]\ndnsbl = []`,
    });
    // The domain got an Ed25519 key when it was added (test default); add an RSA one too.
    await t.admin.dkim.generate('example.test', { selector: 'rsa2026', algorithm: 'rsa' });
    for (const k of await t.admin.dkim.keys('example.test')) {
      dns.add({ type: 'TXT', name: dkimRecordName(k), text: dkimTxtValue(k) });
    }
  });
  after(async () => {
    await t?.stop();
    await mx?.close();
    await dns?.close();
  });

  test('mail leaving through submission carries an RSA and an Ed25519 signature that verify', async () => {
    await submitter(t.submissionPort).sendMail({
      from: 'Alice <alice@example.test>',
      to: 'carol@remote.test',
      subject: 'signed',
      text: 'A body\nwith bare LF that the client sends as CRLF.\n',
    });
    const [mail] = await mx.waitFor(1);
    assert.ok(mail);
    const text = mail.data.toString();
    assert.equal(text.match(/^DKIM-Signature:/gm)?.length, 2);
    const resolver = createPromiseResolver([dns.address]);
    const res = await dkimVerify(mail.data, {
      resolver: (name: string, rr: string) => resolver.resolve(name, rr) as Promise<string[][]>,
    });
    assert.deepEqual(res.results.map((r) => [r.signingDomain, r.status.result, r.algo]).sort(), [
      ['example.test', 'pass', 'ed25519-sha256'],
      ['example.test', 'pass', 'rsa-sha256'],
    ]);
    const line = await waitUntil('log', async () => t.logs.find((l) => l.msg === 'message accepted' && l.dkim_signed));
    assert.ok(line);
  });

  test('an independent verifier (Python dkim) accepts both signatures', {
    skip: !hasPythonDkim && 'python3-dkim / python3-nacl are not installed',
  }, async () => {
    const mail = mx.mails[0];
    assert.ok(mail);
    const keys = Object.fromEntries(
      (await t.admin.dkim.keys('example.test')).map((k) => [`${dkimRecordName(k)}.`, dkimTxtValue(k)]),
    );
    const script = `
import dkim, json, sys
keys = json.loads(sys.argv[1])
msg = sys.stdin.buffer.read()
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return keys.get(name, '').encode()
d = dkim.DKIM(msg)
count = sum(1 for h in d.headers if h[0].lower() == b'dkim-signature')
print(json.dumps([d.verify(idx=i, dnsfunc=dnsfunc) for i in range(count)]))
`;
    const child = run(PYTHON, ['-c', script, JSON.stringify(keys)], { encoding: 'utf8' });
    child.child.stdin?.end(mail.data);
    const { stdout } = await child;
    assert.deepEqual(JSON.parse(stdout), [true, true]);
  });

  test('mail signed by Python dkim verifies in arcline (dkim=pass in our Authentication-Results)', {
    skip: !hasPythonDkim && 'python3-dkim / python3-nacl are not installed',
  }, async () => {
    const key = generateKeyPairSync('rsa', { modulusLength: 2048 });
    const script = String.raw`
import dkim, sys
msg = b"From: Py <py@py.test>\r\nTo: alice@example.test\r\nSubject: signed by python\r\nDate: Tue, 24 Nov 2026 06:00:00 +0000\r\nMessage-ID: <py1@py.test>\r\n\r\nHello from Python.\r\n"
sig = dkim.sign(msg, b"py", b"py.test", sys.stdin.buffer.read(), include_headers=[b"from", b"to", b"subject", b"date", b"message-id"])
sys.stdout.buffer.write(sig + msg)
`;
    const child = run(PYTHON, ['-c', script], { encoding: 'utf8' });
    child.child.stdin?.end(key.privateKey.export({ type: 'pkcs1', format: 'pem' }));
    const { stdout: message } = await child;
    const spki = key.publicKey.export({ type: 'spki', format: 'der' }).toString('base64');
    dns.add({ type: 'TXT', name: 'py._domainkey.py.test', text: `v=DKIM1; k=rsa; p=${spki}` });
    const c = await RawSmtp.connect(t.port);
    await envelope(c, 'py@py.test', ['alice@example.test']);
    await c.cmd('DATA');
    c.write(`${message}\r\n.\r\n`);
    assert.equal((await c.read()).code, 250);
    c.close();
    const stored = await waitUntil('stored', async () =>
      (await t.messages('alice@example.test')).map((b) => b.toString()).find((m) => m.includes('signed by python')),
    );
    assert.match(
      stored,
      /^Authentication-Results: mx\.test\.example;[\s\S]*?dkim=pass[^;]*header\.(?:d=py\.test|i=@py\.test)/m,
    );
  });

  test('arcline dkim keygen / list / del and dns-records print records ready for a zone', async () => {
    const cli = (...args: string[]) => runCli(['--config', t.configFile, ...args]);
    const gen = await cli('dkim', 'keygen', 'example.test', '--selector', 'extra', '--algo', 'ed25519');
    assert.equal(gen.code, 0, gen.stderr);
    assert.match(
      gen.stdout,
      /^extra\._domainkey\.example\.test\. 3600 IN TXT \( "v=DKIM1; k=ed25519; p=[A-Za-z0-9+/=]{44}" \)$/m,
    );
    const again = await cli('dkim', 'keygen', 'example.test', '--selector', 'extra');
    assert.equal(again.code, 1, 'a selector is never overwritten');
    const list = await cli('dkim', 'list', 'example.test');
    assert.equal(list.stdout.match(/_domainkey\.example\.test\./g)?.length, 3);
    const rsaLine = list.stdout.split('\n').find((l) => l.startsWith('rsa2026.'));
    assert.match(
      rsaLine ?? '',
      /\( "v=DKIM1; k=rsa; p=[^"]+" "[^"]+" \)$/,
      'a 2048-bit key is split into 255-octet strings',
    );
    assert.equal((await cli('dkim', 'del', 'example.test', 'extra')).code, 0);
    assert.equal((await cli('dkim', 'keygen', 'nowhere.test')).code, 1);
    assert.equal((await cli('dkim', 'keygen', 'example.test', '--algo', 'dsa')).code, 2);
    const rec = await cli('dns-records', 'example.test');
    assert.equal(rec.code, 0, rec.stderr);
    for (const re of [
      /^example\.test\. 3600 IN MX 10 mx\.test\.example\.$/m,
      /^example\.test\. 3600 IN TXT "v=spf1 mx -all"$/m,
      /^arcline\._domainkey\.example\.test\. 3600 IN TXT \( "v=DKIM1; k=ed25519; p=/m,
      /^rsa2026\._domainkey\.example\.test\. 3600 IN TXT \( "v=DKIM1; k=rsa; p=/m,
      /^_dmarc\.example\.test\. 3600 IN TXT "v=DMARC1; p=quarantine; adkim=r; aspf=r; rua=mailto:postmaster@example\.test"$/m,
      /^_submissions\._tcp\.example\.test\. 3600 IN SRV 0 1 465 mx\.test\.example\.$/m,
      /^_imaps\._tcp\.example\.test\. 3600 IN SRV 0 1 993 mx\.test\.example\.$/m,
      /^_mta-sts\.example\.test\. 3600 IN TXT "v=STSv1; id=[0-9a-f]{20}"$/m,
      /^_smtp\._tls\.example\.test\. 3600 IN TXT "v=TLSRPTv1; rua=mailto:postmaster@example\.test"$/m,
      /^mta-sts\.example\.test\. 3600 IN CNAME mx\.test\.example\.$/m,
      /^autoconfig\.example\.test\. 3600 IN CNAME mx\.test\.example\.$/m,
      /^_autodiscover\._tcp\.example\.test\. 3600 IN SRV 0 1 443 mx\.test\.example\.$/m,
      /^; autodiscover\.example\.test\. 3600 IN CNAME mx\.test\.example\.$/m,
    ]) {
      assert.match(rec.stdout, re);
    }
    assert.equal((await cli('dns-records', 'nowhere.test')).code, 1);
  });

  test('arcline allow add | list | del manage a user allowlist', async () => {
    const cli = (...args: string[]) => runCli(['--config', t.configFile, 'allow', ...args]);
    const add = await cli('add', 'alice@example.test', 'News@Shop.test');
    assert.equal(add.code, 0, add.stderr);
    assert.equal(add.stdout, 'alice@example.test allows news@shop.test\n');
    assert.equal((await cli('add', 'alice@example.test', '@bank.test')).code, 0);
    assert.equal((await cli('list', 'alice@example.test')).stdout, 'bank.test\nnews@shop.test\n');
    assert.equal((await cli('del', 'alice@example.test', 'bank.test')).code, 0);
    assert.equal((await cli('del', 'alice@example.test', 'bank.test')).code, 1);
    assert.equal((await cli('add', 'nobody@example.test', 'x.test')).code, 1);
    assert.equal((await cli('add', 'alice@example.test')).code, 2);
  });
});
