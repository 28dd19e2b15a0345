// ACME against Debian's real pebble (test/harness/pebble.ts): the real server as a child process,
// its HTTP/HTTPS listeners on the ports pebble validates, names resolved by our test DNS server
// (loopback only). First issuance over tls-alpn-01 and over http-01, every TLS listener
// switching to the new certificate without a restart, renewal, a failing challenge and a CA
// that is down.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { get } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, type TestContext, test } from 'node:test';
import tls from 'node:tls';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { freePort, httpsText, pebbleListener, startPebble } from '../harness/pebble.ts';
import { runCli, type ServerProcess, spawnServer } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';

const HOST = 'mx.test.example';
const NAMES = [HOST, 'mta-sts.example.test', 'autoconfig.example.test'];

let dns: TestDnsServer;
let httpPort: number;
let tlsPort: number;
const cleanups: (() => Promise<unknown>)[] = [];

before(async () => {
  dns = await startTestDns(NAMES.map((name) => ({ type: 'A' as const, name, address: '127.0.0.1' })));
  cleanups.push(() => dns.close());
  httpPort = await freePort();
  tlsPort = await freePort();
});

after(async () => {
  for (const c of cleanups.reverse()) await c().catch(() => {});
});

interface Arcline {
  readonly proc: ServerProcess;
  readonly dir: string;
  readonly configFile: string;
  stop(): Promise<void>;
}

async function startArcline(t: TestContext, caFile: string | null, acme: string): Promise<Arcline> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-acme-'));
  const configFile = join(dir, 'arcline.toml');
  const extra = `[http]
listen = ["127.0.0.1:${httpPort}"]
tls_listen = ["127.0.0.1:${tlsPort}"]
[metrics]
listen = ["127.0.0.1:0"]
[acme]
${acme}
`;
  await writeFile(configFile, TEST_CONFIG(dir, extra).replace('level = "debug"', 'level = "info"'));
  const r = await runCli(['--config', configFile, 'domain', 'add', 'example.test']);
  assert.equal(r.code, 0, r.stderr);
  const proc = await spawnServer(configFile, { env: caFile ? { NODE_EXTRA_CA_CERTS: caFile } : {} });
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    proc.child.kill('SIGTERM');
    await proc.exited;
    await rm(dir, { recursive: true, force: true });
  };
  t.after(stop);
  return { proc, dir, configFile, stop };
}

/** The `n`-th log line (1-based) matching `pred`, awaited as the server writes its log. */
function logged(p: ServerProcess, pred: (l: Record<string, unknown>) => boolean, n = 1, ms = 20_000) {
  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const check = () => {
      const hits = p.logs.filter(pred);
      const hit = hits[n - 1];
      if (!hit) return false;
      p.child.stdout?.off('data', onData);
      clearTimeout(timer);
      resolve(hit);
      return true;
    };
    const onData = () => setImmediate(check);
    const timer = setTimeout(() => {
      p.child.stdout?.off('data', onData);
      reject(new Error(`no log line #${n} as awaited; log: ${JSON.stringify(p.logs.slice(-10))}`));
    }, ms);
    if (!check()) p.child.stdout?.on('data', onData);
  });
}

const msg = (m: string) => (l: Record<string, unknown>) => l.msg === m;

async function metric(p: ServerProcess, name: string): Promise<number> {
  const port = p.ports.metrics?.[0];
  const text = await new Promise<string>((resolve, reject) => {
    get(`http://127.0.0.1:${port}/metrics`, (res) => {
      let b = '';
      res.on('data', (d) => {
        b += d;
      });
      res.on('end', () => resolve(b));
    }).on('error', reject);
  });
  const line = text.split('\n').find((l) => l.startsWith(`${name} `));
  return line ? Number(line.split(' ')[1]) : Number.NaN;
}

/** The certificate IMAPS presents, verified against `ca` when given. */
function imapsCert(port: number, ca?: string): Promise<{ cert: X509Certificate; authorized: boolean }> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({
      port,
      host: '127.0.0.1',
      servername: HOST,
      ...(ca ? { ca } : { rejectUnauthorized: false }),
    });
    s.once('secureConnect', () => {
      const cert = s.getPeerX509Certificate();
      const authorized = s.authorized;
      s.destroy();
      if (cert) resolve({ cert, authorized });
      else reject(new Error('no peer certificate'));
    });
    s.once('error', reject);
  });
}

