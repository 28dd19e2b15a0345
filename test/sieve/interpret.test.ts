// The Sieve interpreter (src/sieve/interpret/) on its own: matching (glob captures, escapes,
// comparators), variables and their bounds, actions and their conflicts, run-time errors, what
// sieve-test cannot show (null sender, ereject, duplicate state, :last), the bounds (a hostile
// :matches pattern, the step limit) and a fast-check property over generated valid scripts.

// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Sieve variable references are written ${name}
process.env.TZ = 'UTC';

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { LIMITS } from '../../src/core/limits.ts';
import type { Script } from '../../src/sieve/ast.ts';
import { bodyTexts, htmlToText } from '../../src/sieve/interpret/body.ts';
import { parseDateTime } from '../../src/sieve/interpret/date.ts';
import { glob, MatchBudget } from '../../src/sieve/interpret/match.ts';
import { parseAddressList, parseHeaderBlock } from '../../src/sieve/interpret/message.ts';
import { runSieve, sieveMessage } from '../../src/sieve/interpret/run.ts';
import type { SieveContext, SieveEnvelope, SieveOutcome } from '../../src/sieve/run-types.ts';
import { checkScript } from '../../src/sieve/validate.ts';
import { script as scriptArb } from './generator.ts';

const MESSAGE =
  'From: "A B" <a@remote.example>\r\nTo: me@here.example, x+tag@here.example\r\nSubject: =?UTF-8?Q?h=C3=A9llo?=\r\n' +
  ' world\r\nMessage-ID: <1@remote.example>\r\nDate: Tue, 1 Dec 2026 10:20:30 +0100\r\nX-N: 42\r\n\r\nbody text\r\n';

function compile(src: string): Script {
  const c = checkScript(src);
  assert.ok(c.ok && c.script, `${src}: ${c.errors.map((e) => e.message).join('; ')}`);
  return c.script;
}

async function run(
  src: string,
  o: { message?: string; envelope?: Partial<SieveEnvelope>; ctx?: Partial<SieveContext> } = {},
): Promise<SieveOutcome> {
  const raw = Buffer.from(o.message ?? MESSAGE);
  const end = raw.indexOf('\r\n\r\n');
  return runSieve(
    compile(src),
    sieveMessage(raw.subarray(0, end + 2), raw.length, async () => raw),
    { from: 'sender@remote.example', to: 'me@here.example', auth: null, ...o.envelope },
    {
      now: new Date('2026-12-07T03:00:00Z'),
      ownAddresses: ['me@here.example'],
      duplicateSeen: async () => false,
      mailboxExists: async () => true,
      include: async () => null,
      ...o.ctx,
    },
  );
}

/** The folders of the outcome's fileinto actions, in order. */
const folders = (o: SieveOutcome): string[] => o.actions.flatMap((a) => (a.kind === 'fileinto' ? [a.mailbox] : []));

test(':matches: captures per wildcard, leftmost-shortest stars, escapes, case folding', () => {
  const b = new MatchBudget();
  assert.deepEqual(glob('hello', '*ell*', true, b), ['hello', 'h', 'o']);
  assert.deepEqual(glob('a.b.c', '*.*', false, b), ['a.b.c', 'a', 'b.c']);
  assert.deepEqual(glob('abc', 'a?c', false, b), ['abc', 'b']);
  assert.deepEqual(glob('aba', '*a', false, b), ['aba', 'ab']);
  assert.equal(glob('abc', 'ab', false, b), null);
  assert.deepEqual(glob('a*b', 'a\\*b', false, b), ['a*b']);
  assert.equal(glob('axb', 'a\\*b', false, b), null);
  assert.deepEqual(glob('HeLLo', 'h*O', true, b), ['HeLLo', 'eLL']);
  assert.equal(glob('HeLLo', 'h*O', false, b), null);
  assert.deepEqual(glob('', '*', false, b), ['', '']);
  // RFC 4790: i;octet and i;ascii-casemap compare octets, so '?' is one octet of UTF-8.
  assert.equal(glob('é', '?', true, b), null);
  assert.notEqual(glob('é', '??', true, b), null);
});

