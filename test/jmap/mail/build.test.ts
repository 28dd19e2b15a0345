import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { test } from 'node:test';
import fc from 'fast-check';
import { BuildError, buildMessage } from '../../../src/jmap/mail/build.ts';
import { emailProperties, parseEmail } from '../../../src/jmap/mail/email.ts';
import { bufferReader } from '../../../src/mime/reader.ts';

const png = Buffer.from(Array.from({ length: 3000 }, (_, i) => (i * 7) % 256));
const blobs = new Map([
  ['Bpng', png],
  ['Bnotes', Buffer.from('plain notes\r\n')],
  ['Bfwd', Buffer.from('From: x@example.com\r\nSubject: inner\r\n\r\nInner body \u00e9\r\n', 'utf8')],
]);
const opts = {
  blob: async (id: string) => blobs.get(id) ?? null,
  now: new Date('2026-12-07T04:00:00Z'),
  messageIdDomain: 'mail.example.com',
};

async function roundTrip(bytes: Buffer, props: string[], bodyProps?: string[]) {
  const reader = bufferReader(bytes);
  const email = await parseEmail(reader, bytes.length, (id) => id);
  return emailProperties(reader, email, props, bodyProps, { fetchAllBodyValues: true });
}

/** Python's email package parses the message and finds no defects in any part. */
function pythonDefects(bytes: Buffer): string {
  return execFileSync(
    '/usr/bin/python3',
    [
      '-c',
      `import sys, email, email.policy
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
d = [type(x).__name__ for p in m.walk() for x in p.defects]
for p in m.walk():
    if not p.is_multipart(): p.get_content()
print(",".join(d))`,
    ],
    { input: bytes },
  )
    .toString()
    .trim();
}

const longLine = `${'word '.repeat(60)}end`;

test('textBody, htmlBody, inline image and attachments round-trip; Python finds no defects', async () => {
  const bytes = await buildMessage(
    {
      from: [{ name: 'Ann Müller', email: 'ann@example.org' }],
      to: [
        { name: 'Smith, Bob', email: 'bob@example.com' },
        { name: null, email: 'carol@example.net' },
      ],
      subject: 'Réunion — agenda and a fairly long subject line that will need folding somewhere',
      sentAt: '2026-12-07T05:06:07+01:00',
      inReplyTo: ['prev@example.org'],
      references: ['root@example.org', 'prev@example.org'],
      'header:X-Tracking:asText': 'ü',
      'header:List-Post:asURLs': ['mailto:list@example.org'],
      keywords: { $seen: true },
      mailboxIds: { Fx: true },
      bodyValues: {
        t: { value: `Hello Bob,\n\nÇa va? ${longLine}\n` },
        h: { value: '<p>Hello <img src="cid:logo@x"></p>' },
      },
      textBody: [{ partId: 't', type: 'text/plain' }],
      htmlBody: [{ partId: 'h', type: 'text/html' }],
      attachments: [
        { blobId: 'Bpng', type: 'image/png', disposition: 'inline', cid: 'logo@x', name: 'logo.png' },
        { blobId: 'Bnotes', type: 'text/plain', name: 'Notizen für das Treffen — sehr wichtig, bitte lesen.txt' },
        { blobId: 'Bfwd', type: 'message/rfc822' },
      ],
    },
    opts,
  );
  const text = bytes.toString('utf8');
  for (const line of text.split('\r\n')) assert.ok(Buffer.byteLength(line) <= 998, 'line length');
  assert.match(text, /^MIME-Version: 1\.0\r$/m);
  assert.match(text, /^Message-ID: <[\w-]+@mail\.example\.com>\r$/m);
  assert.match(text, /^Date: Mon, 07 Dec 2026 05:06:07 \+0100\r$/m);
  assert.equal(pythonDefects(bytes), '');
  const e = await roundTrip(bytes, [
    'from',
    'to',
    'subject',
    'sentAt',
    'inReplyTo',
    'references',
    'header:X-Tracking:asText',
    'header:List-Post:asURLs',
    'textBody',
    'htmlBody',
    'attachments',
    'bodyValues',
    'bodyStructure',
  ]);
  assert.deepEqual(e.from, [{ name: 'Ann Müller', email: 'ann@example.org' }]);
  assert.deepEqual(e.to, [
    { name: 'Smith, Bob', email: 'bob@example.com' },
    { name: null, email: 'carol@example.net' },
  ]);
  assert.equal(e.subject, 'Réunion — agenda and a fairly long subject line that will need folding somewhere');
  assert.equal(e.sentAt, '2026-12-07T05:06:07+01:00');
  assert.deepEqual(e.references, ['root@example.org', 'prev@example.org']);
  assert.equal(e['header:X-Tracking:asText'], 'ü');
  assert.deepEqual(e['header:List-Post:asURLs'], ['mailto:list@example.org']);
  type P = { partId: string; type: string; name: string | null; size: number; cid: string | null };
  const [textPart] = e.textBody as P[];
  const [htmlPart] = e.htmlBody as P[];
  const atts = e.attachments as P[];
  assert.equal(textPart?.type, 'text/plain');
  assert.equal(htmlPart?.type, 'text/html');
  assert.deepEqual(
    atts.map((a) => [a.type, a.name, a.size]),
    [
      ['image/png', 'logo.png', 3000],
      ['text/plain', 'Notizen für das Treffen — sehr wichtig, bitte lesen.txt', 13],
      ['message/rfc822', null, blobs.get('Bfwd')?.length],
    ],
  );
  const values = e.bodyValues as Record<string, { value: string }>;
  assert.equal(values[textPart?.partId ?? '']?.value, `Hello Bob,\r\n\r\nÇa va? ${longLine}\r\n`);
  assert.equal(values[htmlPart?.partId ?? '']?.value, '<p>Hello <img src="cid:logo@x"></p>');
  const s = e.bodyStructure as { type: string; subParts: { type: string; subParts: { type: string }[] }[] };
  assert.equal(s.type, 'multipart/mixed');
  assert.deepEqual(
    s.subParts.map((p) => p.type),
    ['multipart/alternative', 'text/plain', 'message/rfc822'],
  );
  assert.deepEqual(
    s.subParts[0]?.subParts.map((p) => p.type),
    ['text/plain', 'multipart/related'],
  );
});

