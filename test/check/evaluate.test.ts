// The verdicts of `arcline check` from plain facts (check/evaluate.ts): the cases the DNS test
// (check.test.ts) does not reach cheaply: failed look-ups, pending DKIM keys, backup MX hosts,
// wildcard certificates, ?all, and the exit status.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { evaluateDomain, evaluateServer, exitStatus, nameCovered, tags } from '../../src/check/evaluate.ts';
import type { CertFacts, DomainFacts, ServerFacts } from '../../src/check/facts.ts';

const now = new Date('2026-06-01T00:00:00Z');
const cert = (over: Partial<CertFacts> = {}): CertFacts => ({
  names: ['mx.example.org'],
  notBefore: new Date('2026-01-01T00:00:00Z'),
  notAfter: new Date('2027-01-01T00:00:00Z'),
  issuer: 'CA',
  trusted: true,
  trustError: null,
  ...over,
});

const server = (over: Partial<ServerFacts> = {}): ServerFacts => ({
  hostname: 'mx.example.org',
  addresses: ['192.0.2.1'],
  addressesConfigured: false,
  addressError: null,
  hostAddresses: ['192.0.2.1'],
  perAddress: [
    {
      address: '192.0.2.1',
      ptr: { ok: true, value: ['mx.example.org'] },
      forward: [{ name: 'mx.example.org', addresses: ['192.0.2.1'] }],
      dnsbl: [],
    },
  ],
  zones: [],
  tls: [],
  ...over,
});

const domain = (over: Partial<DomainFacts> = {}): DomainFacts => ({
  domain: 'example.org',
  records: ['example.org. 3600 IN MX 10 mx.example.org.', 'example.org. 3600 IN TXT "v=spf1 mx -all"'],
  ourMx: ['mx.example.org', '*.backup.example.net'],
  mx: { ok: true, value: [{ exchange: 'mx.example.org', priority: 10 }] },
  txt: { ok: true, value: ['v=spf1 mx -all'] },
  spf: [{ address: '192.0.2.1', result: 'pass', comment: '' }],
  dkimSign: true,
  dkim: [],
  dmarc: { ok: true, value: ['v=DMARC1; p=reject'] },
  mtaStsTxt: { ok: false, absent: true },
  mtaStsExpected: { txt: 'v=STSv1; id=abc', policy: 'version: STSv1\r\n' },
  mtaStsServed: null,
  tlsRpt: { ok: true, value: ['v=TLSRPTv1; rua=mailto:postmaster@example.org'] },
  ...over,
});

const pick = (rs: ReturnType<typeof evaluateDomain>, check: string) => rs.filter((r) => r.check === check);

test('names: exact, wildcard of one label only (RFC 6125 §6.4.3), case and trailing dot', () => {
  assert.ok(nameCovered('MX.example.org.', ['mx.example.org']));
  assert.ok(nameCovered('a.backup.example.net', ['*.backup.example.net']));
  assert.ok(!nameCovered('a.b.backup.example.net', ['*.backup.example.net']));
  assert.ok(!nameCovered('backup.example.net', ['*.backup.example.net']));
  assert.deepEqual(
    [...tags('v=DMARC1; P=reject ;rua = mailto:x@y')],
    [
      ['v', 'DMARC1'],
      ['p', 'reject'],
      ['rua', 'mailto:x@y'],
    ],
  );
});

test('MX: a backup host of [mta_sts] mx counts as ours; another host is a warning; a failed look-up fails', () => {
  const both = (x: string) =>
    pick(
      evaluateDomain(
        domain({
          mx: {
            ok: true,
            value: [
              { exchange: 'mx.example.org', priority: 10 },
              { exchange: x, priority: 20 },
            ],
          },
        }),
        now,
      ),
      'mx',
    )[0];
  assert.equal(both('b1.backup.example.net')?.status, 'pass');
  assert.equal(both('mx.other.example')?.status, 'warn');
  const failed = pick(evaluateDomain(domain({ mx: { ok: false, absent: false, error: 'ETIMEOUT' } }), now), 'mx')[0];
  assert.equal(failed?.status, 'fail');
  assert.match(failed?.message ?? '', /look-up failed \(ETIMEOUT\)/);
});

