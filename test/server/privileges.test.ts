// Issue #10 item 9 and "Privileges": the server binds its ports as root and then becomes
// [server] user for good; it refuses to serve as root without one (unless told to); the CLI run
// as root keeps the data owned by the server's account; root-owned data is refused at start and
// `arcline fix-permissions` repairs it. These tests need root (CI runs as root) and drop to
// nobody:nogroup, which Debian has.

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { chmod, chown, mkdir, mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, test } from 'node:test';
import { notOwnedBy, notPrivate, walk } from '../harness/files.ts';
import { RawImap } from '../harness/imap-client.ts';
import { BIN, freePrivilegedPort, runCli, type ServerProcess, spawnServer } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

const NOBODY = 65534; // nobody:nogroup on Debian
const PASSWORD = 'pw-secret-1';
const asRoot = process.getuid?.() === 0;
/** A deadline per test: a version without these rules runs `serve` as root forever. */
const T = { timeout: 90_000 };

/** A directory others may traverse (as /var/lib is), holding a config for `server`. */
async function setup(server: string, dirs: string[]): Promise<{ dir: string; config: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-priv-'));
  dirs.push(dir);
  await chmod(dir, 0o711);
  const config = join(dir, 'arcline.toml');
  const extra = server ? `[server]\n${server}\n` : '';
  await writeFile(config, TEST_CONFIG(dir, extra).replace('level = "debug"', 'level = "info"'));
  return { dir, config };
}

/** The state and mail directories made beforehand, owned by nobody (as `install -d -o` would). */
async function nobodysDirs(dir: string): Promise<void> {
  for (const d of ['state', 'mail']) {
    await mkdir(join(dir, d), { mode: 0o700 });
    await chown(join(dir, d), NOBODY, NOBODY);
  }
}

/** A domain and a user through the CLI. */
async function domainAndUser(config: string): Promise<void> {
  await cli(config, 'domain', 'add', 'example.test');
  await cli(config, 'user', 'add', 'alice@example.test', '--password-stdin');
}

/** Every entry under the state and mail directories. */
async function everything(dir: string) {
  return [...(await walk(join(dir, 'state'))), ...(await walk(join(dir, 'mail')))];
}

async function cli(config: string, ...args: string[]) {
  const r = await runCli(['--config', config, ...args], { stdin: `${PASSWORD}\n` });
  assert.equal(r.code, 0, r.stderr);
  return r;
}

async function stopped(srv: ServerProcess): Promise<void> {
  srv.child.kill('SIGTERM');
  assert.deepEqual(await srv.exited, { code: 0, signal: null });
}

/** Uid, Gid (real, effective, saved, file system) and Groups of a process. */
async function idsOf(pid: number): Promise<{ uid: number[]; gid: number[]; groups: number[] }> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const field = (name: string) =>
    (new RegExp(`^${name}:\\s*(.*)$`, 'm').exec(status)?.[1] ?? '').split(/\s+/).filter(Boolean).map(Number);
  return { uid: field('Uid'), gid: field('Gid'), groups: field('Groups') };
}

async function deliver(port: number, to: string): Promise<void> {
  const c = await RawSmtp.connect(port);
  const replies = await envelope(c, 'someone@remote.example', [to]);
  assert.equal(replies.at(-1)?.code, 250, replies.at(-1)?.text);
  assert.equal((await c.cmd('DATA')).code, 354);
  c.write('Subject: hello\r\n\r\nhi\r\n.\r\n');
  assert.equal((await c.read()).code, 250);
  c.close();
}

