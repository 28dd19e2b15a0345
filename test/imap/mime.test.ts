import assert from 'node:assert/strict';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { bodyStructure } from '../../src/imap/mime.ts';
import {
  deserializeStructure,
  type MimePart,
  parseStructure,
  resolvePart,
  serializeStructure,
} from '../../src/mime/structure.ts';

let dir: string;
before(async () => {
  dir = await mkdtemp(join(tmpdir(), 'arcline-mime-'));
});
after(() => rm(dir, { recursive: true, force: true }));

let n = 0;
async function structureOf(text: string | Buffer): Promise<{ root: MimePart; size: number }> {
  const path = join(dir, `m${n++}`);
  const buf = typeof text === 'string' ? Buffer.from(text) : text;
  await writeFile(path, buf);
  const fh = await open(path, 'r');
  try {
    return { root: await parseStructure(fh, buf.length), size: buf.length };
  } finally {
    await fh.close();
  }
}

function walk(p: MimePart, visit: (p: MimePart) => void): void {
  visit(p);
  if (p.message) walk(p.message, visit);
  for (const c of p.parts) walk(c, visit);
}

test('single-part messages: defaults, sizes, lines; part 1 is the body', async () => {
  const { root } = await structureOf('Subject: x\r\n\r\nline 1\r\nline 2\r\n');
  assert.equal(bodyStructure(root, false), '("TEXT" "PLAIN" ("CHARSET" "us-ascii") NIL NIL "7BIT" 16 2)');
  assert.equal(resolvePart(root, [1]), root);
  assert.equal(resolvePart(root, [2]), null);
  const headerOnly = await structureOf('Subject: no body\r\n');
  assert.equal(headerOnly.root.bodyEnd - headerOnly.root.bodyStart, 0);
  const lf = await structureOf('Content-Type: text/html\n\n<p>x</p>\n');
  assert.equal(bodyStructure(lf.root, false), '("TEXT" "HTML" ("CHARSET" "us-ascii") NIL NIL "7BIT" 9 1)');
});

test('property: any input parses; every part lies within the file with ordered offsets', async () => {
  const piece = fc.constantFrom(
    'Content-Type: multipart/mixed; boundary=a\r\n',
    'Content-Type: multipart/alternative; boundary="b"\r\n',
    'Content-Type: message/rfc822\r\n',
    'Content-Type: text/plain\r\n',
    'Subject: hi\r\n',
    '\r\n',
    '--a\r\n',
    '--a--\r\n',
    '--b\r\n',
    '--b--\r\n',
    'body text\r\n',
    'no newline',
    '\n',
    '-',
  );
  await fc.assert(
    fc.asyncProperty(fc.array(piece, { maxLength: 40 }), async (pieces) => {
      const { root, size } = await structureOf(pieces.join(''));
      walk(root, (p) => {
        assert.ok(p.headerStart >= 0 && p.headerStart <= p.bodyStart, 'header before body');
        assert.ok(
          p.bodyStart <= p.bodyEnd && p.bodyEnd <= size,
          `body within file: ${p.bodyStart}..${p.bodyEnd}/${size}`,
        );
        assert.ok(p.lines >= 0);
      });
      assert.equal(typeof bodyStructure(root, true), 'string');
    }),
    { numRuns: 500 },
  );
});

test('the cached (JSON) form gives back the same structure, offsets and headers', async () => {
  const msg = [
    'Content-Type: multipart/mixed; boundary=a',
    '',
    '--a',
    'Content-Type: text/plain; charset=iso-8859-1',
    '',
    'caf\xe9',
    '--a',
    'Content-Type: message/rfc822',
    '',
    'Subject: inner',
    '',
    'x',
    '--a--',
    '',
  ].join('\r\n');
  const { root } = await structureOf(Buffer.from(msg, 'latin1'));
  const back = deserializeStructure(serializeStructure(root));
  assert.equal(bodyStructure(back, true), bodyStructure(root, true));
  assert.deepEqual(resolvePart(back, [2, 1])?.bodyStart, resolvePart(root, [2, 1])?.bodyStart);
  assert.ok(back.parts[0]?.header.equals(root.parts[0]?.header ?? Buffer.alloc(0)));
});

test('a boundary ends a part header that has no empty line (a message/rfc822 of header only)', async () => {
  const { root } = await structureOf(
    'Content-Type: multipart/mixed; boundary=x\r\n\r\n--x\r\nContent-Type: message/rfc822\r\n\r\nSubject: only a header\r\n--x\r\nContent-Type: text/plain\r\n\r\nlast\r\n--x--\r\n',
  );
  assert.equal(root.parts.length, 2, 'the part after it is not swallowed');
  assert.equal(root.parts[0]?.message?.header.toString(), 'Subject: only a header\r\n');
  assert.equal(root.parts[1]?.type, 'text');
});
