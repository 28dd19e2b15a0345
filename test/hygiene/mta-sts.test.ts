// MTA-STS policy text and records (src/hygiene/mta-sts.ts, RFC 8461 §3.1-§3.2, RFC 8460 §3).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { dnsRecords } from '../../src/hygiene/dns-records.ts';
import { mtaStsId, mtaStsPolicy, mtaStsTxt, tlsRptTxt } from '../../src/hygiene/mta-sts.ts';

const base = { mode: 'testing' as const, maxAgeMs: 604_800_000, mx: [] };

test('policy: version, mode, every MX once, max_age in seconds, CRLF lines', () => {
  assert.equal(
    mtaStsPolicy('MX.example.test', { ...base, mx: ['*.backup.test', 'mx.example.test'] }),
    'version: STSv1\r\nmode: testing\r\nmx: mx.example.test\r\nmx: *.backup.test\r\nmax_age: 604800\r\n',
  );
});

test('the _mta-sts id is 1-32 alphanumerics and changes exactly when the policy does', () => {
  const a = mtaStsPolicy('mx.example.test', base);
  assert.match(mtaStsId(a), /^[A-Za-z0-9]{1,32}$/);
  assert.equal(mtaStsId(a), mtaStsId(mtaStsPolicy('mx.example.test', base)));
  assert.notEqual(mtaStsId(a), mtaStsId(mtaStsPolicy('mx.example.test', { ...base, mode: 'enforce' })));
  assert.notEqual(mtaStsId(a), mtaStsId(mtaStsPolicy('mx.example.test', { ...base, maxAgeMs: 86_400_000 })));
  assert.equal(mtaStsTxt(a), `v=STSv1; id=${mtaStsId(a)}`);
  assert.equal(tlsRptTxt('example.test'), 'v=TLSRPTv1; rua=mailto:postmaster@example.test');
  const lines = dnsRecords({ domain: 'example.test', hostname: 'mx.example.test', keys: [], mtaSts: base });
  assert.ok(lines.includes(`_mta-sts.example.test. 3600 IN TXT "${mtaStsTxt(a)}"`));
});
