// The ManageSieve wire (src/managesieve/wire.ts): tricky inputs as a table, the same commands
// under any chunking, and arbitrary bytes never throwing nor holding more than the bounds.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { CommandFramer, type FrameEvent, type FramerLimits, response, wireString } from '../../src/managesieve/wire.ts';

const LIMITS: FramerLimits = { maxLineBytes: 200, maxTokens: 5, literalLimit: () => 1000, literalSlack: 100 };

function frame(input: Buffer | string, chunks?: number[], limits = LIMITS): FrameEvent[] {
  const f = new CommandFramer(limits);
  const bytes = typeof input === 'string' ? Buffer.from(input, 'utf8') : input;
  const events: FrameEvent[] = [];
  let at = 0;
  for (const size of [...(chunks ?? []), bytes.length]) {
    f.push(bytes.subarray(at, Math.min(bytes.length, at + size)));
    at = Math.min(bytes.length, at + size);
    for (let e = f.next(); e; e = f.next()) events.push(e);
  }
  return events;
}

/** Commands as plain data: atoms as 'A:x', numbers as 'N:1', strings as their text. */
function show(events: FrameEvent[]): unknown[] {
  return events.map((e) =>
    e.kind === 'error'
      ? `ERR${e.fatal ? '!' : ''}:${e.text}`
      : e.tokens.map((t) =>
          t.kind === 'atom' ? `A:${t.value}` : t.kind === 'number' ? `N:${t.value}` : t.value.toString(),
        ),
  );
}

test('commands, quoted strings with escapes, numbers, literals of both kinds', () => {
  assert.deepEqual(show(frame('CAPABILITY\r\n')), [['A:CAPABILITY']]);
  assert.deepEqual(show(frame('havespace "a \\"b\\" \\\\c" 1234\r\n')), [['A:havespace', 'a "b" \\c', 'N:1234']]);
  assert.deepEqual(show(frame('PUTSCRIPT "x" {7+}\r\nkeep;\r\n\r\n')), [['A:PUTSCRIPT', 'x', 'keep;\r\n']]);
  assert.deepEqual(show(frame('PUTSCRIPT {1}\r\ny {2+}\r\nab\r\n')), [['A:PUTSCRIPT', 'y', 'ab']]);
  // A literal holding CRLF, braces and quotes stays as sent.
  assert.deepEqual(show(frame('CHECKSCRIPT {9+}\r\n{3+}\r\n"\\\r\n')), [['A:CHECKSCRIPT', '{3+}\r\n"\\\r']]);
  // Bare LF ends a line; empty lines are ignored; pipelined commands come one by one.
  assert.deepEqual(show(frame('\r\nNOOP\nLOGOUT\r\n')), [['A:NOOP'], ['A:LOGOUT']]);
  // Non-ASCII inside quotes.
  assert.deepEqual(show(frame('SETACTIVE "Ürlaub ☃"\r\n')), [['A:SETACTIVE', 'Ürlaub ☃']]);
});

test('syntax errors are not fatal unless a literal may follow', () => {
  assert.deepEqual(show(frame('NOOP "unterminated\r\nNOOP\r\n')), ['ERR:Unterminated quoted string', ['A:NOOP']]);
  assert.deepEqual(show(frame('NOOP "\\n"\r\n')), ['ERR:Invalid escape in a quoted string']);
  assert.deepEqual(show(frame('NO*OP\r\n')), ['ERR:Invalid characters in a command']);
  assert.deepEqual(show(frame('A B C D E F\r\n')), ['ERR:Too many arguments']);
  assert.deepEqual(show(frame('A B C D E {5+}\r\nhello\r\n')), ['ERR!:Too many arguments']);
  assert.deepEqual(show(frame('PUTSCRIPT {x+}\r\n')), ['ERR!:Invalid literal']);
  assert.deepEqual(show(frame('PUTSCRIPT {3+} x\r\n')), ['ERR:Invalid literal']);
});

