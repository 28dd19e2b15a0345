// The DATA stages of the acceptance pipeline (src/smtp/accept/) as pure decisions: body
// checks from the reader's facts, hop count, the submission author stage, quota, the hygiene
// outcome, the trace prefix per target. Socket-level: hostile-input, hostile-headers,
// submission-headers and inbound tests.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { authorDecision, authorFields } from '../../src/smtp/accept/author.ts';
import { type BodyFacts, bodyChecks, hopCheck } from '../../src/smtp/accept/body.ts';
import type { Decision } from '../../src/smtp/accept/decision.ts';
import { type HygieneDecision, hygieneDecision, UNCHECKED } from '../../src/smtp/accept/hygiene.ts';
import { exceeds, localAccounts, messageQuota } from '../../src/smtp/accept/quota.ts';
import { signingDomain } from '../../src/smtp/accept/sign.ts';
import { received, targets } from '../../src/smtp/accept/trace.ts';
import { newTxn, type SmtpSession } from '../../src/smtp/context.ts';
import { headerFields } from '../../src/smtp/submission.ts';

const acct = (s: string) => s as AccountId;
const limits = { maxMessageSize: 1000, maxHeaderSize: 500 };
const clean: BodyFacts = { byteLength: 10, sizeExceeded: false, headerTooBig: false, nul: false, bareNewline: false };
const fields = (s: string) => headerFields(Buffer.from(s));

function replyOf(d: Decision | HygieneDecision): string {
  if (d.kind !== 'refuse') throw new Error(`expected a refusal, got ${d.kind}`);
  return `${d.reply.responseCode} ${d.reply.message}`;
}

test('body checks: size, header size, NUL, bare CR/LF, in that order', () => {
  assert.equal(bodyChecks(clean, limits).kind, 'continue');
  const all = { byteLength: 2000, sizeExceeded: true, headerTooBig: true, nul: true, bareNewline: true };
  assert.equal(replyOf(bodyChecks(all, limits)), '552 5.3.4 Message size exceeds fixed limit of 1000 bytes');
  assert.equal(
    replyOf(bodyChecks({ ...all, sizeExceeded: false }, limits)),
    '552 5.3.4 Message header size exceeds fixed limit of 500 bytes',
  );
  assert.match(replyOf(bodyChecks({ ...clean, nul: true, bareNewline: true }, limits)), /^554 5\.6\.0 .*NUL/);
  const bare = bodyChecks({ ...clean, bareNewline: true }, limits);
  assert.match(replyOf(bare), /^554 5\.6\.0 .*bare CR or LF/);
  assert.equal(bare.kind === 'refuse' && bare.level, 'warn');
});

test('hop count (RFC 5321 §6.3)', () => {
  const hops = (n: number) => fields(`${'Received: x\r\n'.repeat(n)}Subject: s\r\n`);
  assert.equal(hopCheck(hops(2), 3).kind, 'continue');
  const d = hopCheck(hops(3), 3);
  assert.match(replyOf(d), /^554 5\.4\.6 /);
  assert.deepEqual(d.kind === 'refuse' && d.fields, { hops: 3 });
});

test('author stage: exactly one From:, owned, Message-ID/Date added (RFC 6409)', () => {
  assert.match(replyOf(authorFields(fields('Subject: s\r\n'))), /^550 5\.6\.0 /);
  assert.match(replyOf(authorFields(fields('From: a@x.test\r\nFrom: b@x.test\r\n'))), /^550 5\.6\.0 /);
  const f = fields('From: "bob@evil.test" <a@x.test>\r\nSender: s@x.test\r\n');
  const a = authorFields(f);
  assert.equal(a.kind, 'continue');
  assert.deepEqual(a.kind === 'continue' && [...a.authors].sort(), ['a@x.test', 'bob@evil.test', 's@x.test']);
  const fresh = { id: 'm1', hostname: 'mx.x.test', date: new Date(Date.UTC(2026, 0, 2, 3, 4, 5)) };
  assert.match(replyOf(authorDecision(f, acct('a@x.test'), 'bob@evil.test', fresh)), /^553 5\.7\.1 From: /);
  const ok = authorDecision(f, acct('a@x.test'), null, fresh);
  assert.equal(
    ok.kind === 'continue' && ok.added,
    'Message-ID: <m1@mx.x.test>\r\nDate: Fri, 2 Jan 2026 03:04:05 +0000\r\n',
  );
  const has = fields('From: a@x.test\r\nMessage-ID: <q@x>\r\nDate: d\r\n');
  assert.equal(authorDecision(has, acct('a@x.test'), null, fresh).kind === 'continue' && '', '');
});

