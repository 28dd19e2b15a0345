// SRS wired end to end (docs/srs.md), over real sockets: mail to an alias of ours that forwards
// outside reaches a remote MX (test/harness/mx.ts on loopback, found through a real DNS server)
// with an SRS envelope sender; bounces to those addresses come back through RCPT and go on to
// the original sender; forged and expired ones are refused. The last suite checks the point of
// it all: a second arcline as the next hop, with SPF on, says pass for the rewritten sender
// where the original sender's own SPF fails.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { parseSecrets } from '../../src/srs/secret.ts';
import { Srs } from '../../src/srs/srs.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, type FakeMxOptions, type ReceivedMail, startFakeMx } from '../harness/mx.ts';
import { type ForwardingPair, startForwardingPair } from '../harness/next-hop.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp, transaction } from '../harness/smtp-client.ts';
import { submitter, waitUntil } from '../harness/submit.ts';

const DAY_MS = 86_400_000;

function rawMessage(subject: string): string {
  return `From: Sender <sender@orig.test>\r\nTo: fwd@example.test\r\nSubject: ${subject}\r\nDate: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@orig.test>\r\n\r\nHello.\r\n`;
}

/** One transaction on port 25; the reply to the end of DATA (or the first refusal). */
function send(port: number, from: string, rcpts: readonly string[], subject: string) {
  return transaction(port, from, rcpts, rawMessage(subject));
}

/** The reply to one RCPT. */
async function rcpt(port: number, from: string, to: string) {
  const c = await RawSmtp.connect(port);
  try {
    const replies = await envelope(c, from, [to]);
    return replies[replies.length - 1] as { code: number; text: string };
  } finally {
    c.close();
  }
}

/** The mail the MX received with `subject`, waiting for it. */
function received(mx: FakeMx, subject: string): Promise<ReceivedMail[]> {
  return waitUntil(`mail "${subject}" at the remote MX`, async () => {
    const m = mx.mails.filter((x) => x.data.toString().includes(`Subject: ${subject}\r\n`));
    return m.length > 0 ? m : null;
  });
}

/** Mail::SRS (Debian's libmail-srs-perl) reversing `address` with `secret`: an independent
 *  check that what went out is standard SRS. */
