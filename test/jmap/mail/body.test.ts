import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { test } from 'node:test';
import fc from 'fast-check';
import { truncateUtf8 } from '../../../src/jmap/mail/body-values.ts';
import {
  DEFAULT_PARSE_PROPERTIES,
  emailProperties,
  invalidProperty,
  type ParsedEmail,
  parseEmail,
  partBytes,
} from '../../../src/jmap/mail/email.ts';
import { bufferReader } from '../../../src/mime/reader.ts';

const fixture = (name: string) => readFile(new URL(`../../fixtures/jmap/${name}`, import.meta.url));

async function parse(
  bytes: Buffer,
): Promise<{ email: ParsedEmail; get: (props: string[], opts?: object) => Promise<Record<string, unknown>> }> {
  const reader = bufferReader(bytes);
  const email = await parseEmail(reader, bytes.length, (partId) => `Bmsg-${partId}`);
  return {
    email,
    get: (props, opts = {}) => emailProperties(reader, email, props, undefined, opts),
  };
}

const ids = (list: unknown) => (list as { partId: string }[]).map((p) => p.partId);

test('multipart/alternative with an inline image and an RFC 2231 attachment', async () => {
  const bytes = await fixture('alternative-inline.eml');
  const { get, email } = await parse(bytes);
  const e = await get([...DEFAULT_PARSE_PROPERTIES, 'bodyStructure'], {
    fetchTextBodyValues: true,
    fetchHTMLBodyValues: true,
  });
  assert.equal(e.subject, 'Quarterly report — draft');
  assert.deepEqual(e.from, [{ name: 'Ann Example', email: 'ann@example.org' }]);
  assert.equal(e.sentAt, '2026-12-07T03:00:00+01:00');
  assert.deepEqual(ids(e.textBody), ['1.1']);
  assert.deepEqual(ids(e.htmlBody), ['1.2.1']);
  assert.deepEqual(ids(e.attachments), ['1.2.2', '2']);
  assert.equal(e.hasAttachment, true);
  const [image, pdf] = e.attachments as Record<string, unknown>[];
  assert.deepEqual(image, {
    partId: '1.2.2',
    blobId: 'Bmsg-1.2.2',
    size: 768,
    name: 'chart.png',
    type: 'image/png',
    charset: null,
    disposition: 'inline',
    cid: 'chart@example.org',
    language: null,
    location: null,
  });
  assert.equal(pdf?.name, 'Rapport trimestriel — été.pdf');
  assert.deepEqual(pdf?.language, ['fr', 'en']);
  assert.equal(pdf?.disposition, 'attachment');
  assert.equal(pdf?.size, 509);
  const values = e.bodyValues as Record<string, { value: string; isTruncated: boolean; isEncodingProblem: boolean }>;
  assert.equal(values['1.1']?.value, 'Hi Bob,\r\n\r\nHere is the report — see the chart below.');
  assert.match(values['1.2.1']?.value ?? '', /Here is the report &mdash;/);
  assert.equal(e.preview, 'Hi Bob, Here is the report — see the chart below.');
  const png = await partBytes(bufferReader(bytes), email.root, '1.2.2', 1 << 20);
  assert.equal(png?.length, 768);
  assert.equal(png?.[255], 255);
  assert.equal(await partBytes(bufferReader(bytes), email.root, '1.2', 1 << 20), null, 'a multipart has no blob');
  assert.equal(await partBytes(bufferReader(bytes), email.root, '9', 1 << 20), null);
  assert.equal(await partBytes(bufferReader(bytes), email.root, '1..2', 1 << 20), null);
  const structure = e.bodyStructure as { type: string; partId: null; subParts: { type: string }[] };
  assert.equal(structure.type, 'multipart/mixed');
  assert.equal(structure.partId, null);
  assert.deepEqual(
    structure.subParts.map((p) => p.type),
    ['multipart/alternative', 'application/pdf'],
  );
  assert.equal(invalidProperty(['header:Subject:asText', 'preview'], ['header:Content-ID:asMessageIds']), null);
  assert.equal(invalidProperty(['header:Subject:asDate'], []), 'header:Subject:asDate');
  assert.equal(invalidProperty([], ['nonsense']), 'nonsense');
});

test('a forwarded message is one attachment; its own parts are not the outer bodies', async () => {
  const { get } = await parse(await fixture('nested-rfc822.eml'));
  const e = await get(['textBody', 'htmlBody', 'attachments', 'inReplyTo', 'references', 'preview']);
  assert.deepEqual(ids(e.textBody), ['1']);
  assert.deepEqual(ids(e.htmlBody), ['1']);
  assert.deepEqual(ids(e.attachments), ['2']);
  assert.equal((e.attachments as { type: string }[])[0]?.type, 'message/rfc822');
  assert.deepEqual(e.inReplyTo, ['lunch-1@example.com']);
  assert.deepEqual(e.references, ['lunch-0@example.com', 'lunch-1@example.com']);
  assert.equal(e.preview, 'See below.');
});

