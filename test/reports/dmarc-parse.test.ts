// Received DMARC aggregate reports (reports/dmarc-parse.ts) against hostile input: gzip and zip
// bombs stop at the output bound, a document type declaration (XXE, entity expansion) is
// refused, deep nesting is refused, random bytes in any of the three forms give a ReportError
// and nothing else; and what senders really send (gzip, zip, plain XML, octet-stream with a
// .xml.gz name, no <version>) is read. Also the pure helpers: rua URIs with size limits,
// the policy published with its defaults, full IPv6 sources, the aggregate report Subject.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deflateRawSync, gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { LIMITS } from '../../src/core/limits.ts';
import { isAggregateReport } from '../../src/hygiene/pipeline.ts';
import { bufferReader } from '../../src/mime/reader.ts';
import { parseFeedback, ReportError, reportsInMessage, reportXml } from '../../src/reports/dmarc-parse.ts';
import { policyPublished, reportUris } from '../../src/reports/dmarc-record.ts';
import { summarize } from '../../src/reports/dmarc-summary.ts';
import { fullIp } from '../../src/reports/dmarc-xml.ts';

const FEEDBACK = `<?xml version="1.0" encoding="UTF-8"?>
<feedback>
  <report_metadata>
    <org_name>google.com</org_name><email>noreply-dmarc-support@google.com</email>
    <report_id>5717107811868587391</report_id>
    <date_range><begin>1796515200</begin><end>1796601599</end></date_range>
  </report_metadata>
  <policy_published><domain>example.test</domain><adkim>r</adkim><aspf>r</aspf><p>reject</p><sp>reject</sp><pct>100</pct></policy_published>
  <record>
    <row><source_ip>192.0.2.1</source_ip><count>12</count>
      <policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>pass</spf></policy_evaluated></row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results><dkim><domain>example.test</domain><result>pass</result><selector>s1</selector></dkim>
      <spf><domain>example.test</domain><result>pass</result></spf></auth_results>
  </record>
  <record>
    <row><source_ip>198.51.100.7</source_ip><count>3</count>
      <policy_evaluated><disposition>reject</disposition><dkim>fail</dkim><spf>fail</spf></policy_evaluated></row>
    <identifiers><header_from>example.test</header_from></identifiers>
    <auth_results><spf><domain>spoof.test</domain><result>fail</result></spf></auth_results>
  </record>
</feedback>
`;

/** A zip archive of one entry (PKWARE APPNOTE 4.3: local header, data, central directory, end). */
function zip(name: string, data: Buffer, deflate = true): Buffer {
  const body = deflate ? deflateRawSync(data) : data;
  const n = Buffer.from(name);
  const local = Buffer.alloc(30);
  local.writeUInt32LE(0x04034b50, 0);
  local.writeUInt16LE(deflate ? 8 : 0, 8);
  local.writeUInt32LE(body.length, 18);
  local.writeUInt32LE(data.length, 22);
  local.writeUInt16LE(n.length, 26);
  const central = Buffer.alloc(46);
  central.writeUInt32LE(0x02014b50, 0);
  central.writeUInt16LE(deflate ? 8 : 0, 10);
  central.writeUInt32LE(body.length, 20);
  central.writeUInt32LE(data.length, 24);
  central.writeUInt16LE(n.length, 28);
  central.writeUInt32LE(0, 42);
  const cdStart = local.length + n.length + body.length;
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(1, 8);
  end.writeUInt16LE(1, 10);
  end.writeUInt32LE(central.length + n.length, 12);
  end.writeUInt32LE(cdStart, 16);
  return Buffer.concat([local, n, body, central, n, end]);
}

