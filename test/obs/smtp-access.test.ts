// The SMTP access line and reply labels (src/smtp/access.ts) from plain inputs: the command
// summary stays bounded, unknown verbs collapse into one label, and each way a transaction ends
// gives its result.

import assert from 'node:assert/strict';
import { Writable } from 'node:stream';
import { test } from 'node:test';
import { pino } from 'pino';
import { registry } from '../../src/core/metrics.ts';
import { SmtpAccess } from '../../src/smtp/access.ts';

function setUp(user: string | null = null) {
  const lines: Record<string, unknown>[] = [];
  const sink = new Writable({
    write(chunk: Buffer, _e, cb) {
      for (const l of chunk.toString().split('\n')) if (l) lines.push(JSON.parse(l));
      cb();
    },
  });
  const log = pino({ level: 'info' }, sink);
  const access = new SmtpAccess('submission', log, { remoteAddress: '192.0.2.9', user });
  const step = (verb: string, ...codes: number[]) => {
    access.command(verb);
    for (const c of codes) access.reply(c);
  };
  return { lines, access, step, log };
}

const flushed = (log: pino.Logger) => new Promise<void>((r) => setImmediate(() => r(log.flush())));

test('repeated steps are counted, the summary is bounded, the DATA reply ends the transaction', async () => {
  const { lines, access, step, log } = setUp('alice@example.test');
  step('MAIL', 250);
  for (let i = 0; i < 3; i++) step('RCPT', 250);
  step('RCPT', 550);
  step('DATA', 354);
  access.dataBytes(100);
  access.messageId('m1');
  access.dataBytes(20);
  step('DATA', 250);
  // A second transaction with more distinct steps than the summary keeps.
  step('MAIL', 250);
  for (let i = 0; i < 40; i++) step('RCPT', i % 2 ? 250 : 452);
  step('QUIT', 221);
  await flushed(log);
  const [first, second] = lines;
  assert.deepEqual(
    [first?.commands, first?.result, first?.code, first?.bytes, first?.msg_id, first?.user, first?.client],
    ['MAIL:250 RCPT:250x3 RCPT:550 DATA:354 DATA:250', 'accepted', 250, 120, 'm1', 'alice@example.test', '192.0.2.9'],
  );
  const steps = String(second?.commands).split(' ');
  assert.equal(steps.length, 25);
  assert.equal(steps.at(-1), '...');
  assert.deepEqual([second?.result, second?.ended_by, second?.code, second?.bytes], ['abandoned', 'QUIT', 0, 0]);
  assert.equal(second?.msg_id, undefined);
});

test('RSET, EHLO, a 421 of the server and the connection end close a transaction; unknown verbs are one label', async () => {
  const { lines, access, step, log } = setUp();
  step('EHLO', 250); // no transaction: no line
  step('MAIL', 250);
  step('RSET', 250);
  step('MAIL', 250);
  step('EHLO', 250);
  step('MAIL', 250);
  step('CONNECT', 421);
  step('MAIL', 250);
  access.closed();
  step('XYZZY', 500);
  step('frob', 500);
  await flushed(log);
  assert.deepEqual(
    lines.map((l) => [l.ended_by, l.result]),
    [
      ['RSET', 'abandoned'],
      ['EHLO', 'abandoned'],
      ['CONNECT', 'abandoned'],
      ['CLOSE', 'abandoned'],
    ],
  );
  const text = await registry.getSingleMetricAsString('arcline_smtp_replies_total');
  assert.match(text, /^arcline_smtp_replies_total\{service="submission",command="UNKNOWN",class="5xx"\} 2$/m);
  assert.match(text, /^arcline_smtp_replies_total\{service="submission",command="CONNECT",class="4xx"\} 1$/m);
  assert.doesNotMatch(text, /XYZZY|frob/);
});

test('with [log] access = "off" (no logger) the replies are still counted', async () => {
  const access = new SmtpAccess('smtp', null, { remoteAddress: '192.0.2.9', user: null });
  access.command('MAIL');
  access.reply(250);
  access.command('DATA');
  access.reply(354);
  access.reply(554);
  const text = await registry.getSingleMetricAsString('arcline_smtp_transactions_total');
  assert.match(text, /^arcline_smtp_transactions_total\{service="smtp",result="refused"\} 1$/m);
});
