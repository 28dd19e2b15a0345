// Submission sender ownership over the whole header (issue #10 item 7): a From:/Sender: the
// user does not own is caught wherever it is in the header and however it is written, and a
// header too large to be read whole is refused instead of being read in part.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { authenticatedSubmission, envelope, RawSmtp, type Reply } from '../harness/smtp-client.ts';

const PASSWORD = 'secret-password';

/** `n` bytes of well-formed header fields. */
function padding(n: number): string {
  const line = `X-Padding: ${'p'.repeat(64)}\r\n`;
  return line.repeat(Math.ceil(n / line.length));
}

describe('submission: sender checks over the whole header', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ submission: 'max_connections_per_ip = 100', smtp: 'max_connections_per_ip = 100' });
  });
  after(() => s.stop());

  /** Authenticated as alice, sends `header` + a body; returns the reply to the end of DATA. */
  async function submit(header: string, body = '\r\nhello\r\n'): Promise<Reply> {
    const c = await authenticatedSubmission(s.submissionPort, 'alice@example.test', PASSWORD);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`${header}${body}.\r\n`);
    const r = await c.read(20_000);
    c.close();
    return r;
  }

  test('From: alice, 600 KB of header, From: bob -> refused (the header is larger than max_header_size)', async () => {
    const r = await submit(`From: alice@example.test\r\n${padding(600 * 1024)}From: bob@example.test\r\n`);
    assert.equal(r.text, '552 5.3.4 Message header size exceeds fixed limit of 262144 bytes');
  });

  test('Sender: bob after 600 KB of header -> refused; nothing delivered', async () => {
    const r = await submit(`From: alice@example.test\r\n${padding(600 * 1024)}Sender: bob@example.test\r\n`);
    assert.equal(r.code, 552);
    assert.deepEqual(await s.newFiles('bob@example.test'), []);
  });

  test('within the limit, a second From: or a Sender: anywhere in the header is seen', async () => {
    const pad = padding(250 * 1024);
    assert.equal(
      (await submit(`From: alice@example.test\r\n${pad}From: bob@example.test\r\n`)).text,
      '550 5.6.0 Message must have exactly one From: header with an address',
    );
    assert.equal(
      (await submit(`From: alice@example.test\r\n${pad}Sender: bob@example.test\r\n`)).text,
      '553 5.7.1 From: header address not owned by the authenticated user',
    );
  });

  test('obsolete syntax: "From : bob" and "Sender\\t: bob" (RFC 5322 §4.5) are caught', async () => {
    assert.equal(
      (await submit('From: alice@example.test\r\nFrom : bob@example.test\r\n')).code,
      550, // two From fields
    );
    assert.equal((await submit('From: alice@example.test\r\nSender\t: bob@example.test\r\n')).code, 553);
    assert.equal((await submit('From : bob@example.test\r\n')).code, 553);
  });

  test('Resent-From:, Resent-Sender:, folded values and addresses in display names are caught', async () => {
    for (const h of [
      'From: alice@example.test\r\nResent-From: bob@example.test\r\n',
      'From: alice@example.test\r\nResent-Sender: <bob@example.test>\r\n',
      'From: alice@example.test\r\nSender:\r\n <bob@example.test>\r\n',
      'From: "bob@example.test" <alice@example.test>\r\n',
      'From: <alice@example.test> bob@example.test\r\n',
      'FROM: alice@example.test, bob@example.test\r\n',
    ]) {
      assert.equal((await submit(h)).code, 553, JSON.stringify(h));
    }
  });

  test("a message without the empty line is all header: checked whole, delivered when it is the user's", async () => {
    assert.equal((await submit('From: alice@example.test\r\nSubject: no body\r\n', '')).code, 250);
    assert.equal(
      (await submit('From: alice@example.test\r\nSubject: no body\r\nSender: bob@example.test\r\n', '')).code,
      553,
    );
    assert.equal(
      (await submit(`From: alice@example.test\r\n${padding(300 * 1024)}`, '')).text,
      '552 5.3.4 Message header size exceeds fixed limit of 262144 bytes',
    );
  });

  test('port 25: a header larger than max_header_size is refused too', async () => {
    const c = await RawSmtp.connect(s.port);
    await envelope(c, 'a@remote.example', ['alice@example.test']);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`From: a@remote.example\r\n${padding(300 * 1024)}\r\nbody\r\n.\r\n`);
    assert.equal((await c.read(20_000)).code, 552);
    c.close();
    assert.deepEqual(await s.newFiles('alice@example.test'), []);
  });
});
