import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeEncodedWords } from '../../src/core/encoded-words.ts';

test('RFC 2047 encoded words decode; adjacent words join; bad ones stay as they are', () => {
  assert.equal(decodeEncodedWords('=?UTF-8?Q?J=C3=BCrgen_M=C3=BCller?='), 'Jürgen Müller');
  assert.equal(decodeEncodedWords('=?iso-8859-1?q?caf=E9?= au lait'), 'café au lait');
  assert.equal(decodeEncodedWords('=?UTF-8?B?5pel5pys6Kqe?='), '日本語');
  assert.equal(decodeEncodedWords('=?UTF-8?Q?a?= =?UTF-8?Q?b?='), 'ab');
  assert.equal(decodeEncodedWords('=?windows-1252?Q?=80?='), '€');
  assert.equal(decodeEncodedWords('plain text'), 'plain text');
  assert.equal(decodeEncodedWords('=?x-unknown?Q?abc?='), '=?x-unknown?Q?abc?=');
  assert.equal(decodeEncodedWords('=?UTF-8?B?not base64!?='), '=?UTF-8?B?not base64!?=');
});
