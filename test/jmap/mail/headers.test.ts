import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import {
  asAddresses,
  asDate,
  asGroupedAddresses,
  asMessageIds,
  asText,
  asURLs,
  parseHeaderProperty,
} from '../../../src/jmap/mail/header-forms.ts';
import { headerList, headerValueOf } from '../../../src/jmap/mail/headers.ts';
import { decodeParams } from '../../../src/mime/params.ts';
import { parseParams } from '../../../src/mime/structure.ts';

const block = Buffer.from(
  [
    'From: =?UTF-8?Q?J=C3=BCrgen?= <jurgen@example.com>',
    'To: "Smith, Ann" <ann@example.org>, bob@example.net (Bob B),',
    ' Team: carol@example.com, Dan <dan@example.com>;, eve@example.com',
    'Subject:  Hello',
    '\tworld =?ISO-8859-1?Q?caf=E9?=  ',
    'Message-ID: <a1@example.com>',
    'References: <r1@x> (comment)',
    '   <r2@x>',
    'Date: Thu, 30 Oct 2014 14:12:00 +0800',
    'List-Unsubscribe: <mailto:leave@example.com>, <https://example.com/u?x=1>',
    'X-Dup: one',
    'X-Dup: two',
    '',
    '',
  ].join('\r\n'),
);

test('headers: raw values in order, folding kept; header:Name is the last field', () => {
  const fields = headerList(block);
  assert.equal(fields.length, 9);
  assert.deepEqual(fields[2], { name: 'Subject', value: '  Hello\r\n\tworld =?ISO-8859-1?Q?caf=E9?=  ' });
  assert.equal(headerValueOf(fields, 'header:x-dup'), ' two');
  assert.deepEqual(headerValueOf(fields, 'header:X-Dup:all'), [' one', ' two']);
  assert.equal(headerValueOf(fields, 'header:X-None'), null);
  assert.deepEqual(headerValueOf(fields, 'header:X-None:all'), []);
  assert.equal(headerValueOf(fields, 'subject'), 'Hello\tworld café');
  assert.deepEqual(headerValueOf(fields, 'messageId'), ['a1@example.com']);
  assert.deepEqual(headerValueOf(fields, 'references'), ['r1@x', 'r2@x']);
  assert.equal(headerValueOf(fields, 'sentAt'), '2014-10-30T14:12:00+08:00');
  assert.deepEqual(headerValueOf(fields, 'from'), [{ name: 'Jürgen', email: 'jurgen@example.com' }]);
  assert.deepEqual(headerValueOf(fields, 'to'), [
    { name: 'Smith, Ann', email: 'ann@example.org' },
    { name: 'Bob B', email: 'bob@example.net' },
    { name: null, email: 'carol@example.com' },
    { name: 'Dan', email: 'dan@example.com' },
    { name: null, email: 'eve@example.com' },
  ]);
  assert.deepEqual(headerValueOf(fields, 'header:To:asGroupedAddresses'), [
    {
      name: null,
      addresses: [
        { name: 'Smith, Ann', email: 'ann@example.org' },
        { name: 'Bob B', email: 'bob@example.net' },
      ],
    },
    {
      name: 'Team',
      addresses: [
        { name: null, email: 'carol@example.com' },
        { name: 'Dan', email: 'dan@example.com' },
      ],
    },
    { name: null, addresses: [{ name: null, email: 'eve@example.com' }] },
  ]);
  assert.deepEqual(headerValueOf(fields, 'header:List-Unsubscribe:asURLs'), [
    'mailto:leave@example.com',
    'https://example.com/u?x=1',
  ]);
  assert.equal(headerValueOf(fields, 'header:From:asDate'), undefined, 'form not allowed for From');
});

test('header property syntax and the forms each field allows (RFC 8621 §4.1.2-4.1.3)', () => {
  assert.deepEqual(parseHeaderProperty('header:From:asAddresses:all'), {
    name: 'From',
    form: 'Addresses',
    all: true,
  });
  assert.deepEqual(parseHeaderProperty('header:X-Foo'), { name: 'X-Foo', form: 'Raw', all: false });
  assert.deepEqual(parseHeaderProperty('header:X-Foo:asDate'), { name: 'X-Foo', form: 'Date', all: false });
  for (const bad of [
    'header:',
    'header:From:asDate',
    'header:Subject:asAddresses',
    'header:X:asNothing',
    'header:X:all:asText',
    'header:X:asText:all:more',
    'header:Bad Name',
    'subject',
  ])
    assert.equal(parseHeaderProperty(bad), null, bad);
});

test('forms: text, message ids, dates, URLs; invalid is null', () => {
  assert.equal(asText(' =?UTF-8?B?5pel5pys6Kqe?= =?UTF-8?Q?_x?=\r\n y'), '日本語 x y');
  assert.equal(asText('e\u0301'), 'é', 'NFC');
  assert.deepEqual(asMessageIds(' <a@b>  <c@d>'), ['a@b', 'c@d']);
  assert.equal(asMessageIds('not an id'), null);
  assert.equal(asMessageIds('<unterminated@x'), null);
  assert.equal(asMessageIds(''), null);
  assert.equal(asDate('Mon, 7 Dec 2026 03:04:05 -0130'), '2026-12-07T03:04:05-01:30');
  assert.equal(asDate('7 Dec 26 03:04 GMT'), '2026-12-07T03:04:00+00:00');
  assert.equal(asDate('Fri, 21 Nov 1997 09:55:06 (comment) -0600'), '1997-11-21T09:55:06-06:00');
  assert.equal(asDate('31 Feb 2020 00:00:00 +0000'), null);
  assert.equal(asDate('yesterday'), null);
  assert.equal(asURLs('junk'), null);
  assert.deepEqual(asAddresses('undisclosed-recipients:;'), []);
  assert.deepEqual(asGroupedAddresses('undisclosed-recipients:;'), [{ name: 'undisclosed-recipients', addresses: [] }]);
});

test('RFC 2231 parameters: continuations, charsets, precedence; RFC 2047 names', () => {
  const p = (s: string) => decodeParams(parseParams(s));
  assert.equal(p(`; filename*=iso-8859-1'en'caf%E9.txt`).get('filename'), 'café.txt');
  assert.equal(p('; filename*0="long "; filename*1="name.pdf"').get('filename'), 'long name.pdf');
  assert.equal(p(`; filename*0*=UTF-8''%E2%82%AC; filename*1=".txt"`).get('filename'), '€.txt');
  assert.equal(p(`; name="plain.txt"; name*=UTF-8''ext.txt`).get('name'), 'ext.txt');
  assert.equal(p('; name="=?UTF-8?B?w6kudHh0?="').get('name'), 'é.txt');
  assert.equal(p(`; name="${Buffer.from('ü.txt').toString('latin1')}"`).get('name'), 'ü.txt', 'raw UTF-8');
});

test('property: header parsing never throws on any bytes, and stays linear', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), (bytes) => {
      const fields = headerList(Buffer.from(bytes));
      for (const f of fields) {
        asAddresses(f.value);
        asGroupedAddresses(f.value);
        asDate(f.value);
        asMessageIds(f.value);
        asURLs(f.value);
        asText(f.value);
      }
    }),
  );
  const hostile = `${'('.repeat(50_000)}${'<'.repeat(50_000)}${'=?a?Q?'.repeat(10_000)} 1 Jan 2000 00:00`;
  const t0 = performance.now();
  for (const f of [asAddresses, asDate, asMessageIds, asURLs, asText]) f(hostile);
  assert.ok(performance.now() - t0 < 2000, 'linear on hostile values');
});
