import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { ConnectionCounter, clientKey } from '../../src/core/connection-limits.ts';
import { BareNewlineDetector } from '../../src/smtp/line-endings.ts';
import { protocolName, receivedHeader, rfc5322Date, traceHeaders } from '../../src/smtp/trace.ts';
import { splitAt } from '../harness/chunks.ts';

function bare(chunks: string[]): boolean {
  const d = new BareNewlineDetector();
  for (const c of chunks) d.feed(Buffer.from(c, 'latin1'));
  return d.end();
}

test('bare CR / LF detection on every smuggling sequence', () => {
  assert.equal(bare(['Subject: a\r\n\r\nbody\r\n']), false);
  assert.equal(bare(['']), false);
  for (const s of ['a\n.\nb', 'a\r.\rb', 'a\n.\r\nb', 'a\r\n.\rb', 'x\n', 'x\r', '\rx', 'a\r\r\n', 'a\n\r']) {
    assert.equal(bare([s]), true, JSON.stringify(s));
  }
});

test('bare newline detection gives the same verdict for any chunking', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('a', '\r', '\n', '\r\n', '.', 'xyz'), { maxLength: 40 }),
      fc.array(fc.nat(), { maxLength: 10 }),
      (parts, cuts) => {
        const s = parts.join('');
        const expected = /\r(?!\n)|(?<!\r)\n/.test(s);
        const chunks = splitAt(s, cuts);
        assert.equal(bare(chunks), expected, JSON.stringify(chunks));
      },
    ),
    { numRuns: 2000 },
  );
});

test('Received header: RFC 5321 §4.4 form, "for" only when given, client values sanitised', () => {
  const date = new Date(Date.UTC(2026, 10, 24, 2, 21, 41));
  assert.equal(rfc5322Date(date), 'Tue, 24 Nov 2026 02:21:41 +0000');
  const h = receivedHeader({
    helo: 'evil\r\nX-Injected: yes',
    clientHostname: null,
    clientIp: '192.0.2.1',
    byHost: 'mx.example.test',
    protocol: 'ESMTPS',
    id: 'm123',
    tls: { version: 'TLSv1.3', cipher: 'TLS_AES_256_GCM_SHA384' },
    forRecipient: 'bob@example.test',
    date,
  });
  assert.equal(
    h,
    'Received: from evil??X-Injected:?yes ([192.0.2.1])\r\n\tby mx.example.test (arcline) with ESMTPS id m123\r\n' +
      '\t(using TLSv1.3 with cipher TLS_AES_256_GCM_SHA384)\r\n\tfor <bob@example.test>;\r\n\tTue, 24 Nov 2026 02:21:41 +0000\r\n',
  );
  assert.ok(!/\r\nX-Injected/.test(h));
  const h6 = receivedHeader({
    helo: 'h',
    clientHostname: 'c.example',
    clientIp: '::1',
    byHost: 'mx',
    protocol: 'ESMTP',
    id: 'i',
    tls: null,
    forRecipient: null,
    date,
  });
  assert.match(h6, /^Received: from h \(c\.example \[IPv6:::1\]\)\r\n\tby mx \(arcline\) with ESMTP id i;\r\n/);
  const t = traceHeaders({ returnPath: 'a@b.c', deliveredTo: 'x@y.z', received: 'Received: r\r\n' }).toString();
  assert.equal(t, 'Return-Path: <a@b.c>\r\nDelivered-To: x@y.z\r\nReceived: r\r\n');
  assert.equal(
    traceHeaders({ returnPath: '', deliveredTo: 'x@y.z', received: '' }).toString().split('\r\n')[0],
    'Return-Path: <>',
  );
  assert.equal(protocolName({ ehlo: true, tls: true, utf8: true }), 'UTF8SMTPS');
  assert.equal(protocolName({ ehlo: false, tls: false, utf8: false }), 'SMTP');
});

test('connections are counted per IPv4 address and per IPv6 /64', () => {
  assert.equal(clientKey('192.0.2.1'), '192.0.2.1');
  assert.equal(clientKey('::ffff:192.0.2.1'), '192.0.2.1');
  assert.equal(clientKey('2001:db8:1:2:3:4:5:6'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:db8:1:2::9'), '2001:db8:1:2::/64');
  assert.equal(clientKey('2001:0db8::1'), '2001:db8:0:0::/64');
  // Every spelling of one address gives one key: an IPv4 tail, hex IPv4-mapped, a zone id, case.
  assert.equal(clientKey('::ffff:c000:201'), '192.0.2.1');
  assert.equal(clientKey('2001:DB8:1:2::1.2.3.4'), '2001:db8:1:2::/64');
  assert.equal(clientKey('fe80::1%eth0'), 'fe80:0:0:0::/64');
  assert.equal(clientKey('::'), '0:0:0:0::/64');
  const c = new ConnectionCounter(2);
  assert.equal(c.admit('2001:db8:1:2::1'), null);
  assert.equal(c.admit('2001:db8:1:2::2'), null);
  assert.equal(c.admit('2001:db8:1:2::3'), 'per-ip');
  assert.equal(c.admit('2001:db8:1:3::1'), null);
  c.release('2001:db8:1:2::1');
  assert.equal(c.admit('2001:db8:1:2::3'), null);
  c.release('2001:db8:1:2::3');
  c.release('2001:db8:1:2::2');
  c.release('2001:db8:1:3::1');
  assert.equal(c.size, 0);
});