test('bodyStructure given in full; Date and Message-ID made when missing', async () => {
  const bytes = await buildMessage(
    {
      from: [{ email: 'a@example.org' }],
      'header:Message-ID:asMessageIds': ['given@example.org'],
      bodyValues: { 1: { value: '日本語のテキスト。'.repeat(20) } },
      bodyStructure: {
        type: 'multipart/mixed',
        subParts: [
          { partId: '1', type: 'text/plain', 'header:X-Part:asText': 'one', language: ['ja'] },
          { blobId: 'Bpng', type: 'application/octet-stream', name: 'data.bin', disposition: 'attachment' },
        ],
      },
    },
    opts,
  );
  assert.equal(pythonDefects(bytes), '');
  const text = bytes.toString('latin1');
  assert.match(text, /^Date: Mon, 07 Dec 2026 04:00:00 \+0000\r$/m);
  assert.match(text, /^Message-ID: <given@example\.org>\r$/m);
  assert.match(text, /Content-Transfer-Encoding: base64/, 'mostly non-ASCII text is base64');
  const e = await roundTrip(bytes, ['bodyValues', 'textBody'], ['partId', 'language', 'header:X-Part:asText']);
  assert.deepEqual(e.textBody, [{ partId: '1', language: ['ja'], 'header:X-Part:asText': 'one' }]);
  assert.equal((e.bodyValues as Record<string, { value: string }>)['1']?.value, '日本語のテキスト。'.repeat(20));
});

test('a subject with a 5,000-character word stays within 998-octet lines', async () => {
  const subject = `word ${'x'.repeat(5000)} end`;
  const bytes = await buildMessage({ subject }, opts);
  for (const line of bytes.toString().split('\r\n')) assert.ok(line.length <= 998);
  assert.equal(pythonDefects(bytes), '');
  assert.equal((await roundTrip(bytes, ['subject'])).subject, subject);
});

