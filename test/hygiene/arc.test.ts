// ARC (RFC 8617) end to end, over real sockets: mail arrives on port 25 (two inbound threads,
// so the result crosses to the main thread with the message) from 127.0.0.1, DKIM-signed by a
// domain of a real DNS server on loopback. Inbound: our Authentication-Results says arc=none,
// pass or fail. Forwarding: an alias pointing outside and a Sieve redirect deliver to a fake MX
// on loopback, and the copy it receives carries our ARC set, which Debian's python3-dkim
// (an independent implementation) validates with the keys of the DNS zone and ours.

import assert from 'node:assert/strict';
import { createPublicKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { dkimSign } from 'mailauth';
import type { AccountId } from '../../src/core/ids.ts';
import { authResultsValue, withArcNone } from '../../src/hygiene/arc.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';
import { type FakeMx, type ReceivedMail, startFakeMx } from '../harness/mx.ts';
import { arcSign, arcVerify } from '../harness/pydkim.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { transaction } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

const signer = generateKeyPairSync('rsa', { modulusLength: 2048 });
const relay = generateKeyPairSync('rsa', { modulusLength: 2048 });

const txt = (k: KeyObject) => `v=DKIM1; k=rsa; p=${k.export({ type: 'spki', format: 'der' }).toString('base64')}`;
const pkcs1 = (k: KeyObject) => k.export({ type: 'pkcs1', format: 'pem' }).toString();

/** The DKIM/ARC keys of the zone, for python3-dkim's lookups (ours are added in before()). */
const KEYS: Record<string, string> = {
  'sel._domainkey.signer.test': txt(signer.publicKey),
  'relay._domainkey.arc1.test': txt(relay.publicKey),
};

const AUTHSERV = 'mx.test.example';

function message(subject: string, to: string, extra = ''): string {
  const id = subject.replace(/\W/g, '');
  return (
    `From: Sender <sender@signer.test>\r\nTo: ${to}\r\nSubject: ${subject}\r\n` +
    `Date: Mon, 07 Dec 2026 03:00:00 +0000\r\nMessage-ID: <${id}@signer.test>\r\n${extra}\r\nHello, ARC.\r\n`
  );
}

/** The message DKIM-signed by signer.test (relaxed/relaxed). */
async function dkimSigned(text: string): Promise<Buffer> {
  const pem = signer.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const sig = { signingDomain: 'signer.test', selector: 'sel', privateKey: pem, canonicalization: 'relaxed/relaxed' };
  const res = await dkimSign(Buffer.from(text), { ...sig, signatureData: [sig] });
  assert.deepEqual(res.errors, []);
  return Buffer.from(res.signatures + text);
}

/** As it reaches us from a first intermediary (arc1.test) that sealed it: ARC i=1, cv=none. */
async function withFirstSet(subject: string, to: string): Promise<Buffer> {
  const ar = 'Authentication-Results: relay.arc1.test; dkim=pass header.d=signer.test; spf=pass\r\n';
  const msg = Buffer.concat([Buffer.from(ar), await dkimSigned(message(subject, to))]);
  return arcSign(msg, {
    selector: 'relay',
    domain: 'arc1.test',
    pem: pkcs1(relay.privateKey),
    authservId: 'relay.arc1.test',
  });
}

/** The same with the seal's signature spoiled: a chain that does not validate. */
async function withBrokenSet(subject: string, to: string): Promise<Buffer> {
  const text = (await withFirstSet(subject, to)).toString('latin1');
  const spoiled = text.replace(
    /(ARC-Seal:[\s\S]*?\bb=)([A-Za-z0-9+/])/,
    (_m, head: string, c: string) => head + (c === 'A' ? 'B' : 'A'),
  );
  assert.notEqual(spoiled, text);
  return Buffer.from(spoiled, 'latin1');
}

/** The value of the first header field `name` of a message (unfolded), or ''. */
function field(text: string, name: string): string {
  const m = new RegExp(`^${name}: ([\\s\\S]*?)\\r\\n(?![ \\t])`, 'mi').exec(text);
  return (m?.[1] ?? '').replace(/\r\n[ \t]+/g, ' ');
}

/** The tags of every header field `name`, each as a map. */
function tagsOf(text: string, name: string): Map<string, string>[] {
  const out: Map<string, string>[] = [];
  const re = new RegExp(`^${name}: ([\\s\\S]*?)\\r\\n(?![ \\t])`, 'gmi');
  for (const m of text.matchAll(re)) {
    const v = (m[1] ?? '').replace(/\r\n[ \t]+/g, ' ');
    out.push(
      new Map(
        v
          .split(';')
          .map((t) => t.trim().split('='))
          .map(([k, ...r]) => [k ?? '', r.join('=')]),
      ),
    );
  }
  return out;
}

/** A server on port 25 (loopback checked like any client) whose alias fwd@example.test forwards
 *  to carol@remote.test, a fake MX found through a real DNS server serving the test zone. */
async function forwarder(o: { smtp?: string; extra: string }) {
  const mx = await startFakeMx();
  const dns = await startTestDns([
    { type: 'TXT', name: 'signer.test', text: 'v=spf1 ip4:127.0.0.1 -all' },
    { type: 'TXT', name: '_dmarc.signer.test', text: 'v=DMARC1; p=none' },
    ...Object.entries(KEYS).map(([name, text]) => ({ type: 'TXT' as const, name, text })),
    { type: 'MX', name: 'remote.test', preference: 10, exchange: 'mx.remote.test' },
    { type: 'A', name: 'mx.remote.test', address: '127.0.0.1' },
  ]);
  const t = await startTestServer({
    ...(o.smtp ? { smtp: o.smtp } : {}),
    extra:
      `[delivery]\nport = ${mx.port}\nretry_schedule = ["300ms"]\nmx_tls = "none"\n` +
      `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ndnsbl = []\n${o.extra}`,
  });
  await t.admin.ops.addAlias('fwd@example.test', ['carol@remote.test']);
  return { mx, dns, t };
}

async function stopAll(t: TestServer | undefined, mx: FakeMx | undefined, dns: TestDnsServer | undefined) {
  await t?.stop();
  await mx?.close();
  await dns?.close();
}

describe('arc= in Authentication-Results (hygiene/arc.ts)', () => {
  const ar = 'Authentication-Results: mx.test.example;\r\n dkim=none;\r\n spf=pass smtp.mailfrom=a@b.test\r\n';
  const spf = 'Received-SPF: pass (mx.test.example: ...) client-ip=127.0.0.1;\r\n';

  test('arc=none is added where mailauth left the method out, once, to that field only', () => {
    const out = withArcNone(spf + ar);
    assert.equal(out, `${spf}${ar.slice(0, -2)};\r\n arc=none\r\n`);
    assert.equal(withArcNone(out), out);
    const fail = ar.replace(
      'spf=pass',
      'spf=pass smtp.mailfrom=a@b.test;\r\n arc=fail (i=1 seal signature validation failed)',
    );
    assert.equal(withArcNone(fail), fail);
  });

  test('authResultsValue: the value of our field, folding kept', () => {
    assert.equal(authResultsValue(spf + ar), 'mx.test.example;\r\n dkim=none;\r\n spf=pass smtp.mailfrom=a@b.test');
    assert.equal(authResultsValue(spf), null);
  });
});

describe('ARC', () => {
  let dns: TestDnsServer;
  let mx: FakeMx;
  let t: TestServer;
  const keys: Record<string, string> = { ...KEYS };

  before(async () => {
    ({ mx, dns, t } = await forwarder({ smtp: 'threads = 2', extra: '[dkim]\nalgorithm = "rsa"' }));
    await t.admin.sieve.put('bob@example.test' as AccountId, 'main', Buffer.from('redirect "dave@remote.test";\r\n'));
    await t.admin.sieve.setActive('bob@example.test' as AccountId, 'main');
    for (const k of await t.admin.dkim.keys('example.test')) {
      keys[`${k.selector}._domainkey.example.test`] = txt(createPublicKey(k.privateKeyPem));
    }
  });
  after(() => stopAll(t, mx, dns));

  const send = async (to: string, data: Buffer | string) => {
    const r = await transaction(t.port, 'sender@signer.test', [to], data.toString('latin1'));
    assert.equal(r.code, 250, r.text);
  };

  const stored = (subject: string) =>
    waitUntil(`"${subject}" in alice's INBOX`, async () =>
      (await t.messages('alice@example.test').catch(() => []))
        .map((b) => b.toString('latin1'))
        .find((m) => m.includes(`\r\nSubject: ${subject}\r\n`)),
    );

  const forwarded = (subject: string): Promise<ReceivedMail> =>
    waitUntil(`"${subject}" at the remote MX`, async () =>
      mx.mails.find((m) => m.data.toString('latin1').includes(`\r\nSubject: ${subject}\r\n`)),
    );

  describe('inbound: arc= in our Authentication-Results', () => {
    test('no ARC set: arc=none', async () => {
      await send('alice@example.test', await dkimSigned(message('in none', 'alice@example.test')));
      const ar = field(await stored('in none'), 'Authentication-Results');
      assert.match(ar, /^mx\.test\.example;/);
      assert.match(ar, /\barc=none\b/, ar);
      assert.match(ar, /\bdkim=pass\b/, ar);
    });

    test('a valid ARC set of another intermediary: arc=pass', async () => {
      await send('alice@example.test', await withFirstSet('in pass', 'alice@example.test'));
      const ar = field(await stored('in pass'), 'Authentication-Results');
      assert.match(ar, /\barc=pass \(i=1\b/, ar);
    });

    test('a broken ARC set: arc=fail', async () => {
      await send('alice@example.test', await withBrokenSet('in fail', 'alice@example.test'));
      const ar = field(await stored('in fail'), 'Authentication-Results');
      assert.match(ar, /\barc=fail\b/, ar);
    });
  });

  describe('forwarded copies are sealed (RFC 8617 §5.1)', () => {
    test('alias to outside, no chain before: i=1 cv=none, sealed by the alias domain, valid for python3-dkim', async () => {
      await send('fwd@example.test', await dkimSigned(message('fwd none', 'fwd@example.test')));
      const mail = await forwarded('fwd none');
      const text = mail.data.toString('latin1');
      const [seal] = tagsOf(text, 'ARC-Seal');
      assert.equal(seal?.get('i'), '1');
      assert.equal(seal?.get('cv'), 'none');
      assert.equal(seal?.get('d'), 'example.test');
      assert.equal(seal?.get('a'), 'rsa-sha256');
      // The set is on top, over the bytes as they left (our trace fields included).
      assert.match(text, /^ARC-Seal: /);
      const aar = field(text, 'ARC-Authentication-Results');
      assert.match(aar, /^i=1; mx\.test\.example;/, aar);
      assert.match(aar, /\bdkim=pass\b.*\barc=none\b|\barc=none\b.*\bdkim=pass\b/, aar);
      const v = arcVerify(mail.data, keys);
      assert.equal(v.cv, 'pass', v.comment);
      assert.match(mail.from, /^SRS0=/, 'SRS rewrote the envelope only');
      await t.logged((l) => l.msg === 'ARC: forwarded copy sealed' && l.domain === 'example.test' && l.cv === 'none');
    });

    test('alias to outside, a valid i=1 chain before: our set is i=2 with cv=pass', async () => {
      await send('fwd@example.test', await withFirstSet('fwd pass', 'fwd@example.test'));
      const mail = await forwarded('fwd pass');
      const text = mail.data.toString('latin1');
      const seals = tagsOf(text, 'ARC-Seal');
      assert.deepEqual(
        seals.map((s) => [s.get('i'), s.get('cv'), s.get('d')]),
        [
          ['2', 'pass', 'example.test'],
          ['1', 'none', 'arc1.test'],
        ],
      );
      assert.match(field(text, 'ARC-Authentication-Results'), /^i=2; mx\.test\.example;.*\barc=pass\b/);
      const v = arcVerify(mail.data, keys);
      assert.equal(v.cv, 'pass', v.comment);
      assert.equal(v.instances, 2);
    });

    test('a chain that failed here is sealed once with cv=fail, and never again', async () => {
      await send('fwd@example.test', await withBrokenSet('fwd fail', 'fwd@example.test'));
      const mail = await forwarded('fwd fail');
      const seals = tagsOf(mail.data.toString('latin1'), 'ARC-Seal');
      assert.deepEqual(
        seals.map((s) => [s.get('i'), s.get('cv')]),
        [
          ['2', 'fail'],
          ['1', 'none'],
        ],
      );
      const v = arcVerify(mail.data, keys);
      // dkimpy reads our cv=fail: the chain ends at our set (no cv value comes back).
      assert.notEqual(v.cv, 'pass');
      assert.match(v.comment, /ARC-Seal\[2\] reported failure/);
      // The copy comes back (a loop of forwarders): its newest seal says fail, nothing is added.
      const again = mail.data.toString('latin1').replace('Subject: fwd fail', 'Subject: fwd fail again');
      await send('fwd@example.test', again);
      const second = await forwarded('fwd fail again');
      assert.equal(tagsOf(second.data.toString('latin1'), 'ARC-Seal').length, 2);
    });

    test('the sealed results are ours, never an Authentication-Results the sender wrote with our authserv-id', async () => {
      const forged = `Authentication-Results: ${AUTHSERV}; dkim=pass header.d=forged.test; arc=pass\r\n`;
      await send('fwd@example.test', forged + message('fwd forged', 'fwd@example.test'));
      const text = (await forwarded('fwd forged')).data.toString('latin1');
      const aar = field(text, 'ARC-Authentication-Results');
      assert.doesNotMatch(aar, /forged\.test/);
      assert.match(aar, /\bdkim=none\b/, aar);
      assert.match(aar, /\barc=none\b/, aar);
      assert.doesNotMatch(text, /forged\.test/, 'the forged field was removed at inbound');
    });

    test("a forwarding domain without a key: sealed by our host name's key", async () => {
      await t.admin.ops.addDomain('nokey.test');
      for (const k of await t.admin.dkim.keys('nokey.test')) await t.admin.dkim.remove('nokey.test', k.selector);
      const host = await t.admin.dkim.generate('mx.test.example', { selector: 'host', algorithm: 'rsa' });
      keys['host._domainkey.mx.test.example'] = txt(createPublicKey(host.privateKeyPem));
      await t.admin.ops.addAlias('fwd@nokey.test', ['erin@remote.test']);
      await send('fwd@nokey.test', await dkimSigned(message('fwd nokey', 'fwd@nokey.test')));
      const mail = await forwarded('fwd nokey');
      const [seal] = tagsOf(mail.data.toString('latin1'), 'ARC-Seal');
      assert.deepEqual([seal?.get('d'), seal?.get('s')], ['mx.test.example', 'host']);
      const v = arcVerify(mail.data, keys);
      assert.equal(v.cv, 'pass', v.comment);
    });

    test('Sieve redirect: the copy is sealed by the redirecting user domain, valid for python3-dkim', async () => {
      await send('bob@example.test', await withFirstSet('redirected', 'bob@example.test'));
      const mail = await forwarded('redirected');
      assert.deepEqual(mail.to, ['dave@remote.test']);
      const text = mail.data.toString('latin1');
      const [seal] = tagsOf(text, 'ARC-Seal');
      assert.deepEqual([seal?.get('i'), seal?.get('cv'), seal?.get('d')], ['2', 'pass', 'example.test']);
      const v = arcVerify(mail.data, keys);
      assert.equal(v.cv, 'pass', v.comment);
    });
  });
});

describe('[arc] seal = false', () => {
  let dns: TestDnsServer;
  let mx: FakeMx;
  let t: TestServer;

  before(async () => {
    ({ mx, dns, t } = await forwarder({ extra: '[arc]\nseal = false' }));
  });
  after(() => stopAll(t, mx, dns));

  test('forwarded copies leave without an ARC set; our Authentication-Results still says arc=', async () => {
    const r = await transaction(
      t.port,
      'sender@signer.test',
      ['fwd@example.test'],
      message('unsealed', 'fwd@example.test'),
    );
    assert.equal(r.code, 250, r.text);
    const mail = await waitUntil('"unsealed" at the remote MX', async () => mx.mails[0]);
    const text = mail.data.toString('latin1');
    assert.doesNotMatch(text, /^ARC-/m);
    assert.match(field(text, 'Authentication-Results'), /^mx\.test\.example;.*\barc=none$/);
  });
});
