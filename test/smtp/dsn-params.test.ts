// RFC 3461 §4 parameter parsing (src/smtp/dsn-params.ts), pure.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { decodeXtext, notifies, parseMailDsn, parseRcptDsn } from '../../src/smtp/dsn-params.ts';

const p = (name: string, value: string | null) => ({ name, value });

test('xtext: decoded; malformed hexchars and forbidden characters refused', () => {
  assert.equal(decodeXtext('a+2Bb+3Dc'), 'a+b=c');
  assert.equal(decodeXtext('j+C3+BCrgen'), 'jürgen');
  for (const bad of ['+', '+4', '+4g', '+2b', 'a=b', 'a b', 'é']) assert.equal(decodeXtext(bad), null, bad);
});

test('MAIL: RET and ENVID', () => {
  assert.deepEqual(parseMailDsn([p('RET', 'hdrs'), p('ENVID', 'x+2By')]), {
    ok: true,
    value: { ret: 'HDRS', envid: 'x+y' },
  });
  assert.deepEqual(parseMailDsn([p('SIZE', '10')]), { ok: true, value: { ret: null, envid: null } });
  for (const bad of [
    [p('RET', 'ALL')],
    [p('RET', null)],
    [p('RET', 'FULL'), p('RET', 'FULL')],
    [p('ENVID', 'a'.repeat(101))],
    [p('ENVID', '+00')],
  ]) {
    assert.equal(parseMailDsn(bad).ok, false, JSON.stringify(bad));
  }
});

test('RCPT: NOTIFY normalised, ORCPT decoded; malformed ones refused', () => {
  assert.deepEqual(parseRcptDsn([p('NOTIFY', 'delay,Success'), p('ORCPT', 'rfc822;A+2Bb@x')]), {
    ok: true,
    value: { notify: 'SUCCESS,DELAY', orcpt: 'rfc822;A+b@x' },
  });
  assert.deepEqual(parseRcptDsn([p('NOTIFY', 'never')]), { ok: true, value: { notify: 'NEVER', orcpt: null } });
  for (const bad of [
    [p('NOTIFY', 'NEVER,FAILURE')],
    [p('NOTIFY', 'FAILURE,,DELAY')],
    [p('NOTIFY', 'FAILURE,FAILURE')],
    [p('NOTIFY', 'NEVER'), p('NOTIFY', 'NEVER')],
    [p('ORCPT', 'no-type')],
    [p('ORCPT', 'rfc 822;a@b')],
    [p('ORCPT', `rfc822;${'a'.repeat(495)}`)],
  ]) {
    assert.equal(parseRcptDsn(bad).ok, false, JSON.stringify(bad));
  }
});

test('NOTIFY decides the notices: default FAILURE,DELAY; NEVER none', () => {
  assert.deepEqual(
    ['SUCCESS', 'FAILURE', 'DELAY'].map((k) => notifies(null, k as 'SUCCESS')),
    [false, true, true],
  );
  assert.deepEqual(
    ['SUCCESS', 'FAILURE', 'DELAY'].map((k) => notifies('NEVER', k as 'SUCCESS')),
    [false, false, false],
  );
  assert.equal(notifies('SUCCESS', 'SUCCESS'), true);
  assert.equal(notifies('SUCCESS', 'FAILURE'), false);
});
