// RFC 3464 delivery status notifications, built as bytes and checked field by field with plain
// string operations (no MIME parser needed).

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { buildDsn, type DsnInput } from '../../src/queue/dsn.ts';
import { rfc5322Date as formatRfc5322Date } from '../../src/smtp/trace.ts';

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

/** RFC 5322 §2.2.3 unfolding: a CRLF followed by white space is removed. */
const unfold = (s: string) => s.replace(/\r\n(?=[ \t])/g, '');

/** The per-message and per-recipient groups of the message/delivery-status part, unfolded. */
function statusGroups(dsn: Buffer): string[] {
  const status = parts(dsn).parts[1] ?? '';
  return unfold(status).replace(/\r\n$/, '').split('\r\n\r\n').slice(1);
}

function assertLinesShort(dsn: Buffer): void {
  const lines = dsn.toString('latin1').split('\r\n');
  for (const l of lines) assert.ok(l.length < 998, `line of ${l.length} octets: ${l.slice(0, 40)}...`);
}

describe('DSN', () => {
  test('RFC 5322 dates for DSN fields: UTC, +0000', () => {
    assert.equal(formatRfc5322Date(new Date('2026-11-24T06:09:05Z')), 'Tue, 24 Nov 2026 06:09:05 +0000');
    assert.equal(formatRfc5322Date(new Date('2027-01-01T00:00:00+02:00')), 'Thu, 31 Dec 2026 22:00:00 +0000');
  });

  test('a bounce: headers, three parts, per-recipient fields, CRLF only', () => {
    const dsn = buildDsn(base);
    const text = dsn.toString('utf8');
    assert.doesNotMatch(text, /(?<!\r)\n/, 'no bare LF anywhere');
    assert.doesNotMatch(text, /\r(?!\n)/, 'no bare CR anywhere');
    assertLinesShort(dsn);
    const { head, parts: p } = parts(dsn);
    assert.match(
      head,
      /^From: Mail Delivery System <MAILER-DAEMON@mx\.example\.test>\r\nTo: <alice@example\.test>\r\n/,
    );
    assert.match(head, /\r\nSubject: Undelivered Mail Returned to Sender\r\n/);
    assert.match(head, /\r\nDate: Tue, 24 Nov 2026 06:00:00 \+0000\r\n/);
    assert.match(head, /\r\nMessage-ID: <dsn-1@mx\.example\.test>\r\n/);
    assert.match(head, /\r\nAuto-Submitted: auto-replied\r\n/);
    assert.match(head, /\r\nMIME-Version: 1\.0\r\n/);
    assert.match(head, /Content-Type: multipart\/report; report-type=delivery-status;\r\n\tboundary="BOUNDARY"/);
    assert.equal(p.length, 3);

    const human = p[0] ?? '';
    assert.match(human, /^\r\nContent-Type: text\/plain; charset=utf-8\r\n/);
    assert.match(human, /This is the mail system at host mx\.example\.test\./);
    assert.match(human, /could not\r\nbe delivered to one or more recipients/);
    assert.match(human, /Queue id: q123/);
    assert.match(unfold(human), /\r\n<bob@remote\.test>: 550 5\.1\.1 <bob@remote\.test>: user unknown X-Injected: yes/);
    assert.match(human, /\r\n<carol@remote\.test>: 552 5\.2\.2 mailbox full\r\n/);
    assert.match(human, /\r\n<dave@remote\.test>: status 2\.0\.0\r\n/, 'the status when there is no diagnostic');

    assert.match(p[1] ?? '', /^\r\nContent-Type: message\/delivery-status\r\n\r\n/);
    const groups = statusGroups(dsn);
    assert.equal(groups.length, 4, 'per-message group and one group per recipient');
    assert.equal(groups[0], 'Reporting-MTA: dns; mx.example.test\r\nArrival-Date: Tue, 24 Nov 2026 05:00:00 +0000');
    assert.equal(
      groups[1],
      [
        'Original-Recipient: rfc822;Bob@Remote.test',
        'Final-Recipient: rfc822; bob@remote.test',
        'Action: failed',
        'Status: 5.1.1',
        'Remote-MTA: dns; mx1.remote.test',
        'Diagnostic-Code: smtp; 550 5.1.1 <bob@remote.test>: user unknown X-Injected: yes',
        'Last-Attempt-Date: Tue, 24 Nov 2026 05:59:00 +0000',
      ].join('\r\n'),
    );
    assert.equal(
      groups[2],
      [
        'Final-Recipient: rfc822; carol@remote.test',
        'Action: failed',
        'Status: 5.2.2',
        'Diagnostic-Code: smtp; 552 5.2.2 mailbox full',
      ].join('\r\n'),
      'no Original-Recipient, Remote-MTA or dates when not given',
    );
    assert.equal(
      groups[3],
      [
        'Original-Recipient: rfc822;dave@remote.test',
        'Final-Recipient: rfc822; dave@remote.test',
        'Action: delivered',
        'Status: 2.0.0',
      ].join('\r\n'),
    );

    assert.equal(
      p[2],
      '\r\nContent-Type: text/rfc822-headers\r\n\r\nFrom: alice@example.test\r\nSubject: hello\r\nTo: bob@remote.test\r\n',
      'bare-LF original headers arrive with CRLF, ending in exactly one line end',
    );
    assert.match(text, /\r\n--BOUNDARY--\r\n$/);
  });

  test('an injected CRLF in a reply text never starts a new field', () => {
    const dsn = buildDsn(base).toString('utf8');
    assert.doesNotMatch(dsn, /\r\nX-Injected:/);
    // Every physical line of the status part is a known field, a continuation (leading white
    // space) or a group separator.
    const status = parts(Buffer.from(dsn)).parts[1] ?? '';
    const body = status.slice(status.indexOf('\r\n\r\n') + 4);
    const fields =
      /^(Reporting-MTA|Original-Envelope-Id|Arrival-Date|Original-Recipient|Final-Recipient|Action|Status|Remote-MTA|Diagnostic-Code|Last-Attempt-Date|Will-Retry-Until): /;
    for (const l of body.split('\r\n')) assert.ok(l === '' || /^[ \t]/.test(l) || fields.test(l), `line: ${l}`);
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

  test('a delay warning: its own subject, the retry horizon in the text, and Will-Retry-Until', () => {
    const buf = buildDsn({
      ...base,
      envelopeId: 'env-42',
      recipients: [
        {
          address: 'bob@remote.test',
          action: 'delayed',
          status: '4.4.1',
          remoteMta: 'mx1.remote.test',
          diagnostic: 'connection refused',
          willRetryUntil: new Date('2026-11-29T05:00:00Z'),
        },
      ],
    });
    const dsn = buf.toString();
    assert.match(dsn, /\r\nSubject: Delayed Mail \(still being retried\)\r\n/);
    assert.match(dsn, /THIS IS A WARNING ONLY/);
    assert.match(dsn, /trying until Sun, 29 Nov 2026 05:00:00 \+0000\./);
    const groups = statusGroups(buf);
    assert.equal(
      groups[0],
      'Reporting-MTA: dns; mx.example.test\r\nOriginal-Envelope-Id: env-42\r\nArrival-Date: Tue, 24 Nov 2026 05:00:00 +0000',
    );
    assert.match(groups[1] ?? '', /\r\nAction: delayed\r\nStatus: 4\.4\.1\r\n/);
    assert.match(groups[1] ?? '', /\r\nWill-Retry-Until: Sun, 29 Nov 2026 05:00:00 \+0000$/);
  });

  test('all delivered: a success report', () => {
    const dsn = buildDsn({
      ...base,
      recipients: [{ address: 'bob@remote.test', action: 'delivered', status: '2.0.0' }],
    });
    assert.match(dsn.toString(), /\r\nSubject: Successful Mail Delivery Report\r\n/);
  });

  test('relayed (RFC 3461 §6.2.1.1): the text says no further notice comes', () => {
    const dsn = buildDsn({ ...base, recipients: [{ address: 'bob@remote.test', action: 'relayed', status: '2.0.0' }] });
    const [text = '', status = ''] = parts(dsn).parts;
    assert.match(text, /relayed to the recipients listed below/);
    assert.match(status, /Action: relayed\r\nStatus: 2\.0\.0/);
  });

  test('RET=FULL: part 3 is the whole message as message/rfc822, bytes unchanged', () => {
    const original = Buffer.from('Subject: whole\r\n\r\nthe body\r\n');
    const dsn = buildDsn({ ...base, originalHeaders: original, fullMessage: true });
    const third = parts(dsn).parts[2] ?? '';
    assert.equal(third, '\r\nContent-Type: message/rfc822\r\n\r\nSubject: whole\r\n\r\nthe body\r\n');
    assert.match(dsn.toString(), /\r\n--BOUNDARY--\r\n$/);
  });

  test('Original-Recipient: an addr-type prefix is kept, a bare address gets rfc822;', () => {
    const groups = statusGroups(
      buildDsn({
        ...base,
        recipients: [
          { address: 'a@x.test', originalRecipient: 'A@X.test', action: 'failed', status: '5.1.1' },
          { address: 'b@x.test', originalRecipient: 'rfc822;B@X.test', action: 'failed', status: '5.1.1' },
          { address: 'c@x.test', originalRecipient: 'utf-8;c@x.test', action: 'failed', status: '5.1.1' },
          { address: 'd@x.test', originalRecipient: '"d;e"@x.test', action: 'failed', status: '5.1.1' },
          { address: 'e@x.test', originalRecipient: null, action: 'failed', status: '5.1.1' },
        ],
      }),
    );
    const orcpt = (i: number) => /^Original-Recipient: (.*)$/m.exec(groups[i] ?? '')?.[1];
    assert.equal(orcpt(1), 'rfc822;A@X.test');
    assert.equal(orcpt(2), 'rfc822;B@X.test');
    assert.equal(orcpt(3), 'utf-8;c@x.test');
    assert.equal(orcpt(4), 'rfc822;"d;e"@x.test', 'a ; inside the address is not a type prefix');
    assert.equal(orcpt(5), undefined);
  });

  test('original headers with CR-only or CRLF endings, with or without the empty line', () => {
    for (const raw of ['Subject: a\rX-A: b\r\r', 'Subject: a\r\n\tfolded\r\nX-A: b', 'Subject: a\nX-A: b\n']) {
      const p3 = parts(buildDsn({ ...base, originalHeaders: Buffer.from(raw) })).parts[2] ?? '';
      const body = p3.slice(p3.indexOf('\r\n\r\n') + 4);
      assert.match(body, /^Subject: a\r\n(\tfolded\r\n)?X-A: b\r\n$/, JSON.stringify(raw));
    }
  });

  test('a long reply text is capped and folded: no line reaches 998 octets, unfolding gives it back', () => {
    const words = Array.from({ length: 400 }, (_, i) => `word${i}`).join(' ');
    const dsn = buildDsn({
      ...base,
      recipients: [{ address: 'bob@remote.test', action: 'failed', status: '5.0.0', diagnostic: `550 ${words}` }],
    });
    assertLinesShort(dsn);
    const group = statusGroups(dsn)[1] ?? '';
    const value = /^Diagnostic-Code: smtp; (.*)$/m.exec(group)?.[1] ?? '';
    assert.equal(value, `550 ${words}`.slice(0, 1000));
    const raw = (parts(dsn).parts[1] ?? '').split('\r\n');
    assert.ok(raw.filter((l) => l.startsWith(' ')).length > 5, 'folded onto continuation lines');
  });

  test('a long word, spaces and non-ASCII text: kept as UTF-8, still under 998 octets per line', () => {
    const dsn = buildDsn({
      ...base,
      to: 'jörg@exämple.test',
      recipients: [
        { address: 'ünïcode@remote.test', action: 'failed', status: '5.1.1', diagnostic: `550 ${'é'.repeat(5000)}` },
        {
          address: 'x@remote.test',
          action: 'failed',
          status: '5.1.1',
          diagnostic: `550${' '.repeat(990)}x${'y'.repeat(990)}`,
        },
      ],
    });
    assertLinesShort(dsn);
    const text = dsn.toString('utf8');
    assert.doesNotMatch(text, /(?<!\r)\n/);
    assert.match(text, /\r\nTo: <jörg@exämple\.test>\r\n/);
    assert.match(text, /\r\nFinal-Recipient: rfc822; ünïcode@remote\.test\r\n/);
    for (const l of text.split('\r\n')) assert.ok(l === '' || l.trim() !== '', 'no white-space-only line');
    const diag = /^Diagnostic-Code: smtp; (.*)$/m.exec(statusGroups(dsn)[1] ?? '')?.[1] ?? '';
    // Capped at 1000 characters; the unbreakable word was cut with an added space per piece.
    assert.equal(diag.replace(/ /g, ''), `550${'é'.repeat(996)}`);
    assert.ok(diag.split(' ').length > 2, 'the word was cut');
  });
});
