// Generators of valid Sieve scripts for fast-check properties (test/sieve/parser.test.ts,
// test/sieve/interpret.test.ts): commands from a small grammar of valid forms.

import fc from 'fast-check';

// Generated valid scripts: commands from a small grammar of valid forms.
export const str = fc
  .string({ maxLength: 12 })
  .map((s) => JSON.stringify(s.replace(/[^\x20-\x7e]/g, 'x')).replace(/\\u[0-9a-f]{4}/g, 'x'));
export const strList = fc
  .array(str, { minLength: 1, maxLength: 3 })
  .map((a) => (a.length === 1 ? (a[0] as string) : `[${a.join(', ')}]`));
const addressHeaders = fc.constantFrom('"from"', '"To"', '["to", "cc"]', '["sender", "reply-to", "bcc"]');
const match = fc.constantFrom('', ':is ', ':contains ', ':matches ');
export const testArb: fc.Arbitrary<string> = fc.letrec<{ t: string }>((tie) => ({
  t: fc.oneof(
    { depthSize: 'small', withCrossShrink: true },
    fc.tuple(match, strList, strList).map(([m, a, b]) => `header ${m}${a} ${b}`),
    fc
      .tuple(fc.constantFrom(':localpart ', ':domain ', ':all ', ''), match, addressHeaders, strList)
      .map(([p, m, a, b]) => `address ${p}${m}${a} ${b}`),
    fc
      .tuple(fc.constantFrom(':over', ':under'), fc.nat(1000), fc.constantFrom('', 'K', 'M'))
      .map(([t, n, q]) => `size ${t} ${n}${q}`),
    strList.map((a) => `exists ${a}`),
    fc.constantFrom('true', 'false'),
    tie('t').map((t) => `not ${t}`),
    fc.array(tie('t'), { minLength: 1, maxLength: 3 }).map((a) => `allof (${a.join(', ')})`),
    fc.array(tie('t'), { minLength: 1, maxLength: 3 }).map((a) => `anyof (${a.join(', ')})`),
  ),
})).t;
export const action = fc.oneof(
  fc.constantFrom('keep;', 'discard;', 'stop;'),
  str.map((s) => `fileinto ${s};`),
);
export const command = fc
  .tuple(testArb, fc.array(action, { maxLength: 3 }), fc.option(fc.array(action, { maxLength: 2 })))
  .map(([t, a, e]) => ({
    src: `if ${t} {\n  ${a.join('\n  ')}\n}${e ? ` else { ${e.join(' ')} }` : ''}`,
    count: e ? 2 : 1,
  }));
export const plain = action.map((src) => ({ src, count: 1 }));

/** A whole script: `require "fileinto";` and up to `max` generated commands, with the number of
 *  top-level commands it has. */
export const script = (max = 6): fc.Arbitrary<{ src: string; count: number }> =>
  fc.array(fc.oneof(command, plain), { maxLength: max }).map((cmds) => ({
    src: `require "fileinto";\n${cmds.map((c) => c.src).join('\n')}\n`,
    count: cmds.reduce((n, c) => n + c.count, 1),
  }));