test('a hostile :matches pattern finishes fast: at most text × pattern work, then a run-time error', async () => {
  const long = 'a'.repeat(60_000);
  const stars = `${'*a'.repeat(2000)}*b`;
  const start = performance.now();
  const o = await run(
    `require ["variables", "fileinto"]; set "v" "${'a'.repeat(4000)}"; if string :matches "\${v}" "${stars}" { fileinto "x"; }` +
      ` if header :matches "subject" "${'?*'.repeat(500)}" { fileinto "y"; }`,
  );
  assert.equal(o.error, null);
  assert.deepEqual(folders(o), []);
  const hostile = await run(`require "body"; if body :raw :matches "*${'a'.repeat(3000)}b*" { discard; }`, {
    message: `Subject: x\r\n\r\n${long}\r\n`,
  });
  assert.match(hostile.error ?? '', /match too complex/);
  assert.ok(performance.now() - start < 3000, `${performance.now() - start} ms`);
  assert.ok(LIMITS.sieve.maxMatchWork <= 50_000_000);
});

test('the step limit: a run longer than LIMITS.sieve.maxSteps is a run-time error, the message kept', async () => {
  const big = compile(`${'if true { }\n'.repeat(9_900)}`);
  const o = await run(
    'require "include"; include "a"; include "b"; include "c"; include "d"; include "e"; include "f";',
    {
      ctx: { include: async () => big },
    },
  );
  assert.match(o.error ?? '', /too many steps/);
  assert.deepEqual(o.actions, []);
  assert.deepEqual(o.implicitKeep, { flags: null });
  assert.equal(o.steps, LIMITS.sieve.maxSteps + 1);
});

test('variables: modifiers in precedence order, references, match variables, the value cap', async () => {
  const o = await run(
    `require ["variables", "fileinto"];
set :upper :lowerfirst "a" "hello";
set :length "n" "héllo";
set :quotewildcard "q" "a*?\\\\";
set "Mixed" "m";
if header :matches "from" "*<*@*>" { set "user" "\${2}"; }
fileinto "\${a}|\${n}|\${q}|\${mixed}|\${user}|\${unknown}|\${1}|\${bad-name}";
set "big" "${'x'.repeat(3000)}";
set "big" "\${big}\${big}";
if string :count "eq" :comparator "i;ascii-numeric" "\${big}" "1" { fileinto "one"; }
if string :value "eq" :comparator "i;ascii-numeric" "\${n}" "5" { fileinto "five"; }`.replace(
      'require ["variables", "fileinto"]',
      'require ["variables", "fileinto", "relational", "comparator-i;ascii-numeric"]',
    ),
  );
  assert.equal(o.error, null);
  // ${1} is still the first wildcard of the last successful :matches (RFC 5229 §3.2).
  assert.deepEqual(folders(o), ['hELLO|5|a\\*\\?\\\\|m|a||"A B" |${bad-name}', 'one', 'five']);
  const cap = await run(
    `require ["variables", "fileinto"]; set "big" "${'x'.repeat(3000)}"; set "big" "\${big}\${big}"; if string :matches "\${big}" "*" { set :length "n" "\${big}"; fileinto "\${n}"; }`,
  );
  assert.deepEqual(folders(cap), [String(LIMITS.sieve.maxVariableSize)]);
});

test('expansion is bounded: a string of many references to a long value is a run-time error', async () => {
  const start = performance.now();
  const refs = '${v}'.repeat(60_000);
  const o = await run(`require ["variables", "fileinto"]; set "v" "${'x'.repeat(4000)}"; fileinto "${refs}";`);
  assert.match(o.error ?? '', /too long after variable expansion/);
  const list = Array.from({ length: 4000 }, () => `"${'${v}'.repeat(60)}"`).join(', ');
  const many = await run(
    `require ["variables", "fileinto"]; set "v" "${'x'.repeat(4000)}"; if string :is [${list}] "x" { keep; }`,
  );
  assert.match(many.error ?? '', /work limit/);
  assert.ok(performance.now() - start < 3000, `${performance.now() - start} ms`);
});

test('too many variables is a run-time error', async () => {
  const sets = Array.from({ length: LIMITS.sieve.maxVariables + 1 }, (_, i) => `set "v${i}" "x";`).join('\n');
  const o = await run(`require "variables";\n${sets}`);
  assert.match(o.error ?? '', /too many variables/);
});

test('encoded-character only when required; header values unfolded and RFC 2047-decoded', async () => {
  const o = await run(
    'require ["encoded-character", "fileinto"]; fileinto "${hex:41 42}${unicode:e9}"; if header :is "subject" "héllo world" { fileinto "decoded"; }',
  );
  assert.deepEqual(folders(o), ['ABé', 'decoded']);
  const plain = await run('require "fileinto"; fileinto "${hex:41}";');
  assert.deepEqual(folders(plain), ['${hex:41}']);
});