function mail(type: string, name: string, bytes: Buffer): Buffer {
  return Buffer.from(
    [
      'From: noreply-dmarc-support@google.com',
      'Subject: Report domain: example.test Submitter: google.com Report-ID: 5717107811868587391',
      'MIME-Version: 1.0',
      'Content-Type: multipart/mixed; boundary="b"',
      '',
      '--b',
      'Content-Type: text/plain',
      '',
      'A report.',
      '--b',
      `Content-Type: ${type}; name="${name}"`,
      'Content-Transfer-Encoding: base64',
      '',
      ...(bytes.toString('base64').match(/.{1,76}/g) ?? []),
      '--b--',
      '',
    ].join('\r\n'),
  );
}

test('what senders send: gzip, zip, plain XML, octet-stream named .xml.gz; no <version>', async () => {
  const xml = Buffer.from(FEEDBACK);
  for (const [type, name, bytes] of [
    ['application/gzip', 'google.com!example.test!1796515200!1796601599.xml.gz', gzipSync(xml)],
    ['application/zip', 'r.zip', zip('google.com!example.test!1796515200!1796601599.xml', xml)],
    ['application/zip', 'stored.zip', zip('report.xml', xml, false)],
    ['text/xml', 'r.xml', xml],
    ['application/octet-stream', 'r.xml.gz', gzipSync(xml)],
  ] as const) {
    const m = mail(type, name, bytes);
    const { reports, errors } = await reportsInMessage(bufferReader(m), m.length);
    assert.deepEqual(errors, [], type);
    assert.equal(reports.length, 1, `${type} ${name}`);
    const r = reports[0];
    assert.equal(r?.orgName, 'google.com');
    assert.equal(r?.domain, 'example.test');
    assert.equal(r?.policy, 'reject');
    assert.deepEqual(
      r?.records.map((x) => [x.sourceIp, x.count, x.disposition, x.dkim, x.spf]),
      [
        ['192.0.2.1', 12, 'none', 'pass', 'pass'],
        ['198.51.100.7', 3, 'reject', 'fail', 'fail'],
      ],
    );
  }
});

test('a gzip bomb and a zip bomb stop at the inflated XML bound', () => {
  const zeros = Buffer.alloc(LIMITS.dmarcReports.maxXmlBytes + 1024 * 1024);
  const gz = gzipSync(zeros);
  assert.ok(gz.length < 100 * 1024, 'a small attachment');
  assert.throws(
    () => reportXml(gz, 'gzip'),
    (e) => e instanceof ReportError && /too large/.test(e.message),
  );
  assert.throws(
    () => reportXml(zip('report.xml', zeros), 'zip'),
    (e) => e instanceof ReportError && /too large/.test(e.message),
  );
  assert.throws(
    () => reportXml(Buffer.alloc(LIMITS.dmarcReports.maxAttachmentBytes + 1), 'gzip'),
    /attachment too large/,
  );
});

test('XXE and entity expansion: any document type declaration is refused', () => {
  const xxe = `<?xml version="1.0"?><!DOCTYPE feedback [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>`;
  assert.throws(
    () => parseFeedback(Buffer.from(xxe)),
    (e) => e instanceof ReportError && /document type/.test(e.message),
  );
  const lol = `<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">]><feedback><report_metadata><org_name>&lol2;</org_name></report_metadata></feedback>`;
  assert.throws(() => parseFeedback(Buffer.from(lol)), ReportError);
  // Without a DTD an entity reference stays text: nothing is fetched or expanded.
  const r = parseFeedback(
    Buffer.from('<feedback><report_metadata><org_name>&xxe;</org_name></report_metadata></feedback>'),
  );
  assert.equal(r.orgName, '&xxe;');
});

test('deep nesting, no <feedback>, not XML: a ReportError', () => {
  const deep = `${'<a>'.repeat(10_000)}${'</a>'.repeat(10_000)}`;
  assert.throws(() => parseFeedback(Buffer.from(`<feedback>${deep}</feedback>`)), ReportError);
  assert.throws(() => parseFeedback(Buffer.from('<other/>')), /no <feedback>/);
  assert.throws(() => parseFeedback(Buffer.from('<feedback><a></b></feedback>')), ReportError);
});

