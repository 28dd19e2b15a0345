// The DATA reader (src/smtp/wire/data.ts): only <CRLF>.<CRLF> ends a message (RFC 5321
// §4.1.1.4), dot-stuffing is removed (§4.5.2), whatever the chunking.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { DataReader } from '../../src/smtp/wire/data.ts';
import { splitAt } from '../harness/chunks.ts';

/** Feeds the chunks; returns the message, whether the end was found and the bytes after it. */
function read(chunks: readonly string[]): { body: string; done: boolean; rest: string; bytes: number } {
  const r = new DataReader();
  const out: Buffer[] = [];
  let rest = '';
  for (const c of chunks) {
    const buf = Buffer.from(c, 'latin1');
    if (r.done) {
      rest += c;
      continue;
    }
    const used = r.feed(buf, (b) => out.push(Buffer.from(b)));
    rest += buf.subarray(used).toString('latin1');
  }
  return { body: Buffer.concat(out).toString('latin1'), done: r.done, rest, bytes: r.bytes };
}

/** The obvious model: the data starts after the CRLF of the DATA line; the first
 *  CRLF "." CRLF ends it; every line (after CRLF) starting with "." loses that dot. */
function model(s: string): { body: string; done: boolean; rest: string } {
  const t = `\r\n${s}`;
  const end = t.indexOf('\r\n.\r\n');
  const raw = end === -1 ? s : t.slice(2, end + 2);
  const body = raw
    .split('\r\n')
    .map((l) => (l.startsWith('.') ? l.slice(1) : l))
    .join('\r\n');
  return { body, done: end !== -1, rest: end === -1 ? '' : s.slice(end + 3) };
}

test('the end, dot-stuffing and the bytes after the end', () => {
  assert.deepEqual(read(['Subject: x\r\n\r\nbody\r\n.\r\nQUIT\r\n']), {
    body: 'Subject: x\r\n\r\nbody\r\n',
    done: true,
    rest: 'QUIT\r\n',
    bytes: 20,
  });
  assert.equal(read(['.\r\n']).body, ''); // an empty message
  assert.equal(read(['..leading\r\n...two\r\n.\r\n']).body, '.leading\r\n..two\r\n');
  assert.equal(read(['a\r\n.', '\r', '\n']).done, true);
  assert.equal(read(['a\r\n.\r', 'x\r\n.\r\n']).body, 'a\r\n\rx\r\n'); // ".\rx": the dot goes, the CR stays
});

test('SMTP smuggling: no sequence but CRLF.CRLF ends DATA', () => {
  for (const seq of ['\n.\n', '\r.\r', '\n.\r\n', '\r\n.\n', '\r\n.\r', '\r.\r\n', '\n.\r']) {
    const r = read([`outer${seq}MAIL FROM:<ceo@example.test>\r\nDATA\r\nsmuggled`]);
    assert.equal(r.done, false, JSON.stringify(seq));
    const whole = read([`outer${seq}MAIL FROM:<x@y>\r\n.\r\n`]);
    assert.equal(whole.done, true);
    assert.ok(whole.body.includes('MAIL FROM:<x@y>'), JSON.stringify(seq));
  }
});

test('the DATA reader agrees with the model for any input and any chunking', () => {
  fc.assert(
    fc.property(
      fc.array(fc.constantFrom('a', '.', '..', '\r', '\n', '\r\n', '\r\n.\r\n', '\r\n..', 'xyz', '\0'), {
        maxLength: 30,
      }),
      fc.array(fc.nat(), { maxLength: 12 }),
      (parts, cuts) => {
        const s = parts.join('');
        const m = model(s);
        const r = read(splitAt(s, cuts));
        assert.equal(r.done, m.done, JSON.stringify(s));
        if (m.done) {
          assert.equal(r.body, m.body, JSON.stringify(s));
          assert.equal(r.rest, m.rest, JSON.stringify(s));
          assert.equal(r.bytes, Buffer.byteLength(m.body, 'latin1'));
        } else {
          // At most a CR that may start the end is held back.
          assert.ok(m.body.startsWith(r.body) && m.body.length - r.body.length <= 1, JSON.stringify(s));
        }
      },
    ),
    { numRuns: 5000 },
  );
});

test('a chunk of a megabyte without CR is read at memchr speed', () => {
  const big = Buffer.alloc(1024 * 1024, 0x61);
  const r = new DataReader();
  const started = performance.now();
  for (let i = 0; i < 50; i++) r.feed(big, () => {});
  assert.ok(performance.now() - started < 1000);
  assert.equal(r.bytes, 50 * 1024 * 1024);
});
