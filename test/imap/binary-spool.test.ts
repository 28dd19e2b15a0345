// The conversion of a large binary APPEND chunk by chunk (src/imap/binary-spool.ts) gives the
// same bytes as the in-memory one (src/imap/binary-append.ts) for the same message: property
// tests over generated MIME messages (binary bodies with every byte value, LF/CRLF/bare CR mixes,
// nested multiparts whose delimiters meet, message/rfc822, missing close delimiters, boundaries
// that are prefixes of each other) split into chunks anywhere and under small limits, the limits'
// edges, then through the store's spool on both sides of the streaming threshold. The socket
// tests are in binary-append.test.ts.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import fc from 'fast-check';
import { CrlfNormalizer } from '../../src/core/crlf.ts';
import { LIMITS } from '../../src/core/limits.ts';
import { BINARY_LIMITS, type BinaryLimits, encodeBinaryParts } from '../../src/imap/binary-append.ts';
import { BinaryScan, encodeBinarySpool, encodeParts } from '../../src/imap/binary-spool.ts';
import { bufferMessage, Spool } from '../../src/store/spool.ts';

const latin1 = (t: string) => Buffer.from(t, 'latin1');

/** `buf` in chunks cut at `cuts` (taken modulo its length). */
function split(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (buf.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const p of [...at, buf.length]) {
    out.push(buf.subarray(prev, p));
    prev = p;
  }
  return out;
}

async function* chunks(bufs: readonly Buffer[]): AsyncGenerator<Buffer> {
  yield* bufs;
}

/** The chunked conversion (line endings as sent): scan cut at `cuts1`, encode cut at `cuts2`. */
async function chunked(msg: Buffer, cuts1: number[], cuts2: number[], limits?: BinaryLimits): Promise<Buffer> {
  const scan = new BinaryScan(limits);
  for (const c of split(msg, cuts1)) scan.push(c);
  const parts = scan.end();
  const out: Buffer[] = [];
  for await (const piece of encodeParts(chunks(split(msg, cuts2)), parts)) out.push(piece);
  return Buffer.concat(out);
}

function normalised(buf: Buffer): Buffer {
  const crlf = new CrlfNormalizer();
  return Buffer.concat([crlf.push(buf), crlf.end()]);
}

const eol = fc.constantFrom('\r\n', '\r\n', '\n', '\r\r\n');
/** Bodies: arbitrary bytes, or lines that look like delimiters, headers and line breaks. */
const body = fc.oneof(
  fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u).toString('latin1')),
  fc
    .array(fc.constantFrom('\n', '\r\n', '\r', '--a', '--a--', '--b\n', '--a \t\r\n', 'text', '\x00', '\xff', ' '), {
      maxLength: 20,
    })
    .map((a) => a.join('')),
);

/** MIME trees: a header (Content-Type, Content-Transfer-Encoding: binary or not, folded or not),
 *  then a leaf body, a multipart (preamble, parts, close delimiter or not, epilogue) or an
 *  encapsulated message. Parts may be empty or no entity at all. */
const tree: fc.Memo<string> = fc.memo((d) =>
  fc
    .record({
      kind: d <= 1 ? fc.constant('leaf') : fc.constantFrom('leaf', 'leaf', 'multipart', 'message'),
      cte: fc.constantFrom('binary', 'binary', 'BINARY', 'folded', 'base64', '7bit', null),
      boundary: fc.constantFrom('a', 'ab', 'b', 'a b', 'x'.repeat(70), 'x'.repeat(71)),
      e: eol,
      extra: fc.array(fc.constantFrom('Subject: x', 'X-A: 1', ' folded', 'Content-Type: text/plain'), { maxLength: 2 }),
      body,
      parts: fc.array(
        d <= 1
          ? fc.constant('')
          : fc.oneof({ weight: 4, arbitrary: tree(d - 1) }, { weight: 1, arbitrary: fc.constantFrom('', '\n', 'x') }),
        { maxLength: 3 },
      ),
      inner: d <= 1 ? fc.constant('') : tree(d - 1),
      pre: body,
      epi: body,
      close: fc.boolean(),
      pad: fc.constantFrom('', '', ' ', '\t '),
      sep: fc.constantFrom('\r\n', '\r\n', '\n', ''),
    })
    .map((r) => {
      const h: string[] = [...r.extra];
      if (r.kind === 'multipart') h.push(`Content-Type: multipart/mixed; boundary="${r.boundary}"`);
      else if (r.kind === 'message') h.push('Content-Type: message/rfc822');
      else h.push('Content-Type: application/octet-stream');
      if (r.cte === 'folded') h.push(`Content-Transfer-Encoding:${r.e} binary`);
      else if (r.cte) h.push(`Content-Transfer-Encoding: ${r.cte}`);
      const head = `${h.map((l) => l + r.e).join('')}${r.e}`;
      if (r.kind === 'leaf') return head + r.body;
      if (r.kind === 'message') return head + r.inner;
      let out = head + r.pre + r.sep;
      for (const p of r.parts) out += `--${r.boundary}${r.pad}${r.e}${p}${r.sep}`;
      if (r.close) out += `--${r.boundary}--${r.pad}${r.e}${r.epi}`;
      return out;
    }),
);

