// The MAIL and RCPT stages of the acceptance pipeline (src/smtp/accept/), as pure decisions
// from plain inputs: no socket, no directory. The socket-level behaviour is pinned by
// inbound.test.ts, submission.test.ts and protocol.test.ts.
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccountId, DomainName } from '../../src/core/ids.ts';
import type { Decision } from '../../src/smtp/accept/decision.ts';
import { greylistable, greylistDecision } from '../../src/smtp/accept/greylist.ts';
import { senderOwnership, senderSyntax } from '../../src/smtp/accept/mail.ts';
import { rateDecision } from '../../src/smtp/accept/rate.ts';
import {
  addRecipient,
  postmasterCandidates,
  recipientLimit,
  recipientQuota,
  recipientSyntax,
  resolution,
} from '../../src/smtp/accept/rcpt.ts';
import { newTxn } from '../../src/smtp/context.ts';

const acct = (s: string) => s as AccountId;
const principal = {
  accountId: acct('alice@example.org'),
  address: { local: 'alice', domain: 'example.org' as DomainName },
};

function replyOf(d: Decision): string {
  assert.equal(d.kind, 'refuse');
  if (d.kind !== 'refuse') throw new Error('unreachable');
  return `${d.reply.responseCode} ${d.reply.message}`;
}

test('mail stage: null sender, syntax, SMTPUTF8 need', () => {
  const n = senderSyntax('', false);
  assert.equal(n.kind, 'continue');
  assert.equal(n.kind === 'continue' && n.sender, null);
  const ok = senderSyntax('Bob@Example.COM', false);
  assert.equal(ok.kind, 'continue');
  assert.equal(ok.kind === 'continue' && ok.sender?.domain, 'example.com');
  assert.match(replyOf(senderSyntax('not an address', false)), /^501 5\.1\.7 /);
  assert.match(replyOf(senderSyntax('jösé@example.org', false)), /^553 5\.6\.7 /);
  assert.equal(senderSyntax('jösé@example.org', true).kind, 'continue');
});

test('mail stage: submission ownership (RFC 6409 §6.1)', () => {
  const sender = { local: 'alice', domain: 'example.org' as DomainName };
  assert.match(replyOf(senderOwnership(null, sender, false, 'alice@example.org')), /^530 5\.7\.0 /);
  assert.equal(senderOwnership(principal, sender, true, 'alice@example.org').kind, 'continue');
  assert.equal(senderOwnership(principal, null, false, '').kind, 'continue', 'null sender allowed');
  const d = senderOwnership(principal, sender, false, 'mallory@example.org');
  assert.match(replyOf(d), /^553 5\.7\.1 /);
  assert.equal(d.kind === 'refuse' && d.level, 'warn');
  assert.deepEqual(d.kind === 'refuse' && d.fields, { user: 'alice@example.org', from: 'mallory@example.org' });
});

test('rcpt stage: postmaster (RFC 5321 §4.1.1.3), syntax, SMTPUTF8', () => {
  assert.deepEqual(postmasterCandidates('PostMaster', 'mx.example.org'), ['example.org', 'mx.example.org']);
  assert.equal(postmasterCandidates('postmaster@example.org', 'mx.example.org'), null);
  assert.equal(postmasterCandidates('postmasters', 'mx.example.org'), null);
  const p = recipientSyntax('Postmaster', false, 'postmaster@example.org');
  assert.equal(p.kind === 'continue' && p.key, 'postmaster@example.org');
  assert.match(replyOf(recipientSyntax('Postmaster', false)), /^501 5\.1\.3 /, 'no local domain: syntax error');
  assert.match(replyOf(recipientSyntax('a@@b', false)), /^501 5\.1\.3 /);
  assert.match(replyOf(recipientSyntax('ü@example.org', false)), /^553 5\.6\.7 /);
  const u = recipientSyntax('Bob@EXAMPLE.org', false);
  assert.equal(u.kind === 'continue' && u.key, 'bob@example.org');
});

