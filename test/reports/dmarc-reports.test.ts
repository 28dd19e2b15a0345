// DMARC aggregate reports end to end (RFC 7489 §7; src/reports/dmarc-*.ts): messages reach port
// 25 from loopback addresses (127.0.0.2 passes SPF for sender.test, 127.0.0.3 fails it) for a
// domain whose DMARC record (served by the test DNS server) asks for reports at two remote
// domains, one of which publishes the §7.1 authorization record. The report task runs for
// "yesterday" with the clock moved a day on; the report arrives at the fake MX of the
// authorized domain only, with the null sender, DKIM-signed, its gzip XML valid against the
// RFC 7489 Appendix C schema (xmllint --schema, test/fixtures/dmarc-rua-rfc7489.xsd) and its
// counts those of the messages sent. A day is sent once; a domain that only sent aggregate
// reports gets none. The report, delivered to a local mailbox, is summarised by `arcline
// reports dmarc`. With an inbound SMTP thread the rows reach the main thread's store too.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { dkimVerify } from 'mailauth';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { dkimRecordName, dkimTxtValue } from '../../src/hygiene/dkim-keys.ts';
import { bufferReader } from '../../src/mime/reader.ts';
import { reportsInMessage } from '../../src/reports/dmarc-parse.ts';
import { SqliteDmarcReportStore } from '../../src/reports/dmarc-store.ts';
import { startTestDns, type TestDnsServer, type TestRecord } from '../harness/dns.ts';
import { type FakeMx, startFakeMx } from '../harness/mx.ts';
import { runCli } from '../harness/process.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

const XSD = new URL('../fixtures/dmarc-rua-rfc7489.xsd', import.meta.url).pathname;
const DAY = 86_400_000;

const ZONES = (): TestRecord[] => {
  return [
    { type: 'TXT', name: 'sender.test', text: 'v=spf1 ip4:127.0.0.2 -all' },
    {
      type: 'TXT',
      name: '_dmarc.sender.test',
      text: 'v=DMARC1; p=quarantine; adkim=s; pct=100; rua=mailto:dmarc@reports.test!10m,mailto:dmarc@noauth.test',
    },
    // §7.1: reports.test takes sender.test's reports; noauth.test says nothing.
    { type: 'TXT', name: 'sender.test._report._dmarc.reports.test', text: 'v=DMARC1' },
    { type: 'TXT', name: 'lists.test', text: 'v=spf1 ip4:127.0.0.2 -all' },
    { type: 'TXT', name: '_dmarc.lists.test', text: 'v=DMARC1; p=none; rua=mailto:dmarc@reports.test' },
    { type: 'TXT', name: 'lists.test._report._dmarc.reports.test', text: 'v=DMARC1' },
    // p=reject, but [hygiene] dmarc_reject = "junk" here: quarantine, reason local_policy.
    { type: 'TXT', name: 'strict.test', text: 'v=spf1 ip4:127.0.0.2 -all' },
    { type: 'TXT', name: '_dmarc.strict.test', text: 'v=DMARC1; p=reject; rua=mailto:strict@reports.test' },
    { type: 'TXT', name: 'strict.test._report._dmarc.reports.test', text: 'v=DMARC1' },
    // A report address that takes 1 KiB at most (§6.2): the report is larger.
    { type: 'TXT', name: 'small.test', text: 'v=spf1 ip4:127.0.0.2 -all' },
    { type: 'TXT', name: '_dmarc.small.test', text: 'v=DMARC1; p=none; rua=mailto:dmarc@reports.test!1k' },
    { type: 'TXT', name: 'small.test._report._dmarc.reports.test', text: 'v=DMARC1' },
    { type: 'MX', name: 'reports.test', preference: 10, exchange: 'mx.remote.test' },
    { type: 'MX', name: 'noauth.test', preference: 10, exchange: 'mx.remote.test' },
    { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
  ];
};

function message(from: string, subject: string): string {
  return `From: ${from}\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nDate: Mon, 07 Dec 2026 06:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@test>\r\n\r\nHello.\r\n`;
}

/** One message on port 25 from `localAddress`; the reply to the end of DATA. */
async function send(t: TestServer, localAddress: string, mailFrom: string, data: string) {
  const c = await RawSmtp.connect(t.port, '127.0.0.1', localAddress);
  try {
    const replies = await envelope(c, mailFrom, ['alice@example.test']);
    assert.equal(replies.at(-1)?.code, 250, replies.at(-1)?.text);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`${data.replace(/\r\n\./g, '\r\n..')}\r\n.\r\n`);
    return await c.read();
  } finally {
    c.close();
  }
}

