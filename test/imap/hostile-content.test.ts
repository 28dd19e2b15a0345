// Hostile message content against the IMAP side (issue #10, item 4): header fields are found by
// a linear scan (no RegExp built from a field name), and the MIME parser looks at most 256 KB of
// any line, so a message of one 20 MB line neither costs a copy per chunk (quadratic) nor keeps
// 20 MB as its "header".

import assert from 'node:assert/strict';
import { mkdtemp, open, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import fc from 'fast-check';
import { headerValue, parseStructure } from '../../src/mime/structure.ts';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

/** What headerValue did before: a RegExp built from the name (kept here as the reference). */
function regexHeaderValue(header: Buffer, name: string): string | null {
  const re = new RegExp(`^${name}:[ \\t]*((?:.*)(?:\\r?\\n[ \\t].*)*)`, 'im');
  const m = re.exec(header.toString('latin1'));
  return m ? (m[1] ?? '').replace(/\r?\n[ \t]/g, ' ').trim() : null;
}

test('headerValue: same answers as the old RegExp on CRLF headers; the obsolete "Name :" form too', () => {
  const name = fc.constantFrom('Content-Type', 'content-type', 'CONTENT-TYPE', 'Content-Typo', 'Content-Type-X', 'X');
  const value = fc.array(fc.constantFrom('a', 'b', ' ', '\t', ';', '=', '"', ':', '\u00e9'), { maxLength: 12 });
  const field = fc.tuple(
    name,
    fc.constantFrom(':', ': ', ':\t'),
    value.map((v) => v.join('')),
    fc.array(
      fc.tuple(
        fc.constantFrom(' ', '\t'),
        value.map((v) => v.join('')),
      ),
      { maxLength: 3 },
    ),
  );
  fc.assert(
    fc.property(fc.array(field, { maxLength: 5 }), (fields) => {
      const text = fields
        .map(([n, sep, v, folds]) => `${n}${sep}${v}${folds.map(([w, f]) => `\r\n${w}${f}`).join('')}\r\n`)
        .join('');
      const header = Buffer.from(`${text}\r\n`, 'latin1');
      assert.equal(headerValue(header, 'content-type'), regexHeaderValue(header, 'content-type'), text);
    }),
    { numRuns: 5000 },
  );
  assert.equal(headerValue(Buffer.from('Content-Type : text/html\r\n\r\n'), 'content-type'), 'text/html');
  assert.equal(headerValue(Buffer.from('Subject: x\nContent-Type: a/b;\n c=d\n\n'), 'content-type'), 'a/b; c=d');
});

test('headerValue: a 1 MB header of folds or of fields answers in milliseconds', () => {
  const folds = Buffer.from(`Content-Type: text/plain${'\r\n x'.repeat(250_000)}\r\n\r\n`, 'latin1');
  const fields = Buffer.from(`${'X-A: b\r\n'.repeat(125_000)}Content-Type: a/b\r\n\r\n`, 'latin1');
  const started = performance.now();
  assert.equal(headerValue(folds, 'content-type')?.length, 'text/plain'.length + 250_000 * 2);
  assert.equal(headerValue(fields, 'content-type'), 'a/b');
  assert.equal(headerValue(fields, 'content-typ'), null);
  const ms = performance.now() - started;
  assert.ok(ms < 1000, `${ms} ms`);
});

describe('MIME structure of hostile messages', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-mime-'));
  });
  after(() => rm(dir, { recursive: true, force: true }));

  const structure = async (body: Buffer) => {
    const file = join(dir, 'm.eml');
    await writeFile(file, body);
    const fh = await open(file);
    try {
      const started = performance.now();
      const root = await parseStructure(fh, body.length);
      return { root, ms: performance.now() - started };
    } finally {
      await fh.close();
    }
  };

  test('a message of one 20 MB line: one pass, at most 256 KB of it kept', async () => {
    const { root, ms } = await structure(Buffer.alloc(20_000_000, 0x61));
    assert.ok(root.header.length <= 256 * 1024, `header of ${root.header.length} bytes kept`);
    assert.equal(root.bodyEnd, 20_000_000);
    assert.ok(ms < 1500, `${ms} ms`); // the old parser copied the line for every chunk: 2.4 s
  });

  test('a 20 MB header line, then a body; long lines split across chunks keep their offsets', async () => {
    const body = Buffer.concat([
      Buffer.from('Content-Type: multipart/mixed; boundary=b\r\nSubject: '),
      Buffer.alloc(20_000_000, 0x61),
      Buffer.from('\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\n'),
      Buffer.alloc(300_000, 0x62),
      Buffer.from('\r\nend\r\n--b--\r\n'),
    ]);
    const { root } = await structure(body);
    assert.ok(root.header.length <= 256 * 1024);
    assert.equal(root.type, 'multipart');
    assert.equal(root.parts.length, 1);
    const part = root.parts[0];
    assert.ok(part);
    assert.equal(body.subarray(part.bodyStart, part.bodyEnd).toString('latin1'), `${'b'.repeat(300_000)}\r\nend`);
    assert.equal(part.lines, 1); // line breaks in the body: the one before the boundary is the boundary's
  });
});

describe('IMAP FETCH of hostile messages', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer();
  });
  after(() => s.stop());

  test('BODYSTRUCTURE and SEARCH of a one-line 20 MB message and of a header of 200,000 folds answer quickly', async () => {
    const { client: c } = await RawImap.connect(s.imapPort);
    c.timeoutMs = 60_000;
    assert.match((await c.cmd('LOGIN alice@example.test secret-password')).at(-1) ?? '', /^t1 OK /);
    const append = async (msg: Buffer) => {
      c.write(`a APPEND INBOX {${msg.length}+}\r\n`);
      c.write(msg);
      c.write('\r\n');
      assert.match((await c.until('a')).at(-1) ?? '', /^a OK /);
    };
    await append(Buffer.alloc(20_000_000, 0x61));
    await append(
      Buffer.from(
        `Content-Type: text/plain;${'\r\n x=y;'.repeat(200_000)}\r\n charset=utf-8\r\nSubject: folds\r\n\r\nbody\r\n`,
      ),
    );
    await c.cmd('SELECT INBOX');
    for (const cmd of ['FETCH 1 (BODYSTRUCTURE)', 'FETCH 2 (BODYSTRUCTURE)', 'SEARCH HEADER Content-Type charset']) {
      const started = performance.now();
      const res = await c.cmd(cmd);
      const ms = performance.now() - started;
      assert.match(res.at(-1) ?? '', /^t\d+ OK /, cmd);
      assert.ok(ms < 3000, `${cmd}: ${ms.toFixed(0)} ms`);
    }
    c.close();
  });
});
