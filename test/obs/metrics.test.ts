// Issue #14: Prometheus metrics by protocol, command and result, and the access lines. A real
// server gets traffic of every kind (inbound SMTP with STARTTLS, submission with AUTH, IMAP
// over STARTTLS-less loopback and implicit TLS, a failed TLS handshake, HTTP and HTTPS, a
// queued remote recipient); then /metrics, from [metrics] listen and from the [http] listener
// ([metrics] http = true), has a sample in every family, keeps its labels in closed sets, and
// passes `promtool check metrics` (Debian package prometheus, .ci/run installs it).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { connect as tlsConnect } from 'node:tls';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { PASSWORD, submitter, waitUntil } from '../harness/submit.ts';

/** The sample value of `series` (a full name with labels, as exposed), or null. */
function sample(text: string, series: string): number | null {
  for (const line of text.split('\n')) {
    if (line.startsWith(`${series} `)) return Number(line.slice(series.length + 1));
  }
  return null;
}

describe('metrics and access logs', () => {
  let s: TestServer;
  let metricsPort = 0;
  let httpPort = 0;
  let httpsPort = 0;

  before(async () => {
    s = await startTestServer({
      submission: true,
      extra:
        '[metrics]\nlisten = ["127.0.0.1:0"]\nhttp = true\n[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = ["127.0.0.1:0"]\n',
    });
    metricsPort = s.server.metrics[0]?.port ?? 0;
    httpPort = s.server.http[0]?.port ?? 0;
    httpsPort = s.server.http[1]?.port ?? 0;
  });
  after(() => s.stop());

  test('traffic of every kind is counted and logged, and promtool accepts /metrics', async () => {
    // Inbound SMTP: STARTTLS, a refused and an accepted RCPT, a message, an unknown verb, RSET
    // with a transaction open, QUIT.
    const c = await RawSmtp.connect(s.port);
    await c.read();
    await c.cmd('EHLO client.example');
    await c.startTls();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('MAIL FROM:<a@remote.example>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<nobody@example.test>')).code, 550);
    assert.equal((await c.cmd('RCPT TO:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write('Subject: metrics\r\n\r\nhello\r\n.\r\n');
    assert.equal((await c.read()).code, 250);
    assert.equal((await c.cmd('XYZZY secret@example.test')).code, 500);
    await c.cmd('MAIL FROM:<b@remote.example>');
    await c.cmd('RSET');
    await c.cmd('QUIT');
    c.close();

    // Submission: a wrong password, then a message to a remote recipient (queued, deferred:
    // the test DNS answers nothing).
    await assert.rejects(
      submitter(s.submissionPort).sendMail({
        from: 'x@example.test',
        to: 'y@example.test',
        text: 'x',
        auth: { user: 'alice@example.test', pass: 'wrong' },
      } as never),
    );
    await submitter(s.submissionPort).sendMail({
      from: 'alice@example.test',
      to: 'someone@remote.example',
      subject: 'queued',
      text: 'hello',
    });
    assert.ok(PASSWORD);

    // IMAP: login, select, fetch, a command that does not exist, logout.
    const { client: imap } = await RawImap.connect(s.imapPort);
    await imap.cmd('LOGIN alice@example.test secret-password');
    await imap.cmd('SELECT INBOX');
    await imap.cmd('FETCH 1:* (FLAGS)');
    const bad = await imap.cmd('FROB');
    assert.match(bad.at(-1) ?? '', /BAD/);
    await imap.cmd('LOGOUT');
    imap.close();
    // Implicit TLS on IMAP, and a handshake that fails (plain text to a TLS port).
    const t = tlsConnect({ host: '127.0.0.1', port: s.imapsPort, rejectUnauthorized: false });
    // The greeting comes after the server's side of the handshake is done.
    assert.match(
      String(await new Promise((resolve, reject) => t.once('data', resolve).once('error', reject))),
      /^\* OK/,
    );
    t.destroy();
    const junk = await import('node:net').then((net) => net.connect(s.imapsPort, '127.0.0.1'));
    junk.on('error', () => {});
    junk.write('GET / HTTP/1.0\r\n\r\n');
    await new Promise((r) => junk.once('close', r));

    // HTTP and HTTPS.
    assert.equal((await fetch(`http://127.0.0.1:${httpPort}/nothing?q=secret`)).status, 404);
    const https = tlsConnect({
      host: '127.0.0.1',
      port: httpsPort,
      rejectUnauthorized: false,
      servername: 'mx.test.example',
    });
    await new Promise<void>((resolve, reject) => https.once('secureConnect', resolve).once('error', reject));
    https.resume();
    https.end('GET /x HTTP/1.1\r\nHost: mx.test.example\r\nConnection: close\r\n\r\n');
    await new Promise((r) => https.once('close', r));

    // JMAP: a method call, and a request that is not JSON.
    const jmap = (body: string) =>
      fetch(`http://127.0.0.1:${httpPort}/jmap/api`, {
        method: 'POST',
        headers: {
          authorization: `Basic ${Buffer.from(`alice@example.test:${PASSWORD}`).toString('base64')}`,
          'content-type': 'application/json',
        },
        body,
      });
    assert.equal((await jmap('{"using":[],"methodCalls":[["Core/echo",{},"0"]]}')).status, 200);
    assert.equal((await jmap('{')).status, 400);

    // Wait for the queue's first attempt (deferred), so every queue state has been through.
    await waitUntil('a deferred attempt', async () =>
      /arcline_queue_attempts_total\{result="deferred"/.test(
        await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(),
      ),
    );

    const text = await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text();
    const onHttp = await fetch(`http://127.0.0.1:${httpPort}/metrics`);
    assert.equal(onHttp.status, 200);
    assert.match(onHttp.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    assert.match(await onHttp.text(), /^arcline_smtp_replies_total\{/m);

    const at = (series: string) => sample(text, series) ?? 0;
    assert.ok(at('arcline_smtp_replies_total{service="smtp",command="CONNECT",class="2xx"}') >= 1, text);
    assert.ok(at('arcline_smtp_replies_total{service="smtp",command="RCPT",class="5xx"}') >= 1);
    assert.ok(at('arcline_smtp_replies_total{service="smtp",command="DATA",class="3xx"}') >= 1);
    assert.ok(at('arcline_smtp_replies_total{service="smtp",command="DATA",class="2xx"}') >= 1);
    assert.ok(at('arcline_smtp_replies_total{service="smtp",command="UNKNOWN",class="5xx"}') >= 1);
    assert.ok(at('arcline_smtp_replies_total{service="submission",command="AUTH",class="5xx"}') >= 1);
    assert.ok(at('arcline_smtp_replies_total{service="submission",command="AUTH",class="2xx"}') >= 1);
    assert.ok(at('arcline_smtp_transactions_total{service="smtp",result="accepted"}') >= 1);
    assert.ok(at('arcline_smtp_transactions_total{service="smtp",result="abandoned"}') >= 1);
    assert.ok(at('arcline_imap_commands_total{command="LOGIN",status="OK"}') >= 1);
    assert.ok(at('arcline_imap_commands_total{command="FETCH",status="OK"}') >= 1);
    assert.ok(at('arcline_imap_commands_total{command="UNKNOWN",status="BAD"}') >= 1);
    assert.ok(at('arcline_imap_sessions_total') >= 1);
    assert.ok(at('arcline_logins_total{service="imap",mechanism="LOGIN",result="ok"}') >= 1);
    assert.ok(at('arcline_logins_total{service="submission",mechanism="PLAIN",result="failed"}') >= 1);
    assert.ok(at('arcline_logins_total{service="submission",mechanism="PLAIN",result="ok"}') >= 1);
    assert.ok(at('arcline_tls_handshakes_total{service="smtp",version="TLSv1.3"}') >= 1);
    assert.ok(at('arcline_tls_handshakes_total{service="submission",version="TLSv1.3"}') >= 1);
    assert.ok(at('arcline_tls_handshakes_total{service="imap",version="TLSv1.3"}') >= 1);
    assert.ok(at('arcline_tls_handshakes_total{service="http",version="TLSv1.3"}') >= 1);
    assert.ok(at('arcline_tls_handshake_failures_total{service="imap"}') >= 1);
    assert.ok(at('arcline_jmap_method_calls_total{method="Core/echo",result="unknownMethod"}') >= 1);
    assert.ok(at('arcline_jmap_requests_refused_total{kind="notJSON"}') >= 1);
    assert.notEqual(sample(text, 'arcline_queue_recipients_by_state{state="deferred"}'), null);
    assert.notEqual(sample(text, 'arcline_queue_recipients_by_state{state="held"}'), null);
    // Bounded labels: no address, no user name, no command we do not know.
    assert.doesNotMatch(text, /@|XYZZY|FROB/);

    // Every family has a sample; promtool's checks pass.
    const families = [...text.matchAll(/^# TYPE (\S+) (\S+)$/gm)].map((m) => m[1] as string);
    // Not here: Node's libuv requests in flight (none at the moment of the scrape), the log
    // shipping drops, which exist with [log] syslog only (test/obs/syslog.test.ts), the milter
    // results, with [[milter]] only (test/filter/milter-replies.test.ts), and the blocklist
    // gauge, with [monitor] dnsbl only (test/defense/blocklist-monitor.test.ts), the JMAP push
    // relay, on a cluster only (test/jmap/push-relay.test.ts).
    const elsewhere = [
      'arcline_nodejs_active_requests',
      'arcline_log_dropped_total',
      'arcline_milter_results_total',
      'arcline_blocklist_listed',
      'arcline_jmap_push_relay_total',
    ];
    const empty = families.filter(
      (f) => !elsewhere.includes(f) && !new RegExp(`^${f}(_bucket|_sum|_count)?[{ ]`, 'm').test(text),
    );
    assert.deepEqual(empty, [], 'every family has a sample');
    const check = spawnSync('promtool', ['check', 'metrics'], { input: text, encoding: 'utf8' });
    assert.equal(check.error, undefined, 'promtool is installed (Debian package prometheus)');
    assert.equal(check.status, 0, `promtool check metrics:\n${check.stdout}${check.stderr}`);

    // The access lines, with their fixed fields (docs/logging.md).
    const smtpLine = await s.logged((l) => l.msg === 'smtp access' && l.result === 'accepted');
    assert.equal(smtpLine.protocol, 'smtp');
    assert.equal(smtpLine.client, '127.0.0.1');
    assert.equal(smtpLine.code, 250);
    assert.match(String(smtpLine.commands), /^MAIL:250 RCPT:550 RCPT:250 DATA:354 DATA:250$/);
    assert.ok(Number(smtpLine.bytes) > 20 && typeof smtpLine.duration_ms === 'number');
    assert.match(String(smtpLine.msg_id), /^m/);
    const rset = await s.logged((l) => l.msg === 'smtp access' && l.ended_by === 'RSET');
    assert.equal(rset.result, 'abandoned');
    const sub = await s.logged(
      (l) => l.msg === 'smtp access' && l.protocol === 'submission' && l.result === 'accepted',
    );
    assert.equal(sub.user, 'alice@example.test');
    const session = await s.logged((l) => l.msg === 'imap access');
    assert.equal(session.user, 'alice@example.test');
    assert.equal(session.client, '127.0.0.1');
    assert.equal(session.commands, 5);
    assert.ok(Number(session.bytes_in) > 0 && Number(session.bytes_out) > 0);
    const fetchLine = await s.logged((l) => l.msg === 'imap command' && l.command === 'FETCH');
    assert.equal(fetchLine.status, 'OK');
    assert.ok(Number(fetchLine.bytes_out) > 0);
    assert.equal(fetchLine.tag, undefined);
    const httpLine = await s.logged((l) => l.msg === 'http access' && l.path === '/nothing');
    assert.deepEqual(
      [httpLine.method, httpLine.status, httpLine.protocol, httpLine.client],
      ['GET', 404, 'http', '127.0.0.1'],
    );
    await s.logged((l) => l.msg === 'http access' && l.protocol === 'https' && l.path === '/x');
    assert.ok(!s.logs.some((l) => l.msg === 'http access' && String(l.path).includes('secret')));
  });
});
