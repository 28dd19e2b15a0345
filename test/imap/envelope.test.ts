import assert from 'node:assert/strict';
import { test } from 'node:test';
import { envelope, filterHeader } from '../../src/imap/message.ts';

const header = (lines: string[]) => Buffer.from([...lines, '', ''].join('\r\n'), 'latin1');

test('ENVELOPE: encoded words stay raw, groups get start/end markers, defaults from From', () => {
  const h = header([
    'Date: Tue, 24 Nov 2026 02:00:00 +0000',
    'Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=',
    'From: =?UTF-8?Q?J=C3=BCrgen?= <j@example.test>',
    'To: undisclosed-recipients:;',
    'Cc: Team: a@example.test, "B, Person" <b@example.test>;',
    'Message-ID: <env@example.test>',
  ]);
  const from = '(("=?UTF-8?Q?J=C3=BCrgen?=" NIL "j" "example.test"))';
  assert.equal(
    envelope(h),
    `("Tue, 24 Nov 2026 02:00:00 +0000" "=?UTF-8?Q?Gr=C3=BC=C3=9Fe?=" ${from} ${from} ${from} ` +
      '((NIL NIL "undisclosed-recipients" NIL)(NIL NIL NIL NIL)) ' +
      '((NIL NIL "Team" NIL)(NIL NIL "a" "example.test")("B, Person" NIL "b" "example.test")(NIL NIL NIL NIL)) NIL NIL "<env@example.test>")',
  );
});

test('ENVELOPE: every field missing is NIL; UTF-8 values become literals; folded headers unfold', () => {
  assert.equal(envelope(header(['X-Other: 1'])), '(NIL NIL NIL NIL NIL NIL NIL NIL NIL NIL)');
  // RFC 5322 §2.2.3: unfolding removes the CRLF and keeps the white space that follows it.
  const utf8 = envelope(Buffer.from('Subject: Grüße\r\n\tand more\r\n\r\n', 'utf8'));
  assert.equal(
    utf8,
    `(NIL {${Buffer.byteLength('Grüße\tand more')}}\r\nGrüße\tand more NIL NIL NIL NIL NIL NIL NIL NIL)`,
  );
});

test('HEADER.FIELDS keeps folding and order; .NOT inverts; names are case-insensitive', () => {
  const h = header(['Subject: one', 'X-Long: a', ' b', 'From: x@example.test']);
  assert.equal(filterHeader(h, ['subject', 'X-LONG'], false).toString(), 'Subject: one\r\nX-Long: a\r\n b\r\n\r\n');
  assert.equal(filterHeader(h, ['Subject', 'X-Long'], true).toString(), 'From: x@example.test\r\n\r\n');
});
