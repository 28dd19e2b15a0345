// The milter codec and header edits, pure: packets cut out of any chunking, bounded lengths,
// every reply decoded or refused as a protocol error (never another exception), reply codes,
// and libmilter's header edit semantics on the header block.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LIMITS } from '../../src/core/limits.ts';
import { wireValue } from '../../src/filter/milter/client.ts';
import {
  decodeReply,
  encodeBody,
  encodeConnect,
  encodeHeader,
  encodeMacros,
  encodeOptneg,
  MilterProtocolError,
  PacketReader,
  parseReplyCode,
} from '../../src/filter/milter/codec.ts';
import { MilterFailure } from '../../src/filter/milter/connection.ts';
import { applyEdits, fieldValue, parseHeader, serializeHeader } from '../../src/filter/milter/headers.ts';
import { splitAt } from '../harness/chunks.ts';

function raw(cmd: string, data: Buffer): Buffer {
  const b = Buffer.alloc(5 + data.length);
  b.writeUInt32BE(1 + data.length, 0);
  b[4] = cmd.charCodeAt(0);
  data.copy(b, 5);
  return b;
}

test('PacketReader: the same packets, in order, however the bytes are chunked', () => {
  fc.assert(
    fc.property(
      fc.array(
        fc.record({ cmd: fc.constantFrom('a', 'c', 'h', 'b', 'y', 'O'), data: fc.uint8Array({ maxLength: 300 }) }),
        {
          maxLength: 12,
        },
      ),
      fc.array(fc.nat(), { maxLength: 20 }),
      (packets, cuts) => {
        const stream = Buffer.concat(packets.map((p) => raw(p.cmd, Buffer.from(p.data))));
        const reader = new PacketReader();
        const got: { cmd: string; data: Buffer }[] = [];
        for (const chunk of splitAt(stream.toString('latin1'), cuts)) {
          reader.push(Buffer.from(chunk, 'latin1'));
          for (let p = reader.next(); p; p = reader.next()) got.push(p);
        }
        assert.equal(reader.pending, 0);
        assert.deepEqual(
          got.map((p) => [p.cmd, p.data.toString('hex')]),
          packets.map((p) => [p.cmd, Buffer.from(p.data).toString('hex')]),
        );
      },
    ),
  );
});

test('PacketReader: a length of 0 or over the limit is refused from its 4 bytes, nothing buffered', () => {
  for (const len of [0, LIMITS.milter.maxPacketBytes + 1, 0xffffffff]) {
    const head = Buffer.alloc(4);
    head.writeUInt32BE(len, 0);
    const r = new PacketReader();
    r.push(head.subarray(0, 2));
    assert.throws(() => r.push(head.subarray(2)), MilterProtocolError);
  }
  const ok = new PacketReader();
  ok.push(raw('b', Buffer.alloc(LIMITS.milter.maxPacketBytes - 1)));
  assert.equal(ok.next()?.data.length, LIMITS.milter.maxPacketBytes - 1);
});

test('decodeReply: any bytes decode or fail with MilterProtocolError, nothing else', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: 255 }), fc.uint8Array({ maxLength: 64 }), (c, data) => {
      try {
        decodeReply({ cmd: String.fromCharCode(c), data: Buffer.from(data) });
      } catch (e) {
        assert.ok(e instanceof MilterProtocolError, String(e));
      }
    }),
    { numRuns: 3000 },
  );
});