test('the RFC 8621 §4.6 rules are enforced', async () => {
  const bad = async (email: unknown, type: string, prop?: string) => {
    await assert.rejects(buildMessage(email, opts), (e: unknown) => {
      assert.ok(e instanceof BuildError, String(e));
      assert.equal(e.type, type);
      if (prop) assert.deepEqual(e.properties, [prop]);
      return true;
    });
  };
  await bad({ headers: [] }, 'invalidProperties', 'headers');
  await bad(
    { from: [{ email: 'a@b' }], 'header:From:asAddresses': [] },
    'invalidProperties',
    'header:From:asAddresses',
  );
  await bad({ 'header:Content-Type': ' text/plain' }, 'invalidProperties', 'header:Content-Type');
  await bad({ 'header:Subject:asDate': '2020-01-01T00:00:00Z' }, 'invalidProperties', 'header:Subject:asDate');
  await bad({ bodyStructure: { partId: '1' }, textBody: [] }, 'invalidProperties', 'bodyStructure');
  await bad({ textBody: [{ partId: 'a' }, { partId: 'b' }] }, 'invalidProperties', 'textBody');
  await bad({ htmlBody: [{ partId: 'a', type: 'text/plain' }] }, 'invalidProperties', 'htmlBody/0/type');
  await bad({ textBody: [{ partId: 'missing' }] }, 'invalidProperties', 'body/partId');
  await bad(
    { bodyValues: { a: { value: 'x', isTruncated: true } }, textBody: [{ partId: 'a' }] },
    'invalidProperties',
    'body/partId',
  );
  await bad({ attachments: [{ blobId: 'Bnone' }] }, 'blobNotFound');
  await bad(
    { bodyStructure: { partId: 'a', 'header:Content-Transfer-Encoding': ' base64' }, bodyValues: { a: { value: '' } } },
    'invalidProperties',
    'bodyStructure/header:Content-Transfer-Encoding',
  );
  await bad({ subject: 'x', bodyStructure: { partId: 'a', 'header:Subject': ' y' } }, 'invalidProperties');
  await bad(
    { bodyStructure: { subParts: [], 'header:Content-Type': ' multipart/mixed' } },
    'invalidProperties',
    'bodyStructure/header:Content-Type',
  );
  await bad(
    { bodyStructure: { blobId: 'Bpng', cid: 'a@b', 'header:Content-ID': ' <c@d>' } },
    'invalidProperties',
    'bodyStructure',
  );
  await bad({ 'header:X-Long': 'y'.repeat(1000) }, 'invalidProperties', 'header:X-Long');
  await bad({ 'header:X-Raw': 'a\r\nInjected: yes' }, 'invalidProperties', 'header:X-Raw');
  await bad({ subject: 'line\r\nInjected: yes' }, 'invalidProperties', 'subject');
  await bad({ to: [{ email: 'not an address' }] }, 'invalidProperties', 'to');
  await bad({ sentAt: '2026-02-30T00:00:00Z' }, 'invalidProperties', 'sentAt');
  const deep = { bodyStructure: { type: 'multipart/mixed', subParts: [] as unknown[] } };
  let cur = deep.bodyStructure;
  for (let i = 0; i < 20; i++) {
    const next = { type: 'multipart/mixed', subParts: [] as unknown[] };
    cur.subParts.push(next);
    cur = next;
  }
  await bad(deep, 'tooLarge');
});

test('property: built messages parse back to the same headers and text, without defects', async () => {
  const name = fc.option(
    // biome-ignore lint/suspicious/noControlCharactersInRegex: names hold no control characters
    fc.string({ maxLength: 30, unit: 'grapheme' }).filter((s) => !/[\x00-\x1f\x7f]/.test(s)),
    { nil: null },
  );
  const local = fc
    .stringMatching(/^[a-z0-9._+-]{1,20}$/)
    .filter((s) => !s.startsWith('.') && !s.endsWith('.') && !s.includes('..'));
  const address = fc.record({ name, email: local.map((l) => `${l}@example.com`) });
  const text = fc
    .string({
      maxLength: 300,
      unit: fc.oneof(fc.constantFrom('\r\n', '\n', ' ', '=', '.'), fc.string({ unit: 'grapheme', maxLength: 1 })),
    })
    // biome-ignore lint/suspicious/noControlCharactersInRegex: text holds no control characters but line breaks
    .filter((s) => !/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(s));
  let checked = 0;
  await fc.assert(
    fc.asyncProperty(
      fc.array(address, { minLength: 1, maxLength: 5 }),
      text.map((s) => s.replace(/[\r\n\t]/g, ' ').trim()),
      text,
      async (to, subject, body) => {
        const bytes = await buildMessage(
          { to, subject, bodyValues: { b: { value: body } }, textBody: [{ partId: 'b' }] },
          opts,
        );
        if (checked++ < 20) assert.equal(pythonDefects(bytes), '');
        const e = await roundTrip(bytes, ['to', 'subject', 'textBody', 'bodyValues']);
        assert.deepEqual(
          e.to,
          to.map((a) => ({ name: a.name?.trim() ? a.name.trim().normalize('NFC') : null, email: a.email })),
        );
        assert.equal(e.subject, subject.normalize('NFC'));
        const id = (e.textBody as { partId: string }[])[0]?.partId ?? '';
        assert.equal((e.bodyValues as Record<string, { value: string }>)[id]?.value, body.replace(/\r?\n|\r/g, '\r\n'));
      },
    ),
    { numRuns: 200 },
  );
});
