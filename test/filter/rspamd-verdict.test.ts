// The pure parts of the rspamd stage: rspamd's reply -> verdict (filter/rspamd-verdict.ts), the
// header edits it asks for (filter/header-edit.ts), and verdict -> SMTP decision
// (smtp/accept/spam.ts). The wire behaviour against the real rspamd is test/smtp/spam.test.ts.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import type { GreylistAnswer, GreylistTriplet } from '../../src/defense/types.ts';
import { editHeader, subjectField } from '../../src/filter/header-edit.ts';
import { type RspamdReply, rspamdReplySchema } from '../../src/filter/rspamd.ts';
import { foldedValue, scanLabel, spamVerdict, statusField } from '../../src/filter/rspamd-verdict.ts';
import { greylisted, junkAccounts, type ScanResult, spamDecision } from '../../src/smtp/accept/spam.ts';

const reply = (r: Partial<RspamdReply>): RspamdReply =>
  rspamdReplySchema.parse({ action: 'no action', score: 1.2, required_score: 15, symbols: {}, ...r });
const opts = { statusHeader: true };

describe('rspamd reply -> verdict', () => {
  test('each action', () => {
    assert.deepEqual(spamVerdict(reply({ action: 'reject', messages: { smtp_message: 'Gtube pattern' } }), opts), {
      kind: 'reject',
      text: 'Gtube pattern',
    });
    assert.deepEqual(spamVerdict(reply({ action: 'soft reject' }), opts), { kind: 'soft-reject', text: null });
    assert.deepEqual(spamVerdict(reply({ action: 'greylist' }), opts), { kind: 'greylist' });
    const add = spamVerdict(reply({ action: 'add header', score: 7.3 }), opts);
    assert.equal(add.kind === 'deliver' && add.junk, true);
    const rewrite = spamVerdict(reply({ action: 'rewrite subject', subject: '*** SPAM *** hi' }), opts);
    assert.equal(rewrite.kind === 'deliver' && rewrite.subject, '*** SPAM *** hi');
    assert.equal(rewrite.kind === 'deliver' && rewrite.junk, true);
    const none = spamVerdict(reply({}), opts);
    assert.equal(none.kind === 'deliver' && none.junk, false);
    // An action of the operator's own is delivered as "no action", and counted apart.
    const custom = spamVerdict(reply({ action: 'discard' }), opts);
    assert.equal(custom.kind === 'deliver' && custom.junk, false);
    assert.equal(scanLabel('discard'), 'other');
    assert.equal(scanLabel('soft reject'), 'soft_reject');
  });

  test('the SMTP text of rspamd is one printable ASCII line, bounded', () => {
    const v = spamVerdict(
      reply({ action: 'reject', messages: { smtp_message: `bad\r\n250 ok\u00e9${'x'.repeat(500)}` } }),
      opts,
    );
    assert.equal(v.kind, 'reject');
    if (v.kind !== 'reject' || v.text === null) return;
    assert.doesNotMatch(v.text, /[\r\n]/);
    assert.match(v.text, /^bad 250 ok x+$/);
    assert.ok(v.text.length <= 200);
  });

  test('X-Spam-Status lists the symbols sorted, folded, without strange names', () => {
    const symbols: Record<string, { name: string; score: number }> = {};
    for (let i = 0; i < 30; i++) symbols[`SYMBOL_NUMBER_${String(i).padStart(2, '0')}`] = { name: 'x', score: 0 };
    symbols['BAD NAME\r\nX-Injected: 1'] = { name: 'x', score: 0 };
    const f = statusField(reply({ action: 'add header', score: 7.25, symbols }), true);
    assert.match(
      f,
      /^X-Spam-Status: Yes, score=7\.25 required=15\.00 action="add header"\r\n\ttests=SYMBOL_NUMBER_00,/,
    );
    assert.doesNotMatch(f, /Injected/);
    for (const line of f.split('\r\n')) assert.ok(line.length <= 78, line);
    assert.ok(f.endsWith('SYMBOL_NUMBER_29\r\n'));
    assert.equal(
      statusField(reply({}), false),
      'X-Spam-Status: No, score=1.20 required=15.00 action="no action"\r\n\ttests=none\r\n',
    );
  });

  test('milter.add_headers: every form rspamd uses, checked names, folded values, ours never', () => {
    const v = spamVerdict(
      reply({
        milter: {
          add_headers: {
            'X-Rspamd-Queue-Id': { value: 'm123', order: -1 },
            'X-Plain': 'a\nb',
            'X-Many': [{ value: 'one' }, 'two'],
            'Bad Name': 'x',
            'X-Spam-Status': 'No, forged by a rspamd rule',
            'X-Empty': '\r\n',
          },
          remove_headers: { 'X-Spam': 0, 'Bad:Name': 1, 'X-Old': -1 },
        },
      }),
      { statusHeader: false },
    );
    assert.equal(v.kind, 'deliver');
    if (v.kind !== 'deliver') return;
    assert.equal(v.add, 'X-Plain: a\r\n\tb\r\nX-Many: one\r\nX-Many: two\r\nX-Rspamd-Queue-Id: m123\r\n');
    assert.deepEqual(v.remove, [
      { name: 'x-spam-status', order: 0 },
      { name: 'x-spam', order: 0 },
      { name: 'x-old', order: -1 },
    ]);
    assert.equal(foldedValue('x'.repeat(9000)), null);
  });

  test("a reply that is not rspamd's is refused by the schema", () => {
    assert.equal(rspamdReplySchema.safeParse({ action: 'reject' }).success, false);
    assert.equal(rspamdReplySchema.safeParse({ action: 1, score: 1, required_score: 1 }).success, false);
    assert.equal(rspamdReplySchema.safeParse({ action: 'x'.repeat(65), score: 1, required_score: 1 }).success, false);
  });
});

