// The TLS reporting store (reports/tlsrpt-store.ts) on SQLite and on PostgreSQL: the same cases
// against both. Counters add up across handles (two nodes flushing); a day is claimed once,
// whoever asks (a restart, another node, two at once); old days are pruned.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import type { TlsCount } from '../../src/reports/tlsrpt-format.ts';
import { PostgresTlsReportStore, SqliteTlsReportStore, type TlsReportStore } from '../../src/reports/tlsrpt-store.ts';
import { freshDatabaseForFile } from '../harness/postgres.ts';

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const sts = {
  type: 'sts' as const,
  lines: ['version: STSv1', 'mode: enforce', 'mx: mx.a.test', 'max_age: 86400'],
  mx: ['mx.a.test'],
};
const none = { type: 'no-policy-found' as const, lines: [], mx: [] };

function count(over: Partial<TlsCount>): TlsCount {
  return {
    day: '2026-12-06',
    domain: 'a.test',
    policy: sts,
    result: 'success',
    sendingIp: '',
    mxHostname: '',
    receivingIp: '',
    reasonCode: '',
    count: 1,
    ...over,
  };
}

function contract(name: string, open: () => Promise<{ a: TlsReportStore; b: TlsReportStore }>) {
  describe(`${name}: TlsReportStore contract`, () => {
    test('counters add up across handles; a day reads back as stored', async () => {
      const { a, b } = await open();
      const fail = count({
        result: 'certificate-expired',
        sendingIp: '127.0.0.1',
        mxHostname: 'mx.a.test',
        receivingIp: '127.0.0.2',
        reasonCode: 'CERT_HAS_EXPIRED',
        count: 2,
      });
      await a.add([count({ count: 3 }), fail, count({ domain: 'b.test', policy: none, day: '2026-12-05' })]);
      await b.add([count({ count: 4 }), fail]);
      const day = await a.countsFor('2026-12-06');
      assert.equal(day.length, 2);
      assert.deepEqual(
        day.find((c) => c.result === 'success'),
        count({ count: 7 }),
      );
      assert.deepEqual(
        day.find((c) => c.result !== 'success'),
        { ...fail, count: 4 },
      );
      assert.deepEqual(await b.countsFor('2026-12-05'), [count({ domain: 'b.test', policy: none, day: '2026-12-05' })]);
      await b.prune('2026-12-06');
      assert.deepEqual(await a.countsFor('2026-12-05'), []);
      assert.equal((await a.countsFor('2026-12-06')).length, 2);
    });

    test('a day is claimed once, by whichever handle asks first; the mark only moves on', async () => {
      const { a, b } = await open();
      assert.equal(await a.reportedThrough(), null);
      const both = await Promise.all([a.claim('2026-12-06'), b.claim('2026-12-06')]);
      assert.deepEqual(both.sort(), [false, true]);
      assert.equal(await b.reportedThrough(), '2026-12-06');
      assert.equal(await b.claim('2026-12-05'), false, 'never back');
      assert.equal(await b.claim('2026-12-07'), true);
      assert.equal(await a.reportedThrough(), '2026-12-07');
    });
  });
}

contract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-tlsrpt-'));
  dirs.push(dir);
  const file = join(dir, 'tls-reports.db');
  return { a: new SqliteTlsReportStore(file), b: new SqliteTlsReportStore(file) };
});

contract('postgres', async () => {
  const t = await freshDatabaseForFile();
  return { a: await PostgresTlsReportStore.open(await t.open()), b: await PostgresTlsReportStore.open(await t.open()) };
});