test('address parts, subaddress, the null sender (RFC 5228 §5.4) and envelope auth', async () => {
  const o = await run(
    `require ["fileinto", "envelope", "subaddress", "variables"];
if address :detail :matches "to" "*" { fileinto "detail-\${1}"; }
if address :user :is "to" "x" { fileinto "user-x"; }
if envelope :is "from" "" { fileinto "null"; }
if envelope :is "auth" "alice@here.example" { fileinto "auth"; }`,
    { envelope: { from: '', auth: 'alice@here.example' } },
  );
  assert.deepEqual(folders(o), ['detail-tag', 'user-x', 'null', 'auth']);
  assert.deepEqual(parseAddressList('"A, B" <a@b.c>, (c) d@e.f, g: h@i.j;'), [
    { local: 'a', domain: 'b.c' },
    { local: 'd', domain: 'e.f' },
    { local: 'h', domain: 'i.j' },
  ]);
});

test('vacation: default period and handle, :days clamped to one day, the reply goes to the envelope sender', async () => {
  const o = await run('require "vacation"; vacation :days 0 :subject "s" "gone";', { envelope: { from: '' } });
  assert.deepEqual(o.actions, [
    {
      kind: 'vacation',
      to: '',
      seconds: LIMITS.sieve.vacationMinSeconds,
      subject: 's',
      from: null,
      reason: 'gone',
      mime: false,
      handle: 'gones<default-from><NO-MIME>',
      addresses: [],
    },
  ]);
  const d = await run('require "vacation"; vacation "x";');
  assert.equal(d.actions[0]?.kind === 'vacation' && d.actions[0].seconds, 7 * 86_400);
  assert.match((await run('require "vacation"; vacation "a"; vacation "b";')).error ?? '', /duplicate vacation/);
});

test('actions: reject and ereject conflict with delivery, discard, redirect limit and merging, :copy', async () => {
  const e = await run('require "ereject"; ereject "no";');
  assert.deepEqual(e.actions, [{ kind: 'reject', reason: 'no', ereject: true }]);
  assert.equal(e.implicitKeep, null);
  assert.match((await run('require ["reject", "fileinto"]; reject "no"; fileinto "x";')).error ?? '', /conflicts/);
  const r = await run(
    'require "copy"; redirect :copy "a@b.c"; redirect "A@B.C"; redirect "<d@e.f>"; redirect "g@h.i"; redirect "j@k.l";',
  );
  assert.deepEqual(
    r.actions.map((a) => (a.kind === 'redirect' ? a.address : a.kind)),
    ['a@b.c', 'd@e.f', 'g@h.i', 'j@k.l'],
  );
  assert.equal(r.implicitKeep, null);
  const limit = await run('redirect "a@b.c"; redirect "b@b.c"; redirect "c@b.c"; redirect "d@b.c"; redirect "e@b.c";');
  assert.match(limit.error ?? '', /redirect actions exceeds/);
  const copy = await run('require ["fileinto", "copy", "imap4flags"]; addflag "\\\\seen"; fileinto :copy "x";');
  assert.deepEqual(copy.implicitKeep, { flags: ['\\Seen'] });
  assert.deepEqual(copy.actions, [{ kind: 'fileinto', mailbox: 'x', flags: ['\\Seen'], create: false }]);
});

test('duplicate: the context decides, a track action unless seen (always with :last), no id no test', async () => {
  const seen = await run('require ["duplicate", "fileinto"]; if duplicate :handle "h" { fileinto "dup"; }', {
    ctx: { duplicateSeen: async (h, id, s) => h === 'h' && id === '<1@remote.example>' && s === 14 * 86_400 },
  });
  assert.deepEqual(folders(seen), ['dup']);
  assert.equal(seen.actions.filter((a) => a.kind === 'duplicate-track').length, 0);
  const last = await run('require "duplicate"; if duplicate :last :seconds 99999999 { discard; }', {
    ctx: { duplicateSeen: async () => true },
  });
  assert.deepEqual(last.actions, [
    { kind: 'duplicate-track', handle: '', id: '<1@remote.example>', seconds: LIMITS.sieve.duplicateMaxSeconds },
    { kind: 'discard' },
  ]);
  const none = await run('require "duplicate"; if duplicate :header "x-none" { discard; }');
  assert.deepEqual(none.actions, []);
});

