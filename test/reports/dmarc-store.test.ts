// The DMARC report store (reports/dmarc-store.ts) on SQLite and on PostgreSQL: the same cases
// against both. Rows add up across batches and handles, a report lists them largest first with
// the day's last record, a sent domain is forgotten, the "reported up to" mark never moves back
// and takes the reported days' rows (and those too old to keep) with it. Then two nodes on one
// PostgreSQL: rows of both add up, and a round of either sends each day's report once.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { silentLogger } from '../../src/core/log.ts';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { bufferReader } from '../../src/mime/reader.ts';
import type { DmarcRow } from '../../src/reports/dmarc-aggregate.ts';
import { reportsInMessage } from '../../src/reports/dmarc-parse.ts';
import { sendDmarcReports } from '../../src/reports/dmarc-send.ts';
import {
  type DmarcReportStore,
  PostgresDmarcReportStore,
  SqliteDmarcReportStore,
} from '../../src/reports/dmarc-store.ts';
import { startTestDns } from '../harness/dns.ts';
import { freshDatabaseForFile } from '../harness/postgres.ts';

const dirs: string[] = [];
const opened: DmarcReportStore[] = [];
after(async () => {
  for (const s of opened) await s.close();
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

const row = (over: Partial<DmarcRow> = {}): DmarcRow => ({
  policyDomain: 'a.test',
  day: '2026-12-01',
  record: 'v=DMARC1; p=none; rua=mailto:r@a.test',
  sourceIp: '192.0.2.1',
  disposition: 'none',
  dkim: 'pass',
  spf: 'fail',
  override: null,
  headerFrom: 'a.test',
  envelopeFrom: 'bounce.a.test',
  dkimResults: [{ domain: 'a.test', selector: 's1', result: 'pass' }],
  spfResult: { domain: 'bounce.a.test', scope: 'mfrom', result: 'softfail' },
  aboutReports: false,
  count: 1,
  ...over,
});

function contract(
  name: string,
  open: () => Promise<{ store: DmarcReportStore; other: () => Promise<DmarcReportStore> }>,
) {
  describe(`${name}: DmarcReportStore contract`, () => {
    test('rows add up, a report lists them, a sent domain goes, the mark never moves back', async () => {
      const { store, other } = await open();
      assert.deepEqual(await store.domains('2026-12-01'), []);
      assert.equal(await store.report('a.test', '2026-12-01'), null);
      assert.equal(await store.reportedUpTo(), null);
      await store.add([
        row(),
        row({ count: 2 }),
        row({ sourceIp: '192.0.2.2', disposition: 'reject', dkim: 'fail' }),
        row({ sourceIp: '192.0.2.3', disposition: 'quarantine', dkim: 'fail', override: 'local_policy' }),
      ]);
      const second = await other();
      await second.add([
        row({ record: 'v=DMARC1; p=reject; rua=mailto:r@a.test', count: 4 }),
        row({ policyDomain: 'b.test', headerFrom: 'b.test' }),
        row({ day: '2026-12-02' }),
      ]);
      assert.deepEqual(await store.domains('2026-12-01'), ['a.test', 'b.test']);
      const r = await store.report('a.test', '2026-12-01');
      assert.ok(r);
      assert.equal(r.record, 'v=DMARC1; p=reject; rua=mailto:r@a.test', 'the day keeps its last record');
      assert.deepEqual(
        r.rows.map((x) => [x.sourceIp, x.disposition, x.override, x.count]),
        [
          ['192.0.2.1', 'none', null, 7],
          ['192.0.2.2', 'reject', null, 1],
          ['192.0.2.3', 'quarantine', 'local_policy', 1],
        ],
      );
      assert.deepEqual(r.rows[0]?.dkimResults, [{ domain: 'a.test', selector: 's1', result: 'pass' }]);
      assert.deepEqual(r.rows[0]?.spfResult, { domain: 'bounce.a.test', scope: 'mfrom', result: 'softfail' });
      await second.remove('a.test', '2026-12-01');
      assert.deepEqual(await store.domains('2026-12-01'), ['b.test']);
      await store.markReported('2026-12-01', '2026-11-24');
      assert.equal(await second.reportedUpTo(), '2026-12-01');
      assert.deepEqual(await store.domains('2026-12-01'), [], 'a reported day keeps no rows');
      assert.deepEqual(await store.domains('2026-12-02'), ['a.test']);
      // A node late in a takeover marks an older day: the mark stays.
      await second.markReported('2026-11-30', '2026-11-23');
      assert.equal(await store.reportedUpTo(), '2026-12-01');
      // Rows of days before keepFrom go.
      await store.add([row({ day: '2026-11-10' })]);
      await store.markReported('2026-12-01', '2026-11-24');
      assert.deepEqual(await store.domains('2026-11-10'), []);
    });
  });
}

contract('sqlite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-dmarcrep-'));
  dirs.push(dir);
  const file = join(dir, 'dmarc-reports.db');
  const store = new SqliteDmarcReportStore(file);
  opened.push(store);
  return {
    store,
    other: async () => {
      const s = new SqliteDmarcReportStore(file);
      opened.push(s);
      return s;
    },
  };
});

contract('postgres', async () => {
  const t = await freshDatabaseForFile();
  return {
    store: await PostgresDmarcReportStore.open(await t.open()),
    other: async () => PostgresDmarcReportStore.open(await t.open()),
  };
});

test('two nodes on one PostgreSQL: both record, one round sends each report once, a later round on the other node nothing', async () => {
  const t = await freshDatabaseForFile();
  const dns = await startTestDns([{ type: 'TXT', name: 'a.test._report._dmarc.elsewhere.test', text: 'v=DMARC1' }]);
  try {
    const nodes = [
      await PostgresDmarcReportStore.open(await t.open()),
      await PostgresDmarcReportStore.open(await t.open()),
    ];
    const now = Date.parse('2026-12-02T03:00:00Z');
    const record = 'v=DMARC1; p=none; rua=mailto:r@elsewhere.test,mailto:r@nowhere.test';
    await nodes[0]?.add([row({ record, count: 2 })]);
    await nodes[1]?.add([row({ record, count: 3 }), row({ record, sourceIp: '192.0.2.9' })]);
    const sent: { to: string; message: Buffer }[] = [];
    const round = (store: DmarcReportStore) =>
      sendDmarcReports({
        store,
        resolver: createPromiseResolver([dns.address]),
        notice: async (to, message) => {
          sent.push({ to, message });
        },
        sign: null,
        hostname: 'mx.test',
        orgName: 'Test',
        email: 'dmarc@mx.test',
        log: silentLogger(),
        now: () => now,
      });
    const first = await round(nodes[0] as DmarcReportStore);
    assert.deepEqual(
      first.map((r) => [r.domain, r.day, r.to, r.skipped.map((s) => s.to)]),
      [['a.test', '2026-12-01', ['r@elsewhere.test'], ['r@nowhere.test']]],
    );
    assert.equal(sent.length, 1);
    const { reports } = await reportsInMessage(bufferReader(sent[0]?.message as Buffer), sent[0]?.message.length ?? 0);
    assert.deepEqual(
      reports[0]?.records.map((r) => [r.sourceIp, r.count]),
      [
        ['192.0.2.1', 5],
        ['192.0.2.9', 1],
      ],
    );
    assert.deepEqual(await round(nodes[1] as DmarcReportStore), []);
    assert.equal(sent.length, 1, 'sent once');
    assert.equal(await nodes[1]?.reportedUpTo(), '2026-12-01');
  } finally {
    await dns.close();
  }
});