test('random bytes as gzip, zip or XML, and random XML around a report: only ReportError', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2048 }), fc.constantFrom('gzip', 'zip', 'xml'), (bytes, kind) => {
      try {
        parseFeedback(reportXml(Buffer.from(bytes), kind as 'gzip' | 'zip' | 'xml'));
      } catch (e) {
        if (!(e instanceof ReportError)) throw e;
      }
    }),
    { numRuns: 500 },
  );
  fc.assert(
    fc.property(fc.string({ maxLength: 400 }), fc.nat(FEEDBACK.length), (junk, at) => {
      try {
        parseFeedback(Buffer.from(FEEDBACK.slice(0, at) + junk + FEEDBACK.slice(at)));
      } catch (e) {
        if (!(e instanceof ReportError)) throw e;
      }
    }),
    { numRuns: 500 },
  );
});

test('rua URIs: mailto only, size limits, at most LIMITS.dmarcReports.maxRua', () => {
  assert.deepEqual(
    reportUris('v=DMARC1; p=none; rua=mailto:a@x.test!10m, https://x.test/r ,mailto:b%40c@y.test!500,mailto:bad'),
    [
      { address: 'a@x.test', maxBytes: 10 * 1024 * 1024 },
      { address: 'b@c@y.test', maxBytes: 500 },
    ],
  );
  assert.deepEqual(reportUris('v=DMARC1; p=none'), []);
  const many = Array.from({ length: 20 }, (_, i) => `mailto:r${i}@x.test`).join(',');
  assert.equal(reportUris(`v=DMARC1; rua=${many}`).length, LIMITS.dmarcReports.maxRua);
  assert.deepEqual(policyPublished('x.test', 'v=DMARC1; p=reject; rua=mailto:a@x.test'), {
    domain: 'x.test',
    adkim: 'r',
    aspf: 'r',
    p: 'reject',
    sp: 'reject',
    pct: 100,
    fo: '0',
  });
  assert.deepEqual(policyPublished('x.test', 'v=DMARC1; p=none; sp=quarantine; adkim=s; aspf=s; pct=20; fo=1:d'), {
    domain: 'x.test',
    adkim: 's',
    aspf: 's',
    p: 'none',
    sp: 'quarantine',
    pct: 20,
    fo: '1:d',
  });
});

test('IPv6 sources in eight groups (the schema pattern), the report Subject, the summary', () => {
  assert.equal(fullIp('::1'), '0000:0000:0000:0000:0000:0000:0000:0001');
  assert.equal(fullIp('2001:db8::7'), '2001:0db8:0000:0000:0000:0000:0000:0007');
  assert.equal(fullIp('::ffff:192.0.2.1'), '0000:0000:0000:0000:0000:ffff:c000:0201');
  assert.equal(fullIp('192.0.2.1'), '192.0.2.1');
  assert.equal(isAggregateReport(Buffer.from('From: a@b\r\nSubject: Report Domain: x.test Submitter: y\r\n')), true);
  assert.equal(isAggregateReport(Buffer.from('Subject: Re: Report Domain\r\nX: y\r\n')), false);
  assert.equal(isAggregateReport(Buffer.from('X-Subject: Report Domain: x\r\n')), false);
  const r = parseFeedback(Buffer.from(FEEDBACK));
  // The same report twice (a resend) counts once.
  assert.deepEqual(summarize([r, r]), [
    {
      org: 'google.com',
      domain: 'example.test',
      sourceIp: '192.0.2.1',
      messages: 12,
      pass: 12,
      fail: 0,
      none: 12,
      quarantine: 0,
      reject: 0,
    },
    {
      org: 'google.com',
      domain: 'example.test',
      sourceIp: '198.51.100.7',
      messages: 3,
      pass: 0,
      fail: 3,
      none: 0,
      quarantine: 0,
      reject: 3,
    },
  ]);
  assert.deepEqual(summarize([r], r.end + 1), []);
});
