// TLS reporting (RFC 8460) end to end over real sockets on loopback: messages submitted to
// arcline for four domains, each with its own fake MX on its own loopback address (so each
// domain's sessions are the connections its MX saw):
//   enforce.test   MTA-STS enforce, certificate of the test CA valid for the MX  -> success (sts)
//   plain.test     no MTA-STS, TLS with a self-signed certificate                 -> success (no-policy-found)
//   badcert.test   MTA-STS testing, certificate not valid for the MX name         -> certificate-host-mismatch
//   notls.test     no MTA-STS, an MX without STARTTLS                             -> starttls-not-supported
//   strict.test    MTA-STS enforce, certificate not valid for the MX name: the handshake fails,
//                  nothing is delivered                                           -> certificate-host-mismatch
//   nofetch.test   an MTA-STS record, but the policy host answers 404             -> sts-policy-fetch-error
//   webpki.test    an MTA-STS record, the policy host's certificate not for it    -> sts-webpki-invalid
// Then the report task runs for that day (its clock a day on): each domain's `_smtp._tls` record
// sends its report to a mailto: sink (a fake MX of reports.test), an https: sink (a loopback
// HTTPS server with a certificate of the test CA) and a mailbox of ours, where
// `arcline reports tls` reads it; reports.test's own MTA-STS policy would refuse its MX, but a
// report goes all the same and is not counted (§5.3). The JSON is validated against test/fixtures/tlsrpt/
// report.schema.json (RFC 8460 §4) by python3-jsonschema; the counts match the connections.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import { gunzipSync } from 'node:zlib';
import { reportsCommand } from '../../src/cli/reports.ts';
import { bufferReader } from '../../src/mime/reader.ts';
import { headerValue, parseStructure } from '../../src/mime/structure.ts';
import type { ReportJson } from '../../src/reports/tlsrpt-format.ts';
import { reportParts } from '../../src/reports/tlsrpt-parse.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { submitter, waitUntil } from '../harness/submit.ts';
import { startTestCa, type TestCa } from '../harness/test-ca.ts';

const run = promisify(execFile);
const SCHEMA = new URL('../fixtures/tlsrpt/report.schema.json', import.meta.url).pathname;

const policyText = (mode: string, mx: string) => `version: STSv1\r\nmode: ${mode}\r\nmx: ${mx}\r\nmax_age: 86400\r\n`;

let ca: TestCa;
let dns: TestDnsServer;
const mxs: Record<string, FakeMx> = {};
let https: Server;
const posts: { type: string; body: Buffer; path: string }[] = [];
let t: TestServer;
let dir: string;

