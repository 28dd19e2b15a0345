// APPEND of binary content (RFC 3516 §4.4): parts with Content-Transfer-Encoding: binary are stored
// as base64 (src/imap/binary-append.ts). Unit tests of the pure transform, then imaptest's
// append-binary script byte for byte over a raw socket.

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { LIMITS } from '../../src/core/limits.ts';
import { encodeBinaryParts } from '../../src/imap/binary-append.ts';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';

/** The 7 body bytes of imaptest's append-binary script. */
const BYTES = Buffer.from([0x00, 0x2d, 0xe4, 0x0a, 0x0d, 0x0a, 0x0a]);
const HEADER =
  'From: user@domain.org\r\nDate: Sat, 24 Mar 2007 23:00:00 +0200\r\nMime-Version: 1.0\r\n' +
  'Content-Type: application/octet-stream\r\nContent-Transfer-Encoding: binary\r\n\r\n';
const SCRIPT_MESSAGE = Buffer.concat([Buffer.from(HEADER, 'latin1'), BYTES]);

const latin1 = (t: string) => Buffer.from(t, 'latin1');

test('a single-part binary message becomes base64 with its header changed', () => {
  const out = encodeBinaryParts(SCRIPT_MESSAGE).toString('latin1');
  assert.equal(out, `${HEADER.replace('binary', 'base64')}${BYTES.toString('base64')}\r\n`);
});

test('messages without binary parts are returned as they are (the same buffer)', () => {
  for (const m of [
    'Subject: x\r\n\r\nbody\r\n',
    'Subject: no body',
    'Content-Transfer-Encoding: 8bit\n\nGr\xfc\xdfe\n',
    'Content-Type: multipart/mixed; boundary=b\n\n--b\nContent-Transfer-Encoding: binary\n',
  ]) {
    const buf = latin1(m);
    assert.equal(encodeBinaryParts(buf), buf, JSON.stringify(m));
  }
});

test('binary leaves of a multipart (LF line endings, nested, folded CTE) are encoded, the rest kept', () => {
  const bin1 = latin1('\x00\x01\r\n\xff\n');
  const bin2 = Buffer.alloc(200, 0xe4); // more than one 76-character line of base64
  const m = Buffer.concat([
    latin1('Subject: m\nContent-Type: multipart/mixed;\n boundary="outer b"\n\npreamble\n--outer b\n'),
    latin1('Content-Type: text/plain\n\nplain text\n--outer b\n'),
    latin1('Content-Type: application/octet-stream\ncontent-transfer-encoding :\n  BINARY\nX-After: 1\n\n'),
    bin1,
    latin1(
      '\n--outer b\nContent-Type: multipart/alternative; boundary=in\n\n--in\nContent-Transfer-Encoding: binary\n\n',
    ),
    bin2,
    latin1('\r\n--in--\n\n--outer b--  \nepilogue\n'),
  ]);
  const expected = Buffer.concat([
    latin1('Subject: m\nContent-Type: multipart/mixed;\n boundary="outer b"\n\npreamble\n--outer b\n'),
    latin1('Content-Type: text/plain\n\nplain text\n--outer b\n'),
    latin1('Content-Type: application/octet-stream\nContent-Transfer-Encoding: base64\r\nX-After: 1\n\n'),
    latin1(bin1.toString('base64')),
    latin1(
      '\n--outer b\nContent-Type: multipart/alternative; boundary=in\n\n--in\nContent-Transfer-Encoding: base64\r\n\n',
    ),
    latin1((bin2.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n')), // RFC 2045 §6.8: 76 a line
    latin1('\r\n--in--\n\n--outer b--  \nepilogue\n'),
  ]);
  assert.equal(encodeBinaryParts(m).toString('latin1'), expected.toString('latin1'));
});

test('a binary part inside message/rfc822 is encoded; message/rfc822 itself is not', () => {
  const m = latin1(
    'Content-Type: message/rfc822\nContent-Transfer-Encoding: binary\n\nSubject: in\nContent-Transfer-Encoding: binary\n\n\x00\xff',
  );
  assert.equal(
    encodeBinaryParts(m).toString('latin1'),
    `Content-Type: message/rfc822\nContent-Transfer-Encoding: binary\n\nSubject: in\nContent-Transfer-Encoding: base64\r\n\n${latin1('\x00\xff').toString('base64')}\r\n`,
  );
});

test('nesting deeper than the limit is stored as sent, in linear time', () => {
  const depth = LIMITS.imap.maxMimeDepth + 5;
  let m = 'Content-Transfer-Encoding: binary\n\n\x00\n';
  for (let i = 0; i < depth; i++) m = `Content-Type: multipart/mixed; boundary=b${i}\n\n--b${i}\n${m}--b${i}--\n`;
  const buf = latin1(m);
  assert.equal(encodeBinaryParts(buf), buf);
  // Many parts: each looked at once, those beyond the limit kept as they are.
  const many = `Content-Type: multipart/mixed; boundary=x\n\n${'--x\nContent-Transfer-Encoding: binary\n\n\x00\n'.repeat(LIMITS.imap.maxMimeParts + 10)}--x--\n`;
  const started = performance.now();
  const out = encodeBinaryParts(latin1(many)).toString('latin1');
  assert.ok(performance.now() - started < 5000);
  assert.equal(out.split('base64').length - 1, LIMITS.imap.maxMimeParts - 1); // the root counts one
});

let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(() => s?.stop());

test('imaptest append-binary: APPEND ~{n} of a binary part, BINARY[1] gives the 7 bytes back, BODY[1] does not', async () => {
  const { client: c } = await RawImap.connect(s.imapPort);
  assert.match((await c.cmd('LOGIN alice@example.test secret-password')).at(-1) ?? '', /OK/);
  assert.match((await c.cmd('CREATE binbox')).at(-1) ?? '', /OK/);
  c.write(
    Buffer.concat([
      Buffer.from(`a1 APPEND binbox ~{${SCRIPT_MESSAGE.length}+}\r\n`),
      SCRIPT_MESSAGE,
      Buffer.from('\r\n'),
    ]),
  );
  assert.match((await c.until('a1')).at(-1) ?? '', /^a1 OK \[APPENDUID /);
  assert.match((await c.cmd('SELECT binbox')).at(-1) ?? '', /OK/);
  const b64 = BYTES.toString('base64');
  // BODY[1] is the stored (encoded) text, neither the raw bytes nor empty.
  assert.deepEqual(await c.cmd('FETCH 1 (BODY.PEEK[1])'), [
    `* 1 FETCH (BODY[1] {${b64.length + 2}}`,
    b64,
    ')',
    't4 OK FETCH completed',
  ]);
  // BINARY[1] decodes it back: exactly the 7 bytes, as a literal8 (they hold a NUL).
  const lines = await c.cmd('FETCH 1 (BINARY.SIZE[1] BINARY.PEEK[1])');
  const answer = Buffer.from(lines.join('\r\n'), 'latin1');
  const expected = Buffer.concat([
    Buffer.from('* 1 FETCH (BINARY.SIZE[1] 7 BINARY[1] ~{7}\r\n'),
    BYTES,
    Buffer.from(')\r\nt5 OK FETCH completed'),
  ]);
  assert.equal(answer.toString('latin1'), expected.toString('latin1'));
  c.close();
});
