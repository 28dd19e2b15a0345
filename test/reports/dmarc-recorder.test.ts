// The recorder (reports/dmarc-recorder.ts): evaluations add up in memory into rows per policy
// domain, UTC day and row identity; a flush hands them on in pieces of
// LIMITS.dmarcReports.writeChunkRows; the bound of distinct rows drops (and logs) the excess;
// close() flushes what is left; a failed write is logged, not thrown.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { LIMITS } from '../../src/core/limits.ts';
import { silentLogger } from '../../src/core/log.ts';
import type { DmarcReportFacts } from '../../src/hygiene/authenticate.ts';
import type { DmarcRow } from '../../src/reports/dmarc-aggregate.ts';
import { DmarcRecorder } from '../../src/reports/dmarc-recorder.ts';

const facts: DmarcReportFacts = {
  policyDomain: 'a.test',
  record: 'v=DMARC1; p=none; rua=mailto:r@a.test',
  headerFrom: 'a.test',
  envelopeFrom: 'a.test',
  dkimAligned: false,
  spfAligned: true,
  policy: 'none',
  dkim: [],
  spf: { domain: 'a.test', scope: 'mfrom', result: 'pass' },
};

test('counts add up per row and day; flushes in pieces; the bound drops; close flushes', async () => {
  const writes: DmarcRow[][] = [];
  const warnings: unknown[] = [];
  const log = silentLogger();
  log.warn = ((o: unknown) => warnings.push(o)) as typeof log.warn;
  let now = Date.parse('2026-12-06T23:59:59Z');
  const rec = new DmarcRecorder({
    write: (rows) => {
      writes.push([...rows]);
    },
    flushMs: 60_000,
    maxPendingRows: LIMITS.dmarcReports.writeChunkRows * 2 + 10,
    maxDkimPerRow: 8,
    log,
    now: () => now,
  });
  rec.record(facts, '192.0.2.1', 'none', false);
  rec.record(facts, '192.0.2.1', 'none', false);
  rec.record(facts, '192.0.2.1', 'quarantine', false);
  now += 1000; // the next UTC day
  rec.record(facts, '192.0.2.1', 'none', false);
  await rec.flush();
  assert.equal(writes.length, 1);
  assert.deepEqual(
    writes[0]?.map((r) => [r.day, r.disposition, r.count, r.spf, r.dkim]),
    [
      ['2026-12-06', 'none', 2, 'pass', 'fail'],
      ['2026-12-06', 'quarantine', 1, 'pass', 'fail'],
      ['2026-12-07', 'none', 1, 'pass', 'fail'],
    ],
  );
  writes.length = 0;
  const distinct = LIMITS.dmarcReports.writeChunkRows * 2 + 20;
  for (let i = 0; i < distinct; i++) rec.record(facts, `10.0.${i >> 8}.${i & 255}`, 'none', false);
  await rec.close();
  assert.deepEqual(
    writes.map((w) => w.length),
    [LIMITS.dmarcReports.writeChunkRows, LIMITS.dmarcReports.writeChunkRows, 10],
  );
  assert.deepEqual(warnings, [{ dropped: 10 }]);
  // A failing store: logged, the recorder goes on.
  const failing = new DmarcRecorder({
    write: () => {
      throw new Error('disk full');
    },
    flushMs: 60_000,
    maxPendingRows: 10,
    maxDkimPerRow: 8,
    log,
  });
  failing.record(facts, '192.0.2.1', 'none', false);
  await failing.close();
  assert.match(JSON.stringify(warnings.at(-1)), /disk full/);
});
