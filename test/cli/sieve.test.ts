// `arcline sieve put|get|list|activate|deactivate|delete` as users run it: a real process, a
// temp config, the scripts in {state}/sieve.db (docs/cli.md, docs/sieve.md).

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { BIN } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';
import { ROUNDCUBE_SCRIPT } from '../sieve/scripts.ts';

interface Run {
  code: number | null;
  stdout: Buffer;
  stderr: string;
}

function arcline(args: readonly string[], stdin: Buffer | string = ''): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args]);
    const out: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => out.push(d));
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout: Buffer.concat(out), stderr }));
    child.stdin.end(stdin);
  });
}

describe('arcline sieve (stored scripts)', () => {
  let dir: string;
  let config: string;
  const cli = (args: string[], stdin?: Buffer | string) => arcline(['--config', config, ...args], stdin);
  const ok = async (args: string[], stdin?: Buffer | string) => {
    const r = await cli(args, stdin);
    assert.equal(r.code, 0, `${args.join(' ')}: ${r.stderr}`);
    return r.stdout;
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'arcline-cli-sieve-'));
    config = join(dir, 'arcline.toml');
    await writeFile(config, TEST_CONFIG(dir, '[sieve]\nmax_scripts = 3'));
    await ok(['domain', 'add', 'example.test']);
    await ok(['user', 'add', 'alice@example.test', '--password-stdin'], 'pw-alice-1\n');
    await ok(['user', 'add', 'bob@example.test', '--password-stdin'], 'pw-bob-1\n');
  });
  after(() => rm(dir, { recursive: true, force: true }));

  test('put from a file and from stdin, get gives the bytes back exactly, list marks the active one', async () => {
    const file = join(dir, 'rc.sieve');
    await writeFile(file, ROUNDCUBE_SCRIPT);
    assert.match((await ok(['sieve', 'put', 'alice@example.test', 'roundcube', file])).toString(), /stored roundcube/);
    await ok(['sieve', 'put', 'alice@example.test', 'Ürlaub', '-'], 'keep;\n');
    assert.ok((await ok(['sieve', 'get', 'alice@example.test', 'roundcube'])).equals(ROUNDCUBE_SCRIPT));
    assert.equal((await ok(['sieve', 'get', 'alice@example.test', 'Ürlaub'])).toString(), 'keep;\n');
    await ok(['sieve', 'activate', 'alice@example.test', 'roundcube']);
    const list = (await ok(['sieve', 'list', 'alice@example.test'])).toString();
    assert.equal(list, `* roundcube  ${ROUNDCUBE_SCRIPT.length}  (active)\n  Ürlaub  6\n`);
    assert.equal((await ok(['sieve', 'list', 'bob@example.test'])).toString(), '');
  });

  test('an invalid script is refused with its line numbers and not stored', async () => {
    const r = await cli(['sieve', 'put', 'alice@example.test', 'bad', '-'], 'keep;\nfileinto "x";\n');
    assert.equal(r.code, 1);
    assert.match(r.stderr, /<stdin>: line 2: error: .*fileinto/);
    assert.match(r.stderr, /not stored/);
    const get = await cli(['sieve', 'get', 'alice@example.test', 'bad']);
    assert.equal(get.code, 1);
    assert.match(get.stderr, /no script bad/);
  });

  test('delete refuses the active script; deactivate, then delete; quota and unknown user', async () => {
    await ok(['sieve', 'put', 'bob@example.test', 'one', '-'], 'keep;');
    await ok(['sieve', 'activate', 'bob@example.test', 'one']);
    const active = await cli(['sieve', 'delete', 'bob@example.test', 'one']);
    assert.equal(active.code, 1);
    assert.match(active.stderr, /active script.*deactivate/);
    await ok(['sieve', 'deactivate', 'bob@example.test']);
    await ok(['sieve', 'delete', 'bob@example.test', 'one']);
    assert.equal((await ok(['sieve', 'list', 'bob@example.test'])).toString(), '');
    for (const n of ['a', 'b', 'c']) await ok(['sieve', 'put', 'bob@example.test', n, '-'], 'keep;');
    const over = await cli(['sieve', 'put', 'bob@example.test', 'd', '-'], 'keep;');
    assert.equal(over.code, 1);
    assert.match(over.stderr, /At most 3 scripts/);
    const nobody = await cli(['sieve', 'list', 'nobody@example.test']);
    assert.equal(nobody.code, 1);
    assert.match(nobody.stderr, /no such user/);
    const usage = await cli(['sieve', 'put', 'bob@example.test']);
    assert.equal(usage.code, 2);
    const missing = await cli(['sieve', 'activate', 'bob@example.test', 'zzz']);
    assert.equal(missing.code, 1);
  });

  test('arcline backup copies sieve.db with the other databases', async () => {
    const out = join(dir, 'backup');
    await ok(['backup', out]);
    const manifest = JSON.parse(await readFile(join(out, 'manifest.json'), 'utf8')) as {
      databases: { path: string }[];
    };
    assert.ok(
      manifest.databases.some((d) => d.path === 'state/sieve.db'),
      JSON.stringify(manifest.databases),
    );
  });

  test('user del removes the user’s scripts: a new user of the same address starts with none', async () => {
    await ok(['sieve', 'activate', 'bob@example.test', 'a']);
    await ok(['user', 'del', 'bob@example.test']);
    await ok(['user', 'add', 'bob@example.test', '--password-stdin'], 'pw-bob-2\n');
    assert.equal((await ok(['sieve', 'list', 'bob@example.test'])).toString(), '');
  });
});
