// Greylisting over real SMTP (docs/spam.md "Greylisting"): the first RCPT of a new triplet gets
// 451 4.7.1 with the stable text, a retry after the delay 250; trusted, allowlisted (the
// operator's file) and authenticated clients are never greylisted; an unknown user still gets
// its 550. In one thread and in two inbound threads (each its own connection to greylist.db).

import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { runCli } from '../harness/process.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { authenticatedSubmission, envelope, RawSmtp } from '../harness/smtp-client.ts';
import { PASSWORD, waitUntil } from '../harness/submit.ts';

const DELAY_MS = 2000;
const GREYLISTED = '451 4.7.1 Greylisted, please try again later';

async function rcptReply(port: number, from: string, rcpt: string, localAddress = '127.0.0.1') {
  const c = await RawSmtp.connect(port, '127.0.0.1', localAddress);
  try {
    const replies = await envelope(c, from, [rcpt]);
    return replies[2] ?? replies[replies.length - 1];
  } finally {
    c.close();
  }
}

for (const threads of [0, 2]) {
  describe(`greylisting over SMTP (threads = ${threads})`, () => {
    let s: TestServer;
    before(async () => {
      const allow = join(tmpdir(), `arcline-greylist-allow-${process.pid}-${threads}.txt`);
      await writeFile(allow, "# the operator's own\n127.0.0.3\n");
      s = await startTestServer({
        smtp: `threads = ${threads}`,
        submission: true,
        users: ['bob@example.test', 'alice@example.test'],
        extra: `[greylist]\nenabled = true\ndelay = "${DELAY_MS}ms"\nallowlist_file = "${allow}"\n[hygiene]\ntrusted_networks = ["127.0.0.2/32"]`,
      });
    });
    after(() => s.stop());

    test('first attempt deferred, retried too early deferred, after the delay accepted', async () => {
      const t0 = Date.now();
      const first = await rcptReply(s.port, 'news+123@sender.example', 'bob@example.test');
      assert.equal(first?.text, GREYLISTED);
      assert.equal((await rcptReply(s.port, 'news+456@sender.example', 'bob@example.test'))?.code, 451);
      const passed = await waitUntil('the retry passes', async () => {
        const r = await rcptReply(s.port, 'news+789@sender.example', 'bob@example.test');
        return r?.code === 250 ? r : null;
      });
      assert.equal(passed.code, 250);
      assert.ok(Date.now() - t0 >= DELAY_MS, 'not before the delay');
      await s.logged((l) => l.msg === 'greylisted' && l.rcpt === 'bob@example.test');
    });

    test('an unknown user gets 550, not 451', async () => {
      assert.equal((await rcptReply(s.port, 'x@other.example', 'nobody@example.test'))?.code, 550);
    });

    test('trusted and allowlisted clients are never greylisted', async () => {
      assert.equal((await rcptReply(s.port, 't@trusted.example', 'bob@example.test', '127.0.0.2'))?.code, 250);
      assert.equal((await rcptReply(s.port, 'a@allowed.example', 'bob@example.test', '127.0.0.3'))?.code, 250);
    });

    if (threads === 0) {
      test('arcline greylist list shows the triplets; clear forgets them, so a client is greylisted afresh', async () => {
        const cli = (sub: string) => runCli(['--config', s.configFile, 'greylist', sub]);
        const listed = await cli('list');
        assert.equal(listed.code, 0, listed.stderr);
        assert.match(listed.stdout, /^NETWORK\s+SENDER\s+RECIPIENT/);
        assert.match(listed.stdout, /127\.0\.0\.0\/24\s+news@sender\.example\s+bob@example\.test\s+\S+\s+\S+\s+passed/);
        const cleared = await cli('clear');
        assert.equal(cleared.code, 0, cleared.stderr);
        assert.match(cleared.stdout, /^forgot [1-9]\d* greylist entries/);
        assert.equal((await rcptReply(s.port, 'news@sender.example', 'bob@example.test'))?.code, 451);
      });
    }

    test('an authenticated (submission) client is never greylisted', async () => {
      const c = await authenticatedSubmission(s.submissionPort, 'alice@example.test', PASSWORD);
      assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
      c.close();
    });
  });
}
