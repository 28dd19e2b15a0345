// Sieve at delivery end to end (docs/sieve.md "Sieve at delivery"), over real sockets only: mail
// arrives on port 25 (two inbound threads, so the hand-over to the main thread is exercised),
// the recipient's active script runs, and the outcome is seen where a user sees it: the folder
// and flags over IMAP (imapflow), a vacation reply, a redirected copy and a rejection notice at a
// remote MX on loopback (found through a real DNS server). The last suite checks that a
// redirected copy leaves with an SRS sender that passes SPF at a second arcline.

import assert from 'node:assert/strict';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { ImapFlow } from 'imapflow';
import type { AccountId } from '../../src/core/ids.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { imapflowClient } from '../harness/imap-client.ts';
import { type FakeMx, type ReceivedMail, startFakeMx } from '../harness/mx.ts';
import { type ForwardingPair, startForwardingPair } from '../harness/next-hop.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { transaction } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

const ALICE = 'alice@example.test' as AccountId;
const BOB = 'bob@example.test' as AccountId;

function message(o: { from?: string; to?: string; subject: string; extra?: string }): string {
  const id = o.subject.replace(/\W/g, '');
  return (
    `From: ${o.from ?? 'Carol <carol@remote.test>'}\r\nTo: ${o.to ?? 'alice@example.test'}\r\n` +
    `Subject: ${o.subject}\r\nDate: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <${id}@remote.test>\r\n` +
    `${o.extra ?? ''}\r\nHello.\r\n`
  );
}

const send = transaction;

async function activate(t: TestServer, account: AccountId, script: string): Promise<void> {
  await t.admin.sieve.put(account, 'main', Buffer.from(script));
  await t.admin.sieve.setActive(account, 'main');
}

function mailsWith(mx: FakeMx, text: string, n = 1): Promise<ReceivedMail[]> {
  return waitUntil(`${n} mail(s) with "${text}" at the remote MX`, async () => {
    const m = mx.mails.filter((x) => x.data.toString().includes(text));
    return m.length >= n ? m : null;
  });
}