test('bounds: an overlong line and an oversized literal are fatal before their bytes', () => {
  const long = frame(`NOOP "${'a'.repeat(300)}`);
  assert.deepEqual(show(long), ['ERR!:Line too long']);
  const events = frame('PUTSCRIPT "x" {1001+}\r\n');
  assert.equal(events.length, 1);
  assert.deepEqual(events[0], {
    kind: 'error',
    text: 'Literal too large (over 1000 octets)',
    fatal: true,
    code: 'QUOTA/MAXSIZE',
  });
  // All literals of a command together: limit + slack.
  assert.deepEqual(
    show(frame(`X {1000+}\r\n${'a'.repeat(1000)} {101+}\r\n`))[0],
    'ERR!:Literal too large (over 1000 octets)',
  );
  // Nothing after a fatal error is parsed.
  assert.deepEqual(show(frame(`${'a'.repeat(300)}\r\nNOOP\r\n`)), ['ERR!:Line too long']);
});

test('discard forgets what arrived before STARTTLS completed', () => {
  const f = new CommandFramer(LIMITS);
  f.push(Buffer.from('STARTTLS\r\nAUTHENTICATE "PLAIN" "injected"\r\n'));
  assert.equal(f.next()?.kind, 'command');
  f.discard();
  assert.equal(f.next(), null);
  assert.equal(f.busy, false);
});

test('responses: quoted when possible, a literal otherwise', () => {
  assert.equal(wireString('a "b" \\'), '"a \\"b\\" \\\\"');
  assert.deepEqual(wireString('x\r\ny'), [Buffer.from('{4}\r\n'), Buffer.from('x\r\ny')]);
  assert.equal(response('NO', 'QUOTA/MAXSIZE', 'Too big').toString(), 'NO (QUOTA/MAXSIZE) "Too big"\r\n');
  assert.equal(response('OK', null, '').toString(), 'OK\r\n');
  assert.equal(response('NO', null, 'line 1: a\r\nline 2: b').toString(), 'NO {20}\r\nline 1: a\r\nline 2: b\r\n');
});

test('property: any chunking gives the same events', () => {
  const token = fc.oneof(
    fc.stringMatching(/^[A-Za-z]{1,8}$/),
    fc.nat(99999).map(String),
    fc.string({ maxLength: 20 }).map((s) => `"${s.replace(/[\\"\r\n]/g, '').replaceAll('\0', '')}"`),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.concat([Buffer.from(`{${b.length}+}\r\n`), Buffer.from(b)])),
  );
  const command = fc
    .tuple(fc.stringMatching(/^[A-Z]{1,10}$/), fc.array(token, { maxLength: 4 }))
    .map(([name, args]) =>
      Buffer.concat([
        Buffer.from(name),
        ...args.flatMap((a) => [Buffer.from(' '), Buffer.from(a)]),
        Buffer.from('\r\n'),
      ]),
    );
  fc.assert(
    fc.property(
      fc.array(command, { minLength: 1, maxLength: 5 }),
      fc.array(fc.integer({ min: 1, max: 17 })),
      (cmds, chunks) => {
        const input = Buffer.concat(cmds);
        const whole = frame(input);
        assert.deepEqual(frame(input, chunks), whole);
        assert.equal(whole.filter((e) => e.kind === 'command').length, cmds.length);
      },
    ),
    { numRuns: 300 },
  );
});

test('property: arbitrary bytes never throw, events stay bounded, fatal is final', () => {
  fc.assert(
    fc.property(fc.uint8Array({ maxLength: 2000 }), fc.array(fc.integer({ min: 1, max: 64 })), (bytes, chunks) => {
      const events = frame(Buffer.from(bytes), chunks);
      const fatal = events.findIndex((e) => e.kind === 'error' && e.fatal);
      assert.ok(fatal === -1 || fatal === events.length - 1);
      for (const e of events) {
        if (e.kind === 'command') {
          assert.ok(e.tokens.length <= LIMITS.maxTokens);
          const literal = e.tokens.reduce((n, t) => n + (t.kind === 'string' && t.literal ? t.value.length : 0), 0);
          assert.ok(literal <= 1100);
        }
      }
    }),
    { numRuns: 500 },
  );
});
