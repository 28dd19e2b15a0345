// DKIM key rotation on its own (admin/dkim-rotation.ts advanceRotations, the server's periodic
// task "dkim-rotation", docs/hygiene.md "Rotating a key"): `arcline dkim rotate` makes a pending
// key; while its record is not in DNS (a real DNS server on loopback answers the server's
// resolver) it stays pending and the old key signs; once published the server activates it by
// itself and mail carries the new selector, verified by mailauth and by Python's dkim; after the
// grace the old key is deleted and `dkim list` says its record may go.

import assert from 'node:assert/strict';
import { execFile, spawnSync } from 'node:child_process';
import { after, before, describe, test } from 'node:test';
import { promisify } from 'node:util';
import { dkimVerify } from 'mailauth';
import { createPromiseResolver } from '../../src/dns/resolver.ts';
import { dkimRecordName, dkimTxtValue } from '../../src/hygiene/dkim-keys.ts';
import type { TestDnsServer } from '../harness/dns.ts';
import { runCli } from '../harness/process.ts';
import { type Remote, startRemote } from '../harness/remote.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { waitUntil } from '../harness/submit.ts';

// Debian's Python, where python3-dkim and python3-nacl (Ed25519) are installed by .ci/run.
const PYTHON = '/usr/bin/python3';
const hasPythonDkim = spawnSync(PYTHON, ['-c', 'import dkim, nacl']).status === 0;
const run = promisify(execFile);

describe('DKIM key rotation: activation once published, retirement after the grace', () => {
  let s: TestServer;
  let remote: Remote;
  let dns: TestDnsServer;
  const cli = (args: string[]) => runCli(['--config', s.configFile, ...args]);
  const send = () => remote.send(s.submissionPort);
  const selectors = (mail: Buffer) =>
    [...mail.toString().matchAll(/^DKIM-Signature:[\s\S]*?\bs=([a-z0-9.-]+);/gim)].map((m) => m[1]);

  before(async () => {
    remote = await startRemote();
    dns = remote.dns;
    s = await startTestServer({
      submission: true,
      users: ['alice@example.test'],
      // A check every 50 ms: the test awaits rounds (DNS queries seen), it never sleeps.
      extra: `${remote.config}[hygiene]\ndnsbl = []\n[dkim]\nalgorithm = "ed25519"\nrotation_check = "50ms"\n`,
    });
    for (const k of await s.admin.dkim.keys('example.test')) {
      dns.add({ type: 'TXT', name: dkimRecordName(k), text: dkimTxtValue(k) });
    }
  });
  after(async () => {
    await s?.stop();
    await remote?.close();
  });

  test('not published: pending, the old key signs; published: activated; after the grace: gone', async () => {
    const [old] = await s.admin.dkim.keys('example.test');
    assert.ok(old);
    const bad = await cli(['dkim', 'rotate', 'example.test', '--algorithm', 'dsa']);
    assert.equal(bad.code, 2, bad.stderr);
    const r = await cli(['dkim', 'rotate', 'example.test', '--algorithm', 'ed25519', '--grace', '6s']);
    assert.equal(r.code, 0, r.stderr);
    const selector = /selector (\S+) \(ed25519\)/.exec(r.stdout)?.[1];
    assert.ok(selector, r.stdout);
    assert.notEqual(selector, old.selector);
    const [fresh] = await s.admin.dkim.pendingKeys('example.test');
    assert.equal(fresh?.selector, selector);
    assert.match(r.stdout, new RegExp(`^${selector}\\._domainkey\\.example\\.test\\. 3600 IN TXT`, 'm'));

    // Not published: two rounds of the periodic check looked it up (NXDOMAIN), it stays pending.
    const name = `${selector}._domainkey.example.test/TXT`;
    await waitUntil('two checks', async () => (dns.queries.get(name) ?? 0) >= 2);
    assert.equal((await s.admin.dkim.pendingKeys('example.test')).length, 1);
    const refused = await cli(['dkim', 'rotate', 'example.test', '--activate']);
    assert.equal(refused.code, 1);
    assert.match(refused.stderr, /not published yet: publish it first/);
    const early = await send();
    assert.deepEqual(selectors(early), [old.selector]);

    // Published (a different value first: not "the same public key", still pending).
    dns.add({ type: 'TXT', name: dkimRecordName(fresh), text: dkimTxtValue(old) });
    const seen = dns.queries.get(name) ?? 0;
    await waitUntil('a check of the wrong record', async () => (dns.queries.get(name) ?? 0) >= seen + 2);
    assert.equal((await s.admin.dkim.pendingKeys('example.test')).length, 1);
    dns.remove(dkimRecordName(fresh));
    dns.add({ type: 'TXT', name: dkimRecordName(fresh), text: dkimTxtValue(fresh) });
    await waitUntil('activation', async () => (await s.admin.dkim.keys('example.test'))[0]?.selector === selector);
    assert.ok(s.logs.some((l) => l.msg === 'DKIM key activated: its record is published' && l.selector === selector));
    // During the grace (6 s) the old key is listed as retired, its record to be kept.
    const during = (await cli(['dkim', 'list', 'example.test'])).stdout;
    assert.match(
      during,
      new RegExp(
        `; retired \\(ed25519\\): keep the DNS record ${old.selector}\\._domainkey\\.example\\.test published until`,
      ),
    );
    const late = await send();
    assert.deepEqual(selectors(late), [selector]);

    // Both messages verify: the new one with the new record, the earlier one with the old
    // record, still published during the grace. Our verifier (mailauth, through DNS) ...
    const resolver = createPromiseResolver([dns.address]);
    for (const mail of [early, late]) {
      const res = await dkimVerify(mail, {
        resolver: (n: string, rr: string) => resolver.resolve(n, rr) as Promise<string[][]>,
      });
      assert.deepEqual(
        res.results.map((x) => x.status.result),
        ['pass'],
      );
    }
    // ... and an independent one (Python dkim), given the published records.
    if (hasPythonDkim) {
      const records = Object.fromEntries([old, fresh].map((k) => [`${dkimRecordName(k)}.`, dkimTxtValue(k)]));
      const script = `
import dkim, json, sys
keys = json.loads(sys.argv[1])
def dnsfunc(name, timeout=5):
    name = name.decode() if isinstance(name, bytes) else name
    return keys.get(name, '').encode()
print(json.dumps(dkim.verify(sys.stdin.buffer.read(), dnsfunc=dnsfunc)))
`;
      for (const mail of [early, late]) {
        const child = run(PYTHON, ['-c', script, JSON.stringify(records)], { encoding: 'utf8' });
        child.child.stdin?.end(mail);
        assert.equal(JSON.parse((await child).stdout), true);
      }
    }

    // Then the periodic task deletes it.
    await waitUntil('the grace ends', async () => (await s.admin.dkim.retiredKeys('example.test'))[0]?.gone, 30_000);
    const listed = (await cli(['dkim', 'list', 'example.test'])).stdout;
    assert.match(listed, new RegExp(`the DNS record ${old.selector}\\._domainkey\\.example\\.test may be removed`));
    assert.deepEqual(selectors(await send()), [selector]);
  });
});
