// ManageSieve (RFC 5804) with real clients over STARTTLS on loopback, against the real server:
// sieve-connect (Perl, Debian) and python3-sievelib. Upload, check (a bad script gives its error
// with the line), activate, list, download byte for byte (CRLF, a Roundcube-style marked block,
// non-ASCII), delete; and the same scripts seen by `arcline sieve` through the store.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { ROUNDCUBE_SCRIPT as ROUNDCUBE } from '../sieve/scripts.ts';

const PASSWORD = 'secret-password';
const ALICE = 'alice@example.test' as AccountId;

const BAD = 'require "fileinto";\r\nkeep;\r\nfileinto :bogus "x";\r\n';

function run(
  cmd: string,
  args: readonly string[],
  opts: { fd3?: string; stdin?: string } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout?.on('data', (d) => {
      stdout += d;
    });
    child.stderr?.on('data', (d) => {
      stderr += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
    const fd3 = child.stdio[3] as NodeJS.WritableStream;
    fd3.end(opts.fd3 ?? '');
    child.stdin?.end(opts.stdin ?? '');
  });
}

describe('ManageSieve with real clients over STARTTLS', () => {
  let s: TestServer;
  before(async () => {
    s = await startTestServer({ extra: '[managesieve]\nlisten = ["127.0.0.1:0"]' });
  });
  after(() => s.stop());

  const sieveConnect = (args: readonly string[]) =>
    run(
      'sieve-connect',
      [
        '--server',
        '127.0.0.1',
        '--port',
        String(s.managesievePort),
        '--user',
        'alice@example.test',
        '--passwordfd',
        '3',
        '--notlsverify',
        // Refuse to authenticate in clear: proves STARTTLS was used.
        '--noclearauth',
        ...args,
      ],
      { fd3: `${PASSWORD}\n` },
    );

  test('sieve-connect: upload, check, activate, list, download byte for byte, delete', async () => {
    const local = join(s.dir, 'roundcube.sieve');
    await writeFile(local, ROUNDCUBE);
    const up = await sieveConnect(['--localsieve', local, '--remotesieve', 'roundcube', '--upload']);
    assert.equal(up.code, 0, up.stderr);
    const stored = await s.admin.sieve.get(ALICE, 'roundcube');
    assert.ok(stored?.equals(ROUNDCUBE), 'stored byte for byte');

    const bad = join(s.dir, 'bad.sieve');
    await writeFile(bad, BAD);
    const check = await sieveConnect(['--localsieve', bad, '--checkscript']);
    assert.equal(check.code, 1);
    assert.match(check.stdout + check.stderr, /line 3: error: .*bogus/);
    const badUp = await sieveConnect(['--localsieve', bad, '--remotesieve', 'bad', '--upload']);
    assert.notEqual(badUp.code, 0);
    assert.match(badUp.stdout + badUp.stderr, /line 3/);
    assert.equal(await s.admin.sieve.get(ALICE, 'bad'), null);

    const act = await sieveConnect(['--remotesieve', 'roundcube', '--activate']);
    assert.equal(act.code, 0, act.stderr);
    const list = await sieveConnect(['--list']);
    assert.equal(list.code, 0, list.stderr);
    assert.match(list.stdout, /"roundcube" ACTIVE/);

    const out = join(s.dir, 'downloaded.sieve');
    const down = await sieveConnect(['--remotesieve', 'roundcube', '--localsieve', out, '--download']);
    assert.equal(down.code, 0, down.stderr);
    assert.ok((await readFile(out)).equals(ROUNDCUBE), 'downloaded byte for byte');

    const refused = await sieveConnect(['--remotesieve', 'roundcube', '--delete']);
    assert.notEqual(refused.code, 0);
    assert.match(refused.stdout + refused.stderr, /ACTIVE/);
    assert.equal((await sieveConnect(['--deactivate'])).code, 0);
    const del = await sieveConnect(['--remotesieve', 'roundcube', '--delete']);
    assert.equal(del.code, 0, del.stderr);
    assert.deepEqual(await s.admin.sieve.list(ALICE), []);
    // Every session went through STARTTLS.
    const connects = s.logs.filter((l) => l.msg === 'auth ok' && l.service === 'managesieve');
    assert.ok(connects.length >= 6);
  });

  test('python3-sievelib: STARTTLS, put, raw GETSCRIPT byte for byte, check, havespace, rename, setactive, delete', async () => {
    const py = `
import sys, json
from sievelib.managesieve import Client
port = int(sys.argv[1]); body = bytes.fromhex(sys.argv[2]); bad = sys.argv[3]
c = Client('127.0.0.1', port)
r = {}
r['connect'] = c.connect('alice@example.test', sys.stdin.readline().strip(), starttls=True, authmech='PLAIN')
r['tls'] = c.get_implementation() == 'arcline' and 'STARTTLS' not in c._Client__capabilities
r['put'] = c.putscript('Ürlaub', body.decode('utf-8'))
code, data, raw = c._Client__send_command('GETSCRIPT', ['Ürlaub'.encode()], withcontent=True)
r['get_code'] = code; r['raw'] = raw.hex()
r['check_bad'] = c.checkscript(bad); r['errmsg'] = c.errmsg.decode('utf-8')
r['havespace'] = c.havespace('big', 10)
r['havespace_big'] = c.havespace('big', 50 * 1024 * 1024); r['havespace_code'] = c.errcode.decode()
r['rename'] = c.renamescript('Ürlaub', 'vacation')
r['setactive'] = c.setactive('vacation')
r['list'] = c.listscripts()
r['setactive_none'] = c.setactive('')
r['delete'] = c.deletescript('vacation')
r['list_after'] = c.listscripts()
c.logout()
print(json.dumps(r))
`;
    const r = await run('/usr/bin/python3', ['-c', py, String(s.managesievePort), ROUNDCUBE.toString('hex'), BAD], {
      stdin: `${PASSWORD}\n`,
    });
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    assert.equal(got.connect, true);
    assert.equal(got.tls, true, 'capabilities re-read after STARTTLS no longer offer it');
    assert.equal(got.put, true);
    assert.equal(got.get_code, 'OK');
    // sievelib's raw response is the literal's bytes (it adds a CRLF only to a script that does
    // not end with one; this one does).
    assert.ok(Buffer.from(got.raw, 'hex').equals(ROUNDCUBE), got.raw);
    assert.equal(got.check_bad, false);
    assert.match(got.errmsg, /line 3: error: .*bogus/);
    assert.equal(got.havespace, true);
    assert.equal(got.havespace_big, false);
    assert.equal(got.havespace_code, 'QUOTA/MAXSIZE');
    assert.equal(got.rename, true);
    assert.equal(got.setactive, true);
    assert.deepEqual(got.list, ['vacation', []]);
    assert.equal(got.setactive_none, true);
    assert.equal(got.delete, true);
    assert.deepEqual(got.list_after, [null, []]);
  });
});
