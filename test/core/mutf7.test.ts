import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { decodeMutf7, encodeMutf7 } from '../../src/core/mutf7.ts';

test('modified UTF-7 (RFC 3501 §5.1.3) examples', () => {
  assert.equal(encodeMutf7('~peter/mail/台北/日本語'), '~peter/mail/&U,BTFw-/&ZeVnLIqe-');
  assert.equal(decodeMutf7('~peter/mail/&U,BTFw-/&ZeVnLIqe-'), '~peter/mail/台北/日本語');
  assert.equal(encodeMutf7('Entwürfe'), 'Entw&APw-rfe');
  assert.equal(encodeMutf7('A&B'), 'A&-B');
  assert.equal(decodeMutf7('A&-B'), 'A&B');
  assert.equal(encodeMutf7('😀'), '&2D3eAA-');
  assert.equal(decodeMutf7('&2D3eAA-'), '😀');
});

test('invalid modified UTF-7 is refused', () => {
  for (const bad of ['&U,BTFw', '&AGE-', '&Jjo!', '&U,BTFw=-', 'ü', '&2D0-', '&AAA-', '&APx-x&APw', 'a\tb']) {
    assert.equal(decodeMutf7(bad), null, bad);
  }
});

test('property: decode(encode(s)) = s for any string', () => {
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 30 }), (s) => {
      // Mailbox names never contain control characters; decode() refuses them by design.
      if (!s.isWellFormed() || [...s].some((ch) => (ch.codePointAt(0) as number) < 0x20 || ch === '\x7f')) return;
      assert.equal(decodeMutf7(encodeMutf7(s)), s);
    }),
    { numRuns: 2000 },
  );
});
