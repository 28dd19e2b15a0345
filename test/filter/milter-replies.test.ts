// The milter client against a real milter: pymilter (Debian's python3-milter over Sendmail's
// libmilter, test/fixtures/milter/test_milter.py) on a loopback port, our server in-process,
// real SMTP sessions. Each reply type of the milter protocol is asserted by the SMTP reply the
// client gets and the bytes of the delivered Maildir file.

import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { registry } from '../../src/core/metrics.ts';
import { type MilterPeer, startTestMilter } from '../harness/milter.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { submitter } from '../harness/submit.ts';

const BODY = 'Hello.\r\n';

function message(mode: string, body = BODY): string {
  return (
    'From: Sender <sender@remote.example>\r\nTo: alice@example.test\r\nSubject: milter test\r\n' +
    `X-Test-Mode: ${mode}\r\nX-Remove-Me: bye\r\nX-Second: one\r\nX-Second: two\r\n` +
    `Message-ID: <${mode}.${Math.random()}@remote.example>\r\n\r\n${body}`
  );
}

/** One SMTP transaction on port 25; the reply to the final dot. */
async function send(port: number, mode: string, o: { body?: string; rcpts?: string[] } = {}) {
  const c = await RawSmtp.connect(port);
  try {
    await c.read();
    assert.equal((await c.cmd('EHLO client.example')).code, 250);
    assert.equal((await c.cmd('MAIL FROM:<sender@remote.example>')).code, 250);
    for (const r of o.rcpts ?? ['alice@example.test']) assert.equal((await c.cmd(`RCPT TO:<${r}>`)).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`${message(mode, o.body)}.\r\n`);
    return await c.read(10_000);
  } finally {
    c.close();
  }
}

function split(file: Buffer): { head: string; body: string } {
  const text = file.toString('latin1');
  const at = text.indexOf('\r\n\r\n');
  return { head: text.slice(0, at + 2), body: text.slice(at + 4) };
}

function field(head: string, name: string): string | null {
  const m = new RegExp(`^${name}:[ \\t]?(.*(?:\\r\\n[ \\t].*)*)`, 'im').exec(head);
  return m ? (m[1] ?? '') : null;
}

interface Report {
  client: { name: string; addr: string; port: number };
  helo: string;
  from: string;
  rcpts: string[];
  macros: Record<string, string>;
  headers: number;
  names: string[];
  body: number;
  chunks: number;
  max_chunk: number;
  sha256: string;
}

function report(head: string, name = 'T'): Report {
  const v = field(head, `X-Seen-By-${name}`);
  assert.ok(v, `X-Seen-By-${name} in ${head}`);
  return JSON.parse(v) as Report;
}

