// The inbound decision table: authentication results x operator actions -> verdict.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AuthSummary } from '../../src/hygiene/authenticate.ts';
import { type Actions, decide } from '../../src/hygiene/decide.ts';

const DEFAULTS: Actions = { dmarc_reject: 'reject', dmarc_quarantine: 'junk', spf_fail: 'junk' };

function auth(over: Partial<AuthSummary> = {}): AuthSummary {
  return { spf: 'none', dkim: [], dmarc: null, arc: { result: 'none', cv: 'none' }, headers: '', ...over };
}
const dmarc = (result: 'pass' | 'fail' | 'temperror', policy: 'none' | 'quarantine' | 'reject') => ({
  result,
  policy,
  domain: 'sender.test',
});

describe('decide', () => {
  const cases: [string, AuthSummary, Actions, string, string?][] = [
    ['DMARC pass', auth({ spf: 'pass', dmarc: dmarc('pass', 'reject') }), DEFAULTS, 'accept'],
    ['DMARC fail, p=reject', auth({ spf: 'fail', dmarc: dmarc('fail', 'reject') }), DEFAULTS, 'reject', '550 5.7.1'],
    ['DMARC fail, p=quarantine', auth({ spf: 'fail', dmarc: dmarc('fail', 'quarantine') }), DEFAULTS, 'junk'],
    ['DMARC fail, p=none', auth({ spf: 'fail', dmarc: dmarc('fail', 'none') }), DEFAULTS, 'accept'],
    [
      'DMARC fail p=reject, operator files it as junk',
      auth({ dmarc: dmarc('fail', 'reject') }),
      { ...DEFAULTS, dmarc_reject: 'junk' },
      'junk',
    ],
    [
      'DMARC fail p=reject with an SPF temperror: deferred, never refused for good',
      auth({ spf: 'temperror', dmarc: dmarc('fail', 'reject') }),
      DEFAULTS,
      'defer',
      '451 4.7.5',
    ],
    [
      'DMARC fail p=quarantine with a DKIM temperror: deferred',
      auth({ spf: 'fail', dkim: [{ domain: 'sender.test', result: 'temperror' }], dmarc: dmarc('fail', 'quarantine') }),
      DEFAULTS,
      'defer',
    ],
    [
      'DMARC fail p=none with a temperror: delivered (nothing to enforce)',
      auth({ spf: 'temperror', dmarc: dmarc('fail', 'none') }),
      DEFAULTS,
      'accept',
    ],
    [
      'DMARC policy unknown (temperror), unauthenticated: deferred',
      auth({ dmarc: dmarc('temperror', 'none') }),
      DEFAULTS,
      'defer',
    ],
    [
      'DMARC policy unknown, but DKIM passes: delivered',
      auth({ dkim: [{ domain: 'x.test', result: 'pass' }], dmarc: dmarc('temperror', 'none') }),
      DEFAULTS,
      'accept',
    ],
    ['no DMARC, SPF fail: junk by default', auth({ spf: 'fail' }), DEFAULTS, 'junk'],
    [
      'no DMARC, SPF fail, operator rejects',
      auth({ spf: 'fail' }),
      { ...DEFAULTS, spf_fail: 'reject' },
      'reject',
      '550 5.7.23',
    ],
    ['no DMARC, SPF fail, operator accepts', auth({ spf: 'fail' }), { ...DEFAULTS, spf_fail: 'accept' }, 'accept'],
    ['no DMARC, SPF softfail', auth({ spf: 'softfail' }), DEFAULTS, 'accept'],
    ['no DMARC, SPF neutral', auth({ spf: 'neutral' }), DEFAULTS, 'accept'],
    ['no DMARC, SPF none', auth({ spf: 'none' }), DEFAULTS, 'accept'],
    ['no DMARC, SPF temperror', auth({ spf: 'temperror' }), DEFAULTS, 'accept'],
    ['no DMARC, SPF permerror', auth({ spf: 'permerror' }), DEFAULTS, 'accept'],
  ];
  for (const [name, a, actions, kind, code] of cases) {
    test(name, () => {
      const v = decide(a, actions);
      assert.equal(v.kind, kind, v.reason);
      if (code) {
        assert.ok(v.kind === 'reject' || v.kind === 'defer');
        assert.equal(`${v.code} ${v.enhanced}`, code);
      }
    });
  }
});