test('rcpt stage: max_recipients counts every RCPT (RFC 5321 §4.5.3.1.8)', () => {
  assert.equal(recipientLimit(0, 1).kind, 'continue');
  assert.match(replyOf(recipientLimit(1, 1)), /^452 4\.5\.3 /);
  const txn = newTxn();
  const r = { kind: 'continue' as const, accounts: [acct('bob@example.org')], remote: [], via: null };
  addRecipient(txn, 'bob@example.org', r);
  addRecipient(txn, 'bob@example.org', r);
  assert.equal(txn.accepted, 2);
  assert.equal(txn.recipients.size, 1);
  assert.match(replyOf(recipientLimit(txn.accepted, 2)), /^452 /);
});

test('rcpt stage: resolution -> relay denied, unknown user, accept, forward', () => {
  const address = { local: 'x', domain: 'elsewhere.test' as DomainName };
  const relay = resolution({ kind: 'unknown-domain' }, address, 'x@elsewhere.test', false);
  assert.match(replyOf(relay), /^550 5\.7\.1 Relay access denied/);
  assert.equal(relay.kind === 'refuse' && relay.event, 'rcpt refused: not a local domain');
  assert.match(replyOf(resolution({ kind: 'unknown-user' }, address, 'k', false)), /^550 5\.1\.1 /);
  // Submission: anywhere, through the queue; not a local recipient.
  const sub = resolution({ kind: 'unknown-domain' }, address, 'x@elsewhere.test', true);
  assert.equal(sub.kind, 'continue');
  const txn = newTxn();
  if (sub.kind === 'continue') addRecipient(txn, 'x@elsewhere.test', sub);
  assert.deepEqual([...txn.remote.keys()], ['x@elsewhere.test']);
  assert.equal(txn.recipients.size, 0);
  // An alias with a local member and a forward outside, twice: the forward is queued once.
  const fwd = { local: 'ext', domain: 'other.test' as DomainName };
  const alias = resolution(
    { kind: 'deliver', accounts: [acct('bob@example.org')], remote: [fwd] },
    address,
    'list@example.org',
    false,
  );
  assert.equal(alias.kind, 'continue');
  if (alias.kind === 'continue') {
    addRecipient(txn, 'list@example.org', alias);
    addRecipient(txn, 'list2@example.org', alias);
  }
  assert.deepEqual([...txn.remote.keys()], ['x@elsewhere.test', 'ext@other.test']);
  assert.deepEqual([...txn.recipients.keys()], ['list@example.org', 'list2@example.org']);
  // An alias that only forwards is still a local recipient (it is logged and counted as one).
  const only = resolution({ kind: 'deliver', accounts: [], remote: [fwd] }, address, 'f@example.org', false);
  if (only.kind === 'continue') addRecipient(txn, 'f@example.org', only);
  assert.deepEqual(txn.recipients.get('f@example.org'), []);
});

test('rcpt stage: quota at RCPT (RFC 9208 §5)', () => {
  assert.equal(recipientQuota(false, 'bob@example.org').kind, 'continue');
  assert.match(replyOf(recipientQuota(true, 'bob@example.org')), /^552 5\.2\.2 /);
});

describe('greylist and rate stages (accept/greylist.ts, accept/rate.ts)', () => {
  test('greylisting: a defer is 451 4.7.1 with the stable text; postmaster and abuse are never greylisted', () => {
    const d = greylistDecision({ kind: 'defer', retryInSeconds: 300 }, '192.0.2.1', 'a@b.example', 'c@d.example');
    assert.equal(d.kind, 'refuse');
    if (d.kind === 'refuse') {
      assert.equal(d.reply.responseCode, 451);
      assert.equal(d.reply.message, '4.7.1 Greylisted, please try again later');
    }
    assert.equal(greylistDecision({ kind: 'pass' }, '192.0.2.1', '', 'c@d.example').kind, 'continue');
    assert.equal(greylistable('Postmaster@example.test'), false);
    assert.equal(greylistable('abuse@example.test'), false);
    assert.equal(greylistable('bob@example.test'), true);
  });

  test('rate: over a limit is 451 4.7.1, message and recipient texts', () => {
    const m = rateDecision('messages_hour', 'message', 'alice');
    const r = rateDecision('recipients_day', 'recipient', 'alice');
    assert.equal(m.kind === 'refuse' && m.reply.message, '4.7.1 Too many messages from this account, try again later');
    assert.equal(
      r.kind === 'refuse' && r.reply.message,
      '4.7.1 Too many recipients from this account, try again later',
    );
    assert.equal(rateDecision(null, 'message', 'alice').kind, 'continue');
  });
});
