// The SASL exchange of SMTP AUTH and ManageSieve AUTHENTICATE as a pure state machine
// (src/auth/sasl-exchange.ts): RFC 4954 §4 initial
// responses ("=" for an empty one), "*" to cancel, PLAIN (RFC 4616) and LOGIN steps.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { SaslExchange } from '../../src/auth/sasl-exchange.ts';

const b64 = (s: string) => Buffer.from(s).toString('base64');

test('PLAIN with and without an initial response', () => {
  assert.deepEqual(new SaslExchange('PLAIN').start(b64('\0alice@example.test\0secret')), {
    kind: 'credentials',
    username: 'alice@example.test',
    password: 'secret',
  });
  const x = new SaslExchange('PLAIN');
  assert.deepEqual(x.start(null), { kind: 'challenge', text: '' });
  assert.deepEqual(x.step(b64('\0bob\0pw')), { kind: 'credentials', username: 'bob', password: 'pw' });
  // "=" is an empty initial response: PLAIN cannot decode nothing.
  assert.equal(new SaslExchange('PLAIN').start('=').kind, 'refuse');
});

test('LOGIN asks for the user name, then the password', () => {
  const x = new SaslExchange('LOGIN');
  assert.deepEqual(x.start(null), { kind: 'challenge', text: b64('Username:') });
  assert.deepEqual(x.step(b64('carol')), { kind: 'challenge', text: b64('Password:') });
  assert.deepEqual(x.step(b64('pw 3')), { kind: 'credentials', username: 'carol', password: 'pw 3' });
  const y = new SaslExchange('LOGIN');
  assert.deepEqual(y.start(b64('dave')), { kind: 'challenge', text: b64('Password:') });
});

test('"*" cancels; what is not base64 is refused', () => {
  assert.deepEqual(new SaslExchange('LOGIN').start('*'), { kind: 'refuse', reason: 'canceled' });
  for (const bad of ['not base64!', 'AAA=A', '====']) {
    assert.equal(new SaslExchange('PLAIN').start(bad).kind, 'refuse', bad);
  }
});
