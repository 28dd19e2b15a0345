// The command parser (src/smtp/wire/command.ts): RFC 5321 §4.1.1 verbs, §4.1.2 paths and
// ESMTP parameters, RFC 6531 UTF-8 addresses; linear time on any line.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { parseCommand } from '../../src/smtp/wire/command.ts';

test('verbs, case-insensitive, and their arguments', () => {
  assert.deepEqual(parseCommand('ehlo client.example'), { verb: 'EHLO', domain: 'client.example' });
  assert.deepEqual(parseCommand('HELO [127.0.0.1]'), { verb: 'HELO', domain: '[127.0.0.1]' });
  assert.equal(parseCommand('EHLO').verb, 'SYNTAX');
  assert.equal(parseCommand('EHLO a\0b').verb, 'SYNTAX');
  assert.deepEqual(parseCommand('DATA'), { verb: 'DATA' });
  assert.equal(parseCommand('DATA now').verb, 'SYNTAX');
  assert.deepEqual(parseCommand('NOOP whatever'), { verb: 'NOOP' });
  assert.deepEqual(parseCommand('VRFY bob'), { verb: 'VRFY', arg: 'bob' });
  assert.equal(parseCommand('VRFY').verb, 'SYNTAX');
  assert.deepEqual(parseCommand('AUTH plain AGEAYg=='), { verb: 'AUTH', mechanism: 'PLAIN', initial: 'AGEAYg==' });
  assert.deepEqual(parseCommand('AUTH LOGIN'), { verb: 'AUTH', mechanism: 'LOGIN', initial: null });
  assert.deepEqual(parseCommand('BDAT 10 LAST'), { verb: 'UNKNOWN', name: 'BDAT' });
  // RFC 5321 §3.5.2, §7.3: EXPN is optional and we do not offer it: 502, not 500.
  assert.deepEqual(parseCommand('expn staff'), { verb: 'NOT-IMPLEMENTED', name: 'EXPN' });
  assert.deepEqual(parseCommand(''), { verb: 'UNKNOWN', name: '' });
});

test('MAIL/RCPT paths (RFC 5321 §4.1.2)', () => {
  const mail = (l: string) => parseCommand(l) as { verb: string; address?: string; params?: unknown };
  assert.deepEqual(mail('MAIL FROM:<a@b.example>'), { verb: 'MAIL', address: 'a@b.example', params: [] });
  assert.deepEqual(mail('mail from:<>'), { verb: 'MAIL', address: '', params: [] });
  assert.equal(mail('MAIL FROM: <a@b.example>').address, 'a@b.example'); // a space, tolerated
  assert.equal(mail('MAIL FROM:a@b.example').address, 'a@b.example'); // no brackets, tolerated
  // Source routes are accepted and ignored (§4.1.2, Appendix C).
  assert.equal(mail('RCPT TO:<@relay.example,@other.example:bob@b.example>').address, 'bob@b.example');
  assert.equal(mail('RCPT TO:<"odd @ local"@b.example>').address, '"odd @ local"@b.example');
  assert.equal(mail('RCPT TO:<Postmaster>').address, 'Postmaster'); // §4.1.1.3
  assert.equal(mail('RCPT TO:<jürgen@bücher.example>').address, 'jürgen@bücher.example'); // RFC 6531
  for (const bad of [
    'MAIL FROM:<broken',
    'MAIL FROM:<',
    'MAIL FROM:<>>',
    'MAIL TO:<a@b.example>',
    'MAIL FROM:<a b@c.example>',
    'MAIL FROM:<a\0b@c.example>',
    'MAIL FROM:<@a,@b>',
    'MAIL FROM:<a@>',
    'MAIL FROM:<@b.example>',
    'RCPT TO:<nobody>',
    'RCPT TO:<"unterminated@b.example>',
  ]) {
    assert.equal(mail(bad).verb, 'SYNTAX', bad);
  }
});

test('ESMTP parameters: SIZE, BODY, SMTPUTF8 and unknown ones are parsed; bad ones are syntax errors', () => {
  assert.deepEqual(parseCommand('MAIL FROM:<a@b.example> SIZE=100 body=8bitmime SMTPUTF8'), {
    verb: 'MAIL',
    address: 'a@b.example',
    params: [
      { name: 'SIZE', value: '100' },
      { name: 'BODY', value: '8bitmime' },
      { name: 'SMTPUTF8', value: null },
    ],
  });
  assert.deepEqual((parseCommand('RCPT TO:<a@b.example> NOTIFY=NEVER') as { params: unknown }).params, [
    { name: 'NOTIFY', value: 'NEVER' },
  ]);
  for (const bad of [
    'MAIL FROM:<a@b.example>SIZE=1',
    'MAIL FROM:<a@b.example> SIZE=',
    'MAIL FROM:<a@b.example> =1',
    'MAIL FROM:<a@b.example> S_Z=1',
    'MAIL FROM:<a@b.example> A=b=c',
  ]) {
    assert.equal(parseCommand(bad).verb, 'SYNTAX', bad);
  }
});

test('any line is parsed in linear time without throwing', () => {
  fc.assert(
    fc.property(
      fc.constantFrom('MAIL FROM:', 'RCPT TO:', 'EHLO ', 'AUTH ', 'VRFY ', ''),
      fc.array(fc.constantFrom('<', '>', '@', ',', ':', '"', '\\', ' ', '=', 'a', 'é', '\0', '.'), { maxLength: 60 }),
      (verb, parts) => {
        const c = parseCommand(verb + parts.join(''));
        assert.equal(typeof c.verb, 'string');
      },
    ),
    { numRuns: 5000 },
  );
  for (const line of [
    `MAIL FROM:<${'@a,'.repeat(1300)}>`,
    `RCPT TO:<"${'\\\\'.repeat(1900)}"@example.test>`,
    `MAIL FROM:<a@b.example> ${'SIZE=1 '.repeat(550)}`,
  ]) {
    const started = performance.now();
    parseCommand(line);
    assert.ok(performance.now() - started < 50, line.slice(0, 30));
  }
});