test('decodeReply: each reply and its shape', () => {
  const d = (cmd: string, data: Buffer | string = '') =>
    decodeReply({ cmd, data: typeof data === 'string' ? Buffer.from(data, 'latin1') : data });
  for (const [c, kind] of [
    ['a', 'accept'],
    ['c', 'continue'],
    ['r', 'reject'],
    ['t', 'tempfail'],
    ['d', 'discard'],
    ['s', 'skip'],
    ['p', 'progress'],
  ] as const) {
    assert.equal(d(c).kind, kind);
  }
  assert.throws(() => d('a', 'x'), MilterProtocolError, 'a simple reply carries no data');
  assert.deepEqual(d('y', '554 5.7.0 No thanks\0'), {
    kind: 'replycode',
    reply: { code: 554, enhanced: '5.7.0', text: 'No thanks' },
  });
  assert.throws(() => d('y', '250 fine\0'), MilterProtocolError);
  assert.deepEqual(d('h', 'X-Spam\0yes\0'), { kind: 'addheader', name: 'X-Spam', value: 'yes' });
  assert.throws(() => d('h', 'X:Spam\0yes\0'), MilterProtocolError, 'no colon in a name');
  assert.throws(() => d('h', 'X-Spam\0yes'), MilterProtocolError, 'NUL missing');
  assert.throws(() => d('h', 'X-Spam\0yes\0more'), MilterProtocolError, 'trailing bytes');
  const idx = Buffer.concat([Buffer.from([0, 0, 0, 2]), Buffer.from('Subject\0new\0')]);
  assert.deepEqual(d('m', idx), { kind: 'chgheader', index: 2, name: 'Subject', value: 'new' });
  assert.deepEqual(d('i', idx), { kind: 'insheader', index: 2, name: 'Subject', value: 'new' });
  assert.throws(() => d('m', Buffer.from([0, 0])), MilterProtocolError);
  assert.deepEqual(d('q', 'spam\0'), { kind: 'quarantine', reason: 'spam' });
  assert.deepEqual(d('b', 'new body'), { kind: 'replbody', chunk: Buffer.from('new body') });
  assert.deepEqual(d('+', '<x@y>\0'), { kind: 'envelope', what: 'addrcpt' });
  assert.throws(() => d('Z'), MilterProtocolError);
  // Option negotiation with macro lists (smfi_setsymlist): stage 0 (connect), stage 5 (eom).
  const opt = Buffer.concat([
    Buffer.from([0, 0, 0, 6, 0, 0, 0, 0x21, 0, 0, 0, 0x80]),
    Buffer.from([0, 0, 0, 0]),
    Buffer.from('j {client_addr}\0'),
    Buffer.from([0, 0, 0, 5]),
    Buffer.from('i\0'),
  ]);
  const o = d('O', opt);
  assert.equal(o.kind, 'optneg');
  if (o.kind === 'optneg') {
    assert.deepEqual([o.version, o.actions, o.protocol], [6, 0x21, 0x80]);
    assert.deepEqual(o.macros.get('C'), ['j', '{client_addr}']);
    assert.deepEqual(o.macros.get('E'), ['i']);
  }
  assert.throws(() => d('O', Buffer.alloc(8)), MilterProtocolError);
  assert.throws(
    () => d('O', Buffer.concat([opt.subarray(0, 12), Buffer.from([0, 0, 0, 9]), Buffer.from('x\0')])),
    MilterProtocolError,
  );
});

test('parseReplyCode: RFC 5321 §4.2 replies of class 4 or 5 only, enhanced code of the same class', () => {
  const table: [string, ReturnType<typeof parseReplyCode>][] = [
    ['550 5.7.1 Rejected', { code: 550, enhanced: '5.7.1', text: 'Rejected' }],
    ['451 4.7.1 Later', { code: 451, enhanced: '4.7.1', text: 'Later' }],
    ['554 no enhanced code', { code: 554, enhanced: '', text: 'no enhanced code' }],
    ['550', { code: 550, enhanced: '', text: '' }],
    ['550-5.7.1 first\r\n550 5.7.1 second', { code: 550, enhanced: '5.7.1', text: 'first second' }],
    ['250 2.0.0 ok', null],
    ['550 4.7.1 class mismatch', null],
    ['55 short', null],
    ['550-5.7.1 first\r\n551 5.7.1 other code', null],
    ['550 5.7.1 bell\x07', null],
    ['550x5.7.1', null],
    [`550 5.7.1 ${'x'.repeat(LIMITS.milter.maxReplyBytes)}`, null],
  ];
  for (const [s, want] of table) assert.deepEqual(parseReplyCode(s), want, s);
});

test('encoders: the byte layouts of mfdef.h', () => {
  assert.equal(encodeOptneg(6, 0x1ff, 0x1fffff).toString('hex'), '0000000d4f00000006000001ff001fffff');
  const conn = encodeConnect('mx.example', '4', 2525, '192.0.2.1');
  assert.equal(conn.readUInt32BE(0), conn.length - 4);
  assert.equal(conn.subarray(4).toString('latin1'), 'Cmx.example\x004\x09\xdd192.0.2.1\x00');
  assert.equal(encodeConnect('h', 'U', 0, '').subarray(4).toString('latin1'), 'Ch\x00U');
  assert.equal(
    encodeMacros('C', [
      ['j', 'mx'],
      ['{daemon_name}', 'smtp'],
    ])
      .subarray(4)
      .toString('latin1'),
    'DCj\x00mx\x00{daemon_name}\x00smtp\x00',
  );
  // Header bytes cross as they are (latin1 carries each byte).
  const value = Buffer.from('Grüße\n\tnext', 'utf8').toString('latin1');
  assert.deepEqual(
    encodeHeader('Subject', value).subarray(5),
    Buffer.concat([Buffer.from('Subject\0'), Buffer.from('Grüße\n\tnext\0')]),
  );
  assert.equal(encodeBody(Buffer.alloc(65535)).length, 65540);
  assert.throws(() => encodeBody(Buffer.alloc(65536)), RangeError);
  assert.equal(wireValue(' a\r\n\tb', false), 'a\n\tb');
  assert.equal(wireValue(' a\r\n\tb', true), ' a\n\tb');
});

