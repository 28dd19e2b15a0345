// `arcline check` against local DNS zones with every kind of mistake: the real server (its SMTP,
// submission, IMAPS and HTTPS listeners with a certificate from a test CA made with node-forge),
// a real DNS server on loopback serving the zones, the PTR records and a test DNSBL zone. The
// check runs in-process (runChecks, the same code the CLI runs) for the mistakes, and as the
// real `arcline` process for the output, --json and the exit statuses.

import assert from 'node:assert/strict';
import { generateKeyPairSync, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import forge from 'node-forge';
import type { CheckResult } from '../../src/check/facts.ts';
import { type CheckReport, runChecks } from '../../src/check/report.ts';
import { parseConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { silentLogger } from '../../src/core/log.ts';
import { parseZoneLine } from '../../src/dns/published.ts';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { dnsRecords } from '../../src/hygiene/dns-records.ts';
import { startTestDns, type TestDnsServer, type TestRecord } from '../harness/dns.ts';
import { runCli } from '../harness/process.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

const HOST = 'mx.test.example';
const ADDRESS = '192.0.2.10';
const PTR = '10.2.0.192.in-addr.arpa';
const DOMAINS = ['good.test', 'soft.test', 'bare.test', 'wrong.test', 'open.test'];

// ---- certificates (node-forge) -------------------------------------------------------------

const pair = () =>
  generateKeyPairSync('rsa', {
    modulusLength: 2048,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
const caKeys = pair();
const leafKeys = pair();
const DAY = 86_400_000;

function certificate(opts: {
  names: string[];
  notBefore: Date;
  notAfter: Date;
  ca?: boolean;
  issuer?: forge.pki.Certificate;
}): forge.pki.Certificate {
  const c = forge.pki.createCertificate();
  c.publicKey = forge.pki.publicKeyFromPem(opts.ca ? caKeys.publicKey : leafKeys.publicKey);
  c.serialNumber = `01${randomBytes(8).toString('hex')}`;
  c.validity.notBefore = opts.notBefore;
  c.validity.notAfter = opts.notAfter;
  c.setSubject([{ name: 'commonName', value: opts.names[0] as string }]);
  c.setIssuer(opts.issuer ? opts.issuer.subject.attributes : [{ name: 'commonName', value: opts.names[0] as string }]);
  c.setExtensions(
    opts.ca
      ? [
          { name: 'basicConstraints', cA: true },
          { name: 'keyUsage', keyCertSign: true, cRLSign: true },
        ]
      : [
          { name: 'basicConstraints', cA: false },
          { name: 'keyUsage', digitalSignature: true, keyEncipherment: true },
          { name: 'extKeyUsage', serverAuth: true },
          { name: 'subjectAltName', altNames: opts.names.map((value) => ({ type: 2, value })) },
        ],
  );
  c.sign(forge.pki.privateKeyFromPem(caKeys.privateKey), forge.md.sha256.create());
  return c;
}

const now = Date.now();
const ca = certificate({
  names: ['arcline test CA'],
  ca: true,
  notBefore: new Date(now - DAY),
  notAfter: new Date(now + 30 * DAY),
});
const CA_PEM = forge.pki.certificateToPem(ca);
const leaf = (names: string[], notBefore = new Date(now - DAY), notAfter = new Date(now + 30 * DAY)) =>
  forge.pki.certificateToPem(certificate({ names, notBefore, notAfter, issuer: ca }));
const GOOD_NAMES = [HOST, ...DOMAINS.map((d) => `mta-sts.${d}`)];

// ---- the zones -----------------------------------------------------------------------------

/** The zone lines `arcline dns-records` prints for a domain, as test DNS records (MX, TXT). */
function published(lines: readonly string[], skip: (name: string) => boolean = () => false): TestRecord[] {
  const out: TestRecord[] = [];
  for (const l of lines) {
    const r = parseZoneLine(l);
    if (!r || skip(r.name)) continue;
    if (r.type === 'MX') {
      const [pref, exchange] = r.value.split(' ');
      out.push({ type: 'MX', name: r.name, preference: Number(pref), exchange: exchange as string });
    } else if (r.type === 'TXT') out.push({ type: 'TXT', name: r.name, text: r.value });
  }
  return out;
}

const find = (r: CheckReport, domain: string | null, check: string) =>
  r.checks.filter((c) => c.domain === domain && c.check === check);
const only = (r: CheckReport, domain: string | null, check: string): CheckResult => {
  const all = find(r, domain, check);
  assert.equal(all.length, 1, `${domain} ${check}: ${JSON.stringify(all)}`);
  return all[0] as CheckResult;
};

describe('arcline check', () => {
  let dns: TestDnsServer;
  let server: TestServer;
  let cliConfig: Config;
  let cliConfigFile: string;
  let certFile: string;
  let certDir = '';
  const records = new Map<string, string[]>();

  const check = (opts: { ca?: boolean; domains?: string[] } = {}) =>
    runChecks(
      {
        config: cliConfig,
        resolver: createPromiseResolver([dns.address], 2000),
        dkim: server.admin.dkim,
        ...(opts.ca === false ? {} : { ca: [CA_PEM] }),
      },
      opts.domains ?? DOMAINS,
    );
  const cli = (args: string[]) =>
    runCli(['--config', cliConfigFile, 'check', ...args], { env: { NODE_EXTRA_CA_CERTS: join(server.dir, 'ca.pem') } });
  const reloadCert = async (pem: string) => {
    await writeFile(certFile, pem);
    await server.server.tls.reload(silentLogger());
  };

  before(async () => {
    dns = await startTestDns([
      { type: 'A', name: HOST, address: ADDRESS },
      { type: 'PTR', name: PTR, target: HOST },
    ]);
    certDir = await mkdtemp(join(tmpdir(), 'arcline-check-certs-'));
    certFile = join(certDir, 'cert.pem');
    const keyFile = join(certDir, 'key.pem');
    await writeFile(certFile, leaf(GOOD_NAMES));
    await writeFile(keyFile, leafKeys.privateKey);
    server = await startTestServer({
      domains: DOMAINS,
      users: ['alice@good.test'],
      submission: true,
      extra: [
        `[dns]\nservers = ["${dns.address}"]`,
        '[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = ["127.0.0.1:0"]',
        `[tls]\ncert = "${certFile}"\nkey = "${keyFile}"`,
      ].join('\n'),
    });
    await writeFile(join(server.dir, 'ca.pem'), CA_PEM);
    const https = server.server.http[1]?.port;
    // The CLI's configuration: the same data, the ports the server bound.
    const text = `hostname = "${HOST}"
[storage]
maildir = "${server.config.storage.maildir}"
state = "${server.config.storage.state}"
[smtp]
listen = ["127.0.0.1:${server.port}"]
[submission]
listen = ["127.0.0.1:${server.submissionPort}"]
tls_listen = ["127.0.0.1:${server.submissionTlsPort}"]
[imap]
listen = []
tls_listen = ["127.0.0.1:${server.imapsPort}"]
[http]
listen = []
tls_listen = ["127.0.0.1:${https}"]
[dns]
servers = ["${dns.address}"]
[monitor]
dnsbl = ["bl.test"]
[dkim]
algorithm = "ed25519"
[tls]
cert = "${certFile}"
key = "${keyFile}"
`;
    cliConfigFile = join(server.dir, 'check.toml');
    await writeFile(cliConfigFile, text);
    cliConfig = parseConfigText(text, cliConfigFile);
    const m = cliConfig.mta_sts;
    for (const d of DOMAINS) {
      const keys = await server.admin.dkim.keys(d);
      assert.equal(keys.length, 1);
      records.set(
        d,
        dnsRecords({ domain: d, hostname: HOST, keys, mtaSts: { mode: m.mode, maxAgeMs: m.max_age, mx: m.mx } }),
      );
    }
    const lines = (d: string) => records.get(d) ?? [];
    dns.add(...published(lines('good.test')));
    // soft.test: works, but DMARC p=none and no TLS-RPT.
    dns.add(...published(lines('soft.test'), (n) => n.startsWith('_dmarc.') || n.startsWith('_smtp._tls.')), {
      type: 'TXT',
      name: '_dmarc.soft.test',
      text: 'v=DMARC1; p=none; rua=mailto:postmaster@soft.test',
    });
    // bare.test: nothing published at all.
    // wrong.test: every record there, every one wrong.
    const other = generateKeyPairSync('ed25519').publicKey.export({ type: 'spki', format: 'der' }).subarray(-32);
    dns.add(
      { type: 'MX', name: 'wrong.test', preference: 10, exchange: 'mx.elsewhere.example' },
      { type: 'TXT', name: 'wrong.test', text: 'v=spf1 ip4:198.51.100.1 -all' },
      { type: 'TXT', name: 'arcline._domainkey.wrong.test', text: `v=DKIM1; k=ed25519; p=${other.toString('base64')}` },
      { type: 'TXT', name: '_dmarc.wrong.test', text: 'v=DMARC1; rua=mailto:x@wrong.test' },
      { type: 'TXT', name: '_mta-sts.wrong.test', text: 'v=STSv1; id=20190101' },
      { type: 'TXT', name: '_smtp._tls.wrong.test', text: 'v=TLSRPTv1;' },
    );
    // open.test: a null MX, SPF for everyone and two DMARC records; the DKIM key is right.
    dns.add(
      { type: 'MX', name: 'open.test', preference: 0, exchange: '.' },
      { type: 'TXT', name: 'open.test', text: 'v=spf1 +all' },
      ...published(lines('open.test'), (n) => !n.includes('._domainkey.')),
      { type: 'TXT', name: '_dmarc.open.test', text: 'v=DMARC1; p=reject' },
      { type: 'TXT', name: '_dmarc.open.test', text: 'v=DMARC1; p=none' },
    );
  });
  after(async () => {
    await server?.stop();
    await dns?.close();
    if (certDir) await rm(certDir, { recursive: true, force: true });
  });

  test('all green: the records of `arcline dns-records`, reverse DNS, no listing, a valid certificate', async () => {
    const r = await check({ domains: ['good.test'] });
    const bad = r.checks.filter((c) => c.status !== 'pass');
    assert.deepEqual(bad, [], JSON.stringify(bad, null, 2));
    assert.equal(r.exit, 0);
    assert.deepEqual(r.addresses, [ADDRESS], 'the A record of the host name, without [server] public_addresses');
    const tls = find(r, null, 'tls');
    assert.deepEqual(tls.map((t) => t.message.split(' ')[0]).sort(), ['imaps', 'smtp', 'submission', 'submissions']);
    for (const t of ['mx', 'spf', 'dkim', 'dmarc', 'mta-sts', 'tls-rpt'])
      assert.equal(only(r, 'good.test', t).status, 'pass');
    assert.equal(only(r, null, 'fcrdns').status, 'pass');
    assert.match(only(r, null, 'dnsbl').message, /not listed on bl\.test/);
  });

  test('nothing published: no MX, no SPF, no DKIM, no DMARC fail, with the records to publish; no MTA-STS, no TLS-RPT warn', async () => {
    const r = await check({ domains: ['bare.test'] });
    const lines = records.get('bare.test') ?? [];
    const mx = only(r, 'bare.test', 'mx');
    assert.equal(mx.status, 'fail');
    assert.match(mx.message, /no MX record/);
    assert.deepEqual(mx.fix, [lines.find((l) => l.includes(' IN MX '))]);
    const spf = find(r, 'bare.test', 'spf');
    assert.equal(spf.length, 1);
    assert.equal(spf[0]?.status, 'fail');
    assert.deepEqual(spf[0]?.fix, ['bare.test. 3600 IN TXT "v=spf1 mx -all"']);
    const dkim = only(r, 'bare.test', 'dkim');
    assert.equal(dkim.status, 'fail');
    assert.match(dkim.message, /DKIM key arcline is not published at arcline\._domainkey\.bare\.test/);
    assert.match(dkim.fix[0] ?? '', /^arcline\._domainkey\.bare\.test\. 3600 IN TXT \( "v=DKIM1; k=ed25519; p=/);
    assert.equal(only(r, 'bare.test', 'dmarc').status, 'fail');
    assert.match(
      only(r, 'bare.test', 'dmarc').fix[0] ?? '',
      /^_dmarc\.bare\.test\. 3600 IN TXT "v=DMARC1; p=quarantine/,
    );
    assert.equal(only(r, 'bare.test', 'mta-sts').status, 'warn');
    assert.equal(only(r, 'bare.test', 'tls-rpt').status, 'warn');
    assert.equal(r.exit, 1);
  });

  test('every record wrong: MX elsewhere, SPF not covering us, another DKIM key, DMARC without p=, stale MTA-STS id, TLS-RPT without rua', async () => {
    const r = await check({ domains: ['wrong.test'] });
    assert.match(only(r, 'wrong.test', 'mx').message, /MX points at mx\.elsewhere\.example, not at this server/);
    const spf = only(r, 'wrong.test', 'spf');
    assert.equal(spf.status, 'fail');
    assert.match(spf.message, /SPF gives fail for our address 192\.0\.2\.10/);
    assert.ok(spf.fix.includes('or add ip4:192.0.2.10 to "v=spf1 ip4:198.51.100.1 -all"'), spf.fix.join('\n'));
    const dkim = only(r, 'wrong.test', 'dkim');
    assert.equal(dkim.status, 'fail');
    assert.match(dkim.message, /is not ours/);
    assert.match(only(r, 'wrong.test', 'dmarc').message, /no valid p= tag/);
    const sts = only(r, 'wrong.test', 'mta-sts');
    assert.equal(sts.status, 'fail');
    assert.match(sts.message, /id is 20190101, ours is [0-9a-f]{20}: senders keep an old policy/);
    assert.equal(only(r, 'wrong.test', 'tls-rpt').status, 'fail');
  });

  test('dangerous records: a null MX, SPF +all, two DMARC records; SPF -all refuses our own address', async () => {
    let r = await check({ domains: ['open.test'] });
    assert.match(only(r, 'open.test', 'mx').message, /null MX/);
    const spf = find(r, 'open.test', 'spf');
    assert.deepEqual(
      spf.map((s) => s.status),
      ['fail', 'pass'],
    );
    assert.match(spf[0]?.message ?? '', /authorises every host/);
    assert.match(only(r, 'open.test', 'dmarc').message, /publishes 2 DMARC records/);
    assert.equal(only(r, 'open.test', 'dkim').status, 'pass');
    dns.remove('open.test', 'TXT');
    dns.add({ type: 'TXT', name: 'open.test', text: 'v=spf1 -all' });
    r = await check({ domains: ['open.test'] });
    assert.match(only(r, 'open.test', 'spf').message, /SPF gives fail for our address/);
  });

  test('MTA-STS: a record published while no HTTPS listener serves the policy', async () => {
    const saved = cliConfig;
    try {
      cliConfig = { ...saved, http: { ...saved.http, tls_listen: [] } };
      const r = await check({ domains: ['good.test'] });
      const sts = only(r, 'good.test', 'mta-sts');
      assert.equal(sts.status, 'fail');
      assert.match(sts.message, /no HTTPS listener serves the policy/);
    } finally {
      cliConfig = saved;
    }
  });

  test('p=none and no TLS-RPT are warnings', async () => {
    const r = await check({ domains: ['soft.test'] });
    assert.equal(only(r, 'soft.test', 'dmarc').status, 'warn');
    assert.match(only(r, 'soft.test', 'dmarc').message, /p=none/);
    assert.equal(only(r, 'soft.test', 'tls-rpt').status, 'warn');
    assert.equal(r.checks.filter((c) => c.status === 'fail').length, 0);
    assert.equal(r.exit, 3);
  });

  test('reverse DNS: no PTR, a PTR that does not resolve back, a confirmed PTR that is not the host name', async () => {
    try {
      dns.remove(PTR);
      let r = await check({ domains: [] });
      assert.equal(only(r, null, 'fcrdns').status, 'fail');
      assert.match(only(r, null, 'fcrdns').message, /192\.0\.2\.10 has no PTR record/);
      assert.deepEqual(only(r, null, 'fcrdns').fix[0], `${PTR}. 3600 IN PTR ${HOST}.`);
      dns.add(
        { type: 'PTR', name: PTR, target: 'host.provider.example' },
        { type: 'A', name: 'host.provider.example', address: '203.0.113.5' },
      );
      r = await check({ domains: [] });
      assert.match(
        only(r, null, 'fcrdns').message,
        /PTR of 192\.0\.2\.10 is host\.provider\.example, which does not resolve back/,
      );
      dns.add({ type: 'A', name: 'host.provider.example', address: ADDRESS });
      r = await check({ domains: [] });
      assert.equal(only(r, null, 'fcrdns').status, 'warn');
      assert.match(only(r, null, 'fcrdns').message, /not to mx\.test\.example/);
    } finally {
      dns.remove(PTR);
      dns.add({ type: 'PTR', name: PTR, target: HOST });
    }
  });

  test('listed on a blocklist: the zone, the return code and the reason', async () => {
    const name = `10.2.0.192.bl.test`;
    try {
      dns.add({ type: 'A', name, address: '127.0.0.3' }, { type: 'TXT', name, text: 'spam trap hits' });
      const r = await check({ domains: [] });
      const bl = only(r, null, 'dnsbl');
      assert.equal(bl.status, 'fail');
      assert.equal(bl.message, '192.0.2.10 is listed on bl.test (127.0.0.3): spam trap hits');
    } finally {
      dns.remove(name);
    }
  });

  test('certificates: the wrong name, expired, not from a trusted CA', async () => {
    try {
      await reloadCert(leaf(['other.example']));
      let r = await check({ domains: ['good.test'] });
      assert.match(
        only(r, 'good.test', 'mta-sts').message,
        /the certificate served for mta-sts\.good\.test is for other\.example, not mta-sts\.good\.test: senders ignore the policy/,
      );
      let tls = find(r, null, 'tls');
      assert.equal(tls.length, 4);
      for (const t of tls) {
        assert.equal(t.status, 'fail');
        assert.match(t.message, /the certificate is for other\.example, not mx\.test\.example/);
      }
      await reloadCert(leaf(GOOD_NAMES, new Date(now - 60 * DAY), new Date(now - DAY)));
      r = await check({ domains: [] });
      for (const t of find(r, null, 'tls')) assert.match(t.message, /the certificate expired on \d{4}-\d\d-\d\d/);
      await reloadCert(leaf(GOOD_NAMES));
      r = await check({ domains: [], ca: false });
      tls = find(r, null, 'tls');
      for (const t of tls) {
        assert.equal(t.status, 'warn');
        assert.match(t.message, /not from a trusted CA/);
      }
    } finally {
      await reloadCert(leaf(GOOD_NAMES));
    }
  });

  test('the admin API: GET /api/v1/domains/{name}/check, for the domain and its own token', async () => {
    const token = (await server.admin.access.create({ role: { kind: 'domain', domain: 'soft.test' } })).token;
    const get = (name: string) =>
      fetch(`http://127.0.0.1:${server.server.http[0]?.port}/api/v1/domains/${name}/check`, {
        headers: { authorization: `Bearer ${token}` },
      });
    const r = await get('soft.test');
    assert.equal(r.status, 200);
    const j = (await r.json()) as CheckReport;
    assert.deepEqual(j.domains, ['soft.test']);
    const of = (domain: string | null, check: string) =>
      j.checks.filter((c) => c.domain === domain && c.check === check);
    assert.equal(of('soft.test', 'dmarc')[0]?.status, 'warn');
    // The server process trusts only the system's CAs, not the test CA: the listeners (probed
    // where they are bound) are named right but untrusted, and senders would refuse the policy.
    const tls = of(null, 'tls');
    assert.equal(tls.length, 4);
    for (const t of tls) assert.match(t.message, /not from a trusted CA/);
    assert.match(of('soft.test', 'mta-sts')[0]?.message ?? '', /not from a trusted CA.*senders ignore the policy/);
    assert.equal(j.exit, 1);
    assert.equal((await get('good.test')).status, 403);
  });

  test('the CLI: one line per check with the fix, exit 0 when all pass', async () => {
    const r = await cli(['good.test']);
    assert.equal(r.code, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /^server mx\.test\.example \(192\.0\.2\.10\)\n/);
    assert.match(r.stdout, /\n {2}✓ mx {8}MX points at mx\.test\.example\n/);
    assert.match(r.stdout, /\n\d+ passed, 0 warning\(s\), 0 failed\n$/);
    const soft = await cli(['soft.test']);
    assert.equal(soft.code, 3, soft.stdout);
    assert.match(soft.stdout, /\n {2}! dmarc {5}DMARC policy is p=none/);
  });

  test('the CLI: --json has a stable shape; exit 1 with a failure; unknown domains are refused', async () => {
    const r = await cli(['--json']);
    assert.equal(r.code, 1, r.stderr);
    const j = JSON.parse(r.stdout) as CheckReport;
    assert.equal(j.version, 1);
    assert.equal(j.hostname, HOST);
    assert.deepEqual(j.addresses, [ADDRESS]);
    assert.deepEqual([...j.domains].sort(), [...DOMAINS].sort());
    assert.equal(j.status, 'fail');
    assert.equal(j.exit, 1);
    for (const c of j.checks) {
      assert.deepEqual(Object.keys(c).sort(), ['check', 'domain', 'fix', 'message', 'status']);
      assert.ok(['pass', 'warn', 'fail'].includes(c.status));
    }
    const bare = j.checks.find((c) => c.domain === 'bare.test' && c.check === 'mx');
    assert.equal(bare?.status, 'fail');
    const human = await cli(['bare.test']);
    assert.equal(human.code, 1);
    assert.match(
      human.stdout,
      /\n {2}✗ mx {8}bare\.test has no MX record\n {6}fix: bare\.test\. 3600 IN MX 10 mx\.test\.example\.\n/,
    );
    const unknown = await cli(['nowhere.test']);
    assert.equal(unknown.code, 1);
    assert.match(unknown.stderr, /^arcline: no domain nowhere\.test$/m);
  });
});
