// Issue #13, the install route: `npm run package:deb` builds a Debian package that carries its
// own Node.js; `dpkg -i` installs it on this machine (the arcline account, the data directories,
// the config, the unit); the server then runs as that account outside systemd (there is no
// systemd PID 1 here) with the unit's privileges, set by setpriv(1): ambient
// CAP_NET_BIND_SERVICE and nothing else, no new privileges. A message goes in over SMTP on a
// port below 1024 and comes out over IMAP; `dpkg --purge` removes it all. The unit passes
// `systemd-analyze verify` and scores <= 2.0 with `systemd-analyze security`.
// Needs root (dpkg -i), as CI runs. It refuses to run where arcline-email is already installed
// (it would purge someone's installation).

import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmod, chown, lstat, mkdir, mkdtemp, readFile, readlink, realpath, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { type TLSSocket, connect as tlsConnect } from 'node:tls';
import { buildDeb, CONFIG_PATH, LIB_DIR, PACKAGE_NAME, UNIT_PATH } from '../../scripts/package-deb.ts';
import { parseConfigText } from '../../src/config/load.ts';
import { generateSelfSigned } from '../../src/tls/certs.ts';
import { notOwnedBy, notPrivate, walk } from '../harness/files.ts';
import { RawImap } from '../harness/imap-client.ts';
import { freePrivilegedPort, spawnServer } from '../harness/process.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

const asRoot = process.getuid?.() === 0;
const PASSWORD = 'pw-secret-1';
const WANTS = '/etc/systemd/system/multi-user.target.wants/arcline.service';
const DATA_DIRS = ['/var/lib/arcline', '/var/mail/arcline'];

/** Runs a program; its exit status and both outputs. */
function sh(cmd: string, args: readonly string[], input = ''): { code: number | null; out: string; err: string } {
  const r = spawnSync(cmd, args, { encoding: 'utf8', input });
  return { code: r.status, out: r.stdout, err: r.stderr };
}

function installed(): boolean {
  return sh('dpkg-query', ['-W', `-f=\${Status}`, PACKAGE_NAME]).out.startsWith('install ok');
}

/** uid and gid of an account, or null. */
function account(name: string): { uid: number; gid: number; home: string; shell: string } | null {
  const r = sh('getent', ['passwd', name]);
  if (r.code !== 0) return null;
  const f = r.out.trim().split(':');
  return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] ?? '', shell: f[6] ?? '' };
}

async function sha256(path: string): Promise<string> {
  return createHash('sha256')
    .update(await readFile(path))
    .digest('hex');
}

/** The installed config with the test's directories, loopback ports and no DNS off this machine;
 *  every replacement must apply, so a change of the shipped config shows here. */
function testConfig(shipped: string, dir: string, smtpPort: number): string {
  const edits: [RegExp | string, string][] = [
    ['# hostname = "mx.example.org"', 'hostname = "mx.test.example"'],
    ['maildir = "/var/mail/arcline"', `maildir = "${dir}/mail"`],
    ['state = "/var/lib/arcline"', `state = "${dir}/state"`],
    ['listen = ["[::]:25"]', `listen = ["127.0.0.1:${smtpPort}"]\nreverse_lookup = false`],
    [/"\[::\]:\d+"/g, '"127.0.0.1:0"'],
    ['"127.0.0.1:9425"', '"127.0.0.1:0"'],
    [
      '# [tls]\n# cert = "/etc/arcline/tls/fullchain.pem"\n# key = "/etc/arcline/tls/privkey.pem"',
      `[tls]\ncert = "${dir}/tls/fullchain.pem"\nkey = "${dir}/tls/privkey.pem"`,
    ],
  ];
  let text = shipped;
  for (const [from, to] of edits) {
    const next = text.replace(from, to);
    assert.notEqual(next, text, `the shipped config has no ${from}`);
    text = next;
  }
  return `${text}
[dns]
servers = ["127.0.0.1:1"]
[hygiene]
trusted_networks = ["127.0.0.0/8"]
[dkim]
algorithm = "ed25519"
[auth]
password_scheme = "bcrypt"
bcrypt_cost = 4
`;
}

