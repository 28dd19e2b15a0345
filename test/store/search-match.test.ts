// The FTS5 expressions built from client text (store/search/match.ts) and the word rule the
// scan shares with the index (core/search-terms.ts): any input is a valid expression that
// FTS5 runs (no client syntax gets through), and the scan's matching agrees with FTS5's on
// the same text.

import assert from 'node:assert/strict';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import fc from 'fast-check';
import { LIMITS } from '../../src/core/limits.ts';
import { searchTerms, searchTokens, termIn } from '../../src/core/search-terms.ts';
import type { TextField } from '../../src/store/mailboxes.ts';
import { SEARCH_MIGRATIONS } from '../../src/store/search/db.ts';
import { matchExpression } from '../../src/store/search/match.ts';

function fts(): DatabaseSync {
  const db = new DatabaseSync(':memory:');
  db.exec(SEARCH_MIGRATIONS.join(';'));
  return db;
}

const FIELDS: TextField[] = ['text', 'from', 'to', 'cc', 'bcc', 'subject', 'body'];

test('every client value is quoted: FTS5 runs any expression built from it', () => {
  const db = fts();
  db.prepare('INSERT INTO text (rowid, f_from, f_to, f_cc, f_bcc, subject, body) VALUES (1, ?, ?, ?, ?, ?, ?)').run(
    'Bob <bob@example.test>',
    '',
    '',
    '',
    'Réunion NOT OR AND',
    'the quick brown fox "quoted" {braces} col:on',
  );
  const run = db.prepare('SELECT rowid FROM text WHERE text MATCH ?');
  const syntax = fc.constantFrom(
    '"',
    '*',
    '(',
    ')',
    '{',
    '}',
    ':',
    '^',
    '+',
    '-',
    'AND',
    'OR',
    'NOT',
    'NEAR',
    ' ',
    'é',
  );
  fc.assert(
    fc.property(
      fc.constantFrom(...FIELDS),
      fc.array(fc.oneof(syntax, fc.string()), { maxLength: 20 }),
      (field, parts) => {
        const expr = matchExpression([{ field, value: parts.join('') }]);
        if (expr === null || expr.match === null) return;
        run.all(expr.match); // throws on a syntax error
      },
    ),
    { numRuns: 500 },
  );
  const q = (field: TextField, value: string) => {
    const e = matchExpression([{ field, value }]);
    return e?.match ? run.all(e.match).length : -1;
  };
  assert.equal(q('subject', 'NOT'), 1, 'an operator is a word');
  assert.equal(q('subject', 'reunion OR'), 1);
  assert.equal(q('body', 'subject:quick'), 0, 'no column filter from the client');
  assert.equal(q('from', 'quick'), 0);
  assert.equal(q('body', '"fox quoted"'), 1);
  assert.equal(q('text', '"'), -1, 'no word: every email');
  const many = Array.from({ length: LIMITS.search.maxTerms + 1 }, (_, i) => `w${i}`).join(' ');
  assert.equal(matchExpression([{ field: 'text', value: many }]), null, 'too many terms: not for the index');
});

test('the scan matches as FTS5 does (words, prefixes, phrases, case, accents)', () => {
  const db = fts();
  const ins = db.prepare(
    'INSERT INTO text (rowid, f_from, f_to, f_cc, f_bcc, subject, body) VALUES (?, ?, ?, ?, ?, ?, ?)',
  );
  const run = db.prepare('SELECT rowid FROM text WHERE text MATCH ?');
  const words = fc.constantFrom(
    'café',
    'Cafe',
    'CRÈME',
    'brûlée',
    'fox',
    'foxes',
    'x-ray',
    'bob@example.test',
    'Über',
    '42',
  );
  let row = 0;
  fc.assert(
    fc.property(
      fc.array(words, { minLength: 1, maxLength: 6 }),
      fc.array(words, { minLength: 1, maxLength: 2 }),
      fc.boolean(),
      (text, query, phrase) => {
        const body = text.join(' ');
        ins.run(++row, '', '', '', '', '', body);
        const value = phrase ? `"${query.join(' ')}"` : query.map((w) => w.slice(0, 3)).join(' ');
        const e = matchExpression([{ field: 'body', value }]);
        assert.ok(e?.match);
        const byFts = run.all(e.match).some((r) => Number(r.rowid) === row);
        const terms = searchTerms(value, 100, 1000) ?? [];
        const byScan = terms.every((t) => termIn(t, searchTokens(body)));
        assert.equal(byScan, byFts, `${value} in ${body}`);
      },
    ),
    { numRuns: 300 },
  );
});