const HEAD = Buffer.from(
  'Received: from a\r\n\tby b\r\nFrom: x@example.org\r\nSubject: one\r\nX-Two: 1\r\nx-two: 2\r\nnot a field\r\nTo : y@example.org\r\n',
  'latin1',
);

test('parseHeader / serializeHeader: byte for byte, folding and odd lines kept', () => {
  const fields = parseHeader(HEAD);
  assert.deepEqual(
    fields.map((f) => f.name),
    ['Received', 'From', 'Subject', 'X-Two', 'x-two', 'not a field', 'To'],
  );
  assert.equal(fields[0]?.value, ' from a\r\n\tby b');
  assert.equal(fields[5]?.value, null);
  assert.equal(serializeHeader(fields).toString('latin1'), HEAD.toString('latin1'));
  fc.assert(
    fc.property(
      fc.array(
        fc.oneof(
          fc.stringMatching(/^[A-Za-z-]{1,10}: ?[ -~]{0,20}$/),
          fc.stringMatching(/^[ \t][ -~]{0,20}$/),
          fc.stringMatching(/^[^\r\n:]{1,10}$/),
        ),
        { maxLength: 15 },
      ),
      (lines) => {
        const block = Buffer.from(lines.map((l) => `${l}\r\n`).join(''), 'latin1');
        assert.deepEqual(serializeHeader(parseHeader(block)), block);
      },
    ),
  );
});

test('applyEdits: add, change by name and 1-based index, delete, insert at a position', () => {
  const f = parseHeader(HEAD);
  const out = (edits: Parameters<typeof applyEdits>[1], lead = false) =>
    serializeHeader(applyEdits(f, edits, lead)).toString('latin1');
  assert.match(out([{ kind: 'addheader', name: 'X-New', value: 'v' }]), /\r\nTo : y@example\.org\r\nX-New: v\r\n$/);
  // Names compare without case (RFC 5322 §1.2.2): the second X-Two is "x-two".
  assert.match(
    out([{ kind: 'chgheader', index: 2, name: 'X-TWO', value: 'changed' }]),
    /X-Two: 1\r\nx-two: changed\r\n/,
  );
  assert.doesNotMatch(out([{ kind: 'chgheader', index: 1, name: 'subject', value: '' }]), /Subject/);
  assert.match(
    out([{ kind: 'chgheader', index: 3, name: 'X-Two', value: 'third' }]),
    /X-Two: third\r\n$/,
    'past the last one: added',
  );
  assert.equal(
    out([{ kind: 'chgheader', index: 3, name: 'X-Two', value: '' }]),
    HEAD.toString('latin1'),
    'deleting none',
  );
  assert.match(out([{ kind: 'insheader', index: 0, name: 'X-Top', value: 't' }]), /^X-Top: t\r\nReceived: /);
  assert.match(
    out([{ kind: 'insheader', index: 1, name: 'X-Second', value: 's' }]),
    /^Received: from a\r\n\tby b\r\nX-Second: s\r\nFrom/,
  );
  assert.match(out([{ kind: 'insheader', index: 999, name: 'X-End', value: 'e' }]), /X-End: e\r\n$/);
  assert.match(out([{ kind: 'addheader', name: 'X-Lead', value: '  exact' }], true), /X-Lead: {2}exact\r\n$/);
  assert.match(out([{ kind: 'addheader', name: 'X-Fold', value: 'a\n\tb' }]), /X-Fold: a\r\n\tb\r\n$/);
});

test('fieldValue: a line break must fold (no field, no empty line smuggled in)', () => {
  assert.equal(fieldValue('a\n b', false), ' a\r\n b');
  assert.equal(fieldValue('a\r\n\tb', false), ' a\r\n\tb');
  for (const bad of ['a\nInjected: yes', 'a\n\nbody', 'a\rb', 'a\n']) {
    assert.throws(() => fieldValue(bad, false), MilterFailure, JSON.stringify(bad));
  }
  // Whatever a milter sends, an accepted value leaves a header that parses back the same.
  fc.assert(
    fc.property(fc.stringMatching(/^[ -~\t\r\n]{0,40}$/), (v) => {
      let value: string;
      try {
        value = fieldValue(v, false);
      } catch (e) {
        assert.ok(e instanceof MilterFailure);
        return;
      }
      const block = serializeHeader([{ name: 'X-V', value }]);
      assert.deepEqual(parseHeader(block), [{ name: 'X-V', value }]);
    }),
  );
});
