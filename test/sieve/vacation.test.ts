// Sieve vacation (src/sieve/vacation.ts): when no reply is sent (RFC 5230 §4.5-4.6, RFC 3834 §2,
// Pigeonhole's checks), and the reply as a parser sees it: ours for the fields, and Python's
// `email` package (policy.default, which reports defects) as an independent reader.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { describe, test } from 'node:test';
import { LIMITS } from '../../src/core/limits.ts';
import {
  addressesIn,
  buildVacationReply,
  VACATION_ENVELOPE_FROM,
  type VacationInput,
  type VacationReplyInput,
  vacationDecision,
  vacationStateKey,
} from '../../src/sieve/vacation.ts';

const h = (pairs: Record<string, string> | [string, string][]) =>
  (Array.isArray(pairs) ? pairs : Object.entries(pairs)).map(([name, value]) => ({ name, value }));

const base: VacationInput = {
  headers: h({ From: 'Bob <bob@remote.example>', To: 'Alice <alice@example.test>', Subject: 'Lunch?' }),
  envelopeFrom: 'bob@remote.example',
  ownAddresses: ['alice@example.test'],
  addresses: [],
};
const decide = (over: Partial<VacationInput>) => vacationDecision({ ...base, ...over });

describe('vacationDecision', () => {
  test('a personal message from a person gets a reply, to the envelope sender', () => {
    assert.deepEqual(decide({}), { reply: true, to: 'bob@remote.example' });
    assert.deepEqual(decide({ envelopeFrom: 'Bob@Remote.Example' }), { reply: true, to: 'bob@remote.example' });
    // Our address in Cc, Bcc, Resent-*; in any case; as a sub-address; in a group; with comments.
    for (const [name, value] of [
      ['Cc', 'x@y.example, "Smith, A" <ALICE@EXAMPLE.TEST>'],
      ['Bcc', 'alice@example.test'],
      ['Resent-To', 'team: carol@example.test, alice@example.test;'],
      ['Resent-Cc', 'alice+work@example.test (at work)'],
      ['Resent-Bcc', '<alice@example.test>'],
      ['To', 'undisclosed-recipients:;'],
    ] as const) {
      const headers = h([
        ['To', 'someone@else.example'],
        [name, value],
      ]);
      const want = name === 'To' ? { reply: false, why: 'not-addressed' } : { reply: true, to: 'bob@remote.example' };
      assert.deepEqual(decide({ headers }), want, `${name}: ${value}`);
    }
  });

  test('each reason for no reply', () => {
    const cases: [string, Partial<VacationInput>, string][] = [
      ['null sender', { envelopeFrom: '' }, 'null-sender'],
      ['invalid sender', { envelopeFrom: 'not an address' }, 'invalid-sender'],
      ['MAILER-DAEMON', { envelopeFrom: 'MAILER-DAEMON@remote.example' }, 'system-sender'],
      ['LISTSERV', { envelopeFrom: 'listserv@lists.example' }, 'system-sender'],
      ['majordomo', { envelopeFrom: 'Majordomo@lists.example' }, 'system-sender'],
      ['owner-*', { envelopeFrom: 'owner-linux-mm@kvack.example' }, 'system-sender'],
      ['*-request', { envelopeFrom: 'linux-kernel-request@vger.example' }, 'system-sender'],
      ['own address', { envelopeFrom: 'alice@example.test' }, 'own-sender'],
      ['own sub-address', { envelopeFrom: 'alice+x@example.test' }, 'own-sender'],
      ['one of :addresses', { envelopeFrom: 'a.smith@old.example', addresses: ['A.Smith@old.example'] }, 'own-sender'],
      ['Auto-Submitted', { headers: [...base.headers, ...h({ 'Auto-Submitted': 'auto-replied' })] }, 'auto-submitted'],
      [
        'Auto-Submitted with parameters',
        { headers: [...base.headers, ...h({ 'auto-submitted': 'Auto-Generated; owner-email="x@y.example"' })] },
        'auto-submitted',
      ],
      ['List-Id', { headers: [...base.headers, ...h({ 'List-Id': '<dev.lists.example>' })] }, 'mailing-list'],
      [
        'List-Post',
        { headers: [...base.headers, ...h({ 'list-post': '<mailto:dev@lists.example>' })] },
        'mailing-list',
      ],
      ['List-Unsubscribe', { headers: [...base.headers, ...h({ 'List-Unsubscribe': '<https://x>' })] }, 'mailing-list'],
      ['Precedence bulk', { headers: [...base.headers, ...h({ Precedence: 'bulk' })] }, 'precedence'],
      ['Precedence list', { headers: [...base.headers, ...h({ Precedence: ' List ' })] }, 'precedence'],
      ['Precedence junk', { headers: [...base.headers, ...h({ Precedence: 'junk' })] }, 'precedence'],
      ['not addressed', { headers: h({ To: 'list@lists.example' }) }, 'not-addressed'],
      ['address only in a display name', { headers: h({ To: '"alice@example.test" <x@y.example>' }) }, 'not-addressed'],
      ['address only in a comment', { headers: h({ To: 'x@y.example (alice@example.test)' }) }, 'not-addressed'],
      ['no recipient fields', { headers: h({ Subject: 'hi' }) }, 'not-addressed'],
    ];
    for (const [what, over, why] of cases) assert.deepEqual(decide(over), { reply: false, why }, what);
    // "no" is a person's message (RFC 3834 §5); Precedence: first-class is not a list.
    assert.equal(decide({ headers: [...base.headers, ...h({ 'Auto-Submitted': 'No' })] }).reply, true);
    assert.equal(decide({ headers: [...base.headers, ...h({ Precedence: 'first-class' })] }).reply, true);
    // :addresses make a message to another of the user's addresses personal.
    assert.equal(decide({ headers: h({ To: 'a.smith@old.example' }), addresses: ['a.smith@old.example'] }).reply, true);
  });

  test('addressesIn is linear on hostile input', () => {
    const t0 = performance.now();
    addressesIn(`${'a'.repeat(200_000)}`);
    addressesIn(`${'"'.repeat(100_000)}`);
    addressesIn(`${'('.repeat(100_000)}@`);
    addressesIn(`${'a@'.repeat(100_000)}`);
    assert.ok(performance.now() - t0 < 1000);
    assert.deepEqual(addressesIn('A <a@x.example>, "b, c" <b@y.example>, d@z.example (e@w.example)'), [
      'a@x.example',
      'b@y.example',
      'd@z.example',
    ]);
  });

  test('the state key is per handle and sender, whatever the sender spelling', () => {
    const k = vacationStateKey('h1', 'Bob@Remote.Example');
    assert.equal(k, vacationStateKey('h1', 'bob@remote.example'));
    assert.notEqual(k, vacationStateKey('h2', 'bob@remote.example'));
    assert.notEqual(k, vacationStateKey('h1', 'carol@remote.example'));
    assert.match(k, /^[0-9a-f]{64}$/);
    assert.equal(VACATION_ENVELOPE_FROM, '');
  });
});

