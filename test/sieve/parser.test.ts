// The Sieve lexer, parser and validator (src/sieve/), pure: unit cases with positions and
// messages, and fast-check properties (random input never throws anything but a syntax
// error and stays within time; generated valid scripts parse and validate).

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LIMITS } from '../../src/core/limits.ts';
import { SieveSyntaxError } from '../../src/sieve/ast.ts';
import { tokenize } from '../../src/sieve/lexer.ts';
import { parseScript } from '../../src/sieve/parser.ts';
import { checkScript } from '../../src/sieve/validate.ts';
import { command, plain } from './generator.ts';

function syntaxError(src: string): SieveSyntaxError {
  try {
    parseScript(src);
  } catch (e) {
    if (e instanceof SieveSyntaxError) return e;
    throw e;
  }
  assert.fail(`no syntax error in ${JSON.stringify(src)}`);
}

test('lexer: numbers with quantifiers, tags, identifiers lower-cased, comments skipped', () => {
  const t = tokenize('IF size :OVER 2K # c\n/* x\ny */ 3m 1G 7');
  assert.deepEqual(
    t.map((x) => (x.type === 'eof' ? 'eof' : `${x.type}:${String(x.value)}`)),
    [
      'identifier:if',
      'identifier:size',
      'tag:over',
      'number:2048',
      'number:3145728',
      'number:1073741824',
      'number:7',
      'eof',
    ],
  );
  assert.deepEqual(t[4]?.pos, { line: 3, column: 6 });
});

test('lexer: quoted strings keep line breaks, \\\\ and \\" escape, other escapes drop the backslash', () => {
  const t = tokenize('"a\\"b\\\\c\\qd\ne"');
  assert.equal(t[0]?.type, 'string');
  assert.equal((t[0] as { value: string }).value, 'a"b\\cqd\ne');
});

test('lexer: text: strings remove dot-stuffing and end at a lone dot; CRLF lines', () => {
  const t = tokenize('text: # c\r\nline1\r\n..dot\r\n.\r\n;');
  assert.equal((t[0] as { value: string }).value, 'line1\r\n.dot\r\n');
  assert.equal(t[1]?.type, 'punct');
  assert.deepEqual(t[1]?.pos, { line: 5, column: 1 });
});

test('parser: typed AST with line:column for commands, tests and arguments', () => {
  const s = parseScript(
    'require ["fileinto"];\nif anyof (header :is "a" "b", true) {\n  fileinto "x";\n} else { keep; }\n',
  );
  assert.equal(s.commands.length, 3);
  const [req, iff, els] = s.commands;
  assert.equal(req?.name, 'require');
  assert.equal(req?.args[0]?.kind, 'stringlist');
  assert.equal(iff?.tests[0]?.name, 'anyof');
  assert.equal(iff?.tests[0]?.testList, true);
  assert.deepEqual(iff?.tests[0]?.tests[0]?.pos, { line: 2, column: 11 });
  assert.deepEqual(iff?.tests[0]?.tests[0]?.args[0], { kind: 'tag', name: 'is', pos: { line: 2, column: 18 } });
  assert.deepEqual(iff?.block?.[0]?.pos, { line: 3, column: 3 });
  assert.equal(els?.name, 'else');
});

test('parser: syntax errors carry the line and a clear message', () => {
  assert.equal(syntaxError('keep;\ndiscard').line, 2);
  assert.match(syntaxError('keep;\ndiscard').reason, /expecting ';' or '\{'/);
  assert.equal(syntaxError('keep;\n\n"abc').line, 3);
  assert.match(syntaxError('keep;\n\n"abc').reason, /unterminated quoted string/);
  assert.match(syntaxError('/* x').reason, /unterminated bracket comment/);
  assert.match(syntaxError('reject text:\nabc\n').reason, /unterminated 'text:'/);
  assert.match(syntaxError('if true { keep;').reason, /expecting '\}'/);
  assert.match(syntaxError('if header :is [] "a" {}').reason, /expecting a string/);
  assert.match(syntaxError('keep; }').reason, /unexpected '\}'/);
  assert.match(syntaxError(new Uint8Array([0x6b, 0xff]) as unknown as string).reason, /UTF-8/);
});

test('parser: bounds on nesting, script size, string lists', () => {
  const deep = `${'if true {'.repeat(LIMITS.sieve.maxNesting + 2)}${'}'.repeat(LIMITS.sieve.maxNesting + 2)}`;
  assert.match(syntaxError(deep).reason, /nesting too deep/);
  const notChain = `if ${'not '.repeat(LIMITS.sieve.maxNesting + 2)}true {}`;
  assert.match(syntaxError(notChain).reason, /nesting too deep/);
  assert.match(syntaxError(`#${'x'.repeat(LIMITS.sieve.maxScriptBytes)}`).reason, /too large/);
  const list = `if exists [${Array.from({ length: LIMITS.sieve.maxStringListLength + 1 }, () => '"a"').join(',')}] {}`;
  assert.match(syntaxError(list).reason, /string list too long/);
});