/** The chain SMTP STARTTLS presents: leaf signed by the intermediate signed by `root`. */
async function starttlsChainOk(port: number, root: string): Promise<X509Certificate> {
  const c = await RawSmtp.connect(port);
  assert.equal((await c.read()).code, 220);
  assert.equal((await c.cmd('EHLO client.test')).code, 250);
  const s = await c.startTls(HOST);
  const peer = s.getPeerCertificate(true);
  const leaf = new X509Certificate(peer.raw);
  const inter = new X509Certificate(peer.issuerCertificate.raw);
  s.destroy();
  assert.ok(leaf.verify(inter.publicKey), 'leaf signed by the intermediate');
  assert.ok(inter.verify(new X509Certificate(root).publicKey), 'intermediate signed by pebble root');
  return leaf;
}

function sans(cert: X509Certificate): string[] {
  return (cert.subjectAltName ?? '').split(', ').map((n) => n.replace(/^DNS:/, ''));
}

describe('ACME against pebble', () => {
  test('tls-alpn-01: first issuance, used by IMAPS, SMTP STARTTLS and HTTPS at once; a new domain gets a new certificate; a failing challenge keeps it', async (t) => {
    const pebble = await startPebble({ httpPort: 1, tlsPort, dnsServer: dns.address });
    t.after(() => pebble.close());
    const root = await pebble.root();
    const a = await startArcline(
      t,
      pebble.caFile,
      `directory_url = "${pebble.directoryUrl}"\nchallenges = ["tls-alpn-01"]\nretry_initial = "30s"`,
    );
    // Until issuance the self-signed certificate serves.
    const issued = await logged(a.proc, msg('ACME certificate issued'));
    assert.deepEqual([...(issued.names as string[])].sort(), [...NAMES].sort());

    const imaps = await imapsCert(a.proc.ports.imap?.[1] ?? 0, root);
    assert.equal(imaps.authorized, true, 'IMAPS certificate verifies against pebble root');
    assert.deepEqual(sans(imaps.cert).sort(), [...NAMES].sort());
    assert.equal(imaps.cert.serialNumber, issued.serial);
    const leaf = await starttlsChainOk(a.proc.port, root);
    assert.equal(leaf.serialNumber, issued.serial);

    // MTA-STS policy over HTTPS with the ACME certificate, chosen by the Host header.
    const policy = await httpsText(`https://127.0.0.1:${tlsPort}/.well-known/mta-sts.txt`, root, {
      servername: 'mta-sts.example.test',
      host: 'mta-sts.example.test',
    });
    assert.equal(policy, `version: STSv1\r\nmode: testing\r\nmx: ${HOST}\r\nmax_age: 604800\r\n`);
    await assert.rejects(
      httpsText(`https://127.0.0.1:${tlsPort}/.well-known/mta-sts.txt`, root, {
        servername: 'mta-sts.example.test',
        host: 'mta-sts.other.test',
      }),
      /404/,
    );
    assert.equal(await metric(a.proc, 'arcline_acme_certificates_issued_total'), 1);
    const expiry = await metric(a.proc, 'arcline_acme_certificate_expiry_timestamp_seconds');
    assert.ok(expiry * 1000 > Date.now(), `expiry gauge ${expiry}`);
    const st = await stat(join(a.dir, 'state', 'acme', 'certificate.pem'));
    assert.equal(st.mode & 0o777, 0o600);
    assert.equal((await stat(join(a.dir, 'state', 'acme'))).mode & 0o777, 0o700);
    assert.equal((await stat(join(a.dir, 'state', 'acme', 'account.json'))).mode & 0o777, 0o600);

    // A new domain: SIGHUP re-evaluates the names, a certificate that also covers it is issued and
    // served at once.
    dns.add(
      { type: 'A', name: 'mta-sts.new.test', address: '127.0.0.1' },
      { type: 'A', name: 'autoconfig.new.test', address: '127.0.0.1' },
    );
    assert.equal((await runCli(['--config', a.configFile, 'domain', 'add', 'new.test'])).code, 0);
    a.proc.child.kill('SIGHUP');
    const requested = await logged(a.proc, msg('ACME: requesting a certificate'), 2);
    assert.equal(requested.reason, 'names');
    const reissued = await logged(a.proc, msg('ACME certificate issued'), 2);
    const withNew = await imapsCert(a.proc.ports.imap?.[1] ?? 0, root);
    assert.equal(withNew.cert.serialNumber, reissued.serial);
    assert.ok(sans(withNew.cert).includes('mta-sts.new.test'));

    // A new domain whose names point at 127.0.0.2, where nothing listens: SIGHUP re-evaluates the
    // names, the order fails, the failure is counted and logged, a retry is scheduled, and the
    // certificate in use stays.
    dns.add(
      { type: 'A', name: 'mta-sts.bad.test', address: '127.0.0.2' },
      { type: 'A', name: 'autoconfig.bad.test', address: '127.0.0.2' },
    );
    const r = await runCli(['--config', a.configFile, 'domain', 'add', 'bad.test']);
    assert.equal(r.code, 0, r.stderr);
    a.proc.child.kill('SIGHUP');
    const failed = await logged(a.proc, msg('ACME certificate request failed; keeping the certificate in use'));
    assert.equal(failed.level, 50);
    assert.match(failed.err as string, /127\.0\.0\.2:\d+ for the tls-alpn-01 challenge/);
    assert.ok((failed.retry_in_ms as number) >= 15_000, `retry in ${failed.retry_in_ms}`);
    assert.ok((failed.names as string[]).includes('mta-sts.bad.test'));
    assert.equal(await metric(a.proc, 'arcline_acme_failures_total'), 1);
    const still = await imapsCert(a.proc.ports.imap?.[1] ?? 0, root);
    assert.equal(still.authorized, true);
    assert.equal(still.cert.serialNumber, reissued.serial);
    await a.stop();
  });

  test('http-01: first issuance and renewal of a short-lived certificate, used without a restart', async (t) => {
    // 6 s certificates: renewed a third of their lifetime before expiry, i.e. 4 s after issuance.
    const pebble = await startPebble({ httpPort, tlsPort: 1, dnsServer: dns.address, validitySeconds: 6 });
    t.after(() => pebble.close());
    const root = await pebble.root();
    const a = await startArcline(
      t,
      pebble.caFile,
      `directory_url = "${pebble.directoryUrl}"\nchallenges = ["http-01"]`,
    );
    const first = await logged(a.proc, msg('ACME certificate issued'));
    const leaf = await starttlsChainOk(a.proc.port, root);
    assert.equal(leaf.serialNumber, first.serial);
    const renewing = await logged(a.proc, msg('ACME: requesting a certificate'), 2);
    assert.equal(renewing.reason, 'expiring');
    const second = await logged(a.proc, msg('ACME certificate issued'), 2);
    assert.notEqual(second.serial, first.serial);
    const imaps = await imapsCert(a.proc.ports.imap?.[1] ?? 0, root);
    assert.equal(imaps.authorized, true);
    // The renewed certificate (or a later one, on a slow machine), never the first.
    assert.notEqual(imaps.cert.serialNumber, first.serial);
    await a.stop();
  });

  test('a CA that is down: failure counted and logged, the server keeps serving; the retry succeeds once it is up', async (t) => {
    // The CA's port and certificate are chosen now; pebble itself starts only later.
    const dir = await mkdtemp(join(tmpdir(), 'arcline-pebble-listener-'));
    t.after(() => rm(dir, { recursive: true, force: true }));
    const listener = await pebbleListener(dir);
    const a = await startArcline(
      t,
      listener.certFile,
      `directory_url = "${listener.directoryUrl}"\nretry_initial = "2s"`,
    );
    const failed = await logged(a.proc, msg('ACME certificate request failed; keeping the certificate in use'));
    assert.match(failed.err as string, /cannot reach the ACME directory .*ECONNREFUSED/);
    assert.ok((failed.retry_in_ms as number) >= 1000 && (failed.retry_in_ms as number) <= 2000);
    assert.equal(await metric(a.proc, 'arcline_acme_failures_total'), 1);
    assert.equal(await metric(a.proc, 'arcline_acme_certificate_expiry_timestamp_seconds'), 0);
    // The self-signed certificate serves meanwhile, and mail still flows in.
    const imaps = await imapsCert(a.proc.ports.imap?.[1] ?? 0);
    assert.equal(imaps.cert.subject, imaps.cert.issuer);
    const c = await RawSmtp.connect(a.proc.port);
    assert.equal((await c.read()).code, 220);
    assert.equal((await c.cmd('EHLO client.test')).code, 250);
    c.close();
    // The CA comes up: a later retry gets the certificate.
    const pebble = await startPebble({ httpPort, tlsPort, dnsServer: dns.address, listener });
    t.after(() => pebble.close());
    const issued = await logged(a.proc, msg('ACME certificate issued'));
    const after = await imapsCert(a.proc.ports.imap?.[1] ?? 0, await pebble.root());
    assert.equal(after.authorized, true);
    assert.equal(after.cert.serialNumber, issued.serial);
    await a.stop();
  });
});
