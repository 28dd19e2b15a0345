// RFC 3464 delivery status notifications, built as bytes and checked field by field.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildDsn, type DsnInput } from '../../src/queue/dsn.ts';

const base: DsnInput = {
  reportingMta: 'mx.example.test',
  from: 'MAILER-DAEMON@mx.example.test',
  to: 'alice@example.test',
  messageId: 'dsn-1@mx.example.test',
  date: new Date('2026-11-24T06:00:00Z'),
  arrivalDate: new Date('2026-11-24T05:00:00Z'),
  queueId: 'q123',
  recipients: [
    {
      address: 'bob@remote.test',
      originalRecipient: 'Bob@Remote.test',
      action: 'failed',
      status: '5.1.1',
      remoteMta: 'mx1.remote.test',
      diagnostic: '550 5.1.1 <bob@remote.test>: user unknown\r\nX-Injected: yes',
      lastAttempt: new Date('2026-11-24T05:59:00Z'),
    },
    { address: 'carol@remote.test', action: 'failed', status: '5.2.2', diagnostic: '552 5.2.2 mailbox full' },
    { address: 'dave@remote.test', originalRecipient: 'rfc822;dave@remote.test', action: 'delivered', status: '2.0.0' },
  ],
  originalHeaders: Buffer.from('From: alice@example.test\nSubject: hello\nTo: bob@remote.test\n\n'),
  boundary: 'BOUNDARY',
};

function parts(dsn: Buffer): { head: string; parts: string[] } {
  const text = dsn.toString('utf8');
  const [head = '', ...rest] = text.split('\r\n--BOUNDARY');
  return { head, parts: rest.filter((p) => !p.startsWith('--')) };
}

describe('DSN', () => {
  test('a bounce: headers, three parts, per-recipient fields, CRLF only', () => {
    const dsn = buildDsn(base);
    const text = dsn.toString('utf8');
    assert.doesNotMatch(text, /(?<!\r)\n/, 'no bare LF anywhere');
    const { head, parts: p } = parts(dsn);
    assert.match(
      head,
      /^From: Mail Delivery System <MAILER-DAEMON@mx\.example\.test>\r\nTo: <alice@example\.test>\r\n/,
    );
    assert.match(head, /\r\nSubject: Undelivered Mail Returned to Sender\r\n/);
    assert.match(head, /\r\nDate: Tue, 24 Nov 2026 06:00:00 \+0000\r\n/);
    assert.match(head, /\r\nMessage-ID: <dsn-1@mx\.example\.test>\r\n/);
    assert.match(head, /\r\nAuto-Submitted: auto-replied\r\n/);
    assert.match(head, /Content-Type: multipart\/report; report-type=delivery-status;\r\n\tboundary="BOUNDARY"/);
    assert.equal(p.length, 3);
    assert.match(p[0] ?? '', /^\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
    assert.match(p[0] ?? '', /<bob@remote\.test>: 550 5\.1\.1/);
    assert.match(p[0] ?? '', /Queue id: q123/);
    const status = p[1] ?? '';
    assert.match(status, /^\r\nContent-Type: message\/delivery-status\r\n\r\n/);
    const blocks = status.split('\r\n\r\n').slice(1);
    assert.equal(blocks[0], 'Reporting-MTA: dns; mx.example.test\r\nArrival-Date: Tue, 24 Nov 2026 05:00:00 +0000');
    assert.equal(
      blocks[1],
      [
        'Original-Recipient: rfc822;Bob@Remote.test',
        'Final-Recipient: rfc822; bob@remote.test',
        'Action: failed',
        'Status: 5.1.1',
        'Remote-MTA: dns; mx1.remote.test',
        'Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.test>: user unknown X-Injected: yes',
        'Last-Attempt-Date: Tue, 24 Nov 2026 05:59:00 +0000',
      ].join('\r\n'),
      'untrusted reply text stays on its line',
    );
    assert.match(blocks[2] ?? '', /^Final-Recipient: rfc822; carol@remote\.test\r\nAction: failed\r\nStatus: 5\.2\.2/);
    assert.match(
      blocks[3] ?? '',
      /^Original-Recipient: rfc822;dave@remote\.test\r\nFinal-Recipient: rfc822; dave@remote\.test\r\nAction: delivered/,
    );
    assert.equal(
      p[2],
      '\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.test\r\nSubject: hello\r\nTo: bob@remote.test\r\n',
    );
    assert.match(text, /\r\n--BOUNDARY--\r\n$/);
  });

  test('a delay warning: its own subject and Will-Retry-Until', () => {
    const dsn = buildDsn({
      ...base,
      envelopeId: 'env-42',
      recipients: [
        {
          address: 'bob@remote.test',
          action: 'delayed',
          status: '4.4.1',
          diagnostic: 'connection refused',
          willRetryUntil: new Date('2026-11-29T05:00:00Z'),
        },
      ],
    }).toString();
    assert.match(dsn, /Subject: Delayed Mail \(still being retried\)/);
    assert.match(dsn, /THIS IS A WARNING ONLY/);
    assert.match(dsn, /Original-Envelope-Id: env-42\r\n/);
    assert.match(dsn, /Action: delayed\r\nStatus: 4\.4\.1\r\n/);
    assert.match(dsn, /Will-Retry-Until: Sun, 29 Nov 2026 05:00:00 \+0000/);
  });

  test('hostile values cannot add header fields; a malformed status becomes a generic one', () => {
    const dsn = buildDsn({
      ...base,
      to: 'alice@example.test>\r\nBcc: victim@x.test',
      recipients: [{ address: 'x@y.test\r\nX: y', action: 'failed', status: '5.1.1\r\nX: z' }],
    }).toString();
    assert.doesNotMatch(dsn, /\r\nBcc:/);
    assert.doesNotMatch(dsn, /\r\nX: /);
    assert.match(dsn, /Status: 5\.0\.0\r\n/);
  });
});