test('validator: errors with line numbers like sievec', () => {
  const cases: [string, number, RegExp][] = [
    ['keep;\nfileinto "x";', 2, /unknown command 'fileinto' \(missing require "fileinto"\)/],
    ['require "frob";', 1, /unknown Sieve capability 'frob'/],
    ['keep;\nrequire "fileinto";', 2, /require commands can only be placed at top level/],
    ['keep;\nelse { keep; }', 2, /'else' must follow an 'if'/],
    ['if size 1 {}', 1, /one of the tags :over, :under must be given/],
    ['if header :is :contains "a" "b" {}', 1, /exclude each other/],
    ['if header :count "gt" "a" "1" {}', 1, /unknown tagged argument ':count'/],
    ['require "relational";\nif header :value "xx" "a" "1" {}', 2, /unknown relational operator 'xx'/],
    ['if header :comparator "i;ascii-numeric" "a" "b" {}', 1, /unknown comparator/],
    ['require "fileinto";\nfileinto ["a"];', 2, /wrong arguments \(expected string\)/],
    ['if allof true {}', 1, /needs a test list in parentheses/],
    ['require "index";\n\nif header :last "a" "b" {}', 3, /:last tag cannot be given without the :index tag/],
    ['redirect "nobody";', 1, /invalid redirect address/],
    ['require "variables";\nset "1a" "b";', 2, /invalid variable name/],
    ['if keep {}', 1, /unknown test 'keep'/],
    ['stop { keep; }', 1, /takes no block/],
  ];
  for (const [src, line, message] of cases) {
    const r = checkScript(src);
    assert.equal(r.ok, false, src);
    assert.equal(r.errors[0]?.line, line, src);
    assert.match(r.errors[0]?.message ?? '', message, src);
  }
  assert.equal(
    checkScript('require ["fileinto", "copy", "imap4flags"];\nfileinto :copy :flags "\\\\Seen" "x";').ok,
    true,
  );
});

test('property: random input never throws anything but a syntax error, and is fast', () => {
  const alphabet = fc.constantFrom(
    ...'if{}[](),;:"\\#/* \n\r\ttext:.0123456789KMGabc'.split(''),
    'require',
    'header',
    ':is',
    'text:\n',
    '\n.\n',
    '/*',
    '*/',
  );
  const arbitraries = [
    fc.uint8Array({ maxLength: 400 }),
    fc.array(alphabet, { maxLength: 200 }).map((a) => a.join('')),
  ];
  for (const arb of arbitraries)
    fc.assert(
      fc.property(arb as fc.Arbitrary<string | Uint8Array>, (input) => {
        const start = performance.now();
        try {
          checkScript(input);
        } catch (e) {
          assert.fail(`threw ${String(e)}`);
        }
        assert.ok(performance.now() - start < 1000); // linear scan: far less; the margin absorbs GC pauses on a busy CI
      }),
      { numRuns: 1500 },
    );
});

test('property: big hostile inputs stay within time', () => {
  const inputs = [
    '['.repeat(200_000),
    'if '.repeat(100_000),
    '"'.repeat(500_000),
    `${'/*'.repeat(200_000)}`,
    `text:\n${'.\\\n'.repeat(100_000)}`,
    `if exists ${'['.repeat(1)}${'"a",'.repeat(100_000)}`,
    'keep;'.repeat(200_000),
  ];
  for (const input of inputs) {
    const start = performance.now();
    const r = checkScript(input);
    assert.equal(r.ok, false);
    // Linear (about 0.3 s alone for the slowest); the margin absorbs a busy CI machine.
    assert.ok(performance.now() - start < 3000, `${input.slice(0, 20)}: ${performance.now() - start} ms`);
  }
});

test('property: generated valid scripts parse and validate', () => {
  fc.assert(
    fc.property(fc.array(fc.oneof(command, plain), { maxLength: 6 }), (cmds) => {
      const src = `require "fileinto";\n${cmds.map((c) => c.src).join('\n')}\n`;
      const r = checkScript(src);
      assert.deepEqual(r.errors, [], src);
      assert.equal(
        r.script?.commands.length,
        cmds.reduce((n, c) => n + c.count, 1),
      );
    }),
    { numRuns: 500 },
  );
});
