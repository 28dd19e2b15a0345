import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { searchSnippet, snippetTerms } from '../../../src/jmap/mail/snippet.ts';
import {
  baseSubject,
  chooseThread,
  headerEnd,
  type KnownThread,
  messageIds,
  recordedKeys,
  subjectKey,
  type ThreadHeaders,
  threadHeaders,
} from '../../../src/mime/thread-key.ts';

test('RFC 5256 §2.1 base subject', () => {
  assert.equal(baseSubject('Re: Lunch'), 'lunch');
  assert.equal(baseSubject('RE: re:  Fwd: [list] Lunch   plans (fwd)'), 'lunch plans');
  assert.equal(baseSubject('Fw[x]: Lunch'), 'lunch');
  assert.equal(baseSubject('[Fwd: Re: Lunch]'), 'lunch');
  assert.equal(baseSubject('[only a blob]'), '[only a blob]', 'a blob alone stays');
  assert.equal(baseSubject('Réponse: x'), 'réponse: x');
  assert.equal(baseSubject(''), '');
});

test('threading fields: bounded, lenient header reading', () => {
  const h = threadHeaders(
    Buffer.from(
      'Message-ID: <c@x>\r\nIn-Reply-To: <b@x> (comment)\r\nReferences: <a@x>\r\n <b @x>\r\nSubject: =?UTF-8?Q?Re:_Caf=C3=A9?=\r\n',
    ),
  );
  assert.deepEqual(h, { messageId: 'c@x', inReplyTo: ['b@x'], references: ['a@x', 'b@x'], subject: 'café' });
  assert.deepEqual(messageIds('junk <a@x> <b <c@y> >', 10), ['a@x', 'c@y']);
  const many = Array.from({ length: 200 }, (_, i) => `<r${i}@x>`).join(' ');
  const refs = threadHeaders(Buffer.from(`References: ${many}\r\n`)).references;
  assert.equal(refs.length, 50);
  assert.equal(refs[0], 'r0@x', 'the root is kept');
  assert.equal(refs.at(-1), 'r199@x', 'and the nearest');
  assert.equal(headerEnd(Buffer.from('A: b\r\n\r\nbody')), 6);
  assert.equal(headerEnd(Buffer.from('A: b\n\nbody')), 5);
  assert.equal(headerEnd(Buffer.from('A: b\r\n')), -1);
  // Linear on hostile input.
  const t0 = performance.now();
  messageIds('<'.repeat(200_000), 10_000);
  baseSubject(`${'re: ['.repeat(20_000)}x`);
  threadHeaders(Buffer.from(`X-A: b\r\n${' folded line without a colon\r\n'.repeat(8_000)}Subject: s\r\n`));
  threadHeaders(Buffer.from(`${'no colon here at all '.repeat(12_000)}\r\n:`));
  assert.ok(performance.now() - t0 < 2000);
});

/** A store of threads by message id key, for chooseThread. */
function store() {
  const byKey = new Map<string, KnownThread[]>();
  let n = 0;
  return (m: Partial<ThreadHeaders>) => {
    const h: ThreadHeaders = { messageId: null, inReplyTo: [], references: [], subject: '', ...m };
    const thread = chooseThread(h, (k) => byKey.get(k) ?? [], `T${++n}`);
    for (const k of recordedKeys(h))
      byKey.set(k, [...(byKey.get(k) ?? []), { thread, subject: subjectKey(h.subject) }]);
    return thread;
  };
}

test('threads: replies join by In-Reply-To/References when the base subject agrees', () => {
  const add = store();
  const s = (x: string) => baseSubject(x);
  const root = add({ messageId: 'a@x', subject: s('Lunch') });
  assert.equal(root, 'T1');
  assert.equal(add({ messageId: 'b@x', inReplyTo: ['a@x'], references: ['a@x'], subject: s('Re: lunch') }), root);
  assert.equal(add({ messageId: 'c@x', references: ['a@x', 'b@x'], subject: s('RE: Re: Lunch') }), root);
  // A reply reused for another topic starts its own thread.
  const other = add({ messageId: 'd@x', inReplyTo: ['c@x'], references: ['a@x', 'b@x', 'c@x'], subject: s('Budget') });
  assert.notEqual(other, root);
  // A reply whose parent is not here yet: the parent joins it when it comes.
  const early = add({ messageId: 'y@x', references: ['x@x'], subject: s('Re: New') });
  assert.equal(add({ messageId: 'x@x', subject: s('New') }), early);
  // Same subject, no references: separate threads.
  assert.notEqual(add({ messageId: 'z@x', subject: s('Lunch') }), root);
  // No Message-ID at all: its own thread.
  assert.equal(add({ subject: 'x' }), 'T8', 'a new thread (each call offers the next id)');
});

test('snippets: marks, escaping, null when nothing matches, 255 octets', () => {
  const terms = snippetTerms(['lunch  <b>', 'Café']);
  assert.deepEqual(terms, ['lunch', '<b>', 'Café']);
  const s = searchSnippet(terms, 'LUNCH at the café & more', 'Shall we have <b>lunch</b> today?');
  assert.equal(s.subject, '<mark>LUNCH</mark> at the <mark>café</mark> &amp; more');
  assert.equal(s.preview, 'Shall we have <mark>&lt;b&gt;lunch</mark>&lt;/b&gt; today?', 'touching matches merge');
  assert.deepEqual(searchSnippet(['nothing'], 'Lunch', 'body'), { subject: null, preview: null });
  const long = `${'filler words here '.repeat(50)}the target word ${'é'.repeat(500)}`;
  const p = searchSnippet(['target'], null, long).preview ?? '';
  assert.ok(Buffer.byteLength(p) <= 255, `${Buffer.byteLength(p)} octets`);
  assert.match(p, /^words here .*<mark>target<\/mark> word é+$/);
  fc.assert(
    fc.property(
      fc.array(fc.string({ maxLength: 5 }), { maxLength: 5 }),
      fc.string({ maxLength: 400, unit: 'grapheme' }),
      (ts, body) => {
        const r = searchSnippet(snippetTerms(ts), body, body);
        if (r.preview !== null) assert.ok(Buffer.byteLength(r.preview) <= 255);
        for (const v of [r.subject, r.preview])
          if (v !== null) assert.ok(!/<(?!\/?mark>)/.test(v), `only mark tags: ${v}`);
      },
    ),
  );
  // Many terms on a large body stays fast.
  const t0 = performance.now();
  searchSnippet(
    snippetTerms(['a'.repeat(100), ...Array.from({ length: 40 }, (_, i) => `w${i}`)]),
    null,
    'a'.repeat(1_000_000),
  );
  assert.ok(performance.now() - t0 < 2000);
});
