// MTA-STS for outbound delivery (RFC 8461, queue/mta-sts.ts) end to end over real sockets: a
// message submitted to arcline, the destination's TXT record on the test DNS server, its policy
// served over HTTPS on loopback by a host with a certificate of the test's own CA, and a fake MX
// whose certificate comes from that CA too. Nothing leaves 127.0.0.0/8.

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { mtaStsChecks } from '../../src/core/metrics.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { submitter, waitUntil } from '../harness/submit.ts';
import { startTestCa, type TestCa } from '../harness/test-ca.ts';

/** Policy domains: the policy each serves (null: 404), and the requests each got. */
const policies = new Map<string, string | null>();
const fetches = new Map<string, number>();

function policyText(mode: string, ...mx: string[]): string {
  return `version: STSv1\r\nmode: ${mode}\r\n${mx.map((m) => `mx: ${m}\r\n`).join('')}max_age: 86400\r\n`;
}

const DOMAINS = ['enforce.test', 'mismatch.test', 'badcert.test', 'testing.test', 'restart.test', 'notls.test'];

describe('MTA-STS for outbound delivery', () => {
  let ca: TestCa;
  let dns: TestDnsServer;
  let mx: FakeMx;
  /** An MX that does not offer STARTTLS, on 127.0.0.2. */
  let plain: FakeMx;
  let https: Server;
  let t: TestServer;
  let extra: string;
  let dir: string;

  before(async () => {
    ca = await startTestCa();
    // The MX's certificate covers these names only: mx.badcert.test and mx.testing.test point to
    // it but are not on it.
    mx = await startFakeMx({ tls: await ca.issue(['mx.enforce.test', 'mx.elsewhere.test', 'mx.restart.test']) });
    plain = await startFakeMx({ host: '127.0.0.2', port: mx.port, starttls: false });
    const policyCert = await ca.issue(DOMAINS.map((d) => `mta-sts.${d}`));
    https = createServer(policyCert, (req, res) => {
      const domain = (req.headers.host ?? '').replace(/^mta-sts\./, '').replace(/:\d+$/, '');
      fetches.set(domain, (fetches.get(domain) ?? 0) + 1);
      const text = policies.get(domain);
      if (req.url !== '/.well-known/mta-sts.txt' || !text) {
        res.writeHead(404).end();
        return;
      }
      res.writeHead(200, { 'content-type': 'text/plain' }).end(text);
    });
    await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
    policies.set('enforce.test', policyText('enforce', 'mx.enforce.test'));
    policies.set('mismatch.test', policyText('enforce', 'mx.mismatch.test'));
    policies.set('badcert.test', policyText('enforce', 'mx.badcert.test'));
    policies.set('testing.test', policyText('testing', 'mx.testing.test'));
    policies.set('restart.test', policyText('enforce', 'mx.restart.test'));
    policies.set('notls.test', policyText('enforce', 'mx.notls.test'));
    const mxOf: Record<string, string> = {
      'enforce.test': 'mx.enforce.test',
      'mismatch.test': 'mx.elsewhere.test',
      'badcert.test': 'mx.badcert.test',
      'testing.test': 'mx.testing.test',
      'restart.test': 'mx.restart.test',
      'notls.test': 'mx.notls.test',
    };
    dns = await startTestDns(
      DOMAINS.flatMap((d) => [
        { type: 'MX' as const, name: d, preference: 10, exchange: mxOf[d] ?? '' },
        { type: 'A' as const, name: mxOf[d] ?? '', address: d === 'notls.test' ? '127.0.0.2' : '127.0.0.1' },
        { type: 'TXT' as const, name: `_mta-sts.${d}`, text: 'v=STSv1; id=1' },
        { type: 'A' as const, name: `mta-sts.${d}`, address: '127.0.0.1' },
      ]),
    );
    dns.add({ type: 'A', name: 'mx.evil.test', address: '127.0.0.1' });
    dir = await mkdtemp(join(tmpdir(), 'arcline-mtasts-'));
    const caFile = join(dir, 'test-ca.pem');
    await writeFile(caFile, ca.cert);
    const port = (https.address() as AddressInfo).port;
    extra =
      `[delivery]\nport = ${mx.port}\nretry_schedule = ["1s"]\n[dns]\nservers = ["${dns.address}"]\n` +
      `[mta_sts_outbound]\npolicy_port = ${port}\nca_file = "${caFile}"\nfetch_timeout = "5s"\n`;
    t = await startTestServer({ submission: true, extra, dir });
    // A server in a given directory starts with no accounts (restart tests): ours, once.
    await t.admin.ops.addDomain('example.test');
    await t.admin.ops.addUser('alice@example.test', { password: 'secret-password' });
  });

  after(async () => {
    await t?.stop();
    await mx?.close();
    await plain?.close();
    await dns?.close();
    await new Promise<void>((r) => (https ? https.close(() => r()) : r()));
    await ca?.close();
    await rm(dir, { recursive: true, force: true });
  });

  async function send(to: string): Promise<void> {
    await submitter(t.submissionPort).sendMail({ from: 'alice@example.test', to, subject: `to ${to}`, text: 'hi' });
  }

  async function queuedFor(server: TestServer, to: string) {
    return waitUntil(`an attempt recorded for ${to}`, async () =>
      (await server.admin.queue.list()).find((q) => q.recipients.some((r) => r.address === to && r.attempts > 0)),
    );
  }

  test('enforce: a matching MX with a valid certificate gets the message over TLS', async () => {
    await send('carol@enforce.test');
    const got = await waitUntil('delivered', async () => mx.mails.find((m) => m.to.includes('carol@enforce.test')));
    assert.equal(got.secure, true);
    assert.equal(fetches.get('enforce.test'), 1);
    await t.logged((l) => l.msg === 'MTA-STS: policy fetched' && l.policy_id === '1');
  });

  test('enforce: an MX not in the policy is never contacted; the message stays queued (4.7.5)', async () => {
    const connections = mx.connections;
    await send('dave@mismatch.test');
    const q = await queuedFor(t, 'dave@mismatch.test');
    assert.equal(q.recipients[0]?.state, 'queued');
    assert.match(q.recipients[0]?.lastReply ?? '', /MTA-STS policy \(enforce\): no MX host matches/);
    assert.ok(!mx.rcpts.includes('dave@mismatch.test'));
    assert.equal(mx.connections, connections, 'no connection to the MX');
  });

  // Regression: the same address (127.0.0.1) had a connection kept open after the enforce test,
  // verified for mx.enforce.test; the connection cache handed it to mx.badcert.test. A verified
  // connection is now cached under its MX name (transport.ts poolKey).
  test('enforce: an MX whose certificate is not valid for its name gets nothing; no plaintext fallback', async () => {
    await send('erin@badcert.test');
    const q = await queuedFor(t, 'erin@badcert.test');
    assert.equal(q.recipients[0]?.state, 'queued');
    assert.match(q.recipients[0]?.lastReply ?? '', /MTA-STS policy \(enforce\): no MX host with valid TLS/);
    assert.ok(!mx.rcpts.includes('erin@badcert.test'), 'never sent, not even in plaintext');
    await t.logged((l) => l.msg === 'MTA-STS: delivery deferred by the policy' && l.result === 'certificate_invalid');
  });

  test('enforce: an MX without STARTTLS gets nothing (never plaintext)', async () => {
    await send('ivan@notls.test');
    const q = await queuedFor(t, 'ivan@notls.test');
    assert.equal(q.recipients[0]?.state, 'queued');
    assert.match(q.recipients[0]?.lastReply ?? '', /MTA-STS policy \(enforce\): no MX host with valid TLS/);
    assert.ok(!plain.rcpts.includes('ivan@notls.test'));
    await t.logged((l) => l.msg === 'MTA-STS: delivery deferred by the policy' && l.result === 'starttls_missing');
  });

  test('testing: delivered as usual, the failure logged and counted', async () => {
    const counted = async () =>
      (await mtaStsChecks.get()).values.find(
        (v) => v.labels.mode === 'testing' && v.labels.result === 'certificate_invalid',
      )?.value ?? 0;
    const before = await counted();
    await send('frank@testing.test');
    await waitUntil('delivered', async () => mx.mails.find((m) => m.to.includes('frank@testing.test')));
    await t.logged((l) => String(l.msg).startsWith('MTA-STS (testing)') && l.result === 'certificate_invalid');
    assert.equal(await counted(), before + 1);
  });

  test('the policy cache survives a restart; a new id in DNS fetches the policy again', async () => {
    await send('gina@restart.test');
    await waitUntil('delivered', async () => mx.mails.find((m) => m.to.includes('gina@restart.test')));
    assert.equal(fetches.get('restart.test'), 1);
    await t.stop();
    // While it is down, an attacker points the MX elsewhere and takes the policy host away.
    dns.remove('restart.test', 'MX');
    dns.add({ type: 'MX', name: 'restart.test', preference: 10, exchange: 'mx.evil.test' });
    policies.set('restart.test', null);
    t = await startTestServer({ submission: true, extra, dir });
    await send('hank@restart.test');
    const q = await queuedFor(t, 'hank@restart.test');
    assert.match(q.recipients[0]?.lastReply ?? '', /no MX host matches/, 'the cached policy applied');
    assert.equal(fetches.get('restart.test'), 1, 'same id: not fetched again');
    // The domain moves its mail for real: a new policy and a new id.
    policies.set('restart.test', policyText('enforce', 'mx.evil.test', 'mx.restart.test'));
    dns.remove('restart.test', 'MX');
    dns.add({ type: 'MX', name: 'restart.test', preference: 10, exchange: 'mx.restart.test' });
    dns.remove('_mta-sts.restart.test', 'TXT');
    dns.add({ type: 'TXT', name: '_mta-sts.restart.test', text: 'v=STSv1; id=2' });
    await t.admin.queue.retry(q.id);
    await waitUntil('delivered after the update', async () => mx.mails.find((m) => m.to.includes('hank@restart.test')));
    assert.equal(fetches.get('restart.test'), 2);
  });
});
