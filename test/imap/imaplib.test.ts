// A strict independent client: Python's imaplib (standard library) drives login over STARTTLS
// and implicit TLS, LIST, SELECT, FETCH (envelope, structure, body), SEARCH, STORE, APPEND,
// COPY, UID MOVE, STATUS, IDLE (with a delivery while idling), EXPUNGE and CLOSE, and must parse
// every response we send.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, before, test } from 'node:test';
import { promisify } from 'node:util';
import nodemailer from 'nodemailer';
import { startTestServer, type TestServer } from '../harness/server.ts';

const hasPython = spawnSync('python3', ['-c', 'import imaplib']).status === 0;
let s: TestServer;
before(async () => {
  s = await startTestServer();
});
after(() => s.stop());

const SCRIPT = String.raw`
import imaplib, json, ssl, sys
port, sport = int(sys.argv[1]), int(sys.argv[2])
ctx = ssl.create_default_context(); ctx.check_hostname = False; ctx.verify_mode = ssl.CERT_NONE
out = {}
M = imaplib.IMAP4('127.0.0.1', port)
out['starttls'] = M.starttls(ssl_context=ctx)[0]
out['login'] = M.login('alice@example.test', 'secret-password')[0]
out['list'] = [l.decode() for l in M.list()[1]]
out['select'] = M.select('INBOX')[1][0].decode()
typ, data = M.fetch('1', '(UID FLAGS ENVELOPE BODYSTRUCTURE)')
out['fetch'] = data[0].decode()
typ, data = M.fetch('1', '(BODY.PEEK[])')
out['body'] = data[0][1].decode()
out['search'] = M.search('UTF-8', 'SUBJECT', '"python"')[1][0].decode()
out['store'] = M.store('1', '+FLAGS', '(\\Flagged)')[1][0].decode()
M.create('PyBox')
out['append'] = M.append('PyBox', '(\\Seen)', imaplib.Time2Internaldate(1700000000), b'Subject: appended\r\n\r\nx\r\n')[1][0].decode()
out['copy'] = M.copy('1', 'PyBox')[1][0].decode()
out['move'] = M.uid('MOVE', '1', 'Trash')[0]
out['status'] = M.status('PyBox', '(MESSAGES UIDNEXT UNSEEN)')[1][0].decode()
# IDLE (RFC 2177): imaplib before Python 3.14 has no idle(), so drive it with the raw calls.
# A message delivered while idling must show up as an untagged EXISTS.
M.select('INBOX')
tag = M._new_tag()
M.send(tag + b' IDLE\r\n')
out['idle_cont'] = M.readline().decode().strip()
import smtplib
with smtplib.SMTP('127.0.0.1', int(sys.argv[3])) as S:
    S.sendmail('a@remote.example', ['alice@example.test'], b'Subject: while idling\r\n\r\nx\r\n')
out['idle_push'] = M.readline().decode().strip()
out['idle_recent'] = M.readline().decode().strip()
M.send(b'DONE\r\n')
out['idle_done'] = M.readline().decode().strip()
out['close'] = M.close()[0]
out['logout'] = M.logout()[0]
S = imaplib.IMAP4_SSL('127.0.0.1', sport, ssl_context=ctx)
out['ssl'] = [S.login('alice@example.test', 'secret-password')[0], S.select('PyBox', readonly=True)[1][0].decode(), S.logout()[0]]
print(json.dumps(out))
`;

test('Python imaplib drives a whole session and parses every response', {
  skip: !hasPython && 'python3 is not installed',
}, async () => {
  const t = nodemailer.createTransport({ host: '127.0.0.1', port: s.port, secure: false, ignoreTLS: true });
  await t.sendMail({ from: 'a@remote.example', to: 'alice@example.test', subject: 'hello python', text: 'body text' });
  t.close();
  const { stdout } = await promisify(execFile)(
    'python3',
    ['-c', SCRIPT, String(s.imapPort), String(s.imapsPort), String(s.port)],
    {
      encoding: 'utf8',
    },
  );
  const out = JSON.parse(stdout) as Record<string, unknown>;
  assert.equal(out.starttls, 'OK');
  assert.equal(out.login, 'OK');
  assert.ok((out.list as string[]).includes('(\\HasNoChildren \\Sent) "." Sent'));
  assert.equal(out.select, '1');
  assert.match(out.fetch as string, /^1 \(UID 1 FLAGS \(\\Recent\) ENVELOPE \("[^"]+" "hello python" /);
  assert.match(out.fetch as string, /BODYSTRUCTURE \("TEXT" "PLAIN" /);
  assert.match(out.body as string, /\r\n\r\nbody text\r\n$/);
  assert.equal(out.search, '1');
  assert.equal(out.store, '1 (FLAGS (\\Flagged \\Recent))');
  assert.match(out.append as string, /^\[APPENDUID \d+ 1\] APPEND completed$/);
  assert.match(out.copy as string, /^\[COPYUID \d+ 1 2\] COPY completed$/);
  assert.equal(out.move, 'OK');
  assert.equal(out.status, 'PyBox (MESSAGES 2 UIDNEXT 3 UNSEEN 1)');
  assert.equal(out.idle_cont, '+ idling');
  assert.match(out.idle_push as string, /^\* \d+ EXISTS$/);
  // RFC 3501 §7.3.2: the idling session (the only one with INBOX selected) gets it as \Recent.
  assert.match(out.idle_recent as string, /^\* 1 RECENT$/);
  assert.match(out.idle_done as string, / OK IDLE terminated$/);
  assert.equal(out.close, 'OK');
  assert.equal(out.logout, 'BYE');
  assert.deepEqual(out.ssl, ['OK', '2', 'BYE']);
});