/** Messages line by line from a list of choices, following the structure so far: headers that
 *  open multiparts (boundaries a, b, c, ab) and encapsulated messages, delimiters of any open
 *  multipart (an outer one right after an inner one, a close delimiter of an outer one), data. */
function lines(choices: readonly number[], data: readonly Buffer[]): Buffer {
  const out: string[] = [];
  const open: string[] = [];
  let inHeader = true;
  let declared: string | null = null;
  let message = false;
  let n = 0;
  const datum = () => (data[n++ % Math.max(1, data.length)] ?? Buffer.alloc(0)).toString('latin1');
  for (const [i, c0] of choices.entries()) {
    const c = (Math.imul(c0 + 1, 2654435761) >>> 16) & 4095; // spread fast-check's small numbers
    const e = ['\r\n', '\r\n', '\n', '\r\r\n'][(c >> 4) % 4] as string;
    const pick = (xs: readonly string[]) => xs[(c >> 6) % xs.length] as string;
    const r = c % 16;
    if (inHeader) {
      if (r <= 2 || (i === 0 && r % 3 !== 0)) {
        declared = pick(['a', 'b', 'c', 'ab']);
        out.push(`Content-Type: multipart/mixed; boundary=${declared}${e}`);
      } else if (r === 3) {
        message = true;
        declared = null;
        out.push(`Content-Type: message/rfc822${e}`);
      } else if (r <= 9) out.push(`Content-Transfer-Encoding: binary${e}`);
      else if (r === 10) out.push(`X-H: ${i}${e}`);
      else if (r === 11 && open.length > 0) out.push(`--${pick(open)}${e}`);
      else {
        out.push(e === '\r\r\n' ? '\r\n' : e); // the empty line
        inHeader = message;
        message = false;
        if (declared) open.push(declared);
        declared = null;
      }
    } else if (r <= 3 || r >= 13 || (r <= 11 && open.length === 0)) out.push(datum() + e);
    else if (r === 4) out.push(e);
    else if (r <= 10) {
      out.push(`--${r === 10 ? open.at(-1) : pick(open)}${pick(['', ' ', '', '\t'])}${e}`);
      inHeader = true;
      declared = null;
      message = false;
    } else if (r === 11) {
      const b = pick(open);
      out.push(`--${b}--${e}`);
      open.length = open.lastIndexOf(b);
    } else out.push(`--${pick(['a', 'b', 'c', 'ab'])}x${e}`);
  }
  if (choices.length % 3 === 0 && out.length > 0) out[out.length - 1] = (out.at(-1) as string).replace(/\r?\n$/, '');
  return latin1(out.join(''));
}

const cuts = fc.array(fc.nat(), { maxLength: 10 });
const smallLimits = fc.record({
  maxDepth: fc.integer({ min: 0, max: 4 }),
  maxParts: fc.integer({ min: 0, max: 10 }),
  maxHeader: fc.integer({ min: 0, max: 150 }),
});

test('property: MIME trees, split anywhere, give the bytes encodeBinaryParts gives', async () => {
  let converted = 0;
  await fc.assert(
    fc.asyncProperty(tree(5), cuts, cuts, fc.option(smallLimits), async (text, c1, c2, limits) => {
      const msg = latin1(text);
      const want = encodeBinaryParts(msg, limits ?? undefined);
      if (want !== msg) converted++;
      assert.equal((await chunked(msg, c1, c2, limits ?? undefined)).toString('latin1'), want.toString('latin1'));
    }),
    { numRuns: 3000 },
  );
  assert.ok(converted > 300, `only ${converted} messages had a binary part to convert`);
});

test('property: line-by-line structures under every small limit give the bytes encodeBinaryParts gives', async () => {
  let several = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.nat(4095), { minLength: 10, maxLength: 80, size: 'max' }),
      fc.array(
        fc.uint8Array({ maxLength: 100 }).map((u) => Buffer.from(u)),
        { maxLength: 5 },
      ),
      cuts,
      cuts,
      async (choices, data, c1, c2) => {
        const msg = lines(choices, data);
        if (encodeBinaryParts(msg).toString('latin1').split('base64').length > 2) several++;
        for (const maxDepth of [0, 1, 2, 3, 20]) {
          for (let maxParts = 0; maxParts < 14; maxParts++) {
            const limits = { maxDepth, maxParts, maxHeader: maxParts % 3 === 0 ? 40 : 1000 };
            const want = encodeBinaryParts(msg, limits).toString('latin1');
            assert.equal((await chunked(msg, c1, c2, limits)).toString('latin1'), want, JSON.stringify(limits));
          }
        }
      },
    ),
    { numRuns: 400 },
  );
  assert.ok(several > 5, `only ${several} messages had several binary parts`);
});