test('quota stage (RFC 9208 §5)', () => {
  assert.equal(exceeds(10, null, 100), false);
  assert.equal(exceeds(100, 100, 0), true, 'at the limit: full at RCPT');
  assert.equal(exceeds(99, 100, 0), false);
  assert.equal(exceeds(50, 100, 50), false);
  assert.equal(exceeds(50, 100, 51), true);
  assert.match(replyOf(messageQuota(true, 51)), /^552 5\.2\.2 /);
  assert.equal(messageQuota(false, 51).kind, 'continue');
  const txn = newTxn();
  txn.recipients.set('a@x', [acct('a@x'), acct('b@x')]);
  txn.recipients.set('list@x', [acct('b@x'), acct('c@x')]);
  assert.deepEqual([...localAccounts(txn)], ['a@x', 'b@x', 'c@x']);
});

test('hygiene stage: the verdict becomes the reply; deliver is handed on as it is', () => {
  const deliver = {
    kind: 'deliver' as const,
    header: 'Authentication-Results: x; none\r\n',
    junk: new Set<AccountId>(),
    cleanedHeader: null,
  };
  assert.equal(hygieneDecision(deliver), deliver);
  const r = hygieneDecision({
    kind: 'refuse',
    verdict: { kind: 'reject', reason: 'dmarc', code: 550, enhanced: '5.7.1', text: 'DMARC policy violation' },
  });
  assert.equal(replyOf(r), '550 5.7.1 DMARC policy violation');
  assert.equal(r.kind === 'refuse' && r.event, 'message rejected by policy');
  assert.equal(UNCHECKED.header, '');
});

test('signing stage: only with remote recipients, by the From: domain', () => {
  const f = fields('From: Alice <alice@Example.ORG>\r\n');
  assert.equal(signingDomain(f, 0), null);
  assert.equal(signingDomain(f, 1), 'example.org');
  assert.equal(signingDomain(fields('Subject: s\r\n'), 1), null);
});

test('trace stage: Received "for" only with one recipient; one prefix per account, Junk kept apart', () => {
  const session: SmtpSession = {
    id: 'c1',
    remoteAddress: '192.0.2.1',
    remotePort: 1,
    localPort: 25,
    helo: 'client.test',
    ehlo: true,
    secure: false,
    tlsInfo: null,
    user: null,
    mailFrom: 's@client.test',
    smtpUtf8: false,
    dsn: null,
    clientHostname: async () => null,
  };
  const txn = newTxn();
  txn.recipients.set('a@x.test', [acct('a@x.test')]);
  const date = new Date(Date.UTC(2026, 0, 2, 3, 4, 5));
  const one = received(session, txn, { byHost: 'mx.x.test', id: 'm1', rdns: 'c.test', auth: false, date });
  assert.match(
    one,
    /^Received: from client\.test \(c\.test \[192\.0\.2\.1\]\)\r\n\tby mx\.x\.test \(arcline\) with ESMTP id m1\r\n\tfor <a@x\.test>;/,
  );
  txn.remote.set('r@y.test', { address: 'r@y.test' });
  const two = received(session, txn, { byHost: 'mx.x.test', id: 'm1', rdns: null, auth: false, date });
  assert.doesNotMatch(two, /for </);
  const t = targets(new Set([acct('a@x.test'), acct('b@x.test')]), {
    returnPath: 's@client.test',
    trace: 'Received: r\r\n',
    added: 'Date: d\r\n',
    junk: new Set([acct('b@x.test')]),
  });
  assert.equal(t.length, 2);
  assert.equal(t[0]?.mailbox, undefined);
  assert.equal(t[1]?.mailbox, 'Junk');
  assert.equal(
    t[0]?.prefix.toString(),
    'Return-Path: <s@client.test>\r\nDelivered-To: a@x.test\r\nReceived: r\r\nDate: d\r\n',
  );
});
