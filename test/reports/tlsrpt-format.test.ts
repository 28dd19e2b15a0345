// The pure parts of TLS reporting (RFC 8460): the `_smtp._tls` record (§3), result types from
// node:tls's verdicts (§4.4), the report's file name (§5.1), and the bounded reading of received
// reports (gzip output, JSON nesting); sessions judged under a policy; no counting through a relay.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { parseConfigText } from '../../src/config/load.ts';
import { LIMITS } from '../../src/core/limits.ts';
import { silentLogger } from '../../src/core/log.ts';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import {
  buildReport,
  certificateResult,
  mailtoAddress,
  parseTlsRptRecord,
  reportFilename,
} from '../../src/reports/tlsrpt-format.ts';
import { jsonDepth, readReport, summarise } from '../../src/reports/tlsrpt-parse.ts';
import { judgeSession } from '../../src/reports/tlsrpt-record.ts';
import { openTlsReporting } from '../../src/reports/tlsrpt-setup.ts';

const parse = (...records: string[][]) => parseTlsRptRecord(records, 4096);

test('§3: the _smtp._tls record, strictly', () => {
  assert.deepEqual(parse(['v=TLSRPTv1; rua=mailto:tls@a.test']), ['mailto:tls@a.test']);
  assert.deepEqual(parse(['v=TLSRPTv1;rua=mailto:tls@a.test, https://r.a.test/tlsrpt;']), [
    'mailto:tls@a.test',
    'https://r.a.test/tlsrpt',
  ]);
  // Strings of one record are joined; other TXT records are not ours.
  assert.deepEqual(parse(['v=TLSRPTv1; rua=mai', 'lto:tls@a.test'], ['v=spf1 -all']), ['mailto:tls@a.test']);
  // An extension is allowed when well-formed; an unknown scheme is ignored.
  assert.deepEqual(parse(['v=TLSRPTv1; ext_1=x; rua=ftp://x.test,mailto:t@a.test']), ['mailto:t@a.test']);
  assert.equal(parse(['v=TLSRPTv1; rua=mailto:a@a.test'], ['v=TLSRPTv1; rua=mailto:b@a.test']), null, 'two records');
  assert.equal(parse(['v=tlsrptv1; rua=mailto:a@a.test']), null, 'the version is case-sensitive');
  assert.equal(parse(['rua=mailto:a@a.test; v=TLSRPTv1']), null, 'the version first');
  assert.equal(parse(['v=TLSRPTv1']), null, 'no rua');
  assert.equal(parse(['v=TLSRPTv1; rua=ftp://x.test']), null, 'no usable rua');
  assert.equal(parse(['v=TLSRPTv1; rua=mailto:a@a.test; rua=mailto:b@a.test']), null, 'rua twice');
  assert.equal(parse(['v=TLSRPTv1; rua=mailto:a@a.test; bad name=1']), null, 'malformed extension');
  assert.equal(parse(['v=TLSRPTv1; rua=']), null, 'empty rua');
  assert.equal(parse([]), null);
  assert.equal(parseTlsRptRecord([[`v=TLSRPTv1; rua=mailto:${'a'.repeat(5000)}@a.test`]], 4096), null, 'too long');
  assert.equal(mailtoAddress('mailto:tls%2Breports@a.test?subject=x'), 'tls+reports@a.test');
  assert.equal(mailtoAddress('mailto:not an address'), null);
});

test('§4.4: node:tls verdicts as result types', () => {
  assert.equal(certificateResult('CERT_HAS_EXPIRED'), 'certificate-expired');
  assert.equal(certificateResult('ERR_TLS_CERT_ALTNAME_INVALID'), 'certificate-host-mismatch');
  assert.equal(certificateResult('DEPTH_ZERO_SELF_SIGNED_CERT'), 'certificate-not-trusted');
  assert.equal(certificateResult('UNABLE_TO_VERIFY_LEAF_SIGNATURE'), 'certificate-not-trusted');
  assert.equal(certificateResult('UNSUPPORTED_PROTOCOL'), 'validation-failure');
  assert.equal(certificateResult(null), 'validation-failure');
});

test('§4 and §5.1: the report of a domain and its file name', () => {
  const policy = { type: 'no-policy-found' as const, lines: [], mx: [] };
  const base = {
    day: '2026-12-06',
    domain: 'a.test',
    policy,
    sendingIp: '',
    mxHostname: '',
    receivingIp: '',
    reasonCode: '',
  };
  const json = buildReport(
    { organization: 'Org', contact: 'pm@x.test', reportId: 'r1@x.test', day: '2026-12-06' },
    'a.test',
    [
      { ...base, result: 'success', count: 5 },
      {
        ...base,
        result: 'starttls-not-supported',
        sendingIp: '127.0.0.1',
        mxHostname: 'mx.a.test',
        receivingIp: '127.0.0.2',
        count: 2,
      },
      { ...base, domain: 'b.test', result: 'success', count: 9 },
    ],
  );
  assert.deepEqual(json['date-range'], {
    'start-datetime': '2026-12-06T00:00:00Z',
    'end-datetime': '2026-12-06T23:59:59Z',
  });
  assert.equal(json.policies.length, 1);
  assert.deepEqual(json.policies[0]?.summary, {
    'total-successful-session-count': 5,
    'total-failure-session-count': 2,
  });
  assert.deepEqual(json.policies[0]?.policy, { 'policy-type': 'no-policy-found', 'policy-domain': 'a.test' });
  assert.equal(reportFilename('mx.x.test', 'a.test', '2026-12-06'), 'mx.x.test!a.test!1796515200!1796601599.json.gz');
});