test('a body part that begins where its multipart ends is not counted (maxParts edge)', async () => {
  // --i then --o at once: the last part of "i" is empty and encodeBinaryParts never looks at it,
  // so with 4 parts allowed the binary part after it is the 4th, and converted.
  const msg = latin1(
    'Content-Type: multipart/mixed; boundary=o\n\n--o\nContent-Type: multipart/mixed; boundary=i\n\n' +
      '--i\nX: 1\n\n--i\n--o\nContent-Transfer-Encoding: binary\n\ndata\n--o--\n',
  );
  for (const maxParts of [3, 4, 5]) {
    const limits = { ...BINARY_LIMITS, maxParts };
    const want = encodeBinaryParts(msg, limits).toString('latin1');
    assert.equal(want.includes('base64'), maxParts >= 4);
    assert.equal((await chunked(msg, [], [], limits)).toString('latin1'), want);
  }
});

test('the limits of LIMITS.imap: nesting, number of parts, header size; the same either way', async () => {
  const depth = LIMITS.imap.maxMimeDepth;
  const bin = 'Content-Transfer-Encoding: binary\n\n\x00\n';
  let deep = bin;
  let deepMessage = bin;
  for (let i = 0; i < depth + 3; i++) {
    deep = `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n${deep}\n--b${i}\n${bin}--b${i}--\n`;
    deepMessage = `Content-Type: message/rfc822\n\n${deepMessage}`;
  }
  const many = `Content-Type: multipart/mixed; boundary=x\n\n${'--x\nContent-Transfer-Encoding: binary\n\n\x00\n'.repeat(LIMITS.imap.maxMimeParts + 10)}--x--\n`;
  const header = (n: number) => `Content-Transfer-Encoding: binary\nX: ${'h'.repeat(n)}\n\n\x00\xff`;
  const max = LIMITS.imap.maxMimeHeaderBytes;
  const fixed = 'Content-Transfer-Encoding: binary\nX: \n\n'.length;
  for (const [what, text, converted] of [
    ['multiparts nested deeper than the limit', deep, depth - 1], // the parts at depth 1 to 19
    ['messages nested deeper than the limit', deepMessage, 0],
    ['more parts than the limit', many, LIMITS.imap.maxMimeParts - 1], // the root counts one
    ['a header of the largest size', header(max - fixed), 1],
    ['a header one byte larger', header(max - fixed + 1), 0],
  ] as const) {
    const msg = latin1(text);
    const want = encodeBinaryParts(msg).toString('latin1');
    assert.equal(want.split('base64').length - 1, converted, what);
    assert.equal((await chunked(msg, [1000, 7, 70_000], [3, 65_536])).toString('latin1'), want, what);
  }
});

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** Every byte value, `n` bytes: LF, CR, CRLF, NUL and 8-bit bytes throughout. */
function everyByte(n: number): Buffer {
  const b = Buffer.alloc(n);
  for (let i = 0; i < n; i++) b[i] = (i * 7 + (i >> 8)) & 0xff;
  return b;
}

test('through the store spool (in memory and spilled to a file), on both sides of the streaming threshold', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-binspool-'));
  dirs.push(dir);
  const spool = new Spool(dir, LIMITS.store.spoolMemoryBytes);
  const around = [LIMITS.imap.streamAppendAbove, LIMITS.store.spoolMemoryBytes];
  let checked = 0;
  for (const threshold of around) {
    for (const delta of [-1000, -1, 0, 1, 1000]) {
      const head =
        'Subject: big\nContent-Type: multipart/mixed; boundary="=_outer"\r\n\r\npreamble\n--=_outer\r\n' +
        'Content-Type: text/plain\n\nGr\xfc\xdfe\r\nbare LF\nbare CR\rend\r\n--=_outer\r\nContent-Type: message/rfc822\r\n\r\n' +
        'Subject: inner\r\nContent-Type: multipart/alternative; boundary=in\n\n--in\nContent-Transfer-Encoding: binary\n\n';
      const middle =
        '\r\n--in--\r\n--=_outer\r\nContent-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n';
      const tail = '\n--=_outer--\r\nepilogue';
      const fixed = head.length + 300 + middle.length + tail.length;
      const big = everyByte(threshold + delta - fixed);
      const msg = Buffer.concat([latin1(head), everyByte(300), latin1(middle), big, latin1(tail)]);
      assert.equal(msg.length, threshold + delta);
      const want = normalised(encodeBinaryParts(msg));
      for (const raw of [bufferMessage(msg), await spooled(spool, msg, 16 * 1024 + 3)]) {
        const out = await encodeBinarySpool(raw, spool.create());
        const got: Buffer[] = [];
        for await (const chunk of out.open() as AsyncIterable<Buffer>) got.push(chunk);
        const stored = Buffer.concat(got);
        assert.equal(out.size, want.length);
        assert.ok(stored.equals(want), `${msg.length} bytes`);
        assert.ok(!stored.includes(0), 'no NUL stored');
        await out.dispose();
        await raw.dispose();
        checked++;
      }
    }
  }
  assert.equal(checked, 20);
});

/** `msg` written to a spool in chunks of `step` bytes, as the connection writes a literal8. */
async function spooled(spool: Spool, msg: Buffer, step: number) {
  const w = spool.create();
  for (let i = 0; i < msg.length; i += step) await w.write(msg.subarray(i, i + step));
  return w.finish();
}
