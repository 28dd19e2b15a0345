// authenticate.ts gives mailauth only the header block when the message has no DKIM-Signature
// and no ARC field. This pins that the summary and every header are exactly those mailauth
// gives for the whole message, against a real DNS server on 127.0.0.1, for messages with and
// without signatures, and that a "DKIM-Signature" in any case, or an ARC field, sends the whole
// message (a body-hash failure is only found by reading the body).

import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { Readable } from 'node:stream';
import { after, before, test } from 'node:test';
import { authenticate, dkimSign } from 'mailauth';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { withArcNone } from '../../src/hygiene/arc.ts';
import { checkMessage } from '../../src/hygiene/authenticate.ts';
import { startTestDns, type TestDnsServer } from '../harness/dns.ts';

const ed = generateKeyPairSync('ed25519');
const edPem = ed.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
const edPub = (ed.publicKey.export({ type: 'spki', format: 'der' }) as Buffer).subarray(12).toString('base64');

let dns: TestDnsServer;
before(async () => {
  dns = await startTestDns([
    { type: 'TXT', name: 'a.test', text: 'v=spf1 ip4:127.0.0.1 -all' },
    { type: 'TXT', name: '_dmarc.a.test', text: 'v=DMARC1; p=reject' },
    { type: 'TXT', name: 'b.test', text: 'v=spf1 ip4:192.0.2.1 -all' },
    { type: 'TXT', name: '_dmarc.b.test', text: 'v=DMARC1; p=quarantine; aspf=s' },
    { type: 'TXT', name: 'ed._domainkey.b.test', text: `v=DKIM1; k=ed25519; p=${edPub}` },
  ]);
});
after(() => dns.close());

function message(from: string, extra = '', body = 'Hello.\r\n'): Buffer {
  return Buffer.from(
    `Received: from x by y; Tue, 24 Nov 2026 06:00:00 +0000\r\nFrom: ${from}\r\nTo: u@local.test\r\n` +
      `Subject: s\r\n${extra}Date: Tue, 24 Nov 2026 06:00:00 +0000\r\n\r\n${body}`,
  );
}

async function sign(msg: Buffer): Promise<Buffer> {
  const key = { signingDomain: 'b.test', selector: 'ed', privateKey: edPem, algorithm: 'ed25519-sha256' };
  const res = await dkimSign(msg, { ...key, signatureData: [key] });
  return Buffer.concat([Buffer.from(res.signatures), msg]);
}

function headerBlock(msg: Buffer): Buffer {
  const end = msg.indexOf('\r\n\r\n');
  return end < 0 ? msg : msg.subarray(0, end + 2);
}

async function both(msg: Buffer, sender: string) {
  const resolver = createPromiseResolver([dns.address]);
  const opened: string[] = [];
  const ours = await checkMessage({
    message: () => {
      opened.push('whole');
      return Readable.from([msg]);
    },
    headerBlock: headerBlock(msg),
    ip: '127.0.0.1',
    helo: 'client.test',
    sender,
    authservId: 'mx.local.test',
    resolver,
  });
  const theirs = await authenticate(Readable.from([msg]), {
    ip: '127.0.0.1',
    helo: 'client.test',
    sender,
    mta: 'mx.local.test',
    resolver: (name: string, rrtype: string) => resolver.resolve(name, rrtype) as Promise<string[] | string[][]>,
    disableBimi: true,
  });
  return { ours, theirs, opened };
}

/** mailauth's own headers, in our order (Authentication-Results first, RFC 8601 §5), with the
 *  arc=none we add where mailauth leaves the method out (hygiene/arc.ts). */
function sameHeaders(ours: string, mailauths: string): void {
  const theirs = withArcNone(mailauths);
  const fields = (h: string) =>
    h
      .split(/\r\n(?=[^ \t])/)
      .filter((f) => f.trim() !== '')
      .map((f) => f.replace(/\r\n$/, ''));
  assert.deepEqual(fields(ours).sort(), fields(theirs).sort());
}

test('no signature: only the header block is read, the results and headers are those of the whole message', async () => {
  for (const [from, sender] of [
    ['a@a.test', 'bounce@a.test'],
    ['x@b.test', 'x@b.test'],
    ['nobody@unknown.test', ''],
  ] as const) {
    const msg = message(from, '', 'line\r\n'.repeat(500));
    const { ours, theirs, opened } = await both(msg, sender);
    assert.deepEqual(opened, [], 'the whole message is not read');
    sameHeaders(ours.headers, theirs.headers);
    assert.equal(ours.spf, theirs.spf ? theirs.spf.status.result : 'none');
    assert.deepEqual(
      ours.dkim,
      theirs.dkim.results.map((r) => ({ domain: r.signingDomain ?? '', result: r.status.result })),
    );
  }
});

test('a DKIM signature (any case) or an ARC field: the whole message is read, a changed body does not pass', async () => {
  const good = await sign(message('x@b.test'));
  const tampered = Buffer.from(good.toString().replace('Hello.', 'Hullo.'));
  for (const [msg, result] of [
    [good, true],
    [tampered, false],
    [Buffer.from(tampered.toString().replace('DKIM-Signature:', 'dkim-SIGNATURE:')), false],
  ] as const) {
    const { ours, theirs, opened } = await both(msg, 'x@b.test');
    assert.deepEqual(opened, ['whole']);
    // mailauth calls a body-hash mismatch "neutral" (RFC 6376 §3.7 "body hash did not verify").
    assert.equal(ours.dkim[0]?.result === 'pass', result);
    assert.equal(ours.dkim[0]?.result, theirs.dkim.results[0]?.status.result);
    sameHeaders(ours.headers, theirs.headers);
  }
  const arc = message('x@b.test', 'ARC-Seal: i=1; a=rsa-sha256; cv=none; d=b.test; s=ed; b=AAAA\r\n');
  const { ours, theirs, opened } = await both(arc, 'x@b.test');
  assert.deepEqual(opened, ['whole']);
  sameHeaders(ours.headers, theirs.headers);
});
