// The policy fetch of RFC 8461 §3.3 and the cache rules of §5.1 (queue/mta-sts.ts), against a
// real DNS server and a real HTTPS policy host on loopback with a test CA: what is refused (a
// redirect, a body over 64 KiB, not text/plain, a certificate for another name, a bad policy),
// that a failure is not retried at once, that a valid cached policy outlives its TXT record, and
// that a policy in use is refreshed in the background past half its max_age.

import assert from 'node:assert/strict';
import { Resolver } from 'node:dns/promises';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import { type AddressInfo, createServer as createTcpServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { MtaStsPolicies } from '../../src/queue/mta-sts.ts';
import { FilePolicyCache } from '../../src/queue/mta-sts-cache.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { startTestCa, type TestCa } from '../harness/test-ca.ts';

const GOOD = 'version: STSv1\r\nmode: enforce\r\nmx: mx.example.test\r\nmax_age: 86400\r\n';
/** domain -> how its policy host answers. */
const answers: Record<string, { status?: number; type?: string; body: string; location?: string }> = {
  'good.test': { body: GOOD },
  'redirect.test': { status: 301, body: '', location: 'https://mta-sts.good.test/.well-known/mta-sts.txt' },
  'huge.test': { body: `${GOOD}${'# padding\r\n'.repeat(7000)}` },
  'html.test': { type: 'text/html', body: GOOD },
  'badmode.test': { body: GOOD.replace('enforce', 'strict') },
  'wrongcert.test': { body: GOOD },
  'gone.test': { body: GOOD },
  'fresh.test': { body: GOOD },
};
const fetches = new Map<string, number>();
/** How far the policies' clock is ahead of the real one. */
let skew = 0;

let ca: TestCa;
let dns: TestDnsServer;
let https: Server;
let dir: string;
let policies: MtaStsPolicies;
const logs: { msg: string; fields: Record<string, unknown> }[] = [];
const log = (fields: Record<string, unknown>, msg: string) => logs.push({ msg, fields });

before(async () => {
  ca = await startTestCa();
  // The policy host's certificate covers every domain but wrongcert.test.
  const names = Object.keys(answers).filter((d) => d !== 'wrongcert.test');
  https = createServer(await ca.issue(names.map((d) => `mta-sts.${d}`)), (req, res) => {
    const domain = (req.headers.host ?? '').replace(/^mta-sts\./, '');
    fetches.set(domain, (fetches.get(domain) ?? 0) + 1);
    const a = answers[domain];
    if (!a) return void res.writeHead(404).end();
    res
      .writeHead(a.status ?? 200, {
        'content-type': a.type ?? 'text/plain',
        ...(a.location ? { location: a.location } : {}),
      })
      .end(a.body);
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  dns = await startTestDns(
    Object.keys(answers).flatMap((d) => [
      { type: 'TXT' as const, name: `_mta-sts.${d}`, text: 'v=STSv1; id=20261207' },
      { type: 'A' as const, name: `mta-sts.${d}`, address: '127.0.0.1' },
    ]),
  );
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([dns.address]);
  dir = await mkdtemp(join(tmpdir(), 'arcline-stsfetch-'));
  policies = new MtaStsPolicies({
    resolver,
    cache: await FilePolicyCache.open(dir),
    fetchTimeoutMs: 5000,
    extraCa: [ca.cert],
    policyPort: (https.address() as AddressInfo).port,
    now: () => Date.now() + skew,
  });
});

after(async () => {
  await policies?.close();
  await new Promise<void>((r) => (https ? https.close(() => r()) : r()));
  await dns?.close();
  await ca?.close();
  await rm(dir, { recursive: true, force: true });
});

test('a valid policy is fetched and parsed', async () => {
  const p = await policies.policyFor('good.test', log);
  assert.equal(p?.source, 'fetched');
  assert.equal(p?.policy.mode, 'enforce');
  assert.deepEqual(p?.policy.mx, ['mx.example.test']);
  assert.equal(p?.policy.id, '20261207');
  assert.equal((await policies.policyFor('good.test', log))?.source, 'cached');
  assert.equal(fetches.get('good.test'), 1);
});

for (const [domain, why] of [
  ['redirect.test', /HTTP 301/],
  ['huge.test', /larger than 65536 bytes/],
  ['html.test', /Content-Type text\/html/],
  ['badmode.test', /mode/i],
  ['wrongcert.test', /altname|certificate|Hostname/i],
] as const) {
  test(`refused: ${domain} (no policy applies, delivery as without one)`, async () => {
    assert.equal(await policies.policyFor(domain, log), null);
    const line = logs.findLast((l) => l.msg === 'MTA-STS: policy fetch failed');
    assert.match(String(line?.fields.err), why);
  });
}

test('a failed fetch is not tried again at once', async () => {
  const before = fetches.get('html.test') ?? 0;
  assert.equal(await policies.policyFor('html.test', log), null);
  assert.equal(fetches.get('html.test') ?? 0, before);
});

test('a valid cached policy still applies when the TXT record and the policy host are gone', async () => {
  assert.equal((await policies.policyFor('gone.test', log))?.source, 'fetched');
  dns.remove('_mta-sts.gone.test');
  delete answers['gone.test'];
  const p = await policies.policyFor('gone.test', log);
  assert.equal(p?.source, 'cached');
  assert.equal(p?.policy.mode, 'enforce');
});

test('a policy in use past half its max_age is refreshed in the background; a failed refresh keeps it', async () => {
  const first = await policies.policyFor('fresh.test', log);
  assert.equal(first?.source, 'fetched');
  // Before half of max_age (86400 s): used as it is, nothing fetched.
  skew = 6 * 3600_000;
  assert.equal((await policies.policyFor('fresh.test', log))?.source, 'cached');
  assert.equal(policies.refreshing('fresh.test'), undefined);
  assert.equal(fetches.get('fresh.test'), 1);
  // Past half: the cached policy answers at once and a fetch runs behind it.
  skew = 12 * 3600_000 + 1000;
  const during = await policies.policyFor('fresh.test', log);
  assert.equal(during?.source, 'cached');
  assert.equal(during?.policy.expires, first?.policy.expires);
  await policies.refreshing('fresh.test');
  assert.equal(fetches.get('fresh.test'), 2);
  const after = await policies.policyFor('fresh.test', log);
  assert.ok(
    (after?.policy.expires ?? 0) >= (first?.policy.expires ?? 0) + 12 * 3600_000,
    'the refreshed policy lasts longer',
  );
  // The policy host breaks: the refresh fails, the cached policy still applies.
  answers['fresh.test'] = { status: 500, body: '' };
  skew += 13 * 3600_000;
  assert.equal((await policies.policyFor('fresh.test', log))?.source, 'cached');
  await policies.refreshing('fresh.test');
  assert.equal(fetches.get('fresh.test'), 3);
  const kept = await policies.policyFor('fresh.test', log);
  assert.equal(kept?.policy.mode, 'enforce');
  assert.equal(kept?.policy.expires, after?.policy.expires);
  assert.equal(policies.refreshing('fresh.test'), undefined, 'a failed refresh is not retried at once');
  skew = 0;
});

test('close cuts off a fetch under way instead of waiting for its timeout', async () => {
  // A policy host that accepts and never answers (not even the TLS handshake).
  const held: import('node:net').Socket[] = [];
  const silent = createTcpServer((socket) => held.push(socket));
  await new Promise<void>((r) => silent.listen(0, '127.0.0.1', r));
  const resolver = new Resolver({ timeout: 2000, tries: 1 });
  resolver.setServers([dns.address]);
  const ownDir = await mkdtemp(join(tmpdir(), 'arcline-stsclose-'));
  const own = new MtaStsPolicies({
    resolver,
    cache: await FilePolicyCache.open(ownDir),
    fetchTimeoutMs: 60_000,
    extraCa: [ca.cert],
    policyPort: (silent.address() as AddressInfo).port,
  });
  try {
    let connected!: () => void;
    const accepted = new Promise<void>((r) => {
      connected = r;
    });
    silent.once('connection', () => connected());
    const pending = own.policyFor('good.test', log);
    await accepted;
    const t0 = performance.now();
    await own.close();
    assert.ok(performance.now() - t0 < 5000, 'close did not wait for the fetch timeout');
    assert.equal(await pending, null, 'no policy: delivery as without one');
    assert.match(String(logs.findLast((l) => l.msg === 'MTA-STS: policy fetch failed')?.fields.err), /cut off/);
  } finally {
    for (const socket of held) socket.destroy();
    silent.close();
    await rm(ownDir, { recursive: true, force: true });
  }
});
