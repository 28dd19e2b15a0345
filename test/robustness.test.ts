// One bad client never affects others: random bytes and protocol fragments are thrown at the
// SMTP and IMAP ports from many connections at once (IMAP also after logging in); afterwards a
// normal client is served and no connection is left open.

import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, test } from 'node:test';
import fc from 'fast-check';
import { RawImap } from './harness/imap-client.ts';
import { resourcesOf, settledResources } from './harness/resources.ts';
import { startTestServer, type TestServer } from './harness/server.ts';
import { envelope, RawSmtp } from './harness/smtp-client.ts';

let s: TestServer;
before(async () => {
  s = await startTestServer({
    smtp: 'max_connections_per_ip = 200',
    submission: 'max_connections_per_ip = 200',
    // Low enough that the spray also runs into IMAP's per-address limit (refused connections).
    imap: 'max_connections_per_ip = 10',
  });
});
after(() => s.stop());

const FRAGMENTS = [
  'a LOGIN {5}\r\n',
  'a APPEND INBOX {99999999999}\r\n',
  '{3+}\r\n',
  '\0\0',
  '\r\n',
  '\n',
  '\r',
  '(((((',
  ')))',
  '"',
  '\\',
  'a FETCH 1:* BODY[1.2.3.4.5.6.7.8]<0.1>\r\n',
  'MAIL FROM:<>\r\n',
  'RCPT TO:<a@example.test>\r\n',
  'DATA\r\n',
  '.\r\n',
  'EHLO x\r\n',
  'STARTTLS\r\n',
  'a STARTTLS\r\n',
  'AUTH PLAIN\r\n',
  'AUTH LOGIN\r\n',
  'AUTH PLAIN AGFsaWNlQGV4YW1wbGUudGVzdABzZWNyZXQtcGFzc3dvcmQ=\r\n',
  'a COMPRESS DEFLATE\r\n',
  'a ENABLE QRESYNC UTF8=ACCEPT\r\n',
  'a SELECT INBOX (QRESYNC (1 1 1:*))\r\n',
  'a GETQUOTAROOT INBOX\r\n',
  '* OK\r\n',
  // SMTP hostile-client patterns (issue #10): author fields in every spelling, NUL, refused
  // and repeated recipients, parser-heavy lines, a header over the limit, a half command.
  'From : bob@example.test\r\n',
  'Resent-Sender: <bob@example.test>\r\n',
  'RCPT TO:<nobody@example.test>\r\n'.repeat(5),
  'RCPT TO:<alice@example.test>\r\n'.repeat(20),
  `MAIL FROM:<${'@a,'.repeat(300)}>\r\n`,
  'GET / HTTP/1.1\r\n',
  `X-Pad: ${'p'.repeat(3000)}\r\n`,
  'MAIL FROM:<a@remote.example> SIZE=99999999999999\r\n',
  'RSET\r\nNOOP\r\nQUIT\r\n',
  'EHLO',
  'x'.repeat(5000),
  '\xff\xfe',
  // Hostile IMAP patterns (issue #10): literals before login, budgets, deadlines, COMPRESS.
  'a LOGIN {262144+}\r\n',
  'a LOGIN {70000}\r\n',
  'a APPEND INBOX {20000000+}\r\n',
  'a APPEND INBOX (\\Seen) {5}\r\n',
  'a SEARCH TEXT {250000+}\r\n',
  'a AUTHENTICATE PLAIN\r\n',
  'a IDLE\r\n',
  'DONE\r\n',
  'a LIST "" "*****X"\r\n',
  'a LIST "" "%*%*%*%*%*%*%*%*X"\r\n',
  `a LIST "" (${Array.from({ length: 40 }, (_, i) => `p${i}*`).join(' ')})\r\n`,
  `a CREATE ${'n'.repeat(10_000)}\r\n`,
  `a CREATE ${Array.from({ length: 40 }, (_, i) => `l${i}`).join('.')}\r\n`,
  'a RENAME INBOX.x INBOX.x.y\r\n',
  'a UID FETCH 1:* (BODY.PEEK[] BINARY[1])\r\n',
  'x'.repeat(70_000),
];

/** What an IMAP spray connection sends first to reach the logged-in state, or nothing. */
const IMAP_PREFIXES = ['', 'a0 LOGIN alice@example.test secret-password\r\nb0 SELECT INBOX\r\n'];

async function spray(port: number, data: Buffer): Promise<void> {
  await new Promise<void>((resolve) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.on('error', () => resolve());
    sock.on('close', () => resolve());
    sock.resume(); // read what the server says, so our close is a clean FIN, not a reset
    sock.on('connect', () => {
      // Held open a moment, so many are open at once (and some are over a per-address limit).
      sock.write(data);
      setTimeout(() => sock.end(), 100);
      setTimeout(() => sock.destroy(), 300);
    });
  });
}

test('random input to SMTP, submission and IMAP never stops the server from serving others', async () => {
  // The mail index threads (and their database files) start with the first IMAP session: start
  // them before counting descriptors, so what is counted after the spray is only leaks.
  const { client: warm } = await RawImap.connect(s.imapPort);
  await warm.cmd('LOGIN alice@example.test secret-password');
  await warm.cmd('SELECT INBOX');
  await warm.cmd('STATUS Sent (MESSAGES)');
  warm.close();
  const fdsBefore = (await resourcesOf()).fds;
  const inputs = fc.sample(
    fc.array(
      fc.oneof(
        fc.constantFrom(...FRAGMENTS),
        fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a).toString('latin1')),
      ),
      { maxLength: 25 },
    ),
    {
      numRuns: 150,
      seed: 42,
    },
  );
  await Promise.all(
    inputs.flatMap((parts) => {
      const data = Buffer.from(parts.join(''), 'latin1');
      const imap = (prefix: string) => spray(s.imapPort, Buffer.concat([Buffer.from(prefix), data]));
      return [spray(s.port, data), ...IMAP_PREFIXES.map(imap), spray(s.submissionPort, data)];
    }),
  );
  // Every connection the server refused (IMAP allows 10 per address here) or ended is closed: the
  // process holds no more descriptors than before.
  const { fds } = await settledResources(process.pid, fdsBefore + 5, 20_000);
  assert.ok(fds <= fdsBefore + 5, `${fds} open fds after the spray, ${fdsBefore} before`);
  const smtp = await RawSmtp.connect(s.port);
  const replies = await envelope(smtp, 'a@remote.example', ['alice@example.test']);
  assert.deepEqual(
    replies.map((r) => r.code),
    [250, 250, 250],
  );
  smtp.close();
  const { client } = await RawImap.connect(s.imapPort);
  assert.match((await client.cmd('LOGIN alice@example.test secret-password')).at(-1) ?? '', /^t1 OK /);
  assert.match((await client.cmd('SELECT INBOX')).at(-1) ?? '', /^t2 OK /);
  client.close();
  // Every bad input was answered as a protocol error: nothing reached the error log.
  assert.deepEqual(
    s.logs.filter((l) => (l.level as number) >= 50),
    [],
  );
});