describe('header edits', () => {
  const block = Buffer.from(
    'Received: one\r\nX-Spam: yes\r\nSubject: hello\r\n  folded\r\nX-Spam: again\r\n X-Spam: not a field\r\nTo: b@example.test\r\nX-Spam: third\r\n',
    'latin1',
  );

  test('rspamd orders: 0 all, n from the top, -n from the end; folded lines go with their field', () => {
    assert.equal(
      editHeader(block, { remove: [{ name: 'x-spam', order: 0 }], subject: null })?.toString('latin1'),
      'Received: one\r\nSubject: hello\r\n  folded\r\nTo: b@example.test\r\n',
    );
    assert.equal(
      editHeader(block, { remove: [{ name: 'x-spam', order: 2 }], subject: null })?.toString('latin1'),
      'Received: one\r\nX-Spam: yes\r\nSubject: hello\r\n  folded\r\nTo: b@example.test\r\nX-Spam: third\r\n',
    );
    assert.equal(
      editHeader(block, { remove: [{ name: 'x-spam', order: -1 }], subject: null })?.toString('latin1'),
      'Received: one\r\nX-Spam: yes\r\nSubject: hello\r\n  folded\r\nX-Spam: again\r\n X-Spam: not a field\r\nTo: b@example.test\r\n',
    );
    assert.equal(editHeader(block, { remove: [{ name: 'x-spam', order: 7 }], subject: null }), null);
    assert.equal(editHeader(block, { remove: [{ name: 'x-absent', order: 0 }], subject: null }), null);
  });

  test('the Subject is replaced in place, a second one removed, a missing one added', () => {
    const two = Buffer.from('Subject: a\r\nFrom: x@y\r\nSubject: b\r\n');
    assert.equal(
      editHeader(two, { remove: [], subject: '*** SPAM *** a' })?.toString(),
      'Subject: *** SPAM *** a\r\nFrom: x@y\r\n',
    );
    assert.equal(
      editHeader(Buffer.from('From: x@y\r\n'), { remove: [], subject: 'new' })?.toString(),
      'From: x@y\r\nSubject: new\r\n',
    );
  });

  test('a non-ASCII Subject becomes RFC 2047 encoded words of at most 75 characters', () => {
    const s = `*** SPAM *** ${'Grüße aus Köln '.repeat(6)}`;
    const f = subjectField(s);
    const words = [...f.matchAll(/=\?UTF-8\?B\?([A-Za-z0-9+/=]+)\?=/g)];
    assert.ok(words.length > 1);
    for (const w of words) assert.ok(w[0].length <= 75);
    assert.equal(words.map((w) => Buffer.from(w[1] ?? '', 'base64').toString('utf8')).join(''), s);
    assert.equal(subjectField('plain'), 'Subject: plain\r\n');
  });
});