before(async () => {
  ca = await startTestCa();
  // One port for all (the [delivery] port), one loopback address per domain.
  mxs.enforce = await startFakeMx({ host: '127.0.0.1', tls: await ca.issue(['mx.enforce.test']) });
  const port = mxs.enforce.port;
  mxs.plain = await startFakeMx({ host: '127.0.0.2', port });
  mxs.badcert = await startFakeMx({ host: '127.0.0.3', port, tls: await ca.issue(['mx.elsewhere.test']) });
  mxs.notls = await startFakeMx({ host: '127.0.0.4', port, starttls: false });
  mxs.reports = await startFakeMx({ host: '127.0.0.5', port });
  mxs.strict = await startFakeMx({ host: '127.0.0.6', port, tls: await ca.issue(['mx.elsewhere.test']) });
  mxs.nofetch = await startFakeMx({ host: '127.0.0.7', port });
  mxs.webpki = await startFakeMx({ host: '127.0.0.8', port });
  const hosts = await ca.issue([
    ...['enforce', 'badcert', 'strict', 'nofetch', 'reports'].map((d) => `mta-sts.${d}.test`),
    'rua.reports.test',
  ]);
  https = createServer(hosts, (req, res) => {
    const host = (req.headers.host ?? '').replace(/:\d+$/, '');
    if (req.method === 'POST' && host === 'rua.reports.test') {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        posts.push({ type: String(req.headers['content-type']), body: Buffer.concat(chunks), path: req.url ?? '' });
        res.writeHead(201).end();
      });
      return;
    }
    const text =
      host === 'mta-sts.enforce.test'
        ? policyText('enforce', 'mx.enforce.test')
        : host === 'mta-sts.badcert.test'
          ? policyText('testing', 'mx.badcert.test')
          : host === 'mta-sts.strict.test' || host === 'mta-sts.webpki.test'
            ? policyText('enforce', `mx.${host.split('.')[1]}.test`)
            : // The reports' own destination: a policy its MX does not match (§5.3 below).
              host === 'mta-sts.reports.test'
              ? policyText('enforce', 'mx.elsewhere.test')
              : null;
    if (req.url !== '/.well-known/mta-sts.txt' || !text) return void res.writeHead(404).end();
    res.writeHead(200, { 'content-type': 'text/plain' }).end(text);
  });
  await new Promise<void>((r) => https.listen(0, '127.0.0.1', r));
  const httpsPort = (https.address() as AddressInfo).port;
  const address: Record<string, string> = {
    enforce: '127.0.0.1',
    plain: '127.0.0.2',
    badcert: '127.0.0.3',
    notls: '127.0.0.4',
    reports: '127.0.0.5',
    strict: '127.0.0.6',
    nofetch: '127.0.0.7',
    webpki: '127.0.0.8',
  };
  const rua: Record<string, string> = {
    enforce: `mailto:tlsrpt@reports.test,https://rua.reports.test:${httpsPort}/v1/tlsrpt,mailto:reports@example.test`,
    plain: 'mailto:tlsrpt@reports.test',
    badcert: 'mailto:tlsrpt@reports.test; ext=1',
    notls: `mailto:tlsrpt@reports.test, mailto:reports@example.test`,
    strict: 'mailto:tlsrpt@reports.test',
    nofetch: 'mailto:tlsrpt@reports.test',
    webpki: 'mailto:tlsrpt@reports.test',
  };
  dns = await startTestDns([
    ...Object.entries(address).flatMap(([d, ip]) => [
      { type: 'MX' as const, name: `${d}.test`, preference: 10, exchange: `mx.${d}.test` },
      { type: 'A' as const, name: `mx.${d}.test`, address: ip },
    ]),
    ...Object.entries(rua).map(([d, uris]) => ({
      type: 'TXT' as const,
      name: `_smtp._tls.${d}.test`,
      text: `v=TLSRPTv1; rua=${uris}`,
    })),
    ...['enforce', 'badcert', 'strict', 'nofetch', 'webpki', 'reports'].flatMap((d) => [
      { type: 'TXT' as const, name: `_mta-sts.${d}.test`, text: 'v=STSv1; id=1' },
      { type: 'A' as const, name: `mta-sts.${d}.test`, address: '127.0.0.1' },
    ]),
    { type: 'A', name: 'rua.reports.test', address: '127.0.0.1' },
  ]);
  dir = await mkdtemp(join(tmpdir(), 'arcline-tlsrpt-'));
  const caFile = join(dir, 'test-ca.pem');
  await writeFile(caFile, ca.cert);
  const extra =
    `[delivery]\nport = ${port}\nretry_schedule = ["1h"]\n[dns]\nservers = ["${dns.address}"]\n` +
    `[mta_sts_outbound]\npolicy_port = ${httpsPort}\nca_file = "${caFile}"\nfetch_timeout = "5s"\n` +
    `[tls_reports]\norganization = "Arcline Test"\ncontact = "tls@mx.test.example"\nca_file = "${caFile}"\n`;
  t = await startTestServer({ submission: true, http: true, extra, dir });
  await t.admin.ops.addDomain('example.test');
  // Our hostname as a domain of ours: its DKIM key signs the reports (§5.3).
  await t.admin.ops.addDomain('mx.test.example');
  await t.admin.ops.addUser('alice@example.test', { password: 'secret-password' });
  await t.admin.ops.addUser('reports@example.test', { password: 'secret-password' });
});

