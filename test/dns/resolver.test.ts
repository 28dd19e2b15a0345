// The answer cache in front of mailauth's lookups.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { cachingResolve } from '../../src/dns/resolver.ts';

test('answers and NXDOMAIN are cached for the TTL, failures are not, concurrent asks share one query', async () => {
  let now = 0;
  const calls: string[] = [];
  const answers: Record<string, () => Promise<unknown>> = {
    'ok.test': async () => [['v=spf1 -all']],
    'nx.test': async () => Promise.reject(Object.assign(new Error('nx'), { code: 'ENOTFOUND' })),
    'fail.test': async () => Promise.reject(Object.assign(new Error('servfail'), { code: 'ESERVFAIL' })),
  };
  const resolve = cachingResolve(
    (name, rrtype) => {
      calls.push(`${rrtype} ${name}`);
      return (answers[name] ?? answers['nx.test']!)();
    },
    { ttlMs: 1000, now: () => now },
  );
  const [a, b] = await Promise.all([resolve('ok.test', 'TXT'), resolve('OK.test', 'TXT')]);
  assert.deepEqual(a, [['v=spf1 -all']]);
  assert.equal(a, b);
  await resolve('ok.test', 'TXT');
  assert.equal(calls.length, 1, 'one query for three asks');
  await assert.rejects(resolve('nx.test', 'TXT'), { code: 'ENOTFOUND' });
  await assert.rejects(resolve('nx.test', 'TXT'), { code: 'ENOTFOUND' });
  assert.equal(calls.filter((c) => c === 'TXT nx.test').length, 1, 'NXDOMAIN cached');
  await assert.rejects(resolve('fail.test', 'TXT'), { code: 'ESERVFAIL' });
  await assert.rejects(resolve('fail.test', 'TXT'), { code: 'ESERVFAIL' });
  assert.equal(calls.filter((c) => c === 'TXT fail.test').length, 2, 'failures are asked again');
  await resolve('ok.test', 'MX').catch(() => {});
  assert.equal(calls.filter((c) => c === 'MX ok.test').length, 1, 'per record type');
  now = 1001;
  await resolve('ok.test', 'TXT');
  assert.equal(calls.filter((c) => c === 'TXT ok.test').length, 2, 'expired after the TTL');
});
