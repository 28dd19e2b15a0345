// The spam stage over real SMTP sessions against Debian's real rspamd (test/harness/rspamd.ts,
// one per file): GTUBE refused with 550 5.7.1 on port 25 and on submission, a clean message
// delivered with X-Spam-Status and the headers rspamd asked for, each other action (soft
// reject, greylist, add header, rewrite subject) as docs/spam.md says, the same in the inbound
// worker threads; rspamd's milter proxy port opens (for the milter client's tests).
// rspamd failing, slow or talking nonsense: test/smtp/spam-failure.test.ts.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { spamScans } from '../../src/core/metrics.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { GTUBE, message, send, spamConfig, startRspamd, type TestRspamd } from '../harness/rspamd.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { authenticatedSubmission, type Reply } from '../harness/smtp-client.ts';
import { PASSWORD } from '../harness/submit.ts';

const idOf = (r: Reply) => /message (\S+) delivered/.exec(r.text)?.[1] ?? '';
const scans = async (action: string) =>
  (await spamScans.get()).values.find((v) => v.labels.action === action)?.value ?? 0;

describe("spam stage against Debian's rspamd", { timeout: 180_000 }, () => {
  let dns: TestDnsServer;
  let rspamd: TestRspamd;
  let s: TestServer;
  before(async () => {
    dns = await startTestDns();
    rspamd = await startRspamd({ dns: dns.address, milter: true });
    s = await startTestServer({ extra: spamConfig(dns.address, rspamd.url), submission: true });
  });
  after(async () => {
    await s?.stop();
    await rspamd?.stop();
    await dns?.close();
  });

  test('GTUBE is refused with 550 5.7.1 and nothing is delivered', async () => {
    const before = await scans('reject');
    const r = await send(s.port, message({ body: GTUBE }));
    assert.equal(r.text, '550 5.7.1 Message rejected as spam: Gtube pattern');
    assert.deepEqual(await s.newFiles('bob@example.test'), []);
    await s.logged((l) => l.msg === 'message rejected as spam');
    assert.equal(await scans('reject'), before + 1);
  });

  test('a clean message is delivered with X-Spam-Status and the headers rspamd asked for; a forged one is gone', async () => {
    const r = await send(s.port, message({ headers: 'X-Spam-Status: No, score=-100 tests=FORGED\r\n' }));
    assert.equal(r.code, 250, r.text);
    const [m] = await s.messages('bob@example.test');
    const text = m?.toString('utf8') ?? '';
    const status = text.match(/^X-Spam-Status:.*(\r\n\t.*)*/gm) ?? [];
    assert.equal(status.length, 1, text);
    assert.match(
      status[0] ?? '',
      /^X-Spam-Status: No, score=-?\d+\.\d\d required=100\.00 action="no action"\r\n\ttests=\S/,
    );
    assert.doesNotMatch(text, /FORGED/);
    // rspamd's milter.add_headers: the queue id it was given is ours.
    assert.match(text, new RegExp(`^X-Rspamd-Queue-Id: ${idOf(r)}\r$`, 'm'));
    assert.match(
      await rspamd.log(),
      new RegExp(`qid: <${idOf(r)}>, ip: 127\\.0\\.0\\.1, from: <sender@remote\\.example>`),
    );
  });

  test('"add header" and "rewrite subject" deliver to Junk with what rspamd asked for', async () => {
    let r = await send(s.port, message({ headers: 'X-Arcline-Test: add-header\r\n' }));
    assert.equal(r.code, 250, r.text);
    r = await send(s.port, message({ subject: 'Grüße', headers: 'X-Arcline-Test: rewrite-subject\r\n' }));
    assert.equal(r.code, 250, r.text);
    const junk = (await s.messages('bob@example.test', 'Junk')).map((b) => b.toString('utf8'));
    assert.equal(junk.length, 2);
    const added = junk.find((t) => /action="add header"/.test(t)) ?? '';
    assert.match(added, /^X-Spam-Status: Yes, score=5\d\.\d\d required=100\.00/m);
    assert.match(added, /^X-Spam-Level: \*{50,}\r$/m);
    assert.match(added, /^Subject: hello\r$/m);
    const rewritten = junk.find((t) => /action="rewrite subject"/.test(t)) ?? '';
    const subject = /^Subject: (.*(\r\n .*)*)/m.exec(rewritten)?.[1] ?? '';
    // rspamd hands a non-ASCII Subject over MIME-encoded already (RFC 2047 "Q"): kept as it is.
    const decoded = subject.replace(/=\?UTF-8\?([BQ])\?([^?]+)\?=(\r\n )?/gi, (_, enc: string, text: string) =>
      enc.toUpperCase() === 'B'
        ? Buffer.from(text, 'base64').toString()
        : decodeURIComponent(text.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, '%$1')),
    );
    assert.equal(decoded, '*** SPAM *** Grüße');
    assert.equal(rewritten.match(/^Subject:/gm)?.length, 1);
  });

  test('"soft reject" answers 451 4.7.1 with rspamd\'s text; "greylist" without greylisting 451 4.7.1', async () => {
    const soft = await send(s.port, message({ headers: 'X-Arcline-Test: soft-reject\r\n' }));
    assert.equal(soft.text, '451 4.7.1 Message deferred by the spam filter, try again later: Test soft reject');
    const grey = await send(s.port, message({ headers: 'X-Arcline-Test: greylist\r\n' }));
    assert.equal(grey.text, '451 4.7.1 Greylisted, please try again later');
  });

  test('submission: GTUBE is refused with 550 5.7.1, rspamd is told the user', async () => {
    const c = await authenticatedSubmission(s.submissionPort, 'alice@example.test', PASSWORD);
    try {
      assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
      assert.equal((await c.cmd('DATA')).code, 354);
      c.write(`From: alice@example.test\r\nTo: bob@example.test\r\nSubject: test\r\n\r\n${GTUBE}\r\n.\r\n`);
      assert.equal((await c.read(20_000)).text, '550 5.7.1 Message rejected as spam: Gtube pattern');
    } finally {
      c.close();
    }
    assert.match(await rspamd.log(), /user: alice@example\.test/);
  });

  test('the inbound worker threads scan too', async () => {
    const t = await startTestServer({ smtp: 'threads = 2', extra: spamConfig(dns.address, rspamd.url) });
    try {
      for (let i = 0; i < 4; i++) {
        // Several connections: the kernel spreads them over both threads.
        assert.equal((await send(t.port, message({ body: GTUBE }))).code, 550);
        assert.equal((await send(t.port, message())).code, 250);
      }
      const delivered = await t.messages('bob@example.test');
      assert.equal(delivered.length, 4);
      for (const m of delivered) assert.match(m.toString(), /^X-Spam-Status: No, /m);
    } finally {
      await t.stop();
    }
  });

  test("our milter client against rspamd's proxy worker in milter mode: GTUBE refused, clean mail delivered with its headers", async () => {
    const port = rspamd.milterPort;
    assert.ok(port);
    // No [spam] here: rspamd is reached only as a [[milter]] (the way Postfix users run it).
    const m = await startTestServer({
      extra:
        `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ntrusted_networks = []\n` +
        `[[milter]]\nname = "rspamd"\naddress = "inet:127.0.0.1:${port}"\non_failure = "tempfail"\n`,
    });
    try {
      const spam = await send(m.port, message({ body: GTUBE }));
      assert.equal(spam.code, 554, spam.text);
      assert.match(spam.text, /^554 5\.7\.1 Gtube pattern/);
      assert.deepEqual(await m.newFiles('bob@example.test'), []);
      const clean = await send(m.port, message());
      assert.equal(clean.code, 250, clean.text);
      const [delivered] = await m.messages('bob@example.test');
      const text = delivered?.toString('utf8') ?? '';
      // rspamd's header through SMFIR_ADDHEADER, naming the queue id our {i} macro gave it.
      assert.match(text, new RegExp(`^X-Rspamd-Queue-Id: ${idOf(clean)}\r$`, 'm'));
      assert.match(text, /^Authentication-Results: mx\.test\.example;/m);
    } finally {
      await m.stop();
    }
  });

  test('no DNS query of rspamd leaves loopback: they all reached the test server', () => {
    // rspamd asked our DNS server (the remote maps' host names, which do not resolve here).
    assert.ok([...dns.queries.keys()].some((k) => k.startsWith('maps.rspamd.com/')));
  });
});