test('include: missing scripts fail unless :optional, circular includes fail, globals are shared', async () => {
  assert.match((await run('require "include"; include "nope";')).error ?? '', /does not exist/);
  assert.equal((await run('require "include"; include :optional "nope";')).error, null);
  const self = compile('require "include"; include "self";');
  assert.match(
    (await run('require "include"; include "self";', { ctx: { include: async () => self } })).error ?? '',
    /circular/,
  );
  const inc = compile('require ["include", "variables", "fileinto"]; global "g"; fileinto "in-${g}"; set "g" "2";');
  const o = await run(
    'require ["include", "variables", "fileinto"]; global "g"; set "g" "1"; include :global "x"; include :once :global "x"; fileinto "out-${g}";',
    { ctx: { include: async (name, loc) => (name === 'x' && loc === 'global' ? inc : null) } },
  );
  assert.deepEqual(folders(o), ['in-1', 'out-2']);
});

test('body: the message is read once, bounded by LIMITS.sieve.maxBodyBytes; date parts', async () => {
  let reads = 0;
  const raw = Buffer.from(`Subject: x\r\n\r\n${'y'.repeat(LIMITS.sieve.maxBodyBytes)}TAIL\r\n`);
  const o = await runSieve(
    compile(
      'require ["body", "fileinto"]; if body :raw :contains "TAIL" { fileinto "tail"; } if body :contains "yyy" { fileinto "y"; }',
    ),
    sieveMessage(Buffer.from('Subject: x\r\n'), raw.length, async () => {
      reads++;
      return raw;
    }),
    { from: 'a@b.c', to: 'me@here.example', auth: null },
    {
      now: new Date(),
      ownAddresses: [],
      duplicateSeen: async () => false,
      mailboxExists: async () => true,
      include: async () => null,
    },
  );
  assert.equal(reads, 1);
  assert.deepEqual(folders(o), ['y']);
  assert.deepEqual(parseDateTime('Tue, 1 Dec 2026 10:20:30 +0100'), {
    epoch: Date.UTC(2026, 11, 1, 9, 20, 30),
    offset: 60,
  });
  assert.equal(parseDateTime('Tue, 31 Feb 2026 10:20:30 +0100'), null);
  const d = await run(
    'require ["date", "variables", "fileinto"]; if currentdate :matches "iso8601" "*" { fileinto "${0}"; } if date :matches "date" "julian" "*" { fileinto "${0}"; }',
  );
  assert.deepEqual(folders(d), ['2026-12-07T03:00:00Z', '61375']);
});

test('property: generated valid scripts never throw and stay within the step bound', async () => {
  await fc.assert(
    fc.asyncProperty(scriptArb(8), async ({ src }) => {
      const o = await run(src);
      assert.ok(o.steps <= LIMITS.sieve.maxSteps + 1);
      if (o.error === null && o.implicitKeep === null)
        assert.ok(
          o.actions.some((a) => a.kind !== 'duplicate-track'),
          `${src}: no keep and no action`,
        );
    }),
    { numRuns: 300 },
  );
});

test('property: the message parsers take any input without throwing, in linear time', () => {
  const soup = fc
    .array(
      fc.constantFrom(
        '<',
        '>',
        '"',
        '(',
        ')',
        ',',
        ';',
        ':',
        '@',
        '\\',
        ' ',
        '\r\n',
        '\r\n ',
        'a',
        '=?',
        '?=',
        '&',
        '#',
        '--',
        '*',
        '?',
      ),
      {
        maxLength: 300,
      },
    )
    .map((a) => a.join(''));
  fc.assert(
    fc.property(fc.oneof(soup, fc.string({ maxLength: 300 })), (s) => {
      parseAddressList(s);
      parseHeaderBlock(Buffer.from(s));
      parseDateTime(s);
      htmlToText(s);
      bodyTexts(Buffer.from(`Content-Type: multipart/mixed; boundary="--"\r\n\r\n${s}`), 'text', []);
      glob(s, s, true, new MatchBudget());
    }),
    { numRuns: 1000 },
  );
  const start = performance.now();
  const big = `${'('.repeat(50_000)}${'"'.repeat(50_000)}${'<!--<script'.repeat(5_000)}${'&'.repeat(50_000)}`;
  parseAddressList(big);
  htmlToText(big);
  parseHeaderBlock(Buffer.from(`X: ${'=?a?b?'.repeat(10_000)}\r\n${' x\r\n'.repeat(10_000)}`));
  assert.ok(performance.now() - start < 2000, `${performance.now() - start} ms`);
});

test('htmlToText: tags end words, comments, script and style dropped, entities decoded', () => {
  assert.equal(
    htmlToText(
      '<p>Hello <b>bold</b>\r\n x&amp;y &lt;z&gt; &#65;&#x42;&nbsp;<!-- c --><script>s</script><style>t</style>end',
    ),
    'Hello bold \r\n x&y <z> AB\u00a0 end',
  );
});
