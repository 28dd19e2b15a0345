// The ACME renewal policy (src/tls/acme-schedule.ts): pure functions of time and certificate.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import fc from 'fast-check';
import {
  certificateNames,
  checkDelay,
  nextWake,
  renewalDecision,
  renewalTime,
  retryDelay,
} from '../../src/tls/acme-schedule.ts';

const DAY = 86_400_000;
const names = ['mx.example.test', 'mta-sts.example.test'];

describe('ACME renewal schedule', () => {
  test('90-day certificate: renewed 30 days before expiry; 6-day one: 2 days before', () => {
    const t0 = Date.UTC(2026, 0, 1);
    assert.equal(renewalTime({ notBefore: t0, notAfter: t0 + 90 * DAY, names }, 30 * DAY), t0 + 60 * DAY);
    assert.equal(renewalTime({ notBefore: t0, notAfter: t0 + 6 * DAY, names }, 30 * DAY), t0 + 4 * DAY);
  });

  test('renews when there is no certificate, a name is missing, or it is due', () => {
    const t0 = Date.UTC(2026, 0, 1);
    const cert = { notBefore: t0, notAfter: t0 + 90 * DAY, names };
    assert.deepEqual(renewalDecision(t0, null, names, 30 * DAY), { renew: true, reason: 'none' });
    assert.deepEqual(renewalDecision(t0, cert, [...names, 'autoconfig.new.test'], 30 * DAY), {
      renew: true,
      reason: 'names',
    });
    assert.deepEqual(renewalDecision(t0 + DAY, cert, names, 30 * DAY), { renew: false, at: t0 + 60 * DAY });
    assert.deepEqual(renewalDecision(t0 + 60 * DAY, cert, names, 30 * DAY), { renew: true, reason: 'expiring' });
    // A name dropped (a domain deleted) needs no new certificate.
    assert.equal(renewalDecision(t0, cert, names.slice(0, 1), 30 * DAY).renew, false);
  });

  test('retry delay doubles from the initial wait, is capped, and jitters in its upper half', () => {
    assert.equal(retryDelay(1, 60_000, 12 * 3_600_000, 0), 30_000);
    assert.equal(retryDelay(1, 60_000, 12 * 3_600_000, 0.999999), 60_000);
    assert.equal(retryDelay(4, 60_000, 12 * 3_600_000, 0), 240_000);
    assert.equal(retryDelay(50, 60_000, 12 * 3_600_000, 0), 6 * 3_600_000);
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 1000 }),
        fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true }),
        (n, r) => {
          const d = retryDelay(n, 60_000, 43_200_000, r);
          const base = Math.min(43_200_000, 60_000 * 2 ** Math.min(n - 1, 30));
          assert.ok(d >= base / 2 && d <= base, `${n} ${r} ${d}`);
          if (n > 1) assert.ok(d <= retryDelay(n + 1, 60_000, 43_200_000, 1 - 1e-9) + 1);
        },
      ),
    );
  });

  test('routine checks: at most the interval, at least 90% of it; the renewal time comes first when sooner', () => {
    assert.equal(checkDelay(12 * 3_600_000, 0), 12 * 3_600_000);
    assert.equal(checkDelay(12 * 3_600_000, 0.5), 41_040_000);
    assert.equal(nextWake(1000, 5000, 60_000), 4000);
    assert.equal(nextWake(1000, 10_000_000, 60_000), 60_000);
    assert.equal(nextWake(1000, 500, 60_000), 1);
  });

  test('names: host name, extra names, mta-sts. and autoconfig. of every domain; sorted, unique, lower-case', () => {
    assert.deepEqual(
      certificateNames('MX.example.test', ['Webmail.example.test', 'mx.example.test'], ['example.test', 'Other.test']),
      [
        'autoconfig.example.test',
        'autoconfig.other.test',
        'mta-sts.example.test',
        'mta-sts.other.test',
        'mx.example.test',
        'webmail.example.test',
      ],
    );
  });
});