/** Capability sets and no_new_privs of a process, from /proc. */
async function capsOf(pid: number) {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) => new RegExp(`^${name}:\\s*(\\S+)`, 'm').exec(status)?.[1];
  return {
    uid: field('Uid'),
    eff: field('CapEff'),
    amb: field('CapAmb'),
    bnd: field('CapBnd'),
    noNewPrivs: field('NoNewPrivs'),
  };
}

describe('the Debian package', { skip: !asRoot && 'needs root (dpkg -i)' }, () => {
  const dirs: string[] = [];
  let hadAccount = false;
  /** The data directories the install made (removed after the test, whatever happened). */
  let madeDirs: string[] = [];
  let deb = '';
  /** Whether this test installs the package (and so cleans up after it). */
  let ours = false;

  before(
    async (t) => {
      assert.ok(!installed(), `${PACKAGE_NAME} is installed on this machine: this test would purge it`);
      ours = true;
      hadAccount = account('arcline') !== null;
      madeDirs = [];
      for (const d of DATA_DIRS) if (!(await lstat(d).catch(() => null))) madeDirs.push(d);
      const out = await mkdtemp(join(tmpdir(), 'arcline-deb-out-'));
      dirs.push(out);
      const started = performance.now();
      // zstd at level 1 (0.5 s) rather than the default xz:1 (5 s): what is tested is the same.
      const built = buildDeb({ outDir: out, compression: 'zstd:1' });
      const seconds = (performance.now() - started) / 1000;
      deb = built.file;
      t.diagnostic?.(`built ${deb} in ${seconds.toFixed(1)} s: ${JSON.stringify(built.timings)}`);
      assert.match(deb, /\/arcline-email_\d+\.\d+\.\d+[^_]*_amd64\.deb$/);
      const r = sh('dpkg', ['-i', deb]);
      assert.equal(r.code, 0, r.err);
    },
    { timeout: 120_000 },
  );

  after(async () => {
    if (ours) {
      if (sh('dpkg-query', ['-W', PACKAGE_NAME]).code === 0) sh('dpkg', ['--purge', PACKAGE_NAME]);
      if (!hadAccount && account('arcline')) {
        sh('userdel', ['arcline']);
        sh('groupdel', ['arcline']);
      }
    }
    for (const d of [...dirs, ...madeDirs]) await rm(d, { recursive: true, force: true });
  });

  test('it carries the pinned Node.js, and makes the account, the data directories and the config', async () => {
    // The very binary of the `node` devDependency; the wrapper runs it, whatever node is on PATH.
    const pinned = await realpath(new URL('../../node_modules/node/bin/node', import.meta.url).pathname);
    assert.equal(await sha256(`${LIB_DIR}/bin/node`), await sha256(pinned));
    const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
    const version = sh('/usr/bin/arcline', ['version']);
    assert.deepEqual([version.code, version.out, version.err], [0, `arcline ${pkg.version}\n`, '']);
    for (const addon of [
      'argon2-linux-x64-gnu/argon2.linux-x64-gnu.node',
      'bcrypt-linux-x64-gnu/bcrypt.linux-x64-gnu.node',
    ]) {
      assert.ok((await lstat(`${LIB_DIR}/node_modules/@node-rs/${addon}`)).isFile(), addon);
    }
    // The web admin, built into the package next to dist/ (served at /admin/).
    assert.match(await readFile(`${LIB_DIR}/dist-admin/index.html`, 'utf8'), /src="\/admin\/assets\/index-[\w-]+\.js"/);
    // A system account with no login, owning its two data directories, 0700.
    const arcline = account('arcline');
    assert.ok(arcline && arcline.uid > 0 && arcline.uid < 1000, JSON.stringify(arcline));
    assert.deepEqual([arcline.home, arcline.shell], ['/var/lib/arcline', '/usr/sbin/nologin']);
    for (const dir of DATA_DIRS) {
      const st = await lstat(dir);
      assert.deepEqual([st.isDirectory(), st.uid, st.gid, st.mode & 0o7777], [true, arcline.uid, arcline.gid, 0o700]);
    }
    // The config is a conffile, valid, and listens where a mail server does.
    assert.equal(sh('dpkg-query', ['-W', `-f=\${Conffiles}`, PACKAGE_NAME]).out.trim().split(' ')[0], CONFIG_PATH);
    const config = parseConfigText(await readFile(CONFIG_PATH, 'utf8'), CONFIG_PATH);
    assert.deepEqual(
      {
        storage: config.storage,
        smtp: config.smtp.listen,
        submission: [config.submission.listen, config.submission.tls_listen],
        imap: [config.imap.listen, config.imap.tls_listen],
        user: config.server.user,
      },
      {
        storage: { maildir: '/var/mail/arcline', state: '/var/lib/arcline' },
        smtp: ['[::]:25'],
        submission: [['[::]:587'], ['[::]:465']],
        imap: [['[::]:143'], ['[::]:993']],
        user: 'arcline',
      },
    );
    // Enabled for the next boot (no systemd runs here, so nothing was started).
    assert.match(await readlink(WANTS), /\/systemd\/system\/arcline\.service$/);
    // Installed again (as an upgrade runs postinst): the same account, nothing else changed.
    const again = sh('dpkg', ['-i', deb]);
    assert.equal(again.code, 0, again.err);
    assert.deepEqual(account('arcline'), arcline);
    for (const dir of DATA_DIRS) assert.equal(((await lstat(dir)).mode & 0o7777).toString(8), '700');
  });

  test('systemd-analyze: verify prints nothing, security scores the unit 2.0 or less', () => {
    const verify = sh('systemd-analyze', ['verify', UNIT_PATH]);
    assert.deepEqual([verify.code, verify.out, verify.err], [0, '', '']);
    const security = sh('systemd-analyze', ['security', '--offline=yes', '--no-pager', UNIT_PATH]);
    const score = /Overall exposure level for arcline\.service: (\d+\.\d+)/.exec(security.out)?.[1];
    assert.ok(score !== undefined, security.out + security.err);
    assert.ok(Number(score) <= 2.0, `exposure ${score}:\n${security.out}`);
  });

  test('the server runs as arcline with only CAP_NET_BIND_SERVICE, takes mail on a port below 1024 and serves it over IMAP; the CLI as root writes as arcline', {
    timeout: 60_000,
  }, async () => {
    const arcline = account('arcline');
    assert.ok(arcline);
    const dir = await mkdtemp(join(tmpdir(), 'arcline-deb-run-'));
    dirs.push(dir);
    await chmod(dir, 0o711);
    for (const d of ['state', 'mail']) {
      await mkdir(join(dir, d), { mode: 0o700 });
      await chown(join(dir, d), arcline.uid, arcline.gid);
    }
    // The certificate as the certbot deploy hook of docs/deployment.md leaves it: a copy of the
    // key readable by the group arcline, in a directory only root writes.
    const pair = await generateSelfSigned('mx.test.example');
    await mkdir(join(dir, 'tls'), { mode: 0o750 });
    await chown(join(dir, 'tls'), 0, arcline.gid);
    for (const [name, text, mode] of [
      ['fullchain.pem', pair.cert, 0o644],
      ['privkey.pem', pair.key, 0o640],
    ] as const) {
      await writeFile(join(dir, 'tls', name), text, { mode });
      await chown(join(dir, 'tls', name), 0, arcline.gid);
    }
    const port = await freePrivilegedPort();
    const configFile = join(dir, 'arcline.toml');
    await writeFile(configFile, testConfig(await readFile(CONFIG_PATH, 'utf8'), dir, port));

    // The CLI as root (sudo arcline ...): it becomes arcline before it writes anything.
    for (const args of [
      ['domain', 'add', 'example.test'],
      ['user', 'add', 'alice@example.test', '--password-stdin'],
    ]) {
      const r = sh('/usr/bin/arcline', ['--config', configFile, ...args], `${PASSWORD}\n`);
      assert.equal(r.code, 0, r.err);
    }

    // As arcline itself (sudo -u arcline arcline ...) too; as anyone else, refused in one line.
    const asUser = (user: string, group: string, ...args: string[]) =>
      sh('setpriv', [
        `--reuid=${user}`,
        `--regid=${group}`,
        '--init-groups',
        '/usr/bin/arcline',
        '--config',
        configFile,
        ...args,
      ]);
    const own = asUser('arcline', 'arcline', 'domain', 'list');
    assert.equal(own.code, 0, own.err);
    assert.match(own.out, /^example\.test /m);
    const other = asUser('nobody', 'nogroup', 'domain', 'list');
    assert.equal(other.code, 1);
    assert.match(
      other.err,
      /^arcline: server\.user\/group is arcline:arcline but arcline runs as nobody:nogroup, and only root can change that/,
    );

    // What systemd does with the unit: User=arcline, AmbientCapabilities= and
    // CapabilityBoundingSet=CAP_NET_BIND_SERVICE, NoNewPrivileges=yes.
    const srv = await spawnServer(configFile, {
      allowRoot: false,
      command: [
        'setpriv',
        '--reuid=arcline',
        '--regid=arcline',
        '--init-groups',
        '--inh-caps=+net_bind_service',
        '--ambient-caps=+net_bind_service',
        '--bounding-set=-all,+net_bind_service',
        '--no-new-privs',
        '/usr/bin/arcline',
      ],
    });
    try {
      assert.equal(srv.port, port);
      const NET_BIND_SERVICE = '0000000000000400';
      assert.deepEqual(await capsOf(srv.child.pid as number), {
        uid: String(arcline.uid),
        eff: NET_BIND_SERVICE,
        amb: NET_BIND_SERVICE,
        bnd: NET_BIND_SERVICE,
        noNewPrivs: '1',
      });
      // It runs on the package's node (re-executed with its heap flag, same binary).
      assert.equal(await readlink(`/proc/${srv.child.pid}/exe`), `${LIB_DIR}/bin/node`);

      const smtp = await RawSmtp.connect(port);
      const replies = await envelope(smtp, 'someone@remote.example', ['alice@example.test']);
      assert.equal(replies.at(-1)?.code, 250, replies.at(-1)?.text);
      assert.equal((await smtp.cmd('DATA')).code, 354);
      smtp.write('Subject: through the package\r\n\r\nhello\r\n.\r\n');
      assert.equal((await smtp.read()).code, 250);
      smtp.close();

      const { client } = await RawImap.connect(srv.ports.imap?.[0] as number);
      assert.match((await client.cmd(`LOGIN alice@example.test ${PASSWORD}`)).at(-1) ?? '', /^t1 OK/);
      assert.ok((await client.cmd('SELECT INBOX')).includes('* 1 EXISTS'));
      const fetched = (await client.cmd('FETCH 1 BODY.PEEK[HEADER.FIELDS (SUBJECT)]')).join('\n');
      assert.match(fetched, /Subject: through the package/);
      client.close();

      // IMAPS with that certificate, read by arcline through its group.
      const tls = await new Promise<TLSSocket>((resolve, reject) => {
        const socket = tlsConnect({
          port: srv.ports.imap?.[1] as number,
          host: '127.0.0.1',
          rejectUnauthorized: false,
        });
        socket.once('secureConnect', () => resolve(socket));
        socket.once('error', reject);
      });
      assert.equal((tls.getPeerCertificate().subject as { CN?: string }).CN, 'mx.test.example');
      tls.destroy();

      // systemctl reload: SIGHUP re-reads the TLS pair.
      srv.child.kill('SIGHUP');
      await waitUntil('the TLS reload', async () => srv.logs.some((l) => l.msg === 'TLS certificate reloaded'));
    } finally {
      srv.child.kill('SIGTERM');
    }
    assert.deepEqual(await srv.exited, { code: 0, signal: null });

    const all = [...(await walk(join(dir, 'state'))), ...(await walk(join(dir, 'mail')))];
    assert.ok(all.some((e) => e.path.includes('/example.test/alice/cur/')));
    assert.deepEqual(notOwnedBy(all, arcline.uid, arcline.gid), []);
    assert.deepEqual(notPrivate(all), []);
  });

  test('dpkg --purge removes the program, the config and the unit; it keeps data directories that are not empty', async () => {
    // Mail the server received stays on a purge; empty directories go.
    await writeFile('/var/mail/arcline/kept', 'mail');
    const r = sh('dpkg', ['--purge', PACKAGE_NAME]);
    assert.equal(r.code, 0, r.err);
    for (const gone of [LIB_DIR, '/usr/bin/arcline', '/etc/arcline', UNIT_PATH, WANTS, '/var/lib/arcline']) {
      await assert.rejects(lstat(gone), { code: 'ENOENT' }, gone);
    }
    assert.equal(await readFile('/var/mail/arcline/kept', 'utf8'), 'mail');
    await rm('/var/mail/arcline', { recursive: true });
    assert.notEqual(sh('dpkg-query', ['-W', PACKAGE_NAME]).code, 0); // not even its config is known
  });
});
