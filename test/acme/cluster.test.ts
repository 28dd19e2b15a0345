// ACME across two nodes on one PostgreSQL (docs/cluster.md "ACME and the blocklist monitor
// across nodes"), against Debian's real pebble validating for real (not PEBBLE_VA_ALWAYS_VALID):
// two "nodes" in this process, each with its own Postgres pool, TlsManager, challenge responder
// and HTTP/HTTPS listeners (web/server.ts) on their own loopback ports, and a LeaderRunner
// offering the leader task `acme`. Pebble validates through node B's ports only, while the
// renewal runs on node A: B answers from the shared store and serves the certificate A got.
// Then the leader dies mid-order: B takes the task over, orders again and both serve its
// certificate.

import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, type TestContext, test } from 'node:test';
import tls from 'node:tls';
import { pino } from 'pino';
import type { Logger } from '../../src/core/log.ts';
import { LeaderRunner } from '../../src/db/leader.ts';
import { Notifier } from '../../src/db/notify.ts';
import type { Postgres } from '../../src/db/postgres.ts';
import { AcmeManager, acmeLeaderTask, type ChallengeType } from '../../src/tls/acme.ts';
import { ChallengeResponder, followAcmeCertificate } from '../../src/tls/acme-serve.ts';
import type { AcmeStore } from '../../src/tls/acme-store.ts';
import { PostgresAcmeStore } from '../../src/tls/acme-store-pg.ts';
import { TlsManager } from '../../src/tls/certs.ts';
import { acmeHttpRoute, Router } from '../../src/web/routes.ts';
import { WebServer } from '../../src/web/server.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { freePort, type Pebble, startPebble } from '../harness/pebble.ts';
import { freshDatabaseForFile, type TestDatabase } from '../harness/postgres.ts';
import { waitUntil } from '../harness/submit.ts';

const HOST = 'mx.test.example';
const NAMES = [HOST, 'mta-sts.example.test', 'autoconfig.example.test'];
const LEADER_INTERVAL = 300;

let dns: TestDnsServer;
const defaultCas = tls.getCACertificates('default');
before(async () => {
  dns = await startTestDns(
    [...NAMES, 'mta-sts.two.test', 'autoconfig.two.test'].map((name) => ({
      type: 'A' as const,
      name,
      address: '127.0.0.1',
    })),
  );
});
after(async () => {
  tls.setDefaultCACertificates(defaultCas);
  await dns.close();
});

/** A logger whose lines are kept (JSON objects), to await what a node logged. */
function keptLogger(): { log: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l) as Record<string, unknown>);
      done();
    },
  });
  return { log: pino({ level: 'info' }, sink) as unknown as Logger, lines };
}

interface Node {
  readonly name: string;
  readonly db: Postgres;
  readonly store: AcmeStore;
  readonly tls: TlsManager;
  readonly manager: AcmeManager;
  readonly runner: LeaderRunner;
  readonly lines: Record<string, unknown>[];
  /** Validation requests its listeners answered (http-01 tokens, tls-alpn-01 names). */
  readonly asked: string[];
  readonly https: number;
  /** When its TlsManager switched certificates (performance.now()). */
  readonly switched: number[];
}

