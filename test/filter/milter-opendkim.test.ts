// opendkim (Debian's, a libmilter milter in C) as a [[milter]]: it signs what alice submits
// ({daemon_name} "submission" is in its MTA list) and verifies what comes in on port 25 (the
// client 127.0.0.1 is not one of its InternalHosts), with a key made by opendkim-genkey and
// its public half given through TestPublicKeys, so it asks no DNS server.

import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { type MilterPeer, startOpendkim } from '../harness/milter.ts';
import { freePort } from '../harness/pebble.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { submitter, waitUntil } from '../harness/submit.ts';

const run = promisify(execFile);

async function newest(s: TestServer, address: string, n: number): Promise<Buffer> {
  const files = await waitUntil(`${n} message(s) for ${address}`, async () => {
    const f = await s.messages(address);
    return f.length >= n ? f : null;
  });
  return files[n - 1] as Buffer;
}

describe('opendkim as a milter', () => {
  let dir: string;
  let opendkim: MilterPeer;
  let s: TestServer;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-opendkim-'));
    await run('/usr/sbin/opendkim-genkey', ['-D', dir, '-d', 'example.test', '-s', 'sel', '-b', '1024']);
    // sel.txt is a zone file line: join its quoted strings into the TXT record's value.
    const zone = await readFile(join(dir, 'sel.txt'), 'utf8');
    const txt = [...zone.matchAll(/"([^"]*)"/g)].map((m) => m[1]).join('');
    await writeFile(join(dir, 'keys'), `sel._domainkey.example.test ${txt}\n`);
    const port = await freePort();
    const conf = join(dir, 'opendkim.conf');
    await writeFile(
      conf,
      [
        'Syslog no',
        // The test's key lives under /tmp, which every user may write.
        'RequireSafeKeys false',
        'Mode sv',
        'Domain example.test',
        'Selector sel',
        `KeyFile ${join(dir, 'sel.private')}`,
        'InternalHosts 192.0.2.1',
        'MTA submission',
        'AuthservID opendkim.test',
        `TestPublicKeys ${join(dir, 'keys')}`,
        'Nameservers 127.0.0.1',
        'Canonicalization relaxed/simple',
        `PidFile ${join(dir, 'opendkim.pid')}`,
        '',
      ].join('\n'),
    );
    opendkim = await startOpendkim(conf, port);
    s = await startTestServer({
      smtp: 'threads = 0',
      submission: true,
      extra: `[[milter]]\nname = "opendkim"\naddress = "${opendkim.address}"\n`,
    });
  });
  after(async () => {
    await s?.stop();
    await opendkim?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  test('submission: signed by opendkim; port 25: the same bytes verify (dkim=pass)', async () => {
    await submitter(s.submissionPort).sendMail({
      envelope: { from: 'alice@example.test', to: ['alice@example.test'] },
      raw:
        'From: Alice <alice@example.test>\r\nTo: alice@example.test\r\nSubject: signed by opendkim\r\n' +
        'Date: Mon, 7 Dec 2026 00:00:00 +0000\r\nMessage-ID: <odk1@example.test>\r\n\r\nA body to sign.\r\n',
    });
    const signed = (await newest(s, 'alice@example.test', 1)).toString('latin1');
    const head = signed.slice(0, signed.indexOf('\r\n\r\n'));
    assert.match(
      head,
      /\r\nDKIM-Signature: v=1; a=rsa-sha256; c=relaxed\/simple; d=example\.test;\r?\n?\s*s=sel;/,
      head,
    );
    assert.equal(signed.slice(signed.indexOf('\r\n\r\n') + 4), 'A body to sign.\r\n');
    assert.doesNotMatch(head, /(?<!\r)\n|\r(?!\n)/, 'CRLF line endings only');

    // The delivered file, without the fields only the mailbox copy has, sent in on port 25.
    const relayed = signed.replace(/^Return-Path: [^\r]*\r\nDelivered-To: [^\r]*\r\n/, '');
    const c = await RawSmtp.connect(s.port);
    await c.read();
    await c.cmd('EHLO client.example');
    assert.equal((await c.cmd('MAIL FROM:<alice@example.test>')).code, 250);
    assert.equal((await c.cmd('RCPT TO:<bob@example.test>')).code, 250);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(Buffer.concat([Buffer.from(relayed, 'latin1'), Buffer.from('.\r\n')]));
    assert.equal((await c.read(10_000)).code, 250);
    c.close();
    const verified = (await newest(s, 'bob@example.test', 1)).toString('latin1');
    assert.match(
      verified,
      /\r\nAuthentication-Results: opendkim\.test;\r?\n?\s*dkim=pass [^\r]*\r?\n?[^\r]*header\.d=example\.test/,
    );
  });
});