test('ISO-8859-1 8bit text and headers decode; raw 8bit in a header is U+FFFD', async () => {
  const { get } = await parse(await fixture('latin1-8bit.eml'));
  const e = await get(['from', 'subject', 'bodyValues', 'textBody', 'sentAt'], { fetchTextBodyValues: true });
  assert.deepEqual(e.from, [{ name: 'André', email: 'andre@example.fr' }]);
  assert.equal(e.subject, 'Caf\ufffd cr\ufffdme');
  assert.equal(e.sentAt, '2026-12-01T09:30:00+01:00');
  const v = (e.bodyValues as Record<string, { value: string; isEncodingProblem: boolean }>)['1'];
  assert.equal(v?.value, "Un café crème, s'il vous plaît.\r\nÀ bientôt.\r\n");
  assert.equal(v?.isEncodingProblem, false);
  assert.equal((e.textBody as { charset: string }[])[0]?.charset, 'ISO-8859-1');
});

test('broken MIME: unclosed multipart, unknown charset, bad base64 and UTF-8, unknown encoding', async () => {
  const { get } = await parse(await fixture('broken.eml'));
  const e = await get(['textBody', 'bodyValues'], { fetchAllBodyValues: true });
  const v = e.bodyValues as Record<string, { value: string; isEncodingProblem: boolean }>;
  assert.deepEqual(ids(e.textBody), ['1', '2', '3', '4']);
  assert.equal(v['1']?.value, 'unknown charset');
  assert.equal(v['1']?.isEncodingProblem, true);
  assert.equal(v['2']?.value, 'hello world');
  assert.equal(v['2']?.isEncodingProblem, true);
  assert.equal(v['3']?.value, 'bad utf-8: \ufffd\ufffd here');
  assert.equal(v['3']?.isEncodingProblem, true);
  assert.equal(v['4']?.isEncodingProblem, true);
});

test('maxBodyValueBytes truncates on a UTF-8 character boundary', async () => {
  const body = 'é'.repeat(100);
  const msg = Buffer.from(`Content-Type: text/plain; charset=utf-8\r\n\r\n${body}`);
  const { get } = await parse(msg);
  const e = await get(['bodyValues'], { fetchTextBodyValues: true, maxBodyValueBytes: 7 });
  assert.deepEqual((e.bodyValues as Record<string, unknown>)['1'], {
    value: 'ééé',
    isEncodingProblem: false,
    isTruncated: true,
  });
  const whole = await get(['bodyValues'], { fetchTextBodyValues: true, maxBodyValueBytes: 200 });
  assert.equal((whole.bodyValues as Record<string, { isTruncated: boolean }>)['1']?.isTruncated, false);
  fc.assert(
    fc.property(fc.string({ unit: 'grapheme', maxLength: 50 }), fc.nat(200), (s, n) => {
      const cut = truncateUtf8(s, n);
      assert.ok(Buffer.byteLength(cut) <= Math.max(n, 0));
      assert.ok(s.startsWith(cut));
      assert.ok(!cut.includes('\ufffd') || s.includes('\ufffd'));
    }),
  );
});

test('an HTML-only message: the HTML part is also the text body, its preview is text', async () => {
  const { get } = await parse(
    Buffer.from(
      'Content-Type: text/html; charset=utf-8\r\n\r\n<html><head><title>T</title><style>p{}</style></head><body><p>Caf&eacute; &amp; <b>tea</b></p>\r\n<p>at&#160;noon&#x21;</p></body></html>\r\n',
    ),
  );
  const e = await get(['textBody', 'htmlBody', 'preview', 'hasAttachment']);
  assert.deepEqual(ids(e.textBody), ['1']);
  assert.deepEqual(ids(e.htmlBody), ['1']);
  assert.equal(e.preview, 'Café & tea at noon!');
  assert.equal(e.hasAttachment, false);
});

/** The structure example of RFC 8621 §4.1.4 (parts A to K). */
test('RFC 8621 §4.1.4 example: textBody A B C D K, htmlBody A E K, attachments C F G H J', async () => {
  let n = 0;
  const leaf = (type: string, label: string, disposition?: string) =>
    `Content-Type: ${type}\r\n${disposition ? `Content-Disposition: ${disposition}\r\n` : ''}X-Label: ${label}\r\n\r\n${label}\r\n`;
  const multi = (sub: string, ...parts: string[]) => {
    const b = `b${n++}`;
    return `Content-Type: multipart/${sub}; boundary=${b}\r\n\r\n${parts.map((p) => `--${b}\r\n${p}`).join('')}--${b}--\r\n`;
  };
  const msg = multi(
    'mixed',
    leaf('text/plain', 'A', 'inline'),
    multi(
      'mixed',
      multi(
        'alternative',
        multi(
          'mixed',
          leaf('text/plain', 'B', 'inline'),
          leaf('image/jpeg', 'C', 'inline'),
          leaf('text/plain', 'D', 'inline'),
        ),
        multi('related', leaf('text/html', 'E'), leaf('image/jpeg', 'F')),
      ),
      leaf('image/jpeg', 'G', 'attachment'),
      leaf('application/x-excel', 'H'),
      leaf('message/rfc822', 'J'),
    ),
    leaf('text/plain', 'K', 'inline'),
  );
  const { get } = await parse(Buffer.from(`Subject: example\r\n${msg}`));
  const e = await get(['textBody', 'htmlBody', 'attachments'], {});
  const labels = await partLabels(msg);
  const label = (list: unknown) => ids(list).map((id) => labels.get(id));
  assert.deepEqual(label(e.textBody), ['A', 'B', 'C', 'D', 'K']);
  assert.deepEqual(label(e.htmlBody), ['A', 'E', 'K']);
  assert.deepEqual(label(e.attachments), ['C', 'F', 'G', 'H', 'J']);
});