/** Runs a command as nobody:nogroup; resolves with its exit code and output. */
function runAsNobody(args: string[]): {
  child: ChildProcess;
  output: () => string;
  done: Promise<{ code: number | null; out: string }>;
} {
  const child = spawn(process.execPath, [BIN, ...args], {
    uid: NOBODY,
    gid: NOBODY,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  return {
    child,
    output: () => out,
    done: new Promise((resolve) => child.on('close', (code) => resolve({ code, out }))),
  };
}

test('[server] user naming no account, and --allow-root on another command, stop with one line', {
  timeout: 60_000,
}, async () => {
  const dirs: string[] = [];
  try {
    const { config } = await setup('user = "no-such-user-x7"', dirs);
    const r = await runCli(['--config', config, 'serve']);
    assert.equal(r.code, 1);
    assert.equal(r.stderr, 'arcline: server.user: no such user: "no-such-user-x7"\n');
    const cliRun = await runCli(['--config', config, 'domain', 'list']);
    assert.equal(cliRun.code, 1);
    assert.equal(cliRun.stderr, 'arcline: server.user: no such user: "no-such-user-x7"\n');
    const misplaced = await runCli(['--config', config, 'domain', 'list', '--allow-root']);
    assert.equal(misplaced.code, 2);
    assert.match(misplaced.stderr, /^arcline: --allow-root is an option of serve\n/);
  } finally {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  }
});

describe('privileges', { skip: !asRoot && 'needs root' }, () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test(
    'serve as root: refused without [server] user; --allow-root or allow_root = true run it with a warning',
    T,
    async () => {
      const { config } = await setup('', dirs);
      const refused = await runCli(['--config', config, 'serve']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /^arcline: refusing to run as root: set \[server\] user = "<account>"/);
      for (const [cfg, allowRoot] of [
        [config, true],
        [(await setup('allow_root = true', dirs)).config, false],
      ] as const) {
        const srv = await spawnServer(cfg, { allowRoot });
        assert.ok(srv.logs.some((l) => l.level === 40 && String(l.msg).startsWith('running as root')));
        assert.ok(srv.logs.some((l) => l.msg === 'running as' && l.user === 'root' && l.uid === 0));
        await stopped(srv);
      }
      // `npm start` (the README's command) passes the override.
      const pkg = JSON.parse(await readFile(new URL('../../package.json', import.meta.url), 'utf8'));
      assert.equal(pkg.scripts.start, 'node bin/arcline.js serve --allow-root');
    },
  );

  // With SMTP threads too (docs/architecture.md §8): each binds its socket before the drop.
  for (const threads of [0, 2])
    test(
      `[server] user: binds every listener (one below 1024) as root, then runs as that user for good (SMTP threads: ${threads})`,
      T,
      async () => {
        const port = await freePrivilegedPort();
        const { config } = await setup('user = "nobody"', dirs);
        await writeFile(
          config,
          (await readFile(config, 'utf8'))
            .replace('[smtp]\nlisten = ["127.0.0.1:0"]', `[smtp]\nlisten = ["127.0.0.1:${port}"]\nthreads = ${threads}`)
            .replace(
              '[submission]\nlisten = []\ntls_listen = []',
              '[submission]\nlisten = ["127.0.0.1:0"]\ntls_listen = []',
            )
            .concat('[metrics]\nlisten = ["127.0.0.1:0"]\n'),
        );
        const srv = await spawnServer(config, { allowRoot: false });
        assert.equal(srv.port, port);
        const pid = srv.child.pid as number;
        // Real, effective, saved and file-system ids all nobody: setuid(0) can never succeed.
        assert.deepEqual(await idsOf(pid), {
          uid: [NOBODY, NOBODY, NOBODY, NOBODY],
          gid: [NOBODY, NOBODY, NOBODY, NOBODY],
          groups: [NOBODY],
        });
        const running = srv.logs.find((l) => l.msg === 'running as');
        assert.deepEqual(
          [running?.user, running?.uid, running?.group, running?.gid],
          ['nobody', NOBODY, 'nogroup', NOBODY],
        );
        const order = srv.logs.map((l) => String(l.msg));
        assert.ok(order.indexOf('dropped root privileges') < order.indexOf('running as'));
        // Every service answers on the socket bound before the drop.
        for (const p of [port, srv.ports.submission?.[0] as number]) {
          const c = await RawSmtp.connect(p);
          assert.equal((await c.read()).code, 220);
          c.close();
        }
        const { client, greeting } = await RawImap.connect(srv.ports.imap?.[0] as number);
        assert.match(greeting, /^\* OK/);
        client.close();
        const metrics = await fetch(`http://127.0.0.1:${srv.ports.metrics?.[0]}/metrics`);
        assert.equal(metrics.status, 200);
        await metrics.text();
        await stopped(srv);
      },
    );

  for (const threads of [0, 2])
    test(
      `[server] user: a port in use stops start-up before the drop with one clear line (SMTP threads: ${threads})`,
      T,
      async () => {
        const blocker = net.createServer().listen(0, '127.0.0.1');
        await new Promise((r) => blocker.once('listening', r));
        const port = (blocker.address() as net.AddressInfo).port;
        const { config } = await setup('user = "nobody"', dirs);
        await writeFile(
          config,
          (await readFile(config, 'utf8'))
            .replace('tls_listen = ["127.0.0.1:0"]', `tls_listen = ["127.0.0.1:${port}"]`)
            .replace('reverse_lookup = false', `reverse_lookup = false\nthreads = ${threads}`),
        );
        const started = performance.now();
        const r = await runCli(['--config', config, 'serve']);
        const ms = performance.now() - started;
        blocker.close();
        assert.equal(r.code, 1);
        assert.equal(r.stderr, `arcline: cannot listen on 127.0.0.1:${port} (imap): address in use\n`);
        // At once, not after shutdown_grace (15 s): SMTP threads that bound their sockets and were
        // never started let go of them.
        assert.ok(ms < 8000, `exit after ${Math.round(ms)} ms`);
      },
    );

  test('after dropping privileges, setuid(0), seteuid(0), setgid(0) and setgroups([0]) all fail', T, async () => {
    const script = `
      import { dropPrivileges, lookupAccount, canRegainRoot } from ${JSON.stringify(new URL('../../src/core/privileges.ts', import.meta.url).href)};
      dropPrivileges(lookupAccount('nobody'));
      const attempts = {};
      for (const [name, f] of Object.entries({
        setuid: () => process.setuid(0), seteuid: () => process.seteuid(0),
        setgid: () => process.setgid(0), setgroups: () => process.setgroups([0]),
      })) { try { f(); attempts[name] = 'succeeded'; } catch (e) { attempts[name] = e.code; } }
      console.log(JSON.stringify({ uid: process.getuid(), euid: process.geteuid(), gid: process.getgid(),
        groups: process.getgroups(), attempts, canRegainRoot: canRegainRoot() }));`;
    const child = spawn(process.execPath, ['--input-type=module', '-e', script], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    await new Promise((r) => child.on('close', r));
    assert.deepEqual(JSON.parse(out), {
      uid: NOBODY,
      euid: NOBODY,
      gid: NOBODY,
      groups: [NOBODY],
      attempts: { setuid: 'EPERM', seteuid: 'EPERM', setgid: 'EPERM', setgroups: 'EPERM' },
      canRegainRoot: false,
    });
  });

  test(
    'the CLI as root writes as the service user: Maildir and DKIM key are its own, and the server delivers to them',
    T,
    async () => {
      const { dir, config } = await setup('user = "nobody"', dirs);
      await domainAndUser(config);
      const box = join(dir, 'mail/example.test/alice');
      assert.equal((await stat(box)).uid, NOBODY);
      const keys = (await walk(join(dir, 'state/dkim'))).filter((e) => e.path.endsWith('.pem'));
      assert.equal(keys.length, 1);
      assert.deepEqual([keys[0]?.uid, keys[0]?.gid, keys[0]?.mode], [NOBODY, NOBODY, 0o600]);
      const srv = await spawnServer(config, { allowRoot: false });
      await deliver(srv.port, 'alice@example.test');
      const { client } = await RawImap.connect(srv.ports.imap?.[0] as number);
      assert.match((await client.cmd(`LOGIN alice@example.test ${PASSWORD}`)).at(-1) ?? '', /^t1 OK/);
      assert.ok((await client.cmd('SELECT INBOX')).includes('* 1 EXISTS'));
      client.close();
      await stopped(srv);
      const all = await everything(dir);
      assert.ok(all.some((e) => e.path.startsWith(join(box, 'cur/')))); // the message, seen by SELECT
      assert.deepEqual(notOwnedBy(all, NOBODY, NOBODY), []);
      assert.deepEqual(notPrivate(all), []);
    },
  );

  test('the CLI as root without [server] user keeps the owner of the state directory (systemd User=)', T, async () => {
    const { dir, config } = await setup('', dirs);
    await nobodysDirs(dir);
    await domainAndUser(config);
    const all = await everything(dir);
    assert.ok(all.some((e) => e.path.endsWith('/example.test/alice/new')));
    assert.deepEqual(notOwnedBy(all, NOBODY, NOBODY), []);
  });

  test(
    'root-owned data is refused at start naming fix-permissions; fix-permissions gives it to the user',
    T,
    async () => {
      // Data made by root (an older version, or the CLI run as root before [server] user was set).
      const { dir, config } = await setup('', dirs);
      await domainAndUser(config);
      await chmod(join(dir, 'state/arcline.db'), 0o644);
      await writeFile(config, (await readFile(config, 'utf8')).concat('[server]\nuser = "nobody"\n'));
      const refused = await runCli(['--config', config, 'serve']);
      assert.equal(refused.code, 1);
      assert.match(refused.stderr, /belongs to root, not to nobody .*run `arcline fix-permissions` as root/);
      const fixed = await runCli(['--config', config, 'fix-permissions']);
      assert.equal(fixed.code, 0, fixed.stderr);
      assert.match(fixed.stdout, /entries owned by nobody:nogroup, [1-9]\d* narrowed/);
      const all = await everything(dir);
      assert.deepEqual(notOwnedBy(all, NOBODY, NOBODY), []);
      assert.deepEqual(notPrivate(all), []);
      const srv = await spawnServer(config, { allowRoot: false });
      await deliver(srv.port, 'alice@example.test');
      await stopped(srv);
    },
  );

  test('started as another account: [server] user must name it', T, async () => {
    const { dir, config } = await setup('user = "daemon"', dirs);
    await nobodysDirs(dir);
    const wrong = runAsNobody(['--config', config, 'serve']);
    const r = await wrong.done;
    assert.equal(r.code, 1);
    assert.match(r.out, /server\.user\/group is daemon:daemon but arcline runs as nobody:nogroup/);
    await writeFile(config, (await readFile(config, 'utf8')).replace('user = "daemon"', 'user = "nobody"'));
    const right = runAsNobody(['--config', config, 'serve']);
    try {
      // A slow start on a loaded machine is not a failure of this test; a server left running is
      // (the test process would wait for it for ever), hence the finally.
      await waitUntil(
        'ready',
        async () => {
          if (right.child.exitCode !== null) throw new Error(right.output());
          return /"msg":"ready"/.test(right.output());
        },
        30_000,
      );
      assert.match(right.output(), /"user":"nobody","uid":65534,"group":"nogroup","gid":65534,"msg":"running as"/);
    } finally {
      right.child.kill('SIGTERM');
    }
    assert.equal((await right.done).code, 0);
  });
});