after(async () => {
  await t?.stop();
  for (const m of Object.values(mxs)) await m.close();
  await dns?.close();
  await new Promise<void>((r) => (https ? https.close(() => r()) : r()));
  await ca?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

async function validate(report: unknown): Promise<void> {
  const file = join(dir, `report-${Math.random().toString(36).slice(2)}.json`);
  await writeFile(file, JSON.stringify(report));
  const code = `import json,jsonschema,sys\njsonschema.validate(json.load(open(sys.argv[2])), json.load(open(sys.argv[1])))`;
  await run('/usr/bin/python3', ['-c', code, SCHEMA, file]);
}

/** The report JSON of a message (its application/tlsrpt+gzip part). */
async function reportOf(message: Buffer): Promise<ReportJson> {
  const parts = await reportParts(message);
  assert.equal(parts.length, 1);
  const part = parts[0];
  assert.ok(part?.gzip);
  return JSON.parse(gunzipSync(part.bytes).toString('utf8')) as ReportJson;
}

test('sessions counted per domain and policy; the day reported by mail, HTTPS and to a local mailbox; the CLI sums it', async () => {
  const send = (to: string) =>
    submitter(t.submissionPort).sendMail({ from: 'alice@example.test', to, subject: `to ${to}`, text: 'hi' });
  const all = ['a@enforce.test', 'b@enforce.test', 'c@plain.test', 'd@badcert.test', 'e@notls.test'];
  for (const to of [...all, 'f@strict.test', 'g@nofetch.test', 'h@webpki.test']) await send(to);
  // Every attempt made and its outcome recorded (the runner counts the sessions once its
  // attempt returns): all delivered but strict.test's, deferred by its policy (4.7.5; the next
  // try in an hour).
  await waitUntil('every attempt made', async () => {
    const queued = await t.admin.queue.list();
    return (
      t.server.queue.active === 0 &&
      queued.length === 1 &&
      queued[0]?.recipients.every((r) => r.address === 'f@strict.test' && r.attempts === 1)
    );
  });
  assert.equal(mxs.strict?.mails.length, 0, 'never sent without valid TLS');
  const reporting = t.server.tlsReports;
  assert.ok(reporting, '[tls_reports] is on by default');
  await reporting.recorder.flush();
  const today = new Date().toISOString().slice(0, 10);
  const counts = await reporting.store.countsFor(today);
  const DOMAINS = ['badcert', 'enforce', 'nofetch', 'notls', 'plain', 'strict', 'webpki'].map((d) => `${d}.test`);
  assert.deepEqual([...new Set(counts.map((c) => c.domain))].sort(), DOMAINS);

  // The task's clock a day on (and past the settling time): today is "yesterday".
  const result = await reporting.reporter.run(Date.now() + 86_400_000 + 120_000);
  assert.deepEqual(result.days, [today]);
  assert.equal(result.reports, 7);
  assert.equal(result.failed, 0);
  // The same day is never reported twice: again, now or by another handle on the store.
  assert.deepEqual((await reporting.reporter.run(Date.now() + 86_400_000 + 120_000)).days, []);

  // The mailto: sink (reports.test's MX): one message per domain. reports.test's MTA-STS policy
  // (enforce, its MX not in it) would defer any other mail: §5.3, reports go despite TLS
  // failures, and their sessions are not counted for the next report.
  const mails = await mxs.reports?.waitFor(7);
  assert.ok(mails);
  await reporting.recorder.flush();
  assert.ok(!(await reporting.store.countsFor(today)).some((c) => c.domain === 'reports.test'));
  const byDomain = new Map<string, { json: ReportJson; data: Buffer }>();
  for (const m of mails) {
    assert.equal(m.from, '', 'a null sender (§5.3)');
    const root = await parseStructure(bufferReader(m.data), m.data.length);
    const domain = headerValue(root.header, 'tls-report-domain') ?? '';
    assert.equal(headerValue(root.header, 'tls-report-submitter'), 'mx.test.example');
    const json = await reportOf(m.data);
    assert.equal(
      headerValue(root.header, 'subject'),
      `Report Domain: ${domain} Submitter: mx.test.example Report-ID: <${json['report-id']}>`,
    );
    assert.equal(`${root.type}/${root.subtype}`, 'multipart/report');
    assert.ok(root.params.some(([k, v]) => k === 'report-type' && v === 'tlsrpt'));
    const attachment = root.parts.find((p) => p.subtype === 'tlsrpt+gzip');
    const start = Date.parse(`${today}T00:00:00Z`) / 1000;
    assert.match(
      headerValue(attachment?.header ?? Buffer.alloc(0), 'content-disposition') ?? '',
      new RegExp(
        `filename="mx\\.test\\.example!${domain.replaceAll('.', '\\.')}!${start}!${start + 86399}\\.json\\.gz"`,
      ),
    );
    assert.match(headerValue(root.header, 'dkim-signature') ?? '', /\sd=mx\.test\.example;/, 'DKIM-signed (§5.3)');
    await validate(json);
    byDomain.set(domain, { json, data: m.data });
  }
  assert.deepEqual([...byDomain.keys()].sort(), DOMAINS);

  const policyOf = (d: string) => {
    const r = byDomain.get(d)?.json;
    assert.equal(r?.policies.length, 1, d);
    const p = r?.policies[0];
    assert.ok(p);
    assert.equal(p.policy['policy-domain'], d);
    assert.equal(r?.['organization-name'], 'Arcline Test');
    assert.equal(r?.['contact-info'], 'tls@mx.test.example');
    assert.deepEqual(r?.['date-range'], {
      'start-datetime': `${today}T00:00:00Z`,
      'end-datetime': `${today}T23:59:59Z`,
    });
    return p;
  };
  // The counts are the connections each MX saw (a message sent over a kept connection is no
  // new session).
  const enforce = policyOf('enforce.test');
  assert.equal(enforce.policy['policy-type'], 'sts');
  assert.deepEqual(enforce.policy['policy-string'], [
    'version: STSv1',
    'mode: enforce',
    'mx: mx.enforce.test',
    'max_age: 86400',
  ]);
  assert.deepEqual(enforce.policy['mx-host'], ['mx.enforce.test']);
  assert.deepEqual(enforce.summary, {
    'total-successful-session-count': mxs.enforce?.connections,
    'total-failure-session-count': 0,
  });
  const plain = policyOf('plain.test');
  assert.equal(plain.policy['policy-type'], 'no-policy-found');
  assert.deepEqual(plain.summary, {
    'total-successful-session-count': mxs.plain?.connections,
    'total-failure-session-count': 0,
  });
  const badcert = policyOf('badcert.test');
  assert.equal(badcert.policy['policy-type'], 'sts');
  assert.ok(badcert.policy['policy-string']?.includes('mode: testing'));
  assert.deepEqual(badcert.summary, {
    'total-successful-session-count': 0,
    'total-failure-session-count': mxs.badcert?.connections,
  });
  /** The one failure detail expected of a domain: every session its MX saw. */
  const failure = (name: string, type: string, ip: string, reason?: string) => [
    {
      'result-type': type,
      'sending-mta-ip': '127.0.0.1',
      'receiving-mx-hostname': `mx.${name}.test`,
      'receiving-ip': ip,
      'failed-session-count': mxs[name]?.connections,
      ...(reason ? { 'failure-reason-code': reason } : {}),
    },
  ];
  assert.deepEqual(
    badcert['failure-details'],
    failure('badcert', 'certificate-host-mismatch', '127.0.0.3', 'ERR_TLS_CERT_ALTNAME_INVALID'),
  );
  const notls = policyOf('notls.test');
  assert.equal(notls.policy['policy-type'], 'no-policy-found');
  assert.deepEqual(notls['failure-details'], failure('notls', 'starttls-not-supported', '127.0.0.4'));
  // enforce: the handshake itself failed (the certificate is refused); our address is known all
  // the same.
  const strict = policyOf('strict.test');
  assert.ok(strict.policy['policy-string']?.includes('mode: enforce'));
  assert.equal(mxs.strict?.connections, 1);
  assert.deepEqual(
    strict['failure-details'],
    failure('strict', 'certificate-host-mismatch', '127.0.0.6', 'ERR_TLS_CERT_ALTNAME_INVALID'),
  );
  // §4.4.2: no policy to be had; its text is unknown.
  for (const [name, type, ip] of [
    ['nofetch', 'sts-policy-fetch-error', '127.0.0.7'],
    ['webpki', 'sts-webpki-invalid', '127.0.0.8'],
  ] as const) {
    const p = policyOf(`${name}.test`);
    assert.deepEqual(p.policy, { 'policy-type': 'sts', 'policy-domain': `${name}.test` });
    assert.deepEqual(p['failure-details'], failure(name, type, ip));
  }

  // The https: sink (§5.4): the same report as the mail one of enforce.test's.
  await waitUntil('the POST', async () => posts.length === 1);
  const post = posts[0];
  assert.equal(post?.type, 'application/tlsrpt+gzip');
  assert.equal(post?.path, '/v1/tlsrpt');
  const posted = JSON.parse(gunzipSync(post?.body ?? Buffer.alloc(0)).toString('utf8')) as ReportJson;
  await validate(posted);
  assert.deepEqual(posted, byDomain.get('enforce.test')?.json);

  // Our own mailbox got enforce.test's and notls.test's reports; the CLI reads them through
  // the store and sums them per reporter and domain.
  await waitUntil('two reports in the mailbox', async () => (await t.newFiles('reports@example.test')).length === 2);
  const lines: string[] = [];
  await reportsCommand(
    t.admin,
    'tls',
    [],
    { mailbox: 'reports@example.test', days: '2' },
    (l) => lines.push(l),
    (m) => new Error(m),
  );
  assert.equal(lines[0], 'TLS reports (RFC 8460) in reports@example.test, last 2 day(s): 2');
  const row = (d: string) =>
    lines
      .find((l) => l.includes(` ${d} `))
      ?.trim()
      .split(/\s{2,}/);
  assert.deepEqual(row('enforce.test'), [
    'Arcline Test',
    'enforce.test',
    '1',
    String(mxs.enforce?.connections),
    '0',
    '-',
  ]);
  assert.deepEqual(row('notls.test'), [
    'Arcline Test',
    'notls.test',
    '1',
    '0',
    String(mxs.notls?.connections),
    `starttls-not-supported=${mxs.notls?.connections}`,
  ]);

  // The admin API sums the same (api/reports.ts); the mailbox's own user may read it, another
  // domain's admin may not.
  const api = async (token: string, query: string) => {
    const r = await fetch(`http://127.0.0.1:${t.server.http[0]?.port}/api/v1/reports/tls?${query}`, {
      headers: { authorization: `Bearer ${token}` },
    });
    return { status: r.status, body: (await r.json()) as Record<string, unknown> & { rows: unknown[] } };
  };
  const admin = (await t.admin.access.create({ role: { kind: 'admin' } })).token;
  const own = (await t.admin.access.create({ role: { kind: 'user', user: 'reports@example.test' } })).token;
  const other = (await t.admin.access.create({ role: { kind: 'domain', domain: 'mx.test.example' } })).token;
  const got = await api(admin, 'mailbox=reports@example.test&days=2');
  assert.equal(got.status, 200, JSON.stringify(got.body));
  assert.equal(got.body.reports, 2);
  assert.equal(got.body.unreadable, 0);
  assert.deepEqual(
    got.body.rows.find((r) => (r as { domain: string }).domain === 'notls.test'),
    {
      organization: 'Arcline Test',
      domain: 'notls.test',
      reports: 1,
      successes: 0,
      failures: mxs.notls?.connections,
      byResult: { 'starttls-not-supported': mxs.notls?.connections },
    },
  );
  assert.equal((await api(own, 'mailbox=reports@example.test&days=2')).status, 200);
  assert.equal((await api(other, 'mailbox=reports@example.test&days=2')).status, 403);
  assert.equal((await api(admin, 'mailbox=nobody@example.test')).status, 404);
  assert.equal((await api(admin, 'days=0')).status, 400);
});
