import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CrlfNormalizer } from '../../src/core/crlf.ts';
import { splitAt } from '../harness/chunks.ts';

function normalize(chunks: string[]): string {
  const n = new CrlfNormalizer();
  const out = chunks.map((c) => n.push(Buffer.from(c, 'latin1')).toString('latin1')).join('');
  return out + n.end().toString('latin1');
}

test('bare LF and bare CR become CRLF; CRLF stays', () => {
  assert.equal(normalize(['a\nb\r\nc\rd']), 'a\r\nb\r\nc\r\nd');
  assert.equal(normalize(['Subject: x\n\nbody\n']), 'Subject: x\r\n\r\nbody\r\n');
  assert.equal(normalize(['a\r', '\nb']), 'a\r\nb', 'CRLF split across chunks');
  assert.equal(normalize(['a\r', 'b']), 'a\r\nb');
  assert.equal(normalize(['a\r']), 'a\r\n');
  assert.equal(normalize(['\r\n\r\n']), '\r\n\r\n');
});

test('property: chunking never changes the result, and the result has only CRLF line endings', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('a', '\r', '\n', '\r\n', 'xyz'), { maxLength: 30 }),
      fc.array(fc.nat(), { maxLength: 6 }),
      (parts, cuts) => {
        const s = parts.join('');
        const whole = normalize([s]);
        const chunks = splitAt(s, cuts);
        assert.equal(normalize(chunks), whole);
        assert.ok(!/\r(?!\n)|(?<!\r)\n/.test(whole));
      },
    ),
    { numRuns: 2000 },
  );
});
