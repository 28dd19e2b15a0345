// The LIST pattern matcher (src/imap/list-pattern.ts): RFC 9051 §6.3.9 semantics checked against
// a naive reference matcher on random inputs, and linear time on the patterns that made the old
// RegExp backtrack for minutes.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { compilePattern, matchPattern } from '../../src/imap/list-pattern.ts';

const matches = (pattern: string, name: string, reference = '') =>
  matchPattern(compilePattern(reference, pattern), name);

/** The definition, by plain recursion (exponential: small inputs only). */
function reference(p: string, n: string): boolean {
  const inbox = n.length >= 5 && n.slice(0, 5).toUpperCase() === 'INBOX' && (n.length === 5 || n[5] === '.');
  const eq = (a: string, b: string, i: number) => (i < 5 && inbox ? a.toUpperCase() === b.toUpperCase() : a === b);
  const go = (i: number, j: number): boolean => {
    if (j === p.length) return i === n.length;
    const c = p[j] as string;
    if (c === '*') {
      for (let k = i; k <= n.length; k++) if (go(k, j + 1)) return true;
      return false;
    }
    if (c === '%') {
      for (let k = i; k <= n.length; k++) {
        if (go(k, j + 1)) return true;
        if (n[k] === '.') return false;
      }
      return false;
    }
    return i < n.length && eq(c, n[i] as string, i) && go(i + 1, j + 1);
  };
  return go(0, 0);
}

test('list pattern: RFC 9051 §6.3.9 examples and INBOX in any case', () => {
  assert.ok(matches('*', 'INBOX'));
  assert.ok(matches('*', 'a.b.c'));
  assert.ok(matches('%', 'Sent'));
  assert.ok(!matches('%', 'a.b'));
  assert.ok(matches('a.%', 'a.b'));
  assert.ok(!matches('a.%', 'a.b.c'));
  assert.ok(matches('a.*', 'a.b.c'));
  assert.ok(matches('%', 'a.b', 'a.'), 'reference "a." + pattern "%"');
  assert.ok(!matches('%', 'a.b.c', 'a.'));
  assert.ok(matches('b', 'a.b', 'a.'), 'reference is a prefix');
  assert.ok(matches('inbox', 'INBOX'));
  assert.ok(matches('InBoX.%', 'INBOX.Sub'));
  assert.ok(matches('inb*', 'INBOX'));
  assert.ok(!matches('inbox.sub', 'INBOX.Sub'), 'only the INBOX part is case-insensitive');
  assert.ok(!matches('sent', 'Sent'), 'other names are case-sensitive');
  assert.ok(!matches('inbox', 'INBOXES'));
  assert.ok(matches('', ''));
  assert.ok(!matches('', 'a'));
  assert.ok(matches('%*%', 'a.b'));
  assert.ok(!matches('%%', 'a.b'));
  assert.ok(matches('Entw\u00fcrfe', 'Entw\u00fcrfe'));
  assert.ok(matches('%', '\u{1F4EC}'), 'a wildcard takes characters outside the BMP');
});

test('list pattern: agrees with the reference matcher on random patterns and names', () => {
  const alphabet = fc.constantFrom('a', 'b', 'A', '.', 'I', 'n', 'N', 'b', 'o', 'x', 'X');
  const name = fc.oneof(
    fc.array(alphabet, { maxLength: 10 }).map((a) => a.join('')),
    fc.array(alphabet, { maxLength: 6 }).map((a) => `INBOX${a.join('')}`),
  );
  const pattern = fc.array(fc.oneof(alphabet, fc.constantFrom('*', '%')), { maxLength: 10 }).map((a) => a.join(''));
  fc.assert(
    fc.property(pattern, name, (p, n) => matchPattern(compilePattern('', p), n) === reference(p, n)),
    { numRuns: 20_000 },
  );
  // Long wildcard-heavy patterns cross the 32-state word boundary.
  const long = fc.array(fc.constantFrom('a', '.', '*', '%'), { minLength: 30, maxLength: 80 }).map((a) => a.join(''));
  const longName = fc.array(fc.constantFrom('a', '.'), { maxLength: 40 }).map((a) => a.join(''));
  fc.assert(
    fc.property(long, longName, (p, n) => matchPattern(compilePattern('', p), n) === reference(p, n)),
    { numRuns: 3000 },
  );
});

test('list pattern: hostile patterns against long names take linear time', () => {
  const name = 'a'.repeat(250);
  const longDotted = `${'a.'.repeat(124)}ab`;
  const hostile = ['*****X', '%*%*%*%*%*X', `${'*a'.repeat(60)}X`, `${'%a'.repeat(120)}X`, `${'*%'.repeat(400)}X`];
  const started = performance.now();
  for (const p of hostile) {
    const c = compilePattern('', p);
    assert.equal(matchPattern(c, name), false, p);
    assert.equal(matchPattern(c, longDotted), false, p);
  }
  assert.equal(matchPattern(compilePattern('', `${'%a'.repeat(125)}`), name), true);
  const elapsed = performance.now() - started;
  // The old RegExp took 27 s for the first pattern alone.
  assert.ok(elapsed < 200, `${elapsed} ms`);
});
