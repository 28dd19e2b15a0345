// The server as a process: signals, crashes, start-up errors. Each test runs the real
// `arcline serve` from bin/ and talks to it over loopback.

import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import type tls from 'node:tls';
import { generateSelfSigned } from '../../src/tls/certs.ts';
import { RawImap } from '../harness/imap-client.ts';
import { BIN, provisionAlice, runCli, spawnServer } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

async function setup(extra = '', smtp = ''): Promise<{ dir: string; config: string; newDir: string; tmpDir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-life-'));
  const config = join(dir, 'arcline.toml');
  const text = TEST_CONFIG(dir, extra)
    .replace('level = "debug"', 'level = "info"')
    .replace('reverse_lookup = false', `reverse_lookup = false\n${smtp}`);
  await provisionAlice(config, text, 'pw-secret-1');
  const box = join(dir, 'mail/example.test/alice');
  return { dir, config, newDir: join(box, 'new'), tmpDir: join(box, 'tmp') };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('server lifecycle', () => {
  const dirs: string[] = [];
  after(async () => {
    for (const d of dirs) await rm(d, { recursive: true, force: true });
  });

  test('SIGTERM: idle clients get 421 at once, a transaction in DATA finishes and is stored, exit 0', async () => {
    const env = await setup('[server]\nshutdown_grace = "5s"\n');
    dirs.push(env.dir);
    const srv = await spawnServer(env.config);
    const idle = await RawSmtp.connect(srv.port);
    await idle.read();
    const busy = await RawSmtp.connect(srv.port);
    await envelope(busy, 'a@remote.example', ['alice@example.test']);
    assert.equal((await busy.cmd('DATA')).code, 354);
    busy.write('Subject: in flight\r\n\r\nfirst half\r\n');
    await sleep(100);
    srv.child.kill('SIGTERM');
    const r = await idle.read();
    assert.equal(r.text, '421 4.3.2 Service shutting down, try again later');
    // New connections are refused once shutdown begins.
    await assert.rejects(RawSmtp.connect(srv.port).then((c) => c.read(1000)));
    busy.write('second half\r\n.\r\n');
    assert.equal((await busy.read()).code, 250);
    assert.deepEqual(await srv.exited, { code: 0, signal: null });
    const files = await readdir(env.newDir);
    assert.equal(files.length, 1);
    assert.ok((await readFile(join(env.newDir, files[0]!), 'utf8')).endsWith('first half\r\nsecond half\r\n'));
  });

  test('SIGTERM: IMAP clients get BYE and the process exits 0', async () => {
    const env = await setup();
    dirs.push(env.dir);
    const srv = await spawnServer(env.config);
    const imapPort = srv.logs.find((l) => l.msg === 'listening' && l.service === 'imap')?.port as number;
    const { client, greeting } = await RawImap.connect(imapPort);
    assert.match(greeting, /^\* OK /);
    srv.child.kill('SIGTERM');
    assert.equal(await client.readLine(), '* BYE Server shutting down');
    assert.equal((await srv.exited).code, 0);
    client.close();
  });

  for (const threads of [0, 2]) {
    test(`SIGTERM (SMTP threads: ${threads}): a transaction stalled past the grace period gets 421 and nothing half-written is visible`, async () => {
      const env = await setup('[server]\nshutdown_grace = "500ms"\n', `threads = ${threads}`);
      dirs.push(env.dir);
      const srv = await spawnServer(env.config);
      const c = await RawSmtp.connect(srv.port);
      await envelope(c, 'a@remote.example', ['alice@example.test']);
      await c.cmd('DATA');
      c.write(`Subject: stalled\r\n\r\n${'z'.repeat(100_000)}`);
      await sleep(100);
      srv.child.kill('SIGTERM');
      assert.equal((await c.read(5000)).text, '421 4.3.2 Service shutting down, try again later');
      assert.equal((await srv.exited).code, 0);
      assert.deepEqual(await readdir(env.newDir), []);
      assert.deepEqual(await readdir(env.tmpDir), []);
    });
  }

  for (const threads of [0, 2]) {
    test(`kill -9 during a load run (SMTP threads: ${threads}): every message that got 250 is present and complete`, async () => {
      const env = await setup('', `threads = ${threads}`);
      dirs.push(env.dir);
      const srv = await spawnServer(env.config);
      const acknowledged = new Set<string>();
      let stop = false;
      const body = (id: string) =>
        `Subject: ${id}\r\nX-Id: ${id}\r\n\r\n${'payload line\r\n'.repeat(200)}end ${id}\r\n`;
      const worker = async (w: number) => {
        for (let i = 0; !stop; i++) {
          const id = `w${w}-${i}`;
          try {
            const c = await RawSmtp.connect(srv.port);
            await envelope(c, 'load@remote.example', ['alice@example.test']);
            await c.cmd('DATA');
            c.write(`${body(id)}.\r\n`);
            const r = await c.read(2000);
            if (r.code === 250) acknowledged.add(id);
            c.close();
          } catch {
            return; // the server is gone
          }
        }
      };
      const workers = Array.from({ length: 10 }, (_, w) => worker(w));
      await sleep(1500);
      srv.child.kill('SIGKILL');
      stop = true;
      await Promise.all(workers);
      await srv.exited;
      assert.ok(acknowledged.size > 20, `only ${acknowledged.size} messages acknowledged`);
      const stored = new Map<string, string>();
      for (const f of await readdir(env.newDir)) {
        const text = await readFile(join(env.newDir, f), 'utf8');
        const id = /\r\nX-Id: (\S+)\r\n/.exec(text)?.[1];
        assert.ok(id, `unparsable file ${f}`);
        // Every visible file is complete, acknowledged or not (fsync + rename).
        assert.ok(text.endsWith(body(id)), `incomplete file for ${id}`);
        stored.set(id, text);
      }
      for (const id of acknowledged) assert.ok(stored.has(id), `acknowledged message ${id} lost`);
      // Nothing half-written in cur/ either (nothing moves there without an IMAP client).
      assert.deepEqual(await readdir(join(env.newDir, '..', 'cur')), []);
      // And the server comes back up on what the kill left.
      const again = await spawnServer(env.config);
      again.child.kill('SIGTERM');
      assert.equal((await again.exited).code, 0);
    });
  }

  test('the CLI changes the directory while the server runs; the next RCPT sees it', async () => {
    const env = await setup();
    dirs.push(env.dir);
    const srv = await spawnServer(env.config);
    const rcpt = async (addr: string) => {
      const c = await RawSmtp.connect(srv.port);
      const replies = await envelope(c, 'a@remote.example', [addr]);
      c.close();
      return replies[2]?.code;
    };
    assert.equal(await rcpt('late@example.test'), 550);
    const add = await runCli(['--config', env.config, 'user', 'add', 'late@example.test', '--password-stdin'], {
      stdin: 'pw-late-1\n',
    });
    assert.equal(add.code, 0, add.stderr);
    assert.equal(await rcpt('late@example.test'), 250);
    assert.equal((await runCli(['--config', env.config, 'user', 'del', 'late@example.test'])).code, 0);
    assert.equal(await rcpt('late@example.test'), 550);
    srv.child.kill('SIGTERM');
    assert.equal((await srv.exited).code, 0);
  });

  test('an idle client is disconnected after [smtp] timeout', async () => {
    const env = await setup();
    dirs.push(env.dir);
    await writeFile(
      env.config,
      (await readFile(env.config, 'utf8')).replace('reverse_lookup = false', 'reverse_lookup = false\ntimeout = "1s"'),
    );
    const srv = await spawnServer(env.config);
    const c = await RawSmtp.connect(srv.port);
    await c.read();
    await c.cmd('EHLO client.example');
    const r = await c.read(5000);
    assert.equal(r.code, 421);
    await c.waitClosed();
    srv.child.kill('SIGTERM');
    assert.equal((await srv.exited).code, 0);
  });

  test('a port in use stops start-up with one clear line and exit 1', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const env = await setup();
    dirs.push(env.dir);
    await writeFile(env.config, (await readFile(env.config, 'utf8')).replace('127.0.0.1:0', `127.0.0.1:${port}`));
    const r = await runCli(['--config', env.config, 'serve', '--allow-root']);
    blocker.close();
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `arcline: cannot listen on 127.0.0.1:${port} (smtp): address in use\n`);
  });

  test('with SMTP threads serving, a later port in use stops start-up at once (the threads are stopped with the rest)', async () => {
    const blocker = net.createServer().listen(0, '127.0.0.1');
    await new Promise((r) => blocker.once('listening', r));
    const port = (blocker.address() as net.AddressInfo).port;
    const env = await setup('', 'threads = 2');
    dirs.push(env.dir);
    const text = await readFile(env.config, 'utf8');
    // The IMAP listener comes after the SMTP threads have bound theirs.
    await writeFile(
      env.config,
      text.replace('[imap]\nlisten = ["127.0.0.1:0"]', `[imap]\nlisten = ["127.0.0.1:${port}"]`),
    );
    const started = performance.now();
    const r = await runCli(['--config', env.config, 'serve', '--allow-root']);
    const ms = performance.now() - started;
    blocker.close();
    assert.equal(r.code, 1);
    assert.equal(r.stderr, `arcline: cannot listen on 127.0.0.1:${port} (imap): address in use\n`);
    // Not after shutdown_grace (15 s): the threads close their listeners and exit at once.
    // (A server that drops privileges binds every port first: test/server/privileges.test.ts.)
    assert.ok(ms < 8000, `exit after ${Math.round(ms)} ms`);
  });

  test('a config error stops start-up naming the file and the key', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'arcline-life-'));
    dirs.push(dir);
    const config = join(dir, 'bad.toml');
    await writeFile(config, '[smtp]\nmax_message_size = "huge"\n');
    const r = await runCli(['--config', config, 'serve']);
    assert.equal(r.code, 2);
    assert.match(r.stderr, new RegExp(`${config.replace(/[.]/g, '\\.')}: smtp\\.max_message_size: not a size: "huge"`));
    const viaEnv = await runCli(['serve'], { env: { ARCLINE_CONFIG: join(dir, 'missing.toml') } });
    assert.equal(viaEnv.code, 2);
    assert.match(viaEnv.stderr, /missing\.toml: cannot read the config file \(ENOENT\)/);
  });

  for (const threads of [0, 2]) {
    describe(`SIGHUP (SMTP threads: ${threads})`, () => {
      let env: Awaited<ReturnType<typeof setup>>;
      before(async () => {
        env = await setup('', `threads = ${threads}`);
        dirs.push(env.dir);
      });

      test('re-reads the certificate without dropping connections', async () => {
        const first = await generateSelfSigned('one.test.example');
        await writeFile(join(env.dir, 'cert.pem'), first.cert);
        await writeFile(join(env.dir, 'key.pem'), first.key);
        await writeFile(
          env.config,
          `${await readFile(env.config, 'utf8')}[tls]\ncert = "${env.dir}/cert.pem"\nkey = "${env.dir}/key.pem"\n`,
        );
        const srv = await spawnServer(env.config);
        const peerName = async () => {
          const c = await RawSmtp.connect(srv.port);
          await c.read();
          await c.cmd('EHLO client.example');
          const sock = await c.startTls();
          const cn = (sock as tls.TLSSocket).getPeerCertificate().subject?.CN;
          return { c, cn };
        };
        const before = await peerName();
        assert.equal(before.cn, 'one.test.example');
        const second = await generateSelfSigned('two.test.example');
        await writeFile(join(env.dir, 'cert.pem'), second.cert);
        await writeFile(join(env.dir, 'key.pem'), second.key);
        srv.child.kill('SIGHUP');
        for (let i = 0; i < 50 && !srv.logs.some((l) => l.msg === 'TLS certificate reloaded'); i++) await sleep(20);
        const afterReload = await peerName();
        assert.equal(afterReload.cn, 'two.test.example');
        // The connection made before the reload still works.
        assert.equal((await before.c.cmd('NOOP')).code, 250);
        before.c.close();
        afterReload.c.close();
        // A broken pair on reload keeps the old certificate and logs why.
        await writeFile(join(env.dir, 'key.pem'), first.key);
        srv.child.kill('SIGHUP');
        for (let i = 0; i < 50 && !srv.logs.some((l) => l.msg?.toString().startsWith('TLS reload failed')); i++)
          await sleep(20);
        const still = await peerName();
        assert.equal(still.cn, 'two.test.example');
        still.c.close();
        srv.child.kill('SIGTERM');
        assert.equal((await srv.exited).code, 0);
      });
    });
  }

  test('serve runs with a capped young generation, in the same process (bin/arcline.js re-executes itself)', async () => {
    const env = await setup();
    dirs.push(env.dir);
    const srv = await spawnServer(env.config);
    const cmdline = (await readFile(`/proc/${srv.child.pid}/cmdline`, 'utf8')).split('\0');
    assert.ok(cmdline.includes('--max-semi-space-size=4'), cmdline.join(' '));
    assert.ok(cmdline.includes('serve'));
    srv.child.kill('SIGTERM');
    assert.equal((await srv.exited).code, 0);
  });

  test('bin entry exists and is executable', async () => {
    const r = await runCli(['version']);
    assert.equal(r.code, 0);
    assert.match(r.stdout, /^arcline \d+\.\d+\.\d+/);
    assert.ok(BIN.endsWith('bin/arcline.js'));
  });
});
