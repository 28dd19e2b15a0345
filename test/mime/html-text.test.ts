// mime/html-text.ts: what it extracts, and in linear time on large and hostile markup (it read
// the end of a string built by += at every tag, flattening it each time: a 1 MB HTML part held
// the event loop 10 s, through Sieve's body :text, JMAP previews and the search indexer).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { htmlToText } from '../../src/mime/html-text.ts';

test('tags end words, comments, script and style go, entities are decoded', () => {
  assert.equal(htmlToText('<p>Hello<b>world</b></p>'), 'Hello world ');
  assert.equal(htmlToText('a<!-- x > y -->b<script>if (a<b) x()</script>c<style>p{}</style>d'), 'a b c d');
  assert.equal(htmlToText('caf&eacute; &amp; &#233;&#x20AC; &bogus; & done'), 'café & é€ &bogus; & done');
  assert.equal(htmlToText('line one\n<br>line two'), 'line one\nline two');
  assert.equal(htmlToText('x<unclosed'), 'x ');
  assert.equal(htmlToText(''), '');
});

test('large and hostile markup costs linear time', () => {
  const shapes = [
    (n: number) => '<p>Hello <b>world</b> &amp; friends, text</p>\n'.repeat(n),
    (n: number) => '<a>'.repeat(n * 4),
    (n: number) => '&amp;'.repeat(n * 4),
    (n: number) => '&'.repeat(n * 8),
    (n: number) => '<!--'.repeat(n * 4),
  ];
  for (const shape of shapes) {
    // Best of three, as a ratio (a busy CI machine breaks wall-clock bounds): 4 times the input
    // costs about 4 times as much; quadratic work would cost 16 times.
    const cost = (n: number) => {
      const html = shape(n);
      let best = Number.POSITIVE_INFINITY;
      for (let k = 0; k < 3; k++) {
        const t0 = performance.now();
        htmlToText(html);
        best = Math.min(best, performance.now() - t0);
      }
      return best;
    };
    const small = cost(5_000);
    const large = cost(20_000);
    assert.ok(
      large < Math.max(small, 2) * 8,
      `${shape(1).slice(0, 12)}: ${small.toFixed(1)} -> ${large.toFixed(1)} ms`,
    );
  }
  // A megabyte of markup in well under a second (it was 10 s).
  const t0 = performance.now();
  htmlToText('<p>Hello <b>world</b> &amp; friends, text</p>\n'.repeat(24_000));
  assert.ok(performance.now() - t0 < 1000);
});