test('received reports are read within bounds', () => {
  const report = {
    'organization-name': 'Org',
    'date-range': { 'start-datetime': '2026-12-06T00:00:00Z', 'end-datetime': '2026-12-06T23:59:59Z' },
    'contact-info': 'x',
    'report-id': 'r1',
    policies: [
      {
        policy: { 'policy-type': 'sts', 'policy-domain': 'A.test' },
        summary: { 'total-successful-session-count': 3, 'total-failure-session-count': 1 },
        'failure-details': [{ 'result-type': 'certificate-expired', 'failed-session-count': 1 }],
      },
    ],
  };
  const read = readReport({ gzip: true, bytes: gzipSync(JSON.stringify(report)) });
  assert.ok(read.ok);
  // The same report twice (two of our addresses) counts once.
  assert.deepEqual(summarise([read.report, read.report]), [
    {
      organization: 'Org',
      domain: 'a.test',
      reports: 1,
      successes: 3,
      failures: 1,
      byResult: { 'certificate-expired': 1 },
    },
  ]);
  // A gzip bomb stops at the output limit; deep nesting is refused before JSON.parse.
  const bomb = gzipSync(Buffer.alloc(LIMITS.tlsReports.maxReportBytes + 1, 0x20));
  assert.equal(readReport({ gzip: true, bytes: bomb }).ok, false);
  const deep = `${'['.repeat(LIMITS.tlsReports.maxJsonDepth + 1)}${']'.repeat(LIMITS.tlsReports.maxJsonDepth + 1)}`;
  assert.equal(jsonDepth(deep), LIMITS.tlsReports.maxJsonDepth + 1);
  assert.equal(jsonDepth('{"a":"[[[[["}'), 1, 'brackets in strings do not count');
  assert.equal(readReport({ gzip: false, bytes: Buffer.from(deep) }).ok, false);
  assert.equal(readReport({ gzip: false, bytes: Buffer.from('{"policies":[]}') }).ok, false, 'fields missing');
  assert.equal(readReport({ gzip: true, bytes: Buffer.from('not gzip') }).ok, false);
});

test('§4.3, §4.4: a session judged under the policy that applied', () => {
  const s = {
    hostName: 'mx.a.test',
    address: '192.0.2.1',
    localAddress: '192.0.2.9',
    tls: true,
    authorized: false,
    problem: null,
    certError: 'DEPTH_ZERO_SELF_SIGNED_CERT',
  };
  const testing = {
    source: 'cached' as const,
    policy: { id: '1', mode: 'testing' as const, mx: ['*.a.test'], maxAge: 600, expires: Date.now() + 600_000 },
  };
  // Without a policy the certificate is not checked: TLS is success; no STARTTLS is not.
  assert.equal(judgeSession(s, null, null).result, 'success');
  assert.equal(judgeSession({ ...s, tls: false, problem: 'starttls' }, null, null).result, 'starttls-not-supported');
  assert.deepEqual(judgeSession(s, null, 'sts-policy-invalid'), {
    policy: { type: 'sts', lines: [], mx: [] },
    result: 'sts-policy-invalid',
    reason: '',
  });
  // Under a policy it is: a self-signed certificate is not trusted; an MX outside it fails.
  const judged = judgeSession(s, testing, null);
  assert.deepEqual(judged.policy, {
    type: 'sts',
    lines: ['version: STSv1', 'mode: testing', 'mx: *.a.test', 'max_age: 600'],
    mx: ['*.a.test'],
  });
  assert.equal(judged.result, 'certificate-not-trusted');
  assert.equal(judged.reason, 'DEPTH_ZERO_SELF_SIGNED_CERT');
  assert.equal(judgeSession({ ...s, authorized: true }, testing, null).result, 'success');
  assert.deepEqual(
    judgeSession({ ...s, hostName: 'mx.b.test', authorized: true }, testing, null).result,
    'validation-failure',
  );
});

test('mail through a relay is not counted: no TLS reporting at all', async () => {
  const config = parseConfigText('[delivery]\nrelay = "smtp.example.org:587"\n', '/etc/arcline/arcline.toml');
  const deps = { resolver: createPromiseResolver([]), sendMail: async () => {}, signer: null };
  assert.equal(await openTlsReporting(config, null, deps, silentLogger()), null);
});