describe('verdict -> SMTP decision', () => {
  const head = Buffer.from('Subject: hi\r\nX-Spam-Status: No, forged\r\n');
  const verdict = (r: Partial<RspamdReply>, greylisted = false): ScanResult => ({
    kind: 'verdict',
    verdict: spamVerdict(reply(r), opts),
    greylisted,
  });

  test('port 25', () => {
    const rej = spamDecision(verdict({ action: 'reject' }), head, false);
    assert.equal(
      rej.kind === 'refuse' && `${rej.reply.responseCode} ${rej.reply.message}`,
      '550 5.7.1 Message rejected as spam',
    );
    const soft = spamDecision(verdict({ action: 'soft reject', messages: { smtp_message: 'Try later' } }), head, false);
    assert.equal(
      soft.kind === 'refuse' && `${soft.reply.responseCode} ${soft.reply.message}`,
      '451 4.7.1 Message deferred by the spam filter, try again later: Try later',
    );
    const grey = spamDecision(verdict({ action: 'greylist' }, true), head, false);
    assert.equal(
      grey.kind === 'refuse' && `${grey.reply.responseCode} ${grey.reply.message}`,
      '451 4.7.1 Greylisted, please try again later',
    );
    const passed = spamDecision(verdict({ action: 'greylist' }, false), head, false);
    assert.equal(passed.kind, 'continue');
    const add = spamDecision(verdict({ action: 'add header' }), head, false);
    assert.equal(add.kind === 'continue' && add.junk, true);
    assert.equal(add.kind === 'continue' && add.head?.toString(), 'Subject: hi\r\n'); // the forged one is gone
    assert.match(add.kind === 'continue' ? add.header : '', /^X-Spam-Status: Yes/);
  });

  test('submission: refusals apply, the rest delivers unchanged but for a forged X-Spam-Status', () => {
    const rej = spamDecision(verdict({ action: 'reject' }), head, true);
    assert.equal(rej.kind === 'refuse' && rej.reply.responseCode, 550);
    for (const action of ['add header', 'rewrite subject', 'greylist']) {
      const d = spamDecision(verdict({ action, subject: 'x' }, true), head, true);
      assert.equal(d.kind, 'continue', action);
      if (d.kind !== 'continue') continue;
      assert.equal(d.junk, false);
      assert.equal(d.header, '');
      assert.equal(d.head?.toString(), 'Subject: hi\r\n');
    }
  });

  test('rspamd failing: accept delivers as received, tempfail answers 451 4.7.1', () => {
    const open = spamDecision({ kind: 'failed', error: 'rspamd timed out', policy: 'accept' }, head, false);
    assert.equal(open.kind, 'continue');
    const closed = spamDecision({ kind: 'failed', error: 'rspamd timed out', policy: 'tempfail' }, head, false);
    assert.equal(
      closed.kind === 'refuse' && `${closed.reply.responseCode} ${closed.reply.message}`,
      '451 4.7.1 Spam filter unavailable, try again later',
    );
  });

  test("Junk extends the hygiene stage's set", () => {
    const a = 'a' as AccountId;
    const b = 'b' as AccountId;
    const h = new Set([a]);
    assert.equal(junkAccounts(h, new Set([a, b]), false), h);
    assert.deepEqual([...junkAccounts(h, new Set([a, b]), true)].sort(), [a, b]);
  });
});

describe("rspamd's greylist action and our greylisting", () => {
  // A Greylister of the interface's contract (src/defense/types.ts) with a clock of its own:
  // each triplet deferred until it was seen `delay` ticks earlier.
  const greylister = (delay: number) => {
    const firstSeen = new Map<string, number>();
    let now = 0;
    const calls: { key: string; force: boolean }[] = [];
    return {
      calls,
      tick: () => {
        now += 1;
      },
      g: {
        async check(t: GreylistTriplet, o?: { readonly force?: boolean }): Promise<GreylistAnswer> {
          const key = `${t.ip}/${t.sender}/${t.recipient}`;
          calls.push({ key, force: o?.force === true });
          const seen = firstSeen.get(key) ?? now;
          firstSeen.set(key, seen);
          return now - seen >= delay ? { kind: 'pass' } : { kind: 'defer', retryInSeconds: 300 };
        },
      },
    };
  };
  const session = { remoteAddress: '192.0.2.7', mailFrom: 'a@remote.example' };

  test('without greylisting: always deferred', async () => {
    assert.equal(await greylisted(undefined, session, ['b@example.test']), true);
  });

  test('forced, every recipient asked at once, so the retry passes them all', async () => {
    const gl = greylister(1);
    assert.equal(await greylisted(gl.g, session, ['b@example.test', 'c@example.test']), true);
    assert.deepEqual(
      gl.calls.map((c) => c.force),
      [true, true],
    );
    gl.tick();
    assert.equal(await greylisted(gl.g, session, ['b@example.test', 'c@example.test']), false);
  });
});
