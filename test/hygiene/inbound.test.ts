// Inbound checks on port 25 end to end: real SMTP from 127.0.0.1, a real DNS server on
// 127.0.0.1 serving the test zones (SPF, DKIM keys, DMARC, DNSBL), and the stored result:
// the Authentication-Results header, the mailbox (INBOX or Junk), or the SMTP refusal.

import assert from 'node:assert/strict';
import { generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { dkimSign } from 'mailauth';
import { startTestDns, type TestDnsServer, type TestRecord } from '../harness/dns.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

const rsa = generateKeyPairSync('rsa', { modulusLength: 2048 });
const ed = generateKeyPairSync('ed25519');

function pem(k: KeyObject): string {
  return k.export({ type: 'pkcs8', format: 'pem' }).toString();
}
function rsaTxt(k: KeyObject): string {
  return `v=DKIM1; k=rsa; p=${k.export({ type: 'spki', format: 'der' }).toString('base64')}`;
}
function edTxt(k: KeyObject): string {
  // RFC 8463 §4.2: the raw 32-byte key, the tail of the SPKI DER.
  return `v=DKIM1; k=ed25519; p=${k.export({ type: 'spki', format: 'der' }).subarray(-32).toString('base64')}`;
}

const spf = (name: string, text: string): TestRecord => ({ type: 'TXT', name, text });

const ZONES: TestRecord[] = [
  spf('spf-pass.test', 'v=spf1 ip4:127.0.0.1 -all'),
  spf('spf-fail.test', 'v=spf1 ip4:192.0.2.1 -all'),
  spf('spf-soft.test', 'v=spf1 ip4:192.0.2.1 ~all'),
  spf('spf-neutral.test', 'v=spf1 ?all'),
  { type: 'A', name: 'spf-none.test', address: '192.0.2.9' },
  spf('spf-perm.test', 'v=spf1 ip4:127.0.0.1 -all'),
  spf('spf-perm.test', 'v=spf1 -all'), // two SPF records: permerror (RFC 7208 §4.5)
  spf('spf-include.test', 'v=spf1 include:a.include.test -all'),
  spf('a.include.test', 'v=spf1 include:b.include.test -all'),
  spf('b.include.test', 'v=spf1 ip4:127.0.0.0/8 -all'),
  spf('spf-redirect.test', 'v=spf1 redirect=_spf.target.test'),
  spf('_spf.target.test', 'v=spf1 ip4:127.0.0.1 -all'),
  spf('spf-flaky.test', 'v=spf1 ip4:127.0.0.1 -all'),
  // 11 DNS-querying mechanisms before the match: the 10-lookup limit (RFC 7208 §4.6.4) -> permerror.
  spf(
    'spf-many.test',
    `v=spf1 ${Array.from({ length: 11 }, (_, i) => `a:h${i}.many.test`).join(' ')} ip4:127.0.0.1 -all`,
  ),
  // DKIM keys
  { type: 'TXT', name: 'rsa._domainkey.dkim.test', text: rsaTxt(rsa.publicKey) },
  { type: 'TXT', name: 'ed._domainkey.dkim.test', text: edTxt(ed.publicKey) },
  { type: 'TXT', name: 'revoked._domainkey.dkim.test', text: 'v=DKIM1; k=rsa; p=' },
  { type: 'TXT', name: 'revoked._domainkey.spf-pass.test', text: 'v=DKIM1; k=rsa; p=' },
  spf('dkim.test', 'v=spf1 ip4:192.0.2.1 -all'),
  { type: 'TXT', name: '_dmarc.dkim.test', text: 'v=DMARC1; p=reject' },
  // DMARC
  spf('dmarc-reject.test', 'v=spf1 ip4:192.0.2.1 -all'),
  { type: 'TXT', name: '_dmarc.dmarc-reject.test', text: 'v=DMARC1; p=reject' },
  spf('dmarc-quarantine.test', 'v=spf1 ip4:192.0.2.1 -all'),
  { type: 'TXT', name: '_dmarc.dmarc-quarantine.test', text: 'v=DMARC1; p=quarantine' },
  spf('dmarc-none.test', 'v=spf1 ip4:192.0.2.1 -all'),
  { type: 'TXT', name: '_dmarc.dmarc-none.test', text: 'v=DMARC1; p=none' },
  // Alignment: SPF passes for the bounce subdomain; relaxed aligns with the From: domain, strict not.
  spf('bounce.relaxed.test', 'v=spf1 ip4:127.0.0.1 -all'),
  { type: 'TXT', name: '_dmarc.relaxed.test', text: 'v=DMARC1; p=reject' },
  spf('bounce.strict.test', 'v=spf1 ip4:127.0.0.1 -all'),
  { type: 'TXT', name: '_dmarc.strict.test', text: 'v=DMARC1; p=reject; aspf=s' },
  // Subdomain policy: p=none for the domain, sp=reject for its subdomains.
  spf('sub.sp.test', 'v=spf1 ip4:192.0.2.1 -all'),
  { type: 'A', name: 'sub.sp.test', address: '192.0.2.1' },
  { type: 'TXT', name: '_dmarc.sp.test', text: 'v=DMARC1; p=none; sp=reject' },
  spf('dmarc-flaky.test', 'v=spf1 ip4:192.0.2.1 -all'),
];

function rawMessage(from: string, subject: string, extra = ''): string {
  return `From: ${from}\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nDate: Tue, 24 Nov 2026 06:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@test>\r\n${extra}\r\nHello.\r\n`;
}

/** Sends one message; returns the reply to the end of DATA. */
async function send(t: TestServer, mailFrom: string, message: string, rcpt = 'alice@example.test') {
  const c = await RawSmtp.connect(t.port);
  const replies = await envelope(c, mailFrom, [rcpt]);
  const rcptReply = replies.at(-1);
  if (rcptReply?.code !== 250) throw new Error(`RCPT: ${rcptReply?.text}`);
  await c.cmd('DATA');
  c.write(`${message.replace(/\r\n\./g, '\r\n..')}\r\n.\r\n`);
  const r = await c.read();
  c.write('QUIT\r\n');
  c.close();
  return r;
}

/** The stored copy with this subject, and the folder it is in. */
async function stored(t: TestServer, subject: string, user = 'alice@example.test') {
  return waitUntil(`stored "${subject}"`, async () => {
    for (const folder of [undefined, 'Junk']) {
      const all = await t.messages(user, folder).catch(() => []);
      const m = all.map((b) => b.toString()).find((x) => x.includes(`\r\nSubject: ${subject}\r\n`));
      if (m) return { text: m, folder: folder ?? 'INBOX', ar: arHeader(m) };
    }
    return null;
  });
}

function arHeader(text: string): string {
  const m = /^Authentication-Results: ([\s\S]*?)\r\n(?![ \t])/m.exec(text);
  return (m?.[1] ?? '').replace(/\r\n[ \t]+/g, ' ');
}

async function signed(message: string, domain: string, selector: string, key: KeyObject): Promise<string> {
  const res = await dkimSign(Buffer.from(message), {
    signingDomain: domain,
    selector,
    privateKey: pem(key),
    canonicalization: 'relaxed/relaxed',
    // mailauth signs what signatureData lists; the top-level fields alone sign nothing.
    signatureData: [{ signingDomain: domain, selector, privateKey: pem(key), canonicalization: 'relaxed/relaxed' }],
  });
  assert.deepEqual(res.errors, []);
  assert.match(res.signatures, /^DKIM-Signature: /);
  return res.signatures + message;
}

describe('inbound checks (SPF, DKIM, DMARC) with a real DNS server', () => {
  let dns: TestDnsServer;
  let t: TestServer;

  before(async () => {
    dns = await startTestDns(ZONES);
    t = await startTestServer({ extra: `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ndnsbl = []` });
    await t.admin.ops.addUser('carol@other.test', { password: 'x-password' }).catch(() => {});
  });
  after(async () => {
    await t?.stop();
    await dns?.close();
  });

  const spfCases: [string, string, string][] = [
    ['pass', 'x@spf-pass.test', 'INBOX'],
    ['fail', 'x@spf-fail.test', 'Junk'],
    ['softfail', 'x@spf-soft.test', 'INBOX'],
    ['neutral', 'x@spf-neutral.test', 'INBOX'],
    ['none', 'x@spf-none.test', 'INBOX'],
    ['permerror', 'x@spf-perm.test', 'INBOX'],
    ['pass', 'x@spf-include.test', 'INBOX'],
    ['pass', 'x@spf-redirect.test', 'INBOX'],
    ['permerror', 'x@spf-many.test', 'INBOX'],
  ];
  for (const [result, sender, folder] of spfCases) {
    test(`SPF ${result} for ${sender.split('@')[1]}: delivered to ${folder}`, async () => {
      const subject = `spf ${sender}`;
      const r = await send(t, sender, rawMessage(sender, subject));
      assert.equal(r.code, 250, r.text);
      const m = await stored(t, subject);
      assert.equal(m.folder, folder);
      assert.match(m.ar, new RegExp(`^mx\\.test\\.example;.* spf=${result} `), m.ar);
      assert.match(m.text, new RegExp(`^Received-SPF: ${result} `, 'mi'));
    });
  }

  test('SPF temperror (SERVFAIL) is never a refusal: delivered, spf=temperror', async () => {
    dns.failing.add('spf-flaky.test');
    try {
      const r = await send(t, 'x@spf-flaky.test', rawMessage('x@spf-flaky.test', 'spf flaky'));
      assert.equal(r.code, 250, r.text);
      const m = await stored(t, 'spf flaky');
      assert.match(m.ar, /spf=temperror/);
      assert.equal(m.folder, 'INBOX');
    } finally {
      dns.failing.delete('spf-flaky.test');
    }
  });

  test('the null sender is checked with the HELO identity (RFC 7208 §2.4)', async () => {
    const c = await RawSmtp.connect(t.port);
    await c.read();
    await c.cmd('EHLO spf-pass.test');
    await c.cmd('MAIL FROM:<>');
    await c.cmd('RCPT TO:<alice@example.test>');
    await c.cmd('DATA');
    c.write(`${rawMessage('MAILER-DAEMON@spf-pass.test', 'null sender helo')}\r\n.\r\n`);
    assert.equal((await c.read()).code, 250);
    c.close();
    const m = await stored(t, 'null sender helo');
    // RFC 7208 §2.4: with a null sender the identity checked is postmaster@<HELO>.
    assert.match(m.ar, /spf=pass .* smtp\.mailfrom=postmaster@spf-pass\.test smtp\.helo=spf-pass\.test/);
  });

  test('DKIM: RSA and Ed25519 signatures pass; with aligned DKIM, DMARC passes although SPF fails', async () => {
    const msg = rawMessage('Sender <x@dkim.test>', 'dkim both');
    const both = await signed(await signed(msg, 'dkim.test', 'ed', ed.privateKey), 'dkim.test', 'rsa', rsa.privateKey);
    const r = await send(t, 'x@dkim.test', both);
    assert.equal(r.code, 250, r.text);
    const m = await stored(t, 'dkim both');
    assert.match(m.ar, /dkim=pass header\.i=@dkim\.test header\.s=rsa header\.a=rsa-sha256/);
    assert.match(m.ar, /dkim=pass header\.i=@dkim\.test header\.s=ed header\.a=ed25519-sha256/);
    assert.match(m.ar, /spf=fail/);
    assert.match(m.ar, /dmarc=pass/);
    assert.equal(m.folder, 'INBOX');
  });

  test('DKIM: a changed body or a changed signed header fails; DMARC p=reject then refuses', async () => {
    const msg = rawMessage('x@dkim.test', 'dkim tampered');
    const good = await signed(msg, 'dkim.test', 'rsa', rsa.privateKey);
    const body = good.replace('Hello.', 'Hello!');
    const r1 = await send(t, 'x@dkim.test', body);
    assert.equal(r1.text, '550 5.7.1 Message rejected: the DMARC policy of dkim.test rejects unauthenticated mail');
    const header = good.replace('Subject: dkim tampered', 'Subject: dkim tampered!');
    const r2 = await send(t, 'x@dkim.test', header);
    assert.equal(r2.code, 550);
    await t.logged((l) => l.msg === 'authentication results' && String(l.dkim).includes('dkim.test:fail'));
  });

  test('DKIM: a missing key and a revoked key do not pass', async () => {
    // Send to a domain without DMARC so the message is stored and the result visible.
    const msg = rawMessage('x@spf-pass.test', 'dkim nokey');
    const noKey = await signed(msg, 'spf-pass.test', 'missing', rsa.privateKey);
    assert.equal((await send(t, 'x@spf-pass.test', noKey)).code, 250);
    assert.match((await stored(t, 'dkim nokey')).ar, /dkim=(?:permerror|neutral|fail)[^;]*header\.s=missing/);
    // RFC 6376 §3.6.1: an empty p= means the key was revoked.
    const revoked = await signed(
      rawMessage('x@spf-pass.test', 'dkim revoked'),
      'spf-pass.test',
      'revoked',
      rsa.privateKey,
    );
    assert.equal((await send(t, 'x@spf-pass.test', revoked)).code, 250);
    assert.match((await stored(t, 'dkim revoked')).ar, /dkim=(?:permerror|neutral|fail)[^;]*header\.s=revoked/);
    // dkim.test has p=reject and SPF fails: a revoked key leaves nothing that passes.
    const revokedStrict = await signed(
      rawMessage('x@dkim.test', 'dkim revoked 2'),
      'dkim.test',
      'revoked',
      rsa.privateKey,
    );
    assert.equal((await send(t, 'x@dkim.test', revokedStrict)).code, 550);
  });

  test('DMARC p=reject: 550 5.7.1 at the end of DATA, nothing stored', async () => {
    const r = await send(t, 'x@dmarc-reject.test', rawMessage('x@dmarc-reject.test', 'dmarc reject'));
    assert.equal(
      r.text,
      '550 5.7.1 Message rejected: the DMARC policy of dmarc-reject.test rejects unauthenticated mail',
    );
  });

  test('DMARC p=quarantine: Junk; p=none: INBOX', async () => {
    assert.equal(
      (await send(t, 'x@dmarc-quarantine.test', rawMessage('x@dmarc-quarantine.test', 'dmarc q'))).code,
      250,
    );
    const q = await stored(t, 'dmarc q');
    assert.equal(q.folder, 'Junk');
    assert.match(q.ar, /dmarc=fail/);
    assert.equal((await send(t, 'x@dmarc-none.test', rawMessage('x@dmarc-none.test', 'dmarc n'))).code, 250);
    const n = await stored(t, 'dmarc n');
    assert.equal(n.folder, 'INBOX');
    assert.match(n.ar, /dmarc=fail/);
  });

  test('DMARC alignment: relaxed accepts an SPF pass for a subdomain, strict (aspf=s) does not', async () => {
    const relaxed = await send(t, 'b@bounce.relaxed.test', rawMessage('x@relaxed.test', 'dmarc relaxed'));
    assert.equal(relaxed.code, 250, relaxed.text);
    assert.match((await stored(t, 'dmarc relaxed')).ar, /dmarc=pass/);
    const strict = await send(t, 'b@bounce.strict.test', rawMessage('x@strict.test', 'dmarc strict'));
    assert.equal(strict.code, 550);
  });

  test('DMARC subdomain policy (sp=reject) applies to a subdomain without its own record', async () => {
    const r = await send(t, 'x@sub.sp.test', rawMessage('x@sub.sp.test', 'dmarc sp'));
    assert.equal(r.code, 550, r.text);
  });

  test('a DMARC record that cannot be fetched (SERVFAIL) defers with 451, never 5xx', async () => {
    dns.failing.add('_dmarc.dmarc-flaky.test');
    try {
      const r = await send(t, 'x@dmarc-flaky.test', rawMessage('x@dmarc-flaky.test', 'dmarc flaky'));
      assert.equal(r.code, 451, r.text);
      assert.match(r.text, /^451 4\.7\.5 /);
    } finally {
      dns.failing.delete('_dmarc.dmarc-flaky.test');
    }
  });

  test('exactly one Authentication-Results with our authserv-id; a forged one is removed', async () => {
    const forged = rawMessage(
      'x@spf-pass.test',
      'forged ar',
      'Authentication-Results: mx.test.example; dkim=pass header.d=bank.test; dmarc=pass\r\nAuthentication-Results: other.example; spf=pass\r\n',
    );
    assert.equal((await send(t, 'x@spf-pass.test', forged)).code, 250);
    const m = await stored(t, 'forged ar');
    const ours = m.text.match(/^Authentication-Results: mx\.test\.example;/gm) ?? [];
    assert.equal(ours.length, 1);
    assert.doesNotMatch(m.text, /header\.d=bank\.test/);
    assert.match(m.text, /^Authentication-Results: other\.example; spf=pass\r\n/m, 'others are kept');
    assert.match(
      m.text,
      /^Return-Path: <x@spf-pass\.test>\r\nDelivered-To: alice@example\.test\r\nAuthentication-Results: /,
    );
  });

  test("the allowlist of a user turns Junk into INBOX for that user's copy only", async () => {
    await t.admin.ops.addAllowedSender('alice@example.test', 'spf-fail.test');
    try {
      const c = await RawSmtp.connect(t.port);
      await envelope(c, 'y@spf-fail.test', ['alice@example.test', 'bob@example.test']);
      await c.cmd('DATA');
      c.write(`${rawMessage('y@spf-fail.test', 'allowlisted')}\r\n.\r\n`);
      assert.equal((await c.read()).code, 250);
      c.close();
      assert.equal((await stored(t, 'allowlisted', 'alice@example.test')).folder, 'INBOX');
      assert.equal((await stored(t, 'allowlisted', 'bob@example.test')).folder, 'Junk');
    } finally {
      await t.admin.ops.deleteAllowedSender('alice@example.test', 'spf-fail.test');
    }
  });
});

describe('inbound policy settings', () => {
  let dns: TestDnsServer;

  before(async () => {
    dns = await startTestDns([
      ...ZONES,
      { type: 'A', name: '1.0.0.127.bl.test', address: '127.0.0.2' },
      { type: 'TXT', name: '1.0.0.127.bl.test', text: 'Listed for testing\r\n; see https://bl.test/' },
    ]);
  });
  after(async () => {
    await dns?.close();
  });

  test('DNSBL: a listed client gets 554 5.7.1 with the zone and its reason, after the delay', async () => {
    const t = await startTestServer({
      extra: `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ndnsbl = ["clean.test", "bl.test"]\ndnsbl_delay = "300ms"`,
    });
    try {
      const started = Date.now();
      const c = await RawSmtp.connect(t.port);
      const r = await c.read();
      assert.equal(
        r.text,
        '554 5.7.1 Service unavailable; client [127.0.0.1] blocked using bl.test; Listed for testing ; see https://bl.test/',
      );
      assert.ok(Date.now() - started >= 280, 'refused after the delay');
      await c.waitClosed();
    } finally {
      await t.stop();
    }
  });

  test('DNSBL: a client listed nowhere is served; trusted networks skip every check', async () => {
    const clean = await startTestServer({
      extra: `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ndnsbl = ["clean.test"]`,
    });
    try {
      const c = await RawSmtp.connect(clean.port);
      assert.equal((await c.read()).code, 220);
      c.close();
    } finally {
      await clean.stop();
    }
    const trusted = await startTestServer({
      extra: `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ndnsbl = ["bl.test"]\ntrusted_networks = ["127.0.0.0/8"]`,
    });
    try {
      const r = await send(trusted, 'x@dmarc-reject.test', rawMessage('x@dmarc-reject.test', 'trusted'));
      assert.equal(r.code, 250, 'neither the DNSBL nor DMARC applies to a trusted network');
      const m = await stored(trusted, 'trusted');
      assert.equal(m.ar, 'mx.test.example; none (trusted network)');
    } finally {
      await trusted.stop();
    }
  });

  test('per-domain actions: one domain rejects SPF failures, the default files them in Junk', async () => {
    const t = await startTestServer({
      domains: ['example.test', 'strict.example'],
      users: ['alice@example.test', 'dave@strict.example'],
      extra: `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ndnsbl = []\n[hygiene.domains."strict.example"]\nspf_fail = "reject"`,
    });
    try {
      const toStrict = await send(
        t,
        'x@spf-fail.test',
        rawMessage('x@spf-fail.test', 'to strict'),
        'dave@strict.example',
      );
      assert.equal(toStrict.text, '550 5.7.23 Message rejected: SPF check failed');
      const toDefault = await send(t, 'x@spf-fail.test', rawMessage('x@spf-fail.test', 'to default'));
      assert.equal(toDefault.code, 250);
      assert.equal((await stored(t, 'to default')).folder, 'Junk');
      // Both at once: one answer for the message; the rejecting domain's user gets it in Junk.
      const c = await RawSmtp.connect(t.port);
      await envelope(c, 'x@spf-fail.test', ['alice@example.test', 'dave@strict.example']);
      await c.cmd('DATA');
      c.write(`${rawMessage('x@spf-fail.test', 'to both')}\r\n.\r\n`);
      assert.equal((await c.read()).code, 250);
      c.close();
      assert.equal((await stored(t, 'to both', 'dave@strict.example')).folder, 'Junk');
    } finally {
      await t.stop();
    }
  });
});