test('SPF: ?all is a warning, two records fail (RFC 7208 §4.5), softfail for our address fails', () => {
  let r = pick(evaluateDomain(domain({ txt: { ok: true, value: ['v=spf1 mx ?all'] } }), now), 'spf');
  assert.deepEqual(
    r.map((x) => x.status),
    ['warn', 'pass'],
  );
  r = pick(evaluateDomain(domain({ txt: { ok: true, value: ['v=spf1 mx -all', 'v=spf1 -all'] } }), now), 'spf');
  assert.equal(r.length, 1);
  assert.match(r[0]?.message ?? '', /2 SPF records/);
  r = pick(evaluateDomain(domain({ spf: [{ address: '192.0.2.1', result: 'softfail', comment: 'x' }] }), now), 'spf');
  assert.equal(r[0]?.status, 'fail');
  assert.deepEqual(r[0]?.fix, [
    'example.org. 3600 IN TXT "v=spf1 mx -all"',
    'or add ip4:192.0.2.1 to "v=spf1 mx -all"',
  ]);
});

test('DKIM: signing off warns, no key fails, a pending key not yet published warns, a revoked key fails', () => {
  assert.equal(pick(evaluateDomain(domain({ dkimSign: false }), now), 'dkim')[0]?.status, 'warn');
  assert.match(pick(evaluateDomain(domain(), now), 'dkim')[0]?.fix[0] ?? '', /arcline dkim keygen example\.org/);
  const key = {
    selector: 's2',
    expected: 'v=DKIM1; k=ed25519; p=AAAA',
    zoneLine: 's2._domainkey.example.org. 3600 IN TXT "v=DKIM1; k=ed25519; p=AAAA"',
  };
  const r = pick(
    evaluateDomain(
      domain({
        dkim: [
          { ...key, selector: 's1', pending: false, found: { ok: true, value: ['v=DKIM1; k=ed25519; p=AA AA'] } },
          { ...key, pending: true, found: { ok: false, absent: true } },
          { ...key, selector: 's3', pending: false, found: { ok: true, value: ['v=DKIM1; k=ed25519; p='] } },
        ],
      }),
      now,
    ),
    'dkim',
  );
  assert.deepEqual(
    r.map((x) => x.status),
    ['pass', 'warn', 'fail'],
  );
  assert.match(r[1]?.message ?? '', /pending key/);
  assert.match(r[2]?.message ?? '', /revoked/);
});

test('MTA-STS: the policy served differs, or under an expired certificate', () => {
  const base = { mtaStsTxt: { ok: true, value: ['v=STSv1; id=abc'] } } as const;
  const served = (over: object) =>
    pick(
      evaluateDomain(
        domain({
          ...base,
          mtaStsServed: {
            ok: true,
            status: 200,
            body: 'version: STSv1\r\n',
            cert: cert({ names: ['mta-sts.example.org'] }),
            ...over,
          },
        }),
        now,
      ),
      'mta-sts',
    )[0];
  assert.equal(served({})?.status, 'pass');
  assert.match(served({ status: 404 })?.message ?? '', /answers 404, not our policy/);
  assert.match(
    served({ cert: cert({ names: ['mta-sts.example.org'], notAfter: new Date('2026-05-01T00:00:00Z') }) })?.message ??
      '',
    /expired on 2026-05-01/,
  );
});

test('server: no address at all, a blocklist that did not answer, a listener without TLS', () => {
  let r = evaluateServer(server({ addresses: [], perAddress: [], addressError: 'ETIMEOUT' }), now);
  assert.equal(r[0]?.status, 'fail');
  assert.match(r[0]?.message ?? '', /cannot look up the addresses of mx\.example\.org: ETIMEOUT/);
  r = evaluateServer(
    server({
      perAddress: [
        {
          address: '192.0.2.1',
          ptr: { ok: true, value: ['mx.example.org'] },
          forward: [{ name: 'mx.example.org', addresses: ['192.0.2.1'] }],
          dnsbl: [
            { zone: 'a.test', result: { kind: 'clear' } },
            { zone: 'b.test', result: { kind: 'error', error: 'ESERVFAIL' } },
          ],
        },
      ],
      tls: [{ service: 'smtp', listen: ':25', result: { ok: false, error: 'STARTTLS not offered' } }],
    }),
    now,
  );
  assert.deepEqual(
    r.filter((x) => x.check === 'dnsbl').map((x) => x.status),
    ['pass', 'warn'],
  );
  assert.match(r.find((x) => x.check === 'tls')?.message ?? '', /smtp :25: no TLS: STARTTLS not offered/);
  assert.equal(exitStatus(r), 1);
  assert.equal(exitStatus(r.filter((x) => x.status !== 'fail')), 3);
  assert.equal(exitStatus(r.filter((x) => x.status === 'pass')), 0);
});