async function startNode(
  t: TestContext,
  o: {
    name: string;
    db: TestDatabase;
    pebble: Pebble;
    challenges: ChallengeType[];
    http: string;
    https: string;
    domains: () => string[];
    /** Wraps the node's store (a node that stalls mid-order). */
    wrap?: (s: AcmeStore) => AcmeStore;
  },
): Promise<Node> {
  const dir = await mkdtemp(join(tmpdir(), `arcline-acme-${o.name}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  const { log, lines } = keptLogger();
  const db = await o.db.open();
  const shared = await PostgresAcmeStore.open(db);
  const store = o.wrap ? o.wrap(shared) : shared;
  const tlsManager = await TlsManager.open({ files: null, acmeStore: store, stateDir: dir, hostname: HOST }, log);
  const switched: number[] = [];
  tlsManager.onChange(() => switched.push(performance.now()));
  const notifier = await Notifier.start({
    session: { url: o.db.url, connectTimeoutMs: 5000, applicationName: `arcline-test-${o.name}` },
  });
  t.after(() => notifier.close());
  const follower = await followAcmeCertificate({ tls: tlsManager, store, notifier, log });
  t.after(() => follower.close());
  const responder = new ChallengeResponder(store, log);
  const asked: string[] = [];
  const web = new WebServer({
    log,
    tls: tlsManager,
    router: new Router().add(
      acmeHttpRoute((token) => {
        asked.push(`http-01 ${token}`);
        return responder.httpChallenge(token);
      }),
    ),
    alpnChallenge: (name) => {
      asked.push(`tls-alpn-01 ${name}`);
      return responder.alpnChallenge(name);
    },
    maxConnections: 100,
    timeoutMs: 10_000,
  });
  const bound = await web.listen([o.http], [o.https]);
  t.after(() => web.close());
  const manager = new AcmeManager({
    settings: {
      directoryUrl: o.pebble.directoryUrl,
      email: '',
      extraNames: [],
      renewBeforeMs: 30 * 86_400_000,
      challenges: o.challenges,
      checkIntervalMs: 3_600_000,
      retryInitialMs: 60_000,
    },
    stateDir: dir,
    store,
    hostname: HOST,
    domains: async () => o.domains(),
    tls: tlsManager,
    log,
  });
  t.after(() => manager.stop());
  const runner = new LeaderRunner({
    session: { url: o.db.url, connectTimeoutMs: 5000, applicationName: `arcline-test-${o.name}` },
    intervalMs: LEADER_INTERVAL,
  }).add(acmeLeaderTask(manager));
  t.after(() => runner.stop());
  const https = bound.find((b) => `${b.address}:${b.port}` === o.https)?.port ?? Number(o.https.split(':')[1]);
  return { name: o.name, db, store, tls: tlsManager, manager, runner, lines, asked, https, switched };
}

/** The certificate a node's HTTPS listener presents for HOST, verified against pebble's root. */
function servedCert(port: number, root: string): Promise<X509Certificate> {
  return new Promise((resolve, reject) => {
    const s = tls.connect({ port, host: '127.0.0.1', servername: HOST, ca: root, ALPNProtocols: ['http/1.1'] });
    s.once('secureConnect', () => {
      const cert = s.getPeerX509Certificate();
      s.destroy();
      if (cert) resolve(cert);
      else reject(new Error('no peer certificate'));
    });
    s.once('error', reject);
  });
}

const sans = (c: X509Certificate) => (c.subjectAltName ?? '').split(', ').map((n) => n.replace(/^DNS:/, ''));
const served = (n: Node, pred: (c: X509Certificate) => boolean) =>
  waitUntil(`${n.name} serving the certificate`, async () => pred(new X509Certificate(n.tls.current.cert)), 60_000);

/** Pebble validating through node B's ports, two nodes on a new database (A's listeners on
 *  ports pebble never uses), A leading the task `acme` before B competes. */
async function twoNodes(
  t: TestContext,
  challenges: ChallengeType[],
  domains: () => string[],
  wrapA?: (s: AcmeStore) => AcmeStore,
): Promise<{ a: Node; b: Node; root: string }> {
  const bHttp = await freePort();
  const bHttps = await freePort();
  const pebble = await startPebble({ httpPort: bHttp, tlsPort: bHttps, dnsServer: dns.address });
  t.after(() => pebble.close());
  // Pebble's ACME listener has a self-signed certificate: trusted by this process's default CA
  // list (the server is told through NODE_EXTRA_CA_CERTS, test/acme/pebble.test.ts).
  tls.setDefaultCACertificates([...defaultCas, await readFile(pebble.caFile, 'utf8')]);
  const root = await pebble.root();
  const db = await freshDatabaseForFile();
  const node = (name: string, http: string, https: string, wrap?: (s: AcmeStore) => AcmeStore) =>
    startNode(t, { name, db, pebble, challenges, http, https, domains, ...(wrap ? { wrap } : {}) });
  const a = await node('a', '127.0.0.1:0', '127.0.0.1:0', wrapA);
  const b = await node('b', `127.0.0.1:${bHttp}`, `127.0.0.1:${bHttps}`);
  a.runner.start();
  await waitUntil('a to lead acme', async () => a.runner.leading().includes('acme'));
  b.runner.start();
  return { a, b, root };
}

describe('ACME on two nodes', () => {
  test('http-01: the renewal runs on node A, pebble validates through node B, B serves the certificate; SIGHUP orders on the leader only', async (t) => {
    const domains = ['example.test'];
    const { a, b, root } = await twoNodes(t, ['http-01'], () => domains);
    const issued = await waitUntil(
      'the issuance on a',
      async () => a.lines.find((l) => l.msg === 'ACME certificate issued'),
      60_000,
    );
    assert.deepEqual([...(issued.names as string[])].sort(), [...NAMES].sort());
    const isIssued = (c: X509Certificate) => c.serialNumber === issued.serial;
    await served(b, isIssued);
    await served(a, isIssued);
    const followed = (b.switched.at(-1) ?? 0) - (a.switched.at(-1) ?? 0);
    const cert = await servedCert(b.https, root);
    assert.equal(
      cert.serialNumber,
      issued.serial,
      "B's HTTPS listener presents A's certificate, verified by pebble's root",
    );
    assert.deepEqual(sans(cert).sort(), [...NAMES].sort());
    assert.ok(
      b.asked.filter((x) => x.startsWith('http-01 ')).length >= NAMES.length,
      `pebble validated through B: ${b.asked.join(', ')}`,
    );
    assert.deepEqual(a.asked, [], "nothing reached A's listeners");
    assert.deepEqual(b.runner.leading(), [], 'B never renewed');
    assert.equal(b.lines.filter((l) => l.msg === 'ACME: requesting a certificate').length, 0);
    assert.equal(
      a.lines.filter((l) => l.msg === 'ACME certificate request failed; keeping the certificate in use').length,
      0,
    );
    assert.deepEqual(await a.store.challenges(Date.now()), [], 'the answers are removed after the order');
    console.log(`# A switched to its new certificate -> B switched ${followed.toFixed(1)} ms later`);
    // A new domain and SIGHUP on every node (trigger()): the leader orders at once, the other
    // node does not (it never start()ed: it runs the renewal only as the leader task).
    domains.push('two.test');
    b.manager.trigger();
    a.manager.trigger();
    const second = await waitUntil(
      'the second issuance on a',
      async () => a.lines.filter((l) => l.msg === 'ACME certificate issued')[1],
      60_000,
    );
    assert.ok((second.names as string[]).includes('mta-sts.two.test'));
    await served(b, (c) => c.serialNumber === second.serial);
    assert.equal(b.lines.filter((l) => l.msg === 'ACME: requesting a certificate').length, 0, 'B never ordered');
  });

  test('tls-alpn-01: the leader dies mid-order; B takes the task over, orders, both serve its certificate', async (t) => {
    // A stalls at its challenge answers, as a node that hangs or dies mid-order.
    let stalled = false;
    const stalls: ((e: Error) => void)[] = [];
    const stall = (s: AcmeStore): AcmeStore => ({
      account: (u) => s.account(u),
      saveAccount: (x) => s.saveAccount(x),
      dropAccount: (u) => s.dropAccount(u),
      certificate: () => s.certificate(),
      saveCertificate: (p) => s.saveCertificate(p),
      removeChallenge: (k, key) => s.removeChallenge(k, key),
      challenges: (now) => s.challenges(now),
      putChallenge: () => {
        stalled = true;
        // One per name: acme-client answers the authorizations in parallel.
        return new Promise<void>((_, reject) => {
          stalls.push(reject);
        });
      },
    });
    t.after(() => {
      for (const reject of stalls) reject(new Error('test over'));
    });
    const { a, b, root } = await twoNodes(t, ['tls-alpn-01'], () => ['example.test', 'two.test'], stall);
    await waitUntil('a mid-order', async () => stalled, 60_000);
    // A's node dies: its lock session goes (PostgreSQL releases the advisory lock).
    const t0 = performance.now();
    await b.db.query('SELECT pg_terminate_backend($1)', [a.runner.backendPid]);
    await waitUntil('b to lead acme', async () => b.runner.leading().includes('acme'));
    const tookOver = performance.now() - t0;
    const issued = await waitUntil(
      'the issuance on b',
      async () => b.lines.find((l) => l.msg === 'ACME certificate issued'),
      60_000,
    );
    const isIssued = (c: X509Certificate) => c.serialNumber === issued.serial;
    await served(b, isIssued);
    await served(a, isIssued);
    const cert = await servedCert(b.https, root);
    assert.equal(cert.serialNumber, issued.serial);
    assert.ok(sans(cert).includes('mta-sts.two.test'));
    assert.ok(
      b.asked.some((x) => x === 'tls-alpn-01 mx.test.example'),
      `pebble validated through B: ${b.asked.join(', ')}`,
    );
    assert.equal(a.lines.filter((l) => l.msg === 'ACME certificate issued').length, 0);
    console.log(`# leader task moved ${tookOver.toFixed(0)} ms after the leader's session died`);
    // A's stalled order fails now (its answers never came), while pebble still answers: it
    // ends as a failure logged on A, and leaves nothing for the process to wait on.
    for (const reject of stalls.splice(0)) reject(new Error('the node was gone'));
    await waitUntil("the end of a's order", async () =>
      a.lines.some((l) => l.msg === 'ACME certificate request failed; keeping the certificate in use'),
    );
  });
});