function mailSrsReverse(secret: string, address: string): string {
  const perl = 'use Mail::SRS; print Mail::SRS->new(Secret => [$ARGV[0]])->reverse($ARGV[1]);';
  const r = spawnSync('/usr/bin/perl', ['-e', perl, secret, address], { encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  return r.stdout;
}

/** A forwarding server (`extra` added to its config) whose remote MX for `domains` is a fake MX
 *  ([delivery] port points there), found through a real DNS server; with our SRS secret. */
async function forwardingSetup(
  domains: readonly string[],
  opts: Parameters<typeof startTestServer>[0],
  mxOpts: FakeMxOptions = {},
) {
  const mx = await startFakeMx(mxOpts);
  const dns = await startTestDns([
    { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
    ...domains.map((name) => ({ type: 'MX' as const, name, preference: 10, exchange: 'mx.remote.test' })),
  ]);
  const delivery = `[delivery]\nport = ${mx.port}\nretry_schedule = ["300ms"]\nmx_tls = "none"\n[dns]\nservers = ["${dns.address}"]`;
  const t = await startTestServer({ ...opts, extra: `${delivery}\n${opts?.extra ?? ''}` });
  await t.admin.ops.addAlias('fwd@example.test', ['carol@remote.test']);
  // No file with [srs] enabled = false: '' then.
  const file = await readFile(join(t.config.storage.state, 'srs.secret'), 'utf8').catch(() => null);
  const secret = file === null ? '' : (parseSecrets(file)[0] as string);
  return { mx, dns, t, secret };
}

describe('SRS: forwarding and bounces', () => {
  let dns: TestDnsServer;
  let mx: FakeMx;
  let t: TestServer;
  let secret: string;
  let srs: Srs;

  before(async () => {
    ({ mx, dns, t, secret } = await forwardingSetup(
      ['remote.test', 'orig.test', 'responder.test', 'elsewhere.test'],
      {
        domains: ['example.test', 'second.test'],
        submission: true,
        extra: '[ban]\nunknown_recipients = 2',
      },
      {
        onRcpt: (a) =>
          a === 'gone@remote.test' ? { code: 550, message: '5.1.1 <gone@remote.test>: no such user' } : null,
      },
    ));
    await t.admin.ops.addAlias('gone@example.test', ['gone@remote.test']);
    await t.admin.ops.addAlias('team@example.test', ['bob@example.test', 'dave@remote.test']);
    await t.admin.ops.addAlias('fwd@second.test', ['erin@remote.test']);
    srs = new Srs({ secrets: [secret] });
  });
  after(async () => {
    await t?.stop();
    await mx?.close();
    await dns?.close();
  });

  test('an alias forwarding outside sends with an SRS0 sender of its domain, which reverses to the original', async () => {
    assert.equal((await send(t.port, 'sender@orig.test', ['fwd@example.test'], 'srs0')).code, 250);
    const [mail] = await received(mx, 'srs0');
    assert.ok(mail);
    assert.deepEqual(mail.to, ['carol@remote.test']);
    assert.match(mail.from, /^SRS0=[^=]{4}=[A-Z2-7]{2}=orig\.test=sender@example\.test$/);
    assert.equal(srs.reverse(mail.from), 'sender@orig.test');
    assert.equal(mailSrsReverse(secret, mail.from), 'sender@orig.test');
    // Only the envelope changes: the message's From: is the original.
    assert.match(mail.data.toString(), /^From: Sender <sender@orig\.test>\r\n/m);
  });

  test('a sender that is already SRS0 of another forwarder becomes SRS1', async () => {
    const theirs = 'SRS0=AbCd=XY=orig.test=sender@other-forwarder.test';
    assert.equal((await send(t.port, theirs, ['fwd@example.test'], 'srs1')).code, 250);
    const [mail] = await received(mx, 'srs1');
    assert.ok(mail);
    assert.match(mail.from, /^SRS1=[^=]{4}=other-forwarder\.test==AbCd=XY=orig\.test=sender@example\.test$/);
    // Reversing gives the first hop's SRS0 address, which that hop reverses itself.
    assert.equal(srs.reverse(mail.from), theirs);
  });

  test('not rewritten: a sender of our own domains, and the null sender', async () => {
    assert.equal((await send(t.port, 'bob@second.test', ['fwd@example.test'], 'local sender')).code, 250);
    assert.equal((await send(t.port, '', ['fwd@example.test'], 'null sender')).code, 250);
    const [local] = await received(mx, 'local sender');
    const [bounce] = await received(mx, 'null sender');
    assert.equal(local?.from, 'bob@second.test');
    assert.equal(bounce?.from, '');
  });

  test("submission to an alias that forwards outside: the user's own sender is not rewritten", async () => {
    await submitter(t.submissionPort).sendMail({
      from: 'alice@example.test',
      to: ['fwd@example.test', 'frank@remote.test'],
      subject: 'submitted',
      text: 'Hello.',
    });
    const [mail] = await received(mx, 'submitted');
    assert.equal(mail?.from, 'alice@example.test');
    assert.deepEqual(mail?.to.sort(), ['carol@remote.test', 'frank@remote.test']);
  });

  test('one message, two forwarding domains and a local member: one queue entry per sender, the local copy kept', async () => {
    const bobBefore = (await t.newFiles('bob@example.test').catch(() => [])).length;
    const r = await send(t.port, 'sender@orig.test', ['team@example.test', 'fwd@second.test'], 'two domains');
    assert.equal(r.code, 250);
    const mails = await waitUntil('both copies', async () => {
      const m = await received(mx, 'two domains');
      return m.length >= 2 ? m : null;
    });
    const byRcpt = new Map(mails.map((m) => [m.to.join(','), m.from]));
    assert.match(byRcpt.get('dave@remote.test') ?? '', /^SRS0=.*=orig\.test=sender@example\.test$/);
    assert.match(byRcpt.get('erin@remote.test') ?? '', /^SRS0=.*=orig\.test=sender@second\.test$/);
    assert.equal((await t.newFiles('bob@example.test')).length, bobBefore + 1);
    const line = await t.logged((l) => l.msg === 'message accepted' && Array.isArray(l.queue_ids));
    assert.equal((line.queue_ids as unknown[]).length, 2);
  });

  test('a bounce to an SRS address is accepted and reaches the original sender', async () => {
    const address = srs.forward('sender@orig.test', 'example.test');
    assert.equal((await send(t.port, '', [address], 'bounce back')).code, 250);
    const [mail] = await received(mx, 'bounce back');
    assert.deepEqual(mail?.to, ['sender@orig.test']);
    assert.equal(mail?.from, '', 'the null sender stays null');
    // Case smashed by a hop on the way (the hash is compared without case; the local part we
    // send to keeps the case it was written in).
    const upper = srs.forward('Sender@orig.test', 'second.test').toUpperCase();
    assert.equal((await send(t.port, '', [upper], 'bounce upper')).code, 250);
    const [u] = await received(mx, 'bounce upper');
    assert.deepEqual(u?.to, ['SENDER@orig.test']);
  });

  test('a forwarded copy refused by the next hop bounces to the original sender, not to our SRS address', async () => {
    assert.equal((await send(t.port, 'sender@orig.test', ['gone@example.test'], 'refused later')).code, 250);
    const dsn = await waitUntil('the bounce at the original sender', async () =>
      mx.mails.find((m) => m.to.includes('sender@orig.test') && m.data.toString().includes('gone@remote.test')),
    );
    assert.equal(dsn.from, '');
    assert.match(dsn.data.toString(), /5\.1\.1/);
  });

  test('a reply with a sender to an SRS address goes on with that sender rewritten', async () => {
    const address = srs.forward('sender@orig.test', 'example.test');
    assert.equal((await send(t.port, 'auto@responder.test', [address], 'auto reply')).code, 250);
    const [mail] = await received(mx, 'auto reply');
    assert.deepEqual(mail?.to, ['sender@orig.test']);
    assert.match(mail?.from ?? '', /^SRS0=.*=responder\.test=auto@example\.test$/);
  });

  test('an SRS1 bounce goes on to the first hop', async () => {
    const first = 'SRS0=AbCd=XY=orig.test=sender@elsewhere.test';
    const address = srs.forward(first, 'example.test');
    assert.equal((await send(t.port, '', [address], 'srs1 bounce')).code, 250);
    const [mail] = await received(mx, 'srs1 bounce');
    assert.deepEqual(mail?.to, [first]);
  });

  test('forged, expired and malformed SRS recipients are refused; forged ones count as unknown recipients', async () => {
    const banned = () => t.logs.filter((l) => l.msg === 'client not banned: exempt').length;
    // Made with our secret 30 days ago (the maximum age is 21 days): a late bounce, no offence.
    const old = new Srs({ secrets: [secret], now: () => Date.now() - 30 * DAY_MS });
    const expired = await rcpt(t.port, '', old.forward('sender@orig.test', 'example.test'));
    assert.match(expired.text, /^550 5\.7\.1 .*expired/);
    const good = srs.forward('sender@orig.test', 'example.test');
    // A first hash character that differs from ours also ignoring case (hashes compare without case).
    const forged = good.replace(/^SRS0=(.)/, (_m, c: string) => `SRS0=${c.toLowerCase() === 'a' ? '0' : 'a'}`);
    const r1 = await rcpt(t.port, '', forged);
    assert.match(r1.text, /^550 5\.7\.1 .*invalid SRS address/);
    // [ban] unknown_recipients = 2: the expired one did not count, the first forged one did
    // (the offence is counted before the reply is written, in this thread).
    assert.equal(banned(), 0);
    const byOther = new Srs({ secrets: ['another-secret-0123456789'] }).forward('sender@orig.test', 'example.test');
    assert.match((await rcpt(t.port, '', byOther)).text, /^550 5\.7\.1 /);
    // 127.0.0.1 is never banned, but the policy says it would have been.
    const line = await t.logged((l) => l.msg === 'client not banned: exempt');
    assert.equal(line.offence, 'unknown-recipient');
    // Within the maximum age: accepted.
    const recent = new Srs({ secrets: [secret], now: () => Date.now() - 20 * DAY_MS });
    assert.equal((await rcpt(t.port, '', recent.forward('sender@orig.test', 'example.test'))).code, 250);
    assert.match((await rcpt(t.port, '', 'SRS0=abcd@example.test')).text, /^550 5\.1\.1 .*malformed/);
    await t.logged((l) => l.msg === 'rcpt refused: forged SRS address');
    // At a domain that is not ours it is no SRS address of ours: relay denied as before.
    const foreign = srs.forward('sender@orig.test', 'elsewhere.test');
    assert.match((await rcpt(t.port, '', foreign)).text, /^550 5\.7\.1 Relay access denied/);
  });
});

describe('SRS: the next hop checks SPF against the rewritten sender', () => {
  let pair: ForwardingPair;
  let forwarder: TestServer;
  let nextHop: TestServer;

  before(async () => {
    pair = await startForwardingPair('fwd.test');
    ({ forwarder, nextHop } = pair);
    await forwarder.admin.ops.addAlias('carol@fwd.test', ['carol@dest.test']);
  });
  after(() => pair?.close());

  /** The Authentication-Results of the one new message for carol (INBOX or Junk) with `subject`. */
  async function results(subject: string): Promise<{ folder: string; header: string; returnPath: string }> {
    return waitUntil(`"${subject}" at the next hop`, async () => {
      for (const folder of [undefined, 'Junk']) {
        for (const m of await nextHop.messages('carol@dest.test', folder).catch(() => [])) {
          const text = m.toString();
          if (!text.includes(`Subject: ${subject}\r\n`)) continue;
          const ar = /^Authentication-Results: (.*(?:\r\n[ \t].*)*)/m.exec(text)?.[1] ?? '';
          const rp = /^Return-Path: <(.*)>/m.exec(text)?.[1] ?? '';
          return { folder: folder ?? 'INBOX', header: ar.replace(/\r\n[ \t]+/g, ' '), returnPath: rp };
        }
      }
      return null;
    });
  }

  test('without SRS the original sender fails SPF at the next hop (the control)', async () => {
    assert.equal((await send(nextHop.port, 'sender@orig.test', ['carol@dest.test'], 'direct')).code, 250);
    const r = await results('direct');
    assert.match(r.header, /spf=fail \([^)]*\) smtp\.mailfrom=sender@orig\.test /);
    assert.equal(r.folder, 'Junk');
  });

  test('forwarded by our alias, the SRS sender passes SPF at the next hop', async () => {
    assert.equal((await send(forwarder.port, 'sender@orig.test', ['carol@fwd.test'], 'forwarded')).code, 250);
    const r = await results('forwarded');
    assert.match(r.returnPath, /^SRS0=.*=orig\.test=sender@fwd\.test$/);
    assert.match(r.header, /spf=pass \([^)]*\) smtp\.mailfrom="SRS0=[^"]*=orig\.test=sender@fwd\.test" /);
    assert.equal(r.folder, 'INBOX');
  });
});

describe('SRS in the inbound SMTP threads, under [srs] domain', () => {
  let dns: TestDnsServer;
  let mx: FakeMx;
  let t: TestServer;
  let srs: Srs;
  /** Our secret, 8 days ago: past max_age. */
  let old: Srs;

  before(async () => {
    let secret: string;
    ({ mx, dns, t, secret } = await forwardingSetup(['remote.test', 'orig.test'], {
      smtp: 'threads = 1',
      extra: '[srs]\ndomain = "SRS.Example.TEST"\nmax_age = "7d"',
    }));
    srs = new Srs({ secrets: [secret], maxAgeDays: 7 });
    old = new Srs({ secrets: [secret], now: () => Date.now() - 8 * DAY_MS });
  });
  after(async () => {
    await t?.stop();
    await mx?.close();
    await dns?.close();
  });

  test('forwarded from a thread: the sender is made under the configured domain', async () => {
    assert.equal((await send(t.port, 'sender@orig.test', ['fwd@example.test'], 'threaded')).code, 250);
    const [mail] = await received(mx, 'threaded');
    assert.match(mail?.from ?? '', /^SRS0=.*=orig\.test=sender@srs\.example\.test$/);
    const accepted = await t.logged((l) => l.msg === 'message accepted');
    assert.equal(typeof accepted.thread, 'number', 'received by an SMTP thread');
  });

  test('bounces to the configured domain (not a local one) are reversed; max_age applies', async () => {
    const address = srs.forward('sender@orig.test', 'srs.example.test');
    assert.equal((await send(t.port, '', [address], 'threaded bounce')).code, 250);
    const [mail] = await received(mx, 'threaded bounce');
    assert.deepEqual(mail?.to, ['sender@orig.test']);
    assert.match(
      (await rcpt(t.port, '', old.forward('sender@orig.test', 'srs.example.test'))).text,
      /^550 5\.7\.1 .*expired/,
    );
    // Other addresses at that domain are still no mail of ours.
    assert.match((await rcpt(t.port, '', 'someone@srs.example.test')).text, /^550 5\.7\.1 Relay access denied/);
  });
});

describe('[srs] enabled = false', () => {
  let setup: Awaited<ReturnType<typeof forwardingSetup>>;
  before(async () => {
    setup = await forwardingSetup(['remote.test'], { extra: '[srs]\nenabled = false' });
  });
  after(async () => {
    await setup?.t.stop();
    await setup?.mx.close();
    await setup?.dns.close();
  });

  test('forwarded mail keeps its sender; SRS addresses are left to the directory', async () => {
    const { t, mx, secret } = setup;
    assert.equal(secret, '', 'no secret file is made');
    assert.equal((await send(t.port, 'sender@orig.test', ['fwd@example.test'], 'srs off')).code, 250);
    const [mail] = await received(mx, 'srs off');
    assert.equal(mail?.from, 'sender@orig.test');
    const address = new Srs({ secrets: ['any-secret-0123456789'] }).forward('sender@orig.test', 'example.test');
    assert.match((await rcpt(t.port, '', address)).text, /^550 5\.1\.1 Recipient address rejected: user unknown/);
  });
});