describe('milter replies (pymilter)', () => {
  let milter: MilterPeer;
  let s: TestServer;
  const seen = new Set<string>();

  /** The one new file in alice's INBOX since the last call. */
  async function latest(): Promise<Buffer> {
    const names = (await s.newFiles('alice@example.test')).filter((n) => !seen.has(n));
    assert.equal(names.length, 1, 'one more message delivered');
    const name = names[0] as string;
    seen.add(name);
    return readFile(join(s.mailboxDir('alice@example.test'), 'new', name));
  }

  async function nothingDelivered(): Promise<void> {
    assert.equal((await s.newFiles('alice@example.test')).length, seen.size);
  }

  before(async () => {
    milter = await startTestMilter('T');
    s = await startTestServer({
      smtp: 'max_connections_per_ip = 100\nthreads = 0',
      users: ['alice@example.test', 'bob@example.test', 'reject-me@example.test'],
      submission: true,
      extra: `[[milter]]\nname = "T"\naddress = "${milter.address}"\nconnect_timeout = "2s"\ncommand_timeout = "2s"\neom_timeout = "1s"\non_failure = "tempfail"\n`,
    });
  });
  after(async () => {
    await s?.stop();
    await milter?.stop();
  });

  test('continue: the milter is told the whole session, in order, and the message is delivered', async () => {
    const r = await send(s.port, 'none');
    assert.equal(r.code, 250, r.text);
    const { head, body } = split(await latest());
    assert.equal(body, BODY);
    const rep = report(head);
    assert.equal(rep.client.addr, '127.0.0.1');
    assert.ok(rep.client.port > 0);
    assert.equal(rep.client.name, '[127.0.0.1]', 'no reverse name: the address literal');
    assert.equal(rep.helo, 'client.example');
    assert.equal(rep.from, '<sender@remote.example>');
    assert.deepEqual(rep.rcpts, ['<alice@example.test>']);
    assert.equal(rep.macros.j, 'mx.test.example');
    assert.equal(rep.macros['{daemon_name}'], 'smtp');
    assert.equal(rep.macros['{client_addr}'], '127.0.0.1');
    assert.equal(rep.macros['{mail_addr}'], 'sender@remote.example');
    assert.equal(rep.macros['{rcpt_addr}'], 'alice@example.test');
    assert.match(rep.macros.i ?? '', /^\S+$/);
    // The header as it is delivered: our fields first, then the message's.
    assert.deepEqual(rep.names, [
      'Authentication-Results',
      'Received',
      'From',
      'To',
      'Subject',
      'X-Test-Mode',
      'X-Remove-Me',
      'X-Second',
      'X-Second',
      'Message-ID',
    ]);
    assert.equal(rep.body, BODY.length);
    assert.equal(rep.sha256, createHash('sha256').update(BODY).digest('hex'));
    // The delivered file: our trace, the message as sent, the milter's field at the end.
    assert.match(
      head,
      /^Return-Path: <sender@remote\.example>\r\nDelivered-To: alice@example\.test\r\nAuthentication-Results: [^\r]+\r\nReceived: /,
    );
    assert.match(head, /Message-ID: <[^>]+>\r\nX-Seen-By-T: \{[^\r]*\}\r\n$/);
  });

  test('reject: 550 5.7.1, nothing delivered', async () => {
    const r = await send(s.port, 'reject');
    assert.equal(r.code, 550);
    assert.match(r.text, /^550 5\.7\.1 /);
    await nothingDelivered();
    await s.logged((l) => l.msg === 'message refused by milter' && l.milter === 'T');
  });

  test('tempfail: 451 4.7.1, nothing delivered', async () => {
    const r = await send(s.port, 'tempfail');
    assert.match(r.text, /^451 4\.7\.1 /);
    await nothingDelivered();
  });

  test("replycode: the milter's own reply, 5xx and 4xx", async () => {
    assert.equal((await send(s.port, 'replycode')).text, '554 5.7.0 Custom refusal by test milter');
    assert.equal((await send(s.port, 'replycode-4xx')).text, '450 4.7.0 Greylisted by test milter');
    await nothingDelivered();
  });

  test('a refusal at RCPT (replayed at end of DATA) refuses the message with its reply', async () => {
    const r = await send(s.port, 'none', { rcpts: ['alice@example.test', 'reject-me@example.test'] });
    assert.equal(r.text, '550 5.1.1 Recipient refused by test milter');
    await nothingDelivered();
  });

  test('accept at a header: no more filtering, delivered unchanged', async () => {
    assert.equal((await send(s.port, 'accept-early')).code, 250);
    const { head } = split(await latest());
    assert.equal(field(head, 'X-Seen-By-T'), null);
  });

  test('discard: 250, the message is dropped and logged', async () => {
    const r = await send(s.port, 'discard');
    assert.equal(r.code, 250);
    await s.logged((l) => l.msg === 'message discarded by milter' && l.milter === 'T');
    await nothingDelivered();
  });

  test('add header: appended, its LF folding turned into CRLF', async () => {
    assert.equal((await send(s.port, 'addheader')).code, 250);
    const { head, body } = split(await latest());
    assert.match(head, /\r\nX-Added: first line\r\n\tsecond line\r\nX-Seen-By-T: /);
    assert.equal(body, BODY);
  });

  test('change header: by name and index, an empty value deletes', async () => {
    assert.equal((await send(s.port, 'chgheader')).code, 250);
    const { head } = split(await latest());
    assert.equal(field(head, 'Subject'), 'changed by milter');
    assert.equal(field(head, 'X-Remove-Me'), null);
    assert.match(head, /X-Second: one\r\nX-Second: second changed\r\n/);
  });

  test('insert header: at its index among the fields the milter saw (0: on top)', async () => {
    assert.equal((await send(s.port, 'insheader')).code, 250);
    const { head } = split(await latest());
    assert.match(
      head,
      /^Return-Path: [^\r]+\r\nDelivered-To: [^\r]+\r\nX-Top: inserted on top\r\nAuthentication-Results: [^\r]+\r\nX-Third: inserted third\r\nReceived: (?:[^\r]|\r\n\t)+\r\nFrom: /,
    );
  });

  test('replace body: the new body with CRLF line endings, the header kept', async () => {
    assert.equal((await send(s.port, 'replacebody')).code, 250);
    const { head, body } = split(await latest());
    assert.equal(body, 'Replaced body line 1\r\nline 2\r\n');
    assert.equal(field(head, 'Subject'), 'milter test');
  });

  test('a large body goes in chunks of at most 65535 bytes; a large replacement is spooled', async () => {
    const big = `${'x'.repeat(998)}\r\n`.repeat(300); // 300,000 bytes
    assert.equal((await send(s.port, 'none', { body: big })).code, 250);
    const rep = report(split(await latest()).head);
    assert.equal(rep.body, big.length);
    assert.ok(rep.chunks >= 5, `${rep.chunks} chunks`);
    assert.ok(rep.max_chunk <= 65535);
    assert.equal(rep.sha256, createHash('sha256').update(big).digest('hex'));

    assert.equal((await send(s.port, 'replacebody-big')).code, 250);
    const { body } = split(await latest());
    assert.equal(body, `${'0123456789'.repeat(10)}\r\n`.repeat(2000));
  });

  test('quarantine (port 25): delivered to Junk, the reason logged', async () => {
    assert.equal((await send(s.port, 'quarantine')).code, 250);
    await s.logged((l) => l.msg === 'message quarantined by milter' && l.reason === 'suspicious by test milter');
    await nothingDelivered();
    const junk = await s.messages('alice@example.test', 'Junk');
    assert.equal(junk.length, 1);
    assert.equal(field(split(junk[0] as Buffer).head, 'X-Test-Mode'), 'quarantine');
  });

  test('progress: each one restarts eom_timeout (1 s) for a milter that takes 1.8 s', async () => {
    const r = await send(s.port, 'progress');
    assert.equal(r.code, 250, r.text);
    report(split(await latest()).head);
  });

  test('a milter slower than eom_timeout fails: on_failure = "tempfail" gives 451 4.7.1', async () => {
    const r = await send(s.port, 'slow');
    assert.match(r.text, /^451 4\.7\.1 /);
    await s.logged((l) => l.msg === 'milter failed' && String(l.error).includes('timed out'));
    await nothingDelivered();
  });

  test('a header value that would end the header is refused (a failure of the milter)', async () => {
    const r = await send(s.port, 'bad-header');
    assert.match(r.text, /^451 4\.7\.1 /);
    await s.logged((l) => l.msg === 'milter failed' && String(l.error).includes('line break'));
  });

  test('submission: {auth_authen} sent; quarantine holds the remote part in the queue, local copy in Junk', async () => {
    const info = await submitter(s.submissionPort).sendMail({
      envelope: { from: 'alice@example.test', to: ['alice@example.test', 'bob@remote.test'] },
      raw: 'From: alice@example.test\r\nTo: bob@remote.test\r\nSubject: held\r\nX-Test-Mode: quarantine\r\n\r\nHi.\r\n',
    });
    assert.match(info.response, /^250 /);
    const junk = await s.messages('alice@example.test', 'Junk');
    const copy = junk.find((f) => field(split(f).head, 'Subject') === 'held');
    assert.ok(copy, 'the local copy is in Junk');
    const rep = report(split(copy).head);
    assert.equal(rep.macros['{auth_authen}'], 'alice@example.test');
    assert.equal(rep.macros['{daemon_name}'], 'submission');
    assert.ok(rep.macros['{tls_version}']?.startsWith('TLS'));
    const queued = (await s.admin.queue.list()).filter((m) => m.sender === 'alice@example.test');
    assert.equal(queued.length, 1);
    assert.equal(queued[0]?.held, true, 'held by the quarantine');
    assert.deepEqual(
      queued[0]?.recipients.map((r) => r.address),
      ['bob@remote.test'],
    );
  });

  test('arcline_milter_results_total counts each result', async () => {
    const text = await registry.getSingleMetricAsString('arcline_milter_results_total');
    for (const result of ['continue', 'reject', 'tempfail', 'discard', 'quarantine', 'accept', 'failure']) {
      assert.match(text, new RegExp(`milter="T",result="${result}"\\} [1-9]`), result);
    }
  });
});