describe('Sieve at delivery', () => {
  let dns: TestDnsServer;
  let mx: FakeMx;
  let t: TestServer;
  const clients: ImapFlow[] = [];

  before(async () => {
    mx = await startFakeMx();
    dns = await startTestDns([
      { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
      { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
    ]);
    t = await startTestServer({
      smtp: 'threads = 2',
      extra: `[delivery]\nport = ${mx.port}\nretry_schedule = ["300ms"]\n[dns]\nservers = ["${dns.address}"]`,
    });
  });
  after(async () => {
    for (const c of clients) await c.logout().catch(() => {});
    await t?.stop();
    await mx?.close();
    await dns?.close();
  });

  /** Messages in a mailbox (STATUS). */
  const count = async (c: ImapFlow, box: string) => {
    const st = await c.status(box, { messages: true });
    return st ? (st.messages ?? 0) : -1;
  };

  const imap = async (user: string) => {
    const c = await imapflowClient(t.imapPort, user);
    clients.push(c);
    return c;
  };

  test('fileinto with flags: the message is in the folder with its flags, seen over IMAP', async () => {
    await activate(
      t,
      ALICE,
      'require ["fileinto", "imap4flags", "mailbox"];\r\n' +
        'if header :contains "subject" "invoice" {\r\n' +
        '  addflag "\\\\Flagged";\r\n  fileinto :create :flags ["$Work", "\\\\Seen"] "Work.Invoices";\r\n  stop;\r\n}\r\n' +
        'if header :contains "subject" "urgent" { addflag "\\\\Flagged"; }\r\n',
    );
    const r = await send(t.port, 'carol@remote.test', [ALICE], message({ subject: 'your invoice 42' }));
    assert.equal(r.code, 250);
    const c = await imap(ALICE);
    const list = await c.list();
    assert.ok(
      list.some((m) => m.path === 'Work.Invoices'),
      'the folder was created (:create)',
    );
    await c.mailboxOpen('Work.Invoices');
    const msgs: { subject: string; flags: string[] }[] = [];
    for await (const m of c.fetch('1:*', { flags: true, envelope: true })) {
      msgs.push({
        subject: m.envelope?.subject ?? '',
        flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent').sort(),
      });
    }
    // RFC 5232 §5: :flags gives the copy exactly these flags; the internal variable (\Flagged,
    // from addflag) is for the actions without :flags (test below: implicit keep).
    assert.deepEqual(msgs, [{ subject: 'your invoice 42', flags: ['$Work', '\\Seen'] }]);
    assert.equal(await count(c, 'INBOX'), 0, 'no copy in INBOX: fileinto cancelled the implicit keep');
  });

  test('the implicit keep files into INBOX with the flags the script set (RFC 5232 §3)', async () => {
    assert.equal((await send(t.port, 'carol@remote.test', [ALICE], message({ subject: 'hello there' }))).code, 250);
    assert.equal((await send(t.port, 'carol@remote.test', [ALICE], message({ subject: 'urgent: call me' }))).code, 250);
    const c = await imap(ALICE);
    await c.mailboxOpen('INBOX');
    const msgs: { subject: string; flags: string[] }[] = [];
    for await (const m of c.fetch('1:*', { flags: true, envelope: true })) {
      msgs.push({ subject: m.envelope?.subject ?? '', flags: [...(m.flags ?? [])].filter((f) => f !== '\\Recent') });
    }
    assert.deepEqual(msgs, [
      { subject: 'hello there', flags: [] },
      { subject: 'urgent: call me', flags: ['\\Flagged'] },
    ]);
  });

  test('fileinto a missing folder without :create keeps the message in INBOX', async () => {
    await activate(t, BOB, 'require "fileinto";\r\nfileinto "Nowhere";\r\n');
    const r = await send(t.port, 'carol@remote.test', [BOB], message({ to: BOB, subject: 'to nowhere' }));
    assert.equal(r.code, 250);
    await t.logged((l) => l.msg === 'sieve: fileinto a missing mailbox: kept' && l.account === BOB);
    const c = await imap(BOB);
    assert.equal(await count(c, 'INBOX'), 1);
    assert.equal(
      (await c.list()).some((m) => m.path === 'Nowhere'),
      false,
    );
  });

  test('a run-time error keeps the message and is logged', async () => {
    // Five distinct redirects: over Pigeonhole's sieve_max_redirects (4), a run-time error.
    const redirects = [1, 2, 3, 4, 5].map((i) => `redirect "r${i}@remote.test";`).join('\r\n');
    await activate(t, BOB, `${redirects}\r\n`);
    const r = await send(t.port, 'carol@remote.test', [BOB], message({ to: BOB, subject: 'too many redirects' }));
    assert.equal(r.code, 250);
    await t.logged((l) => l.msg === 'sieve: run-time error: kept' && l.account === BOB);
    const c = await imap(BOB);
    assert.equal(await count(c, 'INBOX'), 2);
    assert.equal(
      mx.mails.some((m) => m.to.some((a) => a.startsWith('r1@'))),
      false,
      'nothing was redirected',
    );
  });

  test('discard: nothing is stored', async () => {
    await activate(
      t,
      BOB,
      'require "reject";\r\nif header :is "subject" "discard me" { discard; stop; }\r\nreject "I do not want this";\r\n',
    );
    assert.equal(
      (await send(t.port, 'carol@remote.test', [BOB], message({ to: BOB, subject: 'discard me' }))).code,
      250,
    );
    await t.logged((l) => l.msg === 'sieve' && l.account === BOB && JSON.stringify(l.actions) === '["discard"]');
    const c = await imap(BOB);
    assert.equal(await count(c, 'INBOX'), 2, 'not stored');
  });

  test('reject: refused at DATA when it is the only recipient (RFC 5429 §2.1), else a notice', async () => {
    // Bob's script (above) rejects everything else.
    const r = await send(t.port, 'carol@remote.test', [BOB], message({ to: BOB, subject: 'reject me' }));
    assert.equal(r.code, 550);
    assert.match(r.text, /^550 5\.7\.1 I do not want this$/);
    // With another recipient who takes it, the message is accepted and the sender told.
    const both = await send(t.port, 'carol@remote.test', [BOB, ALICE], message({ to: BOB, subject: 'reject me too' }));
    assert.equal(both.code, 250);
    const [notice] = await mailsWith(mx, 'I do not want this');
    assert.ok(notice);
    assert.equal(notice.from, '', 'the notice has the null sender');
    assert.deepEqual(notice.to, ['carol@remote.test']);
    assert.match(notice.data.toString(), /Content-Type: multipart\/report; report-type=delivery-status/);
    assert.match(notice.data.toString(), /Status: 5\.7\.1/);
    assert.match(notice.data.toString(), /Final-Recipient: rfc822; ?bob@example\.test/i);
    assert.equal(mx.mails.filter((m) => m.data.toString().includes('I do not want this')).length, 1);
    const c = await imap(BOB);
    assert.equal(await count(c, 'INBOX'), 2, 'neither was stored for bob');
  });

  test('vacation: one reply per sender per period, signed, auto-replied, never to a list', async () => {
    await activate(
      t,
      ALICE,
      'require "vacation";\r\nvacation :days 7 :subject "Away" :from "alice@example.test" "I am away until Monday.";\r\n',
    );
    for (const subject of ['first question', 'second question']) {
      const r = await send(t.port, 'dave@remote.test', [ALICE], message({ from: 'dave@remote.test', subject }));
      assert.equal(r.code, 250);
    }
    const [reply] = await mailsWith(mx, 'I am away until Monday.');
    assert.ok(reply);
    assert.equal(reply.from, '');
    assert.deepEqual(reply.to, ['dave@remote.test']);
    const text = reply.data.toString();
    assert.match(text, /^Subject: Away\r$/m);
    assert.match(text, /^Auto-Submitted: auto-replied\r$/m);
    assert.match(text, /^In-Reply-To: <firstquestion@remote\.test>\r$/m);
    assert.match(text, /^DKIM-Signature: .*d=example\.test/m);
    await t.logged((l) => l.msg === 'sieve: no vacation reply' && l.why === 'already-replied');
    // A list message gets none either.
    const r = await send(
      t.port,
      'list-bounces@remote.test',
      [ALICE],
      message({ from: 'erin@remote.test', subject: 'list post', extra: 'List-Id: <talk.remote.test>\r\n' }),
    );
    assert.equal(r.code, 250);
    await t.logged((l) => l.msg === 'sieve: no vacation reply' && l.why === 'mailing-list');
    assert.equal(mx.mails.filter((m) => m.data.toString().includes('I am away until Monday.')).length, 1);
    // A :from that is not the user's own address is not used: the reply would forge it.
    await activate(t, ALICE, 'require "vacation";\r\nvacation :from "The CEO <ceo@bank.test>" "Out of office.";\r\n');
    assert.equal(
      (await send(t.port, 'gina@remote.test', [ALICE], message({ from: 'gina@remote.test', subject: 'hi' }))).code,
      250,
    );
    const [other] = await mailsWith(mx, 'Out of office.');
    assert.match(other?.data.toString() ?? '', /^From: <alice@example\.test>\r$/m);
  });

  test('redirect to a local address that does not exist keeps the message', async () => {
    await activate(t, BOB, 'redirect "nobody@example.test";\r\n');
    const r = await send(t.port, 'carol@remote.test', [BOB], message({ to: BOB, subject: 'to nobody' }));
    assert.equal(r.code, 250);
    await t.logged((l) => l.msg === 'sieve: redirect to an unknown local address: kept' && l.account === BOB);
    const c = await imap(BOB);
    assert.equal(await count(c, 'INBOX'), 3);
  });

  test('redirect: the copy reaches the remote address with an SRS sender; :copy also keeps it', async () => {
    await activate(t, BOB, 'require "copy";\r\nredirect :copy "frank@remote.test";\r\n');
    const r = await send(t.port, 'carol@orig.test', [BOB], message({ to: BOB, subject: 'pass it on' }));
    assert.equal(r.code, 250);
    const [copy] = await mailsWith(mx, 'Subject: pass it on');
    assert.ok(copy);
    assert.deepEqual(copy.to, ['frank@remote.test']);
    assert.match(copy.from, /^SRS0=[^=]+=[^=]+=orig\.test=carol@example\.test$/);
    assert.match(copy.data.toString(), /^X-Sieve-Redirected-From: <bob@example\.test>\r$/m);
    assert.doesNotMatch(copy.data.toString(), /^(Return-Path|Delivered-To):/m);
    const c = await imap(BOB);
    assert.equal(await count(c, 'INBOX'), 4, ':copy kept it too');
  });

  test('a message that already carries our redirect marker for this user is kept, not redirected again', async () => {
    // Bob's script (above) redirects everything; the copy came back (a forwarding loop).
    const before = mx.mails.length;
    const looped = message({
      to: BOB,
      subject: 'looped',
      extra: 'X-Sieve-Redirected-From:\r\n <bob@example.test>\r\n',
    });
    assert.equal((await send(t.port, 'carol@orig.test', [BOB], looped)).code, 250);
    await t.logged((l) => l.msg === 'sieve: redirect loop: kept' && l.account === BOB);
    const c = await imap(BOB);
    assert.equal(await count(c, 'INBOX'), 5);
    assert.equal(
      mx.mails.slice(before).some((m) => m.data.toString().includes('Subject: looped')),
      false,
    );
  });
});

describe('Sieve redirect: the SRS sender passes SPF at the next hop', () => {
  let pair: ForwardingPair;
  let forwarder: TestServer;
  let nextHop: TestServer;

  before(async () => {
    pair = await startForwardingPair('example.test');
    ({ forwarder, nextHop } = pair);
    await activate(forwarder, ALICE, 'redirect "carol@dest.test";\r\n');
  });
  after(() => pair?.close());

  test('spf=pass for the rewritten sender, filed in INBOX', async () => {
    const r = await send(forwarder.port, 'sender@orig.test', [ALICE], message({ subject: 'redirected' }));
    assert.equal(r.code, 250);
    const got = await waitUntil('"redirected" at the next hop', async () => {
      for (const folder of [undefined, 'Junk']) {
        for (const m of await nextHop.messages('carol@dest.test', folder).catch(() => [])) {
          const text = m.toString();
          if (text.includes('Subject: redirected\r\n')) return { folder: folder ?? 'INBOX', text };
        }
      }
      return null;
    });
    const ar = (/^Authentication-Results: (.*(?:\r\n[ \t].*)*)/m.exec(got.text)?.[1] ?? '').replace(/\r\n[ \t]+/g, ' ');
    assert.match(got.text, /^Return-Path: <SRS0=[^>]*=orig\.test=sender@example\.test>/m);
    assert.match(ar, /spf=pass/);
    assert.equal(got.folder, 'INBOX');
    // The original is not kept at the forwarder (redirect cancels the implicit keep).
    assert.equal((await forwarder.messages(ALICE).catch(() => [])).length, 0);
  });

  test('mail the spam checks file in Junk gets no vacation reply (its sender is likely forged)', async () => {
    await activate(nextHop, 'carol@dest.test' as AccountId, 'require "vacation";\r\nvacation "Away.";\r\n');
    // Straight from 127.0.0.1 as orig.test, whose SPF allows only 192.0.2.1: fail, Junk.
    const r = await send(
      nextHop.port,
      'sender@orig.test',
      ['carol@dest.test'],
      message({ to: 'carol@dest.test', subject: 'spf fails' }),
    );
    assert.equal(r.code, 250);
    await nextHop.logged((l) => l.msg === 'sieve: no vacation reply' && l.why === 'junk');
    assert.equal((await nextHop.messages('carol@dest.test', 'Junk')).length, 1);
  });
});

describe('Sieve at delivery: the [sieve] before script and :global includes', () => {
  let t: TestServer;
  let files: string;

  before(async () => {
    files = await mkdtemp(join(tmpdir(), 'arcline-sieve-'));
    await mkdir(join(files, 'global'));
    await writeFile(
      join(files, 'before.sieve'),
      'require "fileinto";\r\nif header :is "X-Spam-Flag" "YES" { fileinto "Junk"; stop; }\r\n',
    );
    await writeFile(
      join(files, 'global', 'common.sieve'),
      'require ["fileinto", "mailbox"];\r\nif header :contains "subject" "newsletter" { fileinto :create "News"; }\r\n',
    );
    t = await startTestServer({
      extra: `[sieve]\nbefore = "${join(files, 'before.sieve')}"\nglobal_dir = "${join(files, 'global')}"`,
    });
    await activate(t, BOB, 'require "include";\r\ninclude :global "common";\r\n');
  });
  after(async () => {
    await t?.stop();
    await rm(files, { recursive: true, force: true });
  });

  test('the before script files spam into Junk, for a user without a script too, and the user script does not run', async () => {
    const spam = { subject: 'newsletter of spam', extra: 'X-Spam-Flag: YES\r\n' };
    assert.equal((await send(t.port, 'carol@remote.test', [BOB], message({ ...spam, to: BOB }))).code, 250);
    assert.equal((await send(t.port, 'carol@remote.test', [ALICE], message(spam))).code, 250);
    assert.equal((await t.messages(BOB, 'Junk')).length, 1);
    assert.equal((await t.messages(ALICE, 'Junk')).length, 1);
    assert.equal((await t.messages(BOB, 'News').catch(() => [])).length, 0, 'the user script did not run');
  });

  test('the user script includes a global one', async () => {
    assert.equal(
      (await send(t.port, 'carol@remote.test', [BOB], message({ to: BOB, subject: 'weekly newsletter' }))).code,
      250,
    );
    assert.equal((await t.messages(BOB, 'News')).length, 1);
    assert.equal((await t.messages(BOB)).length, 0);
  });

  test('a before script that does not compile stops the start with its error', async () => {
    await writeFile(join(files, 'broken.sieve'), 'fileinto "x";\r\n');
    await assert.rejects(
      startTestServer({ extra: `[sieve]\nbefore = "${join(files, 'broken.sieve')}"` }),
      /\[sieve\] before .*broken\.sieve: line 1: error: unknown command 'fileinto'/,
    );
  });
});
