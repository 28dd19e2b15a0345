// The pure parts of the Email methods' store glue (src/jmap/methods/email-store.ts): keywords
// <-> IMAP flags (RFC 8621 §4.1.1) and the blob ids derived from an Email id.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import {
  emailBlobId,
  flagOf,
  keywordsOf,
  parseBlobId,
  partBlobId,
  utcDate,
} from '../../src/jmap/methods/email-store.ts';

const ID = 'Mabcdefghijklmnopqrstu-_X';

describe('Email ids, blob ids, keywords', () => {
  test('blob ids round-trip', () => {
    assert.deepEqual(parseBlobId(emailBlobId(ID)), { emailId: ID, partId: null });
    assert.deepEqual(parseBlobId(partBlobId(ID, '2.10.1')), { emailId: ID, partId: '2.10.1' });
    for (const bad of [
      '',
      'E',
      `E${ID.slice(1)}x`,
      `P${ID.slice(1)}`,
      `P${ID.slice(1)}0`,
      `P${ID.slice(1)}1__2`,
      'B123',
    ])
      assert.equal(parseBlobId(bad), null, bad);
  });

  test('keywords: the flags of every copy united, system flags mapped, \\Deleted hidden, lower-cased', () => {
    assert.deepEqual(
      keywordsOf([
        ['\\Seen', '\\Deleted', 'Work'],
        ['\\Flagged', '\\Recent', 'work', '\\Answered', '\\Draft'],
      ]),
      {
        $seen: true,
        work: true,
        $flagged: true,
        $answered: true,
        $draft: true,
      },
    );
    assert.equal(flagOf('$seen'), '\\Seen');
    assert.equal(flagOf('$Flagged'), '\\Flagged');
    assert.equal(flagOf('Custom'), 'custom');
    for (const bad of ['', 'a b', 'a(b', 'a]b', 'x'.repeat(256), '$deleted', '\\Seen', 'é'])
      assert.equal(flagOf(bad), null, bad);
  });

  test('UTCDate without fractions', () => {
    assert.equal(utcDate(new Date(Date.UTC(2026, 0, 2, 3, 4, 5, 678))), '2026-01-02T03:04:05Z');
  });
});