/** Header fields of a message we built (unfolded), and its body. */
function parse(msg: Buffer): { fields: Map<string, string>; body: string; raw: string } {
  const raw = msg.toString('utf8');
  const end = raw.indexOf('\r\n\r\n');
  assert.ok(end > 0);
  const fields = new Map<string, string>();
  for (const line of raw
    .slice(0, end)
    .replace(/\r\n[ \t]/g, ' ')
    .split('\r\n')) {
    const colon = line.indexOf(':');
    const name = line.slice(0, colon).toLowerCase();
    assert.ok(!fields.has(name), `one ${name} field`);
    fields.set(name, line.slice(colon + 1).trim());
  }
  return { fields, body: raw.slice(end + 4), raw };
}

/** What Python's email package reads: decoded fields, the content, defects. */
function python(msg: Buffer): {
  headers: Record<string, string>;
  type: string;
  charset: string | null;
  content: string;
  defects: string[];
  parts: number;
} {
  const code = `
import email, email.policy, json, sys
m = email.message_from_bytes(sys.stdin.buffer.read(), policy=email.policy.default)
defects = [type(d).__name__ for d in m.defects]
for k in m.keys():
    defects += [type(d).__name__ for d in m[k].defects]
leaf = next(p for p in m.walk() if not p.is_multipart())
print(json.dumps({
  "headers": {k: str(v) for k, v in m.items()},
  "type": m.get_content_type(),
  "charset": leaf.get_content_charset(),
  "content": leaf.get_content().replace("\\r\\n", "\\n"),
  "defects": defects,
  "parts": len(list(m.walk())),
}))`;
  const r = spawnSync('/usr/bin/python3', ['-c', code], { input: msg, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return JSON.parse(r.stdout);
}

const reply: VacationReplyInput = {
  headers: h({
    From: 'Bob <bob@remote.example>',
    To: 'alice@example.test',
    Subject: 'Lunch?',
    'Message-ID': '<m2@remote.example>',
    References: '<m0@remote.example> <m1@remote.example>',
    'In-Reply-To': '<m1@remote.example>',
  }),
  to: 'bob@remote.example',
  recipient: 'alice@example.test',
  from: null,
  subject: null,
  reason: 'I am away until Monday.\nYour mail will be read then.',
  mime: false,
  hostname: 'mx.example.test',
  now: new Date('2026-12-07T03:11:58Z'),
};

describe('buildVacationReply', () => {
  test('the fields of RFC 5230 §5: From, To, Auto: subject, Date, Message-ID, threading, Auto-Submitted', () => {
    const msg = buildVacationReply(reply);
    const { fields, body, raw } = parse(msg);
    assert.equal(fields.get('from'), '<alice@example.test>');
    assert.equal(fields.get('to'), '<bob@remote.example>');
    assert.equal(fields.get('subject'), 'Auto: Lunch?');
    assert.equal(fields.get('date'), 'Mon, 07 Dec 2026 03:11:58 +0000');
    assert.match(fields.get('message-id') ?? '', /^<[0-9a-f]{24}\.vacation@mx\.example\.test>$/);
    assert.equal(fields.get('in-reply-to'), '<m2@remote.example>');
    assert.equal(fields.get('references'), '<m0@remote.example> <m1@remote.example> <m2@remote.example>');
    assert.equal(fields.get('auto-submitted'), 'auto-replied');
    assert.equal(fields.get('mime-version'), '1.0');
    assert.equal(fields.get('content-type'), 'text/plain; charset=utf-8');
    assert.equal(fields.get('content-transfer-encoding'), '7bit');
    assert.equal(body, 'I am away until Monday.\r\nYour mail will be read then.\r\n');
    assert.doesNotMatch(raw.replace(/\r\n/g, ''), /[\r\n]/, 'CRLF only');
    const py = python(msg);
    assert.deepEqual(py.defects, []);
    assert.equal(py.headers.Subject, 'Auto: Lunch?');
    assert.equal(py.content, 'I am away until Monday.\nYour mail will be read then.\n');
    // A second reply has another Message-ID.
    assert.notEqual(parse(buildVacationReply(reply)).fields.get('message-id'), fields.get('message-id'));
  });

  test(':subject and :from, non-ASCII as RFC 2047 encoded words; header injection is flattened', () => {
    const subject = 'Abwesenheit: Grüße aus dem Urlaub — bis 12. Januar, 日本語も少し';
    const msg = buildVacationReply({
      ...reply,
      subject,
      from: 'Jörg Müller <Joerg@Example.Test>',
      reason:
        'Ich bin bis zum 12. Januar nicht im Büro. Diese Zeile ist absichtlich länger als sechsundsiebzig Zeichen, damit sie umgebrochen wird.',
    });
    const { fields, raw } = parse(msg);
    assert.match(fields.get('subject') ?? '', /^=\?UTF-8\?B\?/);
    for (const line of raw.split('\r\n')) assert.ok(line.length <= 78, `line of ${line.length}: ${line}`);
    assert.equal(fields.get('content-transfer-encoding'), 'quoted-printable');
    const py = python(msg);
    assert.deepEqual(py.defects, []);
    assert.equal(py.headers.Subject, subject);
    assert.equal(py.headers.From, 'Jörg Müller <joerg@example.test>');
    assert.match(py.content, /^Ich bin bis zum 12\. Januar nicht im Büro\. .*umgebrochen wird\.\n$/);
    // The original's subject, non-ASCII, behind "Auto: "; a CRLF in :subject or :from cannot
    // start a field of its own.
    const evil = buildVacationReply({
      ...reply,
      headers: h({ Subject: 'Café ☕' }),
      subject: null,
      from: '"Al\r\nBcc: victim@example.test" <alice@example.test>',
    });
    const p = python(evil);
    assert.equal(p.headers.Subject, 'Auto: Café ☕');
    assert.equal(p.headers.Bcc, undefined);
    assert.equal(p.headers.From, '"Al Bcc: victim@example.test" <alice@example.test>');
    const inj = python(buildVacationReply({ ...reply, subject: 'x\r\nBcc: victim@example.test' }));
    assert.equal(inj.headers.Bcc, undefined);
    assert.equal(inj.headers.Subject, 'x Bcc: victim@example.test');
    // A :from that is no address falls back to the recipient; no subject at all gets a fixed one.
    const fb = parse(
      buildVacationReply({ ...reply, headers: h({ To: 'x@y.example' }), from: 'not an address' }),
    ).fields;
    assert.equal(fb.get('from'), '<alice@example.test>');
    assert.equal(fb.get('subject'), 'Automated reply');
    assert.equal(fb.get('in-reply-to'), undefined, 'no Message-ID, no threading fields');
    // Long subjects are cut.
    const long = parse(buildVacationReply({ ...reply, subject: 'x'.repeat(5000) })).fields.get('subject') ?? '';
    assert.equal(long.length, LIMITS.sieve.vacationSubjectChars);
  });

  test(':mime: the reason is the MIME entity; only its Content-* fields are kept', () => {
    const boundary = 'b0undary';
    const reason = [
      `Content-Type: multipart/alternative; boundary="${boundary}"`,
      'Bcc: victim@example.test',
      'X-Evil: 1',
      '',
      `--${boundary}`,
      'Content-Type: text/plain; charset=utf-8',
      '',
      'Bin weg.',
      `--${boundary}`,
      'Content-Type: text/html; charset=utf-8',
      '',
      '<p>Bin <b>weg</b>.</p>',
      `--${boundary}--`,
      '',
    ].join('\n');
    const msg = buildVacationReply({ ...reply, mime: true, reason });
    const { fields } = parse(msg);
    assert.equal(fields.get('content-type'), `multipart/alternative; boundary="${boundary}"`);
    assert.equal(fields.get('bcc'), undefined);
    assert.equal(fields.get('x-evil'), undefined);
    const py = python(msg);
    assert.deepEqual(py.defects, []);
    assert.equal(py.type, 'multipart/alternative');
    assert.equal(py.parts, 3);
    assert.equal(py.content, 'Bin weg.'); // the CRLF before a boundary is the boundary's
    assert.equal(py.headers['Auto-Submitted'], 'auto-replied');
    // An entity without a Content-Type is text/plain; one without fields at all is its body.
    const bare = python(buildVacationReply({ ...reply, mime: true, reason: 'Content-Language: de\n\nBin weg.\n' }));
    assert.equal(bare.type, 'text/plain');
    assert.equal(bare.headers['Content-Language'], 'de');
    assert.equal(bare.content, 'Bin weg.\n');
  });

  test('threading: References from In-Reply-To when the original has none, bounded; junk ids ignored', () => {
    const only = parse(
      buildVacationReply({
        ...reply,
        headers: h({ 'Message-ID': ' <a@x.example> ', 'In-Reply-To': '<p@x.example> (comment)' }),
      }),
    ).fields;
    assert.equal(only.get('references'), '<p@x.example> <a@x.example>');
    const many = Array.from({ length: 100 }, (_, i) => `<r${i}@x.example>`).join(' ');
    const long = parse(
      buildVacationReply({ ...reply, headers: h({ 'Message-ID': '<a@x.example>', References: many }) }),
    ).fields;
    const refs = (long.get('references') ?? '').split(' ');
    assert.equal(refs.length, LIMITS.sieve.vacationReferences);
    assert.equal(refs.at(-1), '<a@x.example>');
    assert.equal(refs.at(-2), '<r99@x.example>');
    const junk = parse(buildVacationReply({ ...reply, headers: h({ 'Message-ID': 'no brackets', Subject: 's' }) }));
    assert.equal(junk.fields.get('in-reply-to'), undefined);
  });
});
