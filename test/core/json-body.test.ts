// core/json-body.ts: the same values as JSON.parse whether parsed whole or in slices, nesting
// bounded on both paths, and a large body parsed with turns of the event loop between slices.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import { setImmediate as immediate } from 'node:timers';
import fc from 'fast-check';
import { parseJsonBody } from '../../src/core/json-body.ts';

const both = async (text: string, maxDepth = 64) => [
  await parseJsonBody(Buffer.from(text), { maxDepth }),
  await parseJsonBody(Buffer.from(text), { maxDepth, sliceBytes: 7 }),
];

describe('parseJsonBody', () => {
  test('any JSON value parses to what JSON.parse gives, whole or in 7-byte slices', async () => {
    await fc.assert(
      fc.asyncProperty(fc.jsonValue({ maxDepth: 6 }), async (v) => {
        const text = JSON.stringify(v);
        for (const r of await both(text)) assert.deepEqual(r, { ok: true, value: JSON.parse(text) });
      }),
    );
  });

  test('malformed bodies are syntax errors on both paths', async () => {
    for (const text of ['{', '{"a":1} {"b":2}', '[]x', '{"a":01}', '\ufeff{}', '', '  ', '{"a":"\u0001"}', 'nul']) {
      for (const r of await both(text)) assert.deepEqual(r, { ok: false, reason: 'syntax' }, JSON.stringify(text));
    }
  });

  test('invalid UTF-8 is a syntax error on both paths (I-JSON), valid multi-byte text is not', async () => {
    const bad = Buffer.concat([Buffer.from('{"a":"'), Buffer.from([0xc3, 0x28]), Buffer.from('"}')]);
    for (const sliceBytes of [undefined, 3])
      assert.deepEqual(await parseJsonBody(bad, { maxDepth: 8, sliceBytes }), { ok: false, reason: 'syntax' });
    for (const r of await both('{"a":"é€😀"}')) assert.deepEqual(r, { ok: true, value: { a: 'é€😀' } });
  });

  test('a __proto__ key is an own property, as JSON.parse makes it', async () => {
    for (const r of await both('{"__proto__":{"polluted":true}}')) {
      assert.ok(r.ok);
      const v = r.value as Record<string, unknown>;
      assert.equal(Object.getPrototypeOf(v), Object.prototype);
      assert.deepEqual(Object.keys(v), ['__proto__']);
      assert.equal(({} as Record<string, unknown>).polluted, undefined);
    }
  });

  test('nesting beyond maxDepth is refused before it is built; brackets inside strings do not count', async () => {
    const deep = `${'['.repeat(65)}${']'.repeat(65)}`;
    for (const r of await both(deep)) assert.deepEqual(r, { ok: false, reason: 'depth' });
    const at = `${'['.repeat(64)}${']'.repeat(64)}`;
    for (const r of await both(at)) assert.equal(r.ok, true);
    const strings = JSON.stringify({ a: '[[[[{{{{\\"[[[['.repeat(100) });
    for (const r of await both(strings, 2)) assert.equal(r.ok, true);
    // 200,000 levels: JSON.parse would build it and JSON.stringify of it would overflow the stack.
    const huge = `${'['.repeat(200_000)}${']'.repeat(200_000)}`;
    for (const r of await both(huge)) assert.deepEqual(r, { ok: false, reason: 'depth' });
  });

  test('a 10 MB body of many objects is parsed in slices with the event loop turning in between', async () => {
    const calls = Array.from({ length: 20_000 }, (_, i) => [
      'Email/set',
      { accountId: 'A', create: { [`k${i}`]: { subject: 'x'.repeat(400), keywords: { $seen: true } } } },
      `c${i}`,
    ]);
    const body = Buffer.from(JSON.stringify({ using: [], methodCalls: calls }));
    assert.ok(body.length > 9_000_000);
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) immediate(tick);
    };
    immediate(tick);
    const r = await parseJsonBody(body, { maxDepth: 64 });
    ticking = false;
    assert.ok(r.ok);
    assert.equal((r.value as { methodCalls: unknown[] }).methodCalls.length, 20_000);
    // Another callback ran between (nearly) every two of the ~150 slices of 64 KiB.
    assert.ok(turns >= Math.floor(body.length / 65536) - 2, `${turns} turns`);
  });
});
