// Issue #13: the other install route, `npm pack` then `npm install -g ./arcline-email-X.tgz`, on
// a Node.js >= 22.19 (here the pinned one, first on PATH). The pack is made from a copy of the
// checkout, so its prepack build (dist/) never lands in this checkout, where bin/arcline.js
// would then run the compiled copy instead of the sources.

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { cp, lstat, mkdir, mkdtemp, readdir, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import type * as AdminStatic from '../../src/web/admin-static.ts';

const ROOT = fileURLToPath(new URL('../..', import.meta.url));
/** What a checkout needs to build and pack (the sources, the tsconfigs, `files` of package.json). */
const CHECKOUT = [
  'package.json',
  'package-lock.json',
  'tsconfig.json',
  'tsconfig.build.json',
  'README.md',
  'src',
  'bin',
  'docs',
  'web-admin',
];
/** PATH with the pinned Node first: npm, and the installed `arcline` (#!/usr/bin/env node), run on it. */
const env = { ...process.env, PATH: `${dirname(process.execPath)}${delimiter}${process.env.PATH ?? ''}` };

function run(cmd: string, args: readonly string[], cwd: string): { code: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { cwd, env, encoding: 'utf8' });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

/** npm on the pinned Node: the npm that runs this test (npm test) or the one on PATH. */
function npm(args: readonly string[], cwd: string) {
  const cli = process.env.npm_execpath;
  return cli?.endsWith('.js') ? run(process.execPath, [cli, ...args], cwd) : run('npm', args, cwd);
}

const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

test('npm pack builds dist/ and packs what an install needs; npm install -g of the tarball gives a working arcline', {
  timeout: 120_000,
}, async (t) => {
  const tmp = await mkdtemp(join(tmpdir(), 'arcline-pack-'));
  dirs.push(tmp);
  const checkout = join(tmp, 'checkout');
  await mkdir(checkout);
  for (const f of CHECKOUT) await cp(join(ROOT, f), join(checkout, f), { recursive: true });
  await symlink(join(ROOT, 'node_modules'), join(checkout, 'node_modules'));

  let started = performance.now();
  const packed = npm(['pack', '--pack-destination', tmp, '--loglevel=error'], checkout);
  assert.equal(packed.code, 0, packed.err);
  const tarball = join(tmp, packed.out.trim().split('\n').at(-1) ?? '');
  t.diagnostic?.(`npm pack: ${Math.round(performance.now() - started)} ms`);
  const listing = run('tar', ['-tzf', tarball], tmp).out.split('\n');
  for (const f of [
    'bin/arcline.js',
    'dist/cli/main.js',
    'dist/server.js',
    'dist-admin/index.html',
    'docs/deployment.md',
    'README.md',
  ]) {
    assert.ok(listing.includes(`package/${f}`), `${f} is not in the tarball`);
  }
  assert.deepEqual(
    listing.filter((f) => /^package\/(src|test|bench|scripts|packaging|node_modules|web-admin)\//.test(f)),
    [],
  );

  started = performance.now();
  const prefix = join(tmp, 'prefix');
  const installed = npm(
    ['install', '-g', '--prefix', prefix, tarball, '--no-audit', '--no-fund', '--prefer-offline'],
    tmp,
  );
  assert.equal(installed.code, 0, installed.err);
  t.diagnostic?.(`npm install -g: ${Math.round(performance.now() - started)} ms`);
  const arcline = join(prefix, 'bin/arcline');
  const pkgDir = join(prefix, 'lib/node_modules/arcline-email');
  assert.deepEqual((await readdir(pkgDir)).sort(), [
    'README.md',
    'bin',
    'dist',
    'dist-admin',
    'docs',
    'node_modules',
    'package.json',
  ]);

  const version = run(arcline, ['version'], tmp);
  assert.deepEqual(
    [version.code, version.out],
    [0, `arcline ${(await import('../../package.json', { with: { type: 'json' } })).default.version}\n`],
  );
  const config = join(tmp, 'arcline.toml');
  await writeFile(
    config,
    `[storage]\nmaildir = "${tmp}/mail"\nstate = "${tmp}/state"\n[dkim]\nalgorithm = "ed25519"\n`,
  );
  const added = run(arcline, ['--config', config, 'domain', 'add', 'example.test'], tmp);
  assert.equal(added.code, 0, added.err);
  const listed = run(arcline, ['--config', config, 'domain', 'list'], tmp);
  assert.equal(listed.code, 0, listed.err);
  assert.match(listed.out, /^example\.test +0 +0 +-$/m);
  assert.ok((await lstat(join(tmp, 'state/dkim/example.test'))).isDirectory()); // its DKIM key

  // The installed server finds the web admin the pack built (dist/web/ -> ../../dist-admin).
  const { adminStaticRoute } = (await import(join(pkgDir, 'dist/web/admin-static.js'))) as typeof AdminStatic;
  const page = await adminStaticRoute()({
    method: 'GET',
    host: null,
    path: '/admin/',
    query: new URLSearchParams(),
    body: null,
    secure: false,
  });
  assert.equal(page?.status, 200);
  assert.match(page?.body ?? '', /<script type="module" crossorigin src="\/admin\/assets\//);

  // An older Node, if the system has one, is told what is needed rather than failing later.
  const system = run('/usr/bin/node', ['--version'], tmp);
  const [major = 0, minor = 0] = system.out.replace(/^v/, '').split('.').map(Number);
  if (system.code === 0 && (major < 22 || (major === 22 && minor < 19))) {
    const old = run('/usr/bin/node', [join(pkgDir, 'bin/arcline.js'), 'version'], tmp);
    assert.equal(old.code, 1);
    assert.match(old.err, /^arcline: needs Node\.js >= 22\.19 \(this is v/);
  } else {
    t.diagnostic?.(`no Node.js older than 22.19 at /usr/bin/node (${system.out.trim() || system.err.trim()})`);
  }
});
