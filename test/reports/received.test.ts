// Received reports are parsed off the event loop (reports/received.ts, parse-worker.ts): a large
// DMARC aggregate report (10,000 records, 37 KiB gzipped, some MiB of XML) delivered to a
// mailbox is read back whole while the server's event loop never waits more than a few tens of
// milliseconds, where parsing it on the main thread stalls it for the whole parse.

import assert from 'node:assert/strict';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { after, before, test } from 'node:test';
import { gzipSync } from 'node:zlib';
import type { AccountId } from '../../src/core/ids.ts';
import { bufferReader } from '../../src/mime/reader.ts';
import { reportsInMessage } from '../../src/reports/dmarc-parse.ts';
import { receivedDmarcReports } from '../../src/reports/received.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

const RECORDS = 10_000;
let t: TestServer;

before(async () => {
  t = await startTestServer({ users: ['alice@example.test'] });
});
after(() => t?.stop());

function bigReport(): string {
  const record = (i: number) =>
    `<record><row><source_ip>10.${(i >> 16) & 255}.${(i >> 8) & 255}.${i & 255}</source_ip><count>${1 + (i % 7)}</count>` +
    '<policy_evaluated><disposition>none</disposition><dkim>pass</dkim><spf>fail</spf></policy_evaluated></row>' +
    '<identifiers><envelope_from>example.test</envelope_from><header_from>example.test</header_from></identifiers>' +
    '<auth_results><dkim><domain>example.test</domain><selector>s1</selector><result>pass</result></dkim>' +
    '<spf><domain>example.test</domain><scope>mfrom</scope><result>fail</result></spf></auth_results></record>';
  const now = Math.floor(Date.now() / 1000);
  const xml =
    '<?xml version="1.0" encoding="UTF-8"?><feedback><version>1.0</version><report_metadata>' +
    `<org_name>Big Receiver</org_name><email>noreply@receiver.test</email><report_id>big-1</report_id>` +
    `<date_range><begin>${now - 86_400}</begin><end>${now}</end></date_range></report_metadata>` +
    '<policy_published><domain>example.test</domain><adkim>r</adkim><aspf>r</aspf><p>none</p><sp>none</sp>' +
    `<pct>100</pct><fo>0</fo></policy_published>${Array.from({ length: RECORDS }, (_, i) => record(i)).join('')}</feedback>`;
  const b64 = gzipSync(xml).toString('base64').replace(/.{76}/g, '$&\r\n');
  return (
    'From: noreply@receiver.test\r\nTo: alice@example.test\r\nSubject: Report Domain: example.test Submitter: receiver.test Report-ID: <big-1>\r\n' +
    'MIME-Version: 1.0\r\nContent-Type: application/gzip; name="receiver.test!example.test!1!2.xml.gz"\r\n' +
    `Content-Transfer-Encoding: base64\r\n\r\n${b64}\r\n`
  );
}

test('a 10,000-record report is parsed in a worker: the event loop keeps turning', async (tc) => {
  const message = bigReport();
  const c = await RawSmtp.connect(t.port, '127.0.0.1', '127.0.0.1');
  try {
    const replies = await envelope(c, 'noreply@receiver.test', ['alice@example.test']);
    assert.equal(replies.at(-1)?.code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`${message}\r\n.\r\n`);
    assert.equal((await c.read()).code, 250);
  } finally {
    c.close();
  }
  await waitUntil('the report delivered', async () => (await t.messages('alice@example.test')).length === 1);

  // On the main thread, for comparison: the loop would wait the whole parse.
  const bytes = Buffer.from(message, 'utf8');
  const t0 = performance.now();
  const direct = await reportsInMessage(bufferReader(bytes), bytes.length);
  const inline = performance.now() - t0;
  assert.equal(direct.reports[0]?.records.length, RECORDS);

  const lag = monitorEventLoopDelay({ resolution: 5 });
  lag.enable();
  const t1 = performance.now();
  const got = await receivedDmarcReports(t.admin.store.accounts, 'alice@example.test' as AccountId, 2);
  const total = performance.now() - t1;
  lag.disable();
  const maxLag = lag.max / 1e6;
  tc.diagnostic(
    `parse on the main thread ${Math.round(inline)} ms; through the worker ${Math.round(total)} ms, ` +
      `event loop delay at most ${Math.round(maxLag)} ms`,
  );
  assert.equal(got.unreadable, 0);
  assert.equal(got.reports.length, 1);
  assert.equal(got.reports[0]?.records.length, RECORDS);
  assert.ok(maxLag < Math.max(100, inline / 3), `the event loop waited ${maxLag} ms (inline parse ${inline} ms)`);
});