/** The gzipped XML of a report message (base64, the last part). */
function attachedXml(text: string): string {
  const b64 = /Content-Transfer-Encoding: base64\r\n\r\n([A-Za-z0-9+/=\r\n]+?)\r\n\r\n--/.exec(text)?.[1] ?? '';
  return gunzipSync(Buffer.from(b64.replace(/\r\n/g, ''), 'base64')).toString();
}

/** xmllint --schema with the RFC 7489 Appendix C schema. */
async function validates(file: string, xml: string): Promise<void> {
  await writeFile(file, xml);
  const lint = spawnSync('xmllint', ['--noout', '--schema', XSD, file], { encoding: 'utf8' });
  assert.equal(lint.status, 0, lint.stderr);
}

function config(dns: TestDnsServer, mx: FakeMx): string {
  return [
    `[delivery]\nport = ${mx.port}`,
    `[dns]\nservers = ["${dns.address}"]`,
    '[hygiene]\ndnsbl = []\ndmarc_reject = "junk"',
    '[dmarc_reports]\nenabled = true\norg_name = "Arcline Test"\nemail = "dmarc-noreply@example.test"',
  ].join('\n');
}

describe('DMARC aggregate reports', () => {
  let dns: TestDnsServer;
  let mx: FakeMx;
  let t: TestServer;
  let tmp: string;

  before(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'arcline-dmarcrep-'));
    mx = await startFakeMx();
    dns = await startTestDns(ZONES());
    t = await startTestServer({ smtp: 'threads = 0', http: true, extra: config(dns, mx) });
    for (const k of await t.admin.dkim.keys('example.test'))
      dns.add({ type: 'TXT', name: dkimRecordName(k), text: dkimTxtValue(k) });
  });
  after(async () => {
    await t?.stop();
    await mx?.close();
    await dns?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  test('recorded per source and disposition, sent for yesterday to the authorized rua only', async () => {
    // The UTC day of the messages (the test does not run across midnight).
    const day = new Date().toISOString().slice(0, 10);
    for (let i = 0; i < 3; i++)
      assert.equal((await send(t, '127.0.0.2', 'bounce@sender.test', message('a@sender.test', `pass ${i}`))).code, 250);
    for (let i = 0; i < 2; i++)
      assert.equal((await send(t, '127.0.0.3', 'bounce@sender.test', message('a@sender.test', `fail ${i}`))).code, 250);
    assert.equal((await send(t, '127.0.0.2', 'b@small.test', message('a@small.test', 'small'))).code, 250);
    assert.equal((await send(t, '127.0.0.3', 'b@strict.test', message('a@strict.test', 'strict'))).code, 250);
    // An aggregate report itself (its Subject): counted, but alone it makes no report.
    const aboutReport = message('dmarc@lists.test', 'Report Domain: x.test Submitter: lists.test Report-ID: <1>');
    assert.equal((await send(t, '127.0.0.2', '', aboutReport)).code, 250);
    await waitUntil(
      'the failing ones in Junk',
      async () => (await t.messages('alice@example.test', 'Junk')).length === 3,
    );

    const reporting = t.server.dmarcReports;
    assert.ok(reporting);
    // The clock a few minutes into the next UTC day (past the day's grace of a minute).
    const tomorrow = Date.parse(`${day}T00:05:00Z`) + DAY;
    const all = await reporting.send(tomorrow);
    assert.deepEqual(
      all.map((r) => r.domain),
      ['sender.test', 'small.test', 'strict.test'],
      'lists.test saw only an aggregate report: none for it',
    );
    assert.deepEqual(all[1]?.to, []);
    assert.match(all[1]?.skipped[0]?.why ?? '', /over its limit of 1024/);
    const sent = all.slice(0, 1);
    assert.deepEqual(sent[0]?.to, ['dmarc@reports.test']);
    assert.deepEqual(
      sent[0]?.skipped.map((s) => s.to),
      ['dmarc@noauth.test'],
    );
    assert.match(sent[0]?.skipped[0]?.why ?? '', /sender\.test\._report\._dmarc\.noauth\.test/);

    await mx.waitFor(2);
    const mail = mx.mails.find((m) => m.to.includes('dmarc@reports.test'));
    assert.ok(mail);
    assert.equal(mail.from, '', 'the null sender');
    assert.deepEqual(mail.to, ['dmarc@reports.test']);
    const text = mail.data.toString();
    const begin = Date.parse(`${day}T00:00:00Z`) / 1000;
    const fileName = `example.test!sender.test!${begin}!${begin + 86_399}.xml.gz`;
    assert.match(text, /^Subject: Report Domain: sender\.test Submitter: example\.test Report-ID: <[^>]+>\r$/m);
    assert.match(text, /^From: "Arcline Test" <dmarc-noreply@example\.test>\r$/m);
    assert.ok(text.includes(`Content-Type: application/gzip; name="${fileName}"`), 'the §7.2.1.1 file name');

    // DKIM-signed with example.test's key (the From: domain), verified through the test DNS.
    const resolver = createPromiseResolver([dns.address]);
    const dkim = await dkimVerify(mail.data, {
      resolver: (name: string, rr: string) => resolver.resolve(name, rr) as Promise<string[][]>,
    });
    assert.deepEqual(
      dkim.results.map((r) => [r.signingDomain, r.status.result]),
      [['example.test', 'pass']],
    );

    // The XML: valid against the RFC 7489 Appendix C schema, with the counts sent.
    const xml = attachedXml(text);
    await validates(join(tmp, 'report.xml'), xml);
    const flat = xml.replace(/\n/g, '');
    assert.ok(
      flat.includes(
        '<policy_published><domain>sender.test</domain><adkim>s</adkim><aspf>r</aspf><p>quarantine</p><sp>quarantine</sp><pct>100</pct><fo>0</fo></policy_published>',
      ),
      flat,
    );
    const { reports, errors } = await reportsInMessage(bufferReader(mail.data), mail.data.length);
    assert.deepEqual(errors, []);
    const [report] = reports;
    assert.ok(report);
    assert.equal(report.orgName, 'Arcline Test');
    assert.equal(report.domain, 'sender.test');
    assert.equal(report.policy, 'quarantine');
    assert.equal(report.begin, begin);
    assert.deepEqual(
      report.records.map((r) => [r.sourceIp, r.count, r.disposition, r.dkim, r.spf, r.headerFrom]),
      [
        ['127.0.0.2', 3, 'none', 'fail', 'pass', 'sender.test'],
        ['127.0.0.3', 2, 'quarantine', 'fail', 'fail', 'sender.test'],
      ],
    );
    for (const result of ['pass', 'fail'])
      assert.ok(
        flat.includes(
          `<auth_results><spf><domain>sender.test</domain><scope>mfrom</scope><result>${result}</result></spf></auth_results>`,
        ),
        flat,
      );

    // The day is reported: another round sends nothing, and neither does the report mail only.
    assert.deepEqual(await reporting.send(tomorrow), []);
    assert.deepEqual(
      mx.rcpts.filter((r) => r !== 'dmarc@reports.test'),
      ['strict@reports.test'],
      'nothing to noauth.test nor about reports',
    );
    // Quarantined although the policy says reject: the reason is local_policy, valid too.
    const strict = mx.mails.find((m) => m.to.includes('strict@reports.test'));
    assert.ok(strict);
    const strictXml = attachedXml(strict.data.toString());
    assert.ok(
      strictXml
        .replace(/\n/g, '')
        .includes(
          '<policy_evaluated><disposition>quarantine</disposition><dkim>fail</dkim><spf>fail</spf><reason><type>local_policy</type></reason></policy_evaluated>',
        ),
      strictXml,
    );
    await validates(join(tmp, 'strict.xml'), strictXml);

    // The report delivered here: `arcline reports dmarc` sums it per org and source IP.
    assert.equal((await send(t, '127.0.0.1', '', text)).code, 250);
    await waitUntil('the report in INBOX', async () =>
      (await t.messages('alice@example.test')).some((m) => m.includes('Report Domain: sender.test')),
    );
    const cli = await runCli(['--config', t.configFile, 'reports', 'dmarc', '--mailbox', 'alice@example.test']);
    assert.equal(cli.code, 0, cli.stderr);
    const lines = cli.stdout.split('\n');
    assert.match(lines[0] ?? '', /^1 DMARC aggregate reports, 2 sources in the last 7 days/);
    assert.match(cli.stdout, /^ORG\s+DOMAIN\s+SOURCE IP\s+MESSAGES\s+PASS\s+FAIL\s+NONE\s+QUARANTINE\s+REJECT$/m);
    assert.match(cli.stdout, /^Arcline Test\s+sender\.test\s+127\.0\.0\.2\s+3\s+3\s+0\s+3\s+0\s+0$/m);
    assert.match(cli.stdout, /^Arcline Test\s+sender\.test\s+127\.0\.0\.3\s+2\s+0\s+2\s+0\s+2\s+0$/m);
    // The admin API sums the same (api/reports.ts).
    const token = (await t.admin.access.create({ role: { kind: 'readonly' } })).token;
    const r = await fetch(
      `http://127.0.0.1:${t.server.http[0]?.port}/api/v1/reports/dmarc?mailbox=alice@example.test`,
      { headers: { authorization: `Bearer ${token}` } },
    );
    assert.equal(r.status, 200);
    const body = (await r.json()) as { reports: number; rows: Record<string, unknown>[] };
    assert.equal(body.reports, 1);
    assert.deepEqual(
      body.rows.find((row) => row.sourceIp === '127.0.0.3'),
      {
        org: 'Arcline Test',
        domain: 'sender.test',
        sourceIp: '127.0.0.3',
        messages: 2,
        pass: 0,
        fail: 2,
        none: 0,
        quarantine: 2,
        reject: 0,
      },
    );
  });
});

test("an inbound SMTP thread counts its evaluations into the main thread's store", async () => {
  const mx = await startFakeMx();
  const dns = await startTestDns(ZONES());
  const t = await startTestServer({ smtp: 'threads = 1', extra: config(dns, mx) });
  try {
    for (let i = 0; i < 2; i++)
      assert.equal((await send(t, '127.0.0.2', 'bounce@sender.test', message('a@sender.test', `t ${i}`))).code, 250);
    const store = new SqliteDmarcReportStore(join(t.config.storage.state, 'dmarc-reports.db'));
    try {
      const day = new Date().toISOString().slice(0, 10);
      const r = await waitUntil(
        'the rows stored',
        async () => {
          const rep = await store.report('sender.test', day);
          return rep && rep.rows.reduce((n, x) => n + x.count, 0) === 2 ? rep : null;
        },
        15_000,
      );
      assert.deepEqual(
        r.rows.map((x) => [x.sourceIp, x.disposition, x.spf, x.count]),
        [['127.0.0.2', 'none', 'pass', 2]],
      );
    } finally {
      await store.close();
    }
  } finally {
    await t.stop();
    await mx.close();
    await dns.close();
  }
});
