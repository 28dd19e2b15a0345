import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { searchSnippet, snippetTerms } from '../../../src/jmap/mail/snippet.ts';
import {
  assignThread,
  baseSubject,
  type KnownMessage,
  type ThreadInput,
  threadIdOf,
} from '../../../src/jmap/mail/thread.ts';

test('RFC 5256 §2.1 base subject', () => {
  assert.equal(baseSubject('Re: Lunch'), 'lunch');
  assert.equal(baseSubject('RE: re:  Fwd: [list] Lunch   plans (fwd)'), 'lunch plans');
  assert.equal(baseSubject('Fw[x]: Lunch'), 'lunch');
  assert.equal(baseSubject('[Fwd: Re: Lunch]'), 'lunch');
  assert.equal(baseSubject('[only a blob]'), '[only a blob]', 'a blob alone stays');
  assert.equal(baseSubject('Réponse: x'), 'réponse: x');
  assert.equal(baseSubject(''), '');
});

/** A store of messages by Message-ID, for the lookup. */
function store() {
  const byId = new Map<string, KnownMessage[]>();
  const lookup = async (ids: readonly string[]) => {
    const out = new Map<string, KnownMessage[]>();
    for (const id of ids) {
      const k = byId.get(id);
      if (k) out.set(id, k);
    }
    return out;
  };
  const add = async (m: Partial<ThreadInput> & { fallbackRoot: string }) => {
    const input: ThreadInput = { messageId: null, inReplyTo: null, references: null, subject: null, ...m };
    const r = await assignThread(input, lookup);
    for (const id of input.messageId ?? []) byId.set(id, [...(byId.get(id) ?? []), r]);
    return r.threadId;
  };
  return add;
}

test('threads: replies join by In-Reply-To/References when the base subject agrees', async () => {
  const add = store();
  const root = await add({ messageId: ['a@x'], subject: 'Lunch', fallbackRoot: 'e1' });
  assert.equal(root, threadIdOf('a@x'));
  assert.match(root, /^T[A-Za-z0-9_-]{24}$/);
  const reply = await add({
    messageId: ['b@x'],
    inReplyTo: ['a@x'],
    references: ['a@x'],
    subject: 'Re: lunch',
    fallbackRoot: 'e2',
  });
  assert.equal(reply, root);
  const deep = await add({
    messageId: ['c@x'],
    references: ['a@x', 'b@x'],
    subject: 'RE: Re: Lunch',
    fallbackRoot: 'e3',
  });
  assert.equal(deep, root);
  // A reply reused for another topic starts its own thread, rooted at itself.
  const other = await add({
    messageId: ['d@x'],
    inReplyTo: ['c@x'],
    references: ['a@x', 'b@x', 'c@x'],
    subject: 'Budget',
    fallbackRoot: 'e4',
  });
  assert.equal(other, threadIdOf('d@x'));
  // A reply whose parent is not here yet: rooted at the chain's first id, where the root lands.
  const early = await add({ messageId: ['y@x'], references: ['x@x'], subject: 'Re: New', fallbackRoot: 'e5' });
  const late = await add({ messageId: ['x@x'], subject: 'New', fallbackRoot: 'e6' });
  assert.equal(early, late);
  // Same subject, no references: separate threads.
  const unrelated = await add({ messageId: ['z@x'], subject: 'Lunch', fallbackRoot: 'e7' });
  assert.notEqual(unrelated, root);
  // No Message-ID at all: its own thread from the fallback.
  assert.equal(await add({ subject: 'x', fallbackRoot: 'e8' }), threadIdOf('e8'));
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
