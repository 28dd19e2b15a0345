// The command line framer (src/smtp/wire/lines.ts): lines in order whatever the chunking, a
// line over the limit reported once and its rest discarded, never buffered.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LineFramer } from '../../src/smtp/wire/lines.ts';
import { splitAt } from '../harness/chunks.ts';

const MAX = 16;

function frame(chunks: readonly string[], max = MAX): { out: string[]; maxHeld: number } {
  const f = new LineFramer(max);
  const out: string[] = [];
  let maxHeld = 0;
  for (const c of chunks) {
    f.push(Buffer.from(c, 'latin1'));
    for (let x = f.next(); x !== null; x = f.next())
      out.push(x.kind === 'line' ? x.line.toString('latin1') : '<too long>');
    maxHeld = Math.max(maxHeld, f.buffered);
  }
  return { out, maxHeld };
}

function model(s: string, max = MAX): string[] {
  const lines = s.split('\n');
  const partial = lines.pop() ?? '';
  const out = lines.map((l) => (l.endsWith('\r') ? l.slice(0, -1) : l)).map((l) => (l.length > max ? '<too long>' : l));
  // A partial line is reported as soon as it cannot fit any more (max + a CR).
  if (partial.length > max + 1) out.push('<too long>');
  return out;
}

test('lines, CRLF or LF, and an over-long line', () => {
  assert.deepEqual(frame(['EHLO a\r\nNOOP\nQUIT\r\n']).out, ['EHLO a', 'NOOP', 'QUIT']);
  assert.deepEqual(frame([`${'x'.repeat(100)}`, `${'y'.repeat(100)}\r\nNOOP\r\n`]).out, ['<too long>', 'NOOP']);
  assert.deepEqual(frame([`${'x'.repeat(MAX)}\r\n`]).out, ['x'.repeat(MAX)]);
});

test('the framer agrees with the model for any input and chunking; held bytes stay bounded', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('a', 'bcdefgh', '\r', '\n', '\r\n', 'x'.repeat(20)), { maxLength: 30 }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (parts, cuts) => {
        const s = parts.join('');
        const chunks = splitAt(s, cuts);
        const r = frame(chunks);
        assert.deepEqual(r.out, model(s), JSON.stringify(chunks));
        // A partial line is never held beyond the limit (+ the CR, + what one chunk brought).
        const longestChunk = Math.max(0, ...chunks.map((c) => c.length));
        assert.ok(r.maxHeld <= MAX + 1 + longestChunk);
      },
    ),
    { numRuns: 3000 },
  );
});

test('100 MB without a newline holds nothing', () => {
  const f = new LineFramer(4096);
  const chunk = Buffer.alloc(64 * 1024, 0x61);
  let tooLong = 0;
  for (let i = 0; i < 1600; i++) {
    f.push(chunk);
    for (let x = f.next(); x !== null; x = f.next()) if (x.kind === 'too-long') tooLong++;
    assert.ok(f.buffered <= 64 * 1024);
  }
  assert.equal(tooLong, 1);
});

test('bytes held while the session is busy cost linear time, even one byte at a time', () => {
  // A pipelining client trickling one byte per packet while its session waits for a lookup:
  // every byte is held (nothing is taken out), up to the 64 KiB the connection allows.
  const f = new LineFramer(4096);
  const line = Buffer.from('RCPT TO:<someone@example.test>\r\n');
  const total = 64 * 1024;
  const started = performance.now();
  for (let i = 0; i < total; i++) f.push(line.subarray(i % line.length, (i % line.length) + 1));
  const ms = performance.now() - started;
  assert.equal(f.buffered, total);
  let lines = 0;
  while (f.next() !== null) lines++;
  assert.equal(lines, Math.floor(total / line.length));
  // Copying everything held at each byte (quadratic: 2 GB here) took 434 ms; linear takes 13.
  assert.ok(ms < 150, `${ms.toFixed(0)} ms for ${total} one-byte pushes`);
});
