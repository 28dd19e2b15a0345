// The pure submission checks: header fields, authors, headers to add, header capture.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  addressesIn,
  authorAddresses,
  HeaderCapture,
  headerFields,
  missingHeaders,
} from '../../src/smtp/submission.ts';
import { splitAt } from '../harness/chunks.ts';

const block = (s: string) => Buffer.from(s.replace(/\n/g, '\r\n'));

describe('submission header checks', () => {
  test('fields are unfolded, names lower-cased, non-fields skipped', () => {
    const f = headerFields(
      block('From: "Alice, A." <alice@example.test>\nSubject: a\n long\n\tsubject\nnot a field\nX-A:b\n'),
    );
    assert.deepEqual(f, [
      { name: 'from', value: '"Alice, A." <alice@example.test>' },
      { name: 'subject', value: 'a long\tsubject' },
      { name: 'x-a', value: 'b' },
    ]);
  });

  test('authors: From and Sender, groups flattened, encoded names ignored', () => {
    const f = headerFields(
      block(
        'From: =?utf-8?q?Al=C3=AFce?= <alice@example.test>, Team: bob@example.test, carol@example.test;\nSender: dave@example.test\n',
      ),
    );
    assert.deepEqual(addressesIn(f, 'from'), ['alice@example.test', 'bob@example.test', 'carol@example.test']);
    assert.deepEqual(authorAddresses(f), {
      ok: true,
      authors: ['alice@example.test', 'bob@example.test', 'carol@example.test', 'dave@example.test'],
    });
    assert.deepEqual(authorAddresses(headerFields(block('Subject: x\n'))), { ok: false, reason: 'no-from' });
    assert.deepEqual(authorAddresses(headerFields(block('From: a@x.test\nFrom: b@x.test\n'))), {
      ok: false,
      reason: 'many-from',
    });
    assert.deepEqual(authorAddresses(headerFields(block('From: undisclosed-recipients:;\n'))), {
      ok: false,
      reason: 'no-from',
    });
  });

  test('Message-ID and Date are added only when missing', () => {
    const date = new Date('2026-11-24T06:00:00Z');
    const opts = { id: 'm1', hostname: 'mx.example.test', date };
    assert.equal(
      missingHeaders(headerFields(block('From: a@x.test\n')), opts),
      'Message-ID: <m1@mx.example.test>\r\nDate: Tue, 24 Nov 2026 06:00:00 +0000\r\n',
    );
    assert.equal(missingHeaders(headerFields(block('Message-Id: <x@y>\nDATE: now\n')), opts), '');
  });

  test('header capture finds the end of the header at any chunk split, and a header-less message', () => {
    const msg = 'From: a@x.test\r\nSubject: s\r\n\r\nbody\r\nmore: not a header\r\n';
    for (let a = 0; a < msg.length; a++) {
      const c = new HeaderCapture(1024);
      for (const ch of splitAt(msg, [a, a + 1, a + 3])) if (ch) c.feed(Buffer.from(ch));
      assert.deepEqual(c.result(), { block: Buffer.from('From: a@x.test\r\nSubject: s\r\n'), complete: true });
    }
    const none = new HeaderCapture(1024);
    none.feed(Buffer.from('\r\nbody only\r\n'));
    assert.deepEqual(none.result(), { block: Buffer.alloc(0), complete: true });
    const big = new HeaderCapture(16);
    big.feed(Buffer.from('X-Long: '.padEnd(40, 'x')));
    assert.equal(big.result().complete, false);
  });
});