/** partId -> X-Label of each leaf, through bodyProperties with a header property. */
async function partLabels(msg: string): Promise<Map<string, string>> {
  const bytes = Buffer.from(`Subject: example\r\n${msg}`);
  const reader = bufferReader(bytes);
  const email = await parseEmail(reader, bytes.length, (id) => id);
  const e = await emailProperties(reader, email, ['bodyStructure'], ['partId', 'header:X-Label:asText', 'subParts']);
  const out = new Map<string, string>();
  const walk = (p: Record<string, unknown>) => {
    if (p.partId) out.set(p.partId as string, p['header:X-Label:asText'] as string);
    for (const c of (p.subParts as Record<string, unknown>[] | null) ?? []) walk(c);
  };
  walk(e.bodyStructure as Record<string, unknown>);
  return out;
}

test('property: any bytes parse without throwing, bounded in time', async () => {
  const piece = fc.constantFrom(
    'Content-Type: multipart/mixed; boundary=a\r\n',
    'Content-Type: multipart/alternative; boundary="b"\r\n',
    'Content-Type: multipart/related; boundary=a\r\n',
    'Content-Type: message/rfc822\r\n',
    'Content-Type: text/html; charset=iso-8859-1\r\n',
    "Content-Type: image/png; name*0*=utf-8''%E2; name*1*=%82%AC\r\n",
    'Content-Transfer-Encoding: base64\r\n',
    'Content-Transfer-Encoding: quoted-printable\r\n',
    'Content-Disposition: attachment; filename="x"\r\n',
    'Subject: =?UTF-8?B?w6k=?=\r\n',
    '\r\n',
    '--a\r\n',
    '--a--\r\n',
    '--b\r\n',
    '=E2=82\r\n',
    '<p>x &amp; y</p>\r\n',
    '\xff\xfe\r\n',
  );
  await fc.assert(
    fc.asyncProperty(fc.array(fc.oneof(piece, fc.string({ maxLength: 20 })), { maxLength: 60 }), async (pieces) => {
      const bytes = Buffer.from(pieces.join(''), 'latin1');
      const { get } = await parse(bytes);
      await get([...DEFAULT_PARSE_PROPERTIES, 'bodyStructure', 'headers'], { fetchAllBodyValues: true });
    }),
    { numRuns: 300 },
  );
  await fc.assert(
    fc.asyncProperty(fc.uint8Array({ maxLength: 3000 }), async (raw) => {
      const { get } = await parse(Buffer.from(raw));
      await get([...DEFAULT_PARSE_PROPERTIES, 'bodyStructure', 'headers'], { fetchAllBodyValues: true });
    }),
    { numRuns: 200 },
  );
  // Huge headers: 20,000 fields and a 1 MB folded one.
  const huge = Buffer.from(
    `${'Received: from x by y; Mon, 7 Dec 2026 00:00:00 +0000\r\n'.repeat(20_000)}To: ${'a@b, '.repeat(100_000)}\r\n ${'x'.repeat(1_000_000)}\r\n\r\nbody\r\n`,
  );
  const t0 = performance.now();
  const { get } = await parse(huge);
  const e = await get(['headers', 'to', 'subject', 'preview']);
  assert.ok(performance.now() - t0 < 5000, `huge header took ${performance.now() - t0} ms`);
  assert.equal(e.subject, null);
  assert.ok(Array.isArray(e.headers));
  // 5,000 nested multiparts: the nesting bound makes the deep ones opaque leaves.
  let nested = 'body\r\n';
  for (let i = 0; i < 5000; i++)
    nested = `Content-Type: multipart/mixed; boundary=n${i}\r\n\r\n--n${i}\r\n${nested}--n${i}--\r\n`;
  const t1 = performance.now();
  const deep = await parse(Buffer.from(nested));
  await deep.get(['bodyStructure', 'textBody', 'attachments', 'preview'], { fetchAllBodyValues: true });
  assert.ok(performance.now() - t1 < 5000, `deep nesting took ${performance.now() - t1} ms`);
});
