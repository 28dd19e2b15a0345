// Hostile IMAP clients against a spawned `arcline serve`, measured from /proc (issue #10, items
// 1 and 2 on the IMAP side): open fds after a flood of refused connections, RSS during and after
// memory attacks before and after login, and SIGTERM with clients that never read, never close
// and never finish a TLS handshake. The figures are printed (t.diagnostic) for the report.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, type TestContext, test } from 'node:test';
import { constants, createDeflateRaw } from 'node:zlib';
import { RawImap } from '../harness/imap-client.ts';
import { provisionAlice, type ServerProcess, spawnServer } from '../harness/process.ts';
import { resourcesOf } from '../harness/resources.ts';
import { TEST_CONFIG } from '../harness/server.ts';
import { envelope, RawSmtp } from '../harness/smtp-client.ts';

const MB = 1024 * 1024;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const dirs: string[] = [];
after(async () => {
  for (const d of dirs) await rm(d, { recursive: true, force: true });
});

/** A server with alice@example.test; `imap` and `extra` are added to the config. */
async function serve(
  t: TestContext,
  imap: string,
  extra = '',
): Promise<{ srv: ServerProcess; port: number; tlsPort: number }> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-hostile-'));
  dirs.push(dir);
  const config = join(dir, 'arcline.toml');
  const text = TEST_CONFIG(dir, extra)
    .replace('level = "debug"', 'level = "info"')
    .replace('[imap]\n', `[imap]\n${imap}\n`);
  await provisionAlice(config, text, 'pw-secret-1');
  const srv = await spawnServer(config);
  t.after(() => srv.child.kill('SIGKILL'));
  const [port = 0, tlsPort = 0] = srv.ports.imap ?? [];
  return { srv, port, tlsPort };
}

/** Polls `read` until `ok` holds (returns the last value) or the deadline passes (throws). */
async function until<T>(read: () => Promise<T>, ok: (v: T) => boolean, what: string, ms = 20_000): Promise<T> {
  const deadline = Date.now() + ms;
  for (;;) {
    const v = await read();
    if (ok(v)) return v;
    if (Date.now() > deadline) throw new Error(`${what}: last ${JSON.stringify(v)}`);
    await sleep(100);
  }
}

/** Samples the RSS of `pid` every 25 ms while `work` runs; returns the peak. */
async function peakRss(pid: number, work: () => Promise<void>): Promise<number> {
  let peak = 0;
  let running = true;
  const sampler = (async () => {
    while (running) {
      peak = Math.max(peak, (await resourcesOf(pid).catch(() => ({ rss: 0 }))).rss);
      await sleep(25);
    }
  })();
  try {
    await work();
  } finally {
    running = false;
    await sampler;
  }
  return peak;
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const sock = net.connect(port, '127.0.0.1');
    sock.once('connect', () => resolve(sock));
    sock.once('error', reject);
  });
}

/** Writes with backpressure; false once the server closed the connection. */
function send(sock: net.Socket, data: string | Buffer): Promise<boolean> {
  if (sock.destroyed || sock.writableEnded) return Promise.resolve(false);
  return new Promise((resolve) => {
    const ok = sock.write(data, (err) => resolve(!err));
    if (ok) return;
    const done = () => resolve(!sock.destroyed);
    sock.once('drain', done);
    sock.once('close', done);
  });
}

/** Resolves with everything read once `text` arrived (or the socket closed). */
function readUntil(sock: net.Socket, text: string, ms = 10_000): Promise<string> {
  return new Promise((resolve, reject) => {
    let got = '';
    const timer = setTimeout(() => reject(new Error(`no ${JSON.stringify(text)}; got ${JSON.stringify(got)}`)), ms);
    const finish = () => {
      clearTimeout(timer);
      sock.off('data', onData);
      resolve(got);
    };
    const onData = (d: Buffer) => {
      got += d.toString('latin1');
      if (got.includes(text)) finish();
    };
    sock.on('data', onData);
    sock.once('close', finish);
  });
}

const mb = (n: number) => `${(n / MB).toFixed(1)} MB`;

describe('hostile IMAP clients: resources of a spawned server', () => {
  test('2,000 refused connections that send a byte and never close are all closed by the server: no fd kept', async (t: TestContext) => {
    const { srv, port } = await serve(t, 'max_connections_per_ip = 1');
    const pid = srv.child.pid as number;
    const holder = await RawImap.connect(port); // takes the one place of 127.0.0.1
    assert.match(holder.greeting, /^\* OK /);
    const before = await resourcesOf(pid);
    const clients: net.Socket[] = [];
    let byes = 0;
    for (let wave = 0; wave < 20; wave++) {
      await Promise.all(
        Array.from({ length: 100 }, async () => {
          const sock = await connect(port);
          sock.on('error', () => {});
          clients.push(sock);
          const got = await readUntil(sock, '\r\n');
          if (got === '* BYE Too many connections from your address\r\n') byes++;
          if (!sock.destroyed) sock.write('x'); // and keep our end open
        }),
      );
    }
    const during = await resourcesOf(pid);
    const settled = await until(
      () => resourcesOf(pid),
      (r) => r.fds <= before.fds + 2,
      'the server keeps refused connections open',
    );
    t.diagnostic(
      `fds before ${before.fds}, right after 2000 refusals ${during.fds}, settled ${settled.fds} while the clients still hold theirs; ${byes} got BYE`,
    );
    assert.ok(byes >= 500, `${byes} of 2000 refused connections were told BYE`);
    for (const c of clients) c.destroy();
    // The place is still taken by the holder, then free again once it leaves.
    holder.client.close();
    const next = await until(
      async () => {
        const c = await RawImap.connect(port);
        c.client.close();
        return c.greeting;
      },
      (g) => g.startsWith('* OK '),
      'the holder place was not freed',
    );
    assert.match(next, /^\* OK /);
    srv.child.kill('SIGTERM');
    assert.equal((await srv.exited).code, 0);
  });

  test('SIGTERM finishes within shutdown_grace with clients that never read, never close or never handshake', async (t: TestContext) => {
    const { srv, port, tlsPort } = await serve(t, 'max_connections_per_ip = 4', '[server]\nshutdown_grace = "2s"\n');
    // Never closes, ignores BYE.
    const idle = await RawImap.connect(port);
    // Half a command: the server waits for the rest until the grace is over.
    const half = await RawImap.connect(port);
    half.client.write('a LOGIN {5}\r\n');
    assert.match(await half.client.readLine(), /^\+ /);
    // Connected to the TLS port, never says hello.
    const mute = await connect(tlsPort);
    mute.on('error', () => {});
    // Never reads: a 4 MB message fetched ten times.
    const deaf = await connect(port);
    deaf.on('error', () => {});
    await readUntil(deaf, '\r\n');
    await send(deaf, 'a LOGIN alice@example.test pw-secret-1\r\n');
    assert.match(await readUntil(deaf, 'a OK'), /a OK/);
    const message = `Subject: big\r\n\r\n${'y'.repeat(4 * MB)}\r\n`;
    await send(deaf, `b APPEND INBOX {${message.length}+}\r\n${message}\r\n`);
    assert.match(await readUntil(deaf, 'b OK'), /b OK/);
    await send(deaf, Array.from({ length: 10 }, (_, i) => `f${i} FETCH 1 BODY[]\r\n`).join(''));
    deaf.pause();
    // An SMTP transaction stalled in DATA: the services stop together, within the one grace.
    const smtp = await RawSmtp.connect(srv.port);
    await envelope(smtp, 'a@remote.example', ['alice@example.test']);
    assert.equal((await smtp.cmd('DATA')).code, 354);
    smtp.write('Subject: stalled\r\n\r\nhalf');
    // Over the limit of 4 per address: refused, and they never close.
    await connect(port).then((s) => s.on('error', () => {}));
    await connect(port).then((s) => s.on('error', () => {}));
    await sleep(300); // let the server start writing to the deaf client
    const start = Date.now();
    srv.child.kill('SIGTERM');
    const exited = await Promise.race([srv.exited, sleep(20_000).then(() => null)]);
    const took = Date.now() - start;
    t.diagnostic(`SIGTERM to exit: ${took} ms (shutdown_grace 2000 ms)`);
    assert.ok(exited, 'the server did not exit within 20 s of SIGTERM');
    assert.equal(exited.code, 0);
    assert.ok(took < 3500, `took ${took} ms`);
    const lines: string[] = [];
    for (;;) {
      const l = await idle.client.readLine(1000).catch(() => null);
      if (l === null) break;
      lines.push(l);
    }
    assert.deepEqual(lines, ['* BYE Server shutting down']);
    for (const s of [half.client, idle.client, smtp]) s.close();
    mute.destroy();
    deaf.destroy();
  });

  test('RSS: 8 attackers sending LOGIN {262144+} literals before login, then a COMPRESS bomb after login', async (t: TestContext) => {
    const { srv, port } = await serve(t, '');
    const pid = srv.child.pid as number;
    // Warm up what the attacks touch (login, COMPRESS) before the baseline.
    const warm = await connect(port);
    await readUntil(warm, '\r\n');
    await send(warm, 'a LOGIN alice@example.test pw-secret-1\r\nb COMPRESS DEFLATE\r\n');
    await readUntil(warm, 'b OK');
    warm.destroy();
    const base = (await resourcesOf(pid)).rss;
    const chunk = Buffer.alloc(256 * 1024, 0x61);
    // Before login: every attacker tries to hold 16 MB in literals of one LOGIN command.
    const preauth = await peakRss(pid, async () => {
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          const sock = await connect(port);
          sock.on('error', () => {});
          sock.on('data', () => {});
          let ok = await send(sock, 'a LOGIN {262144+}\r\n');
          for (let i = 0; i < 64 && ok; i++)
            ok = await send(sock, Buffer.concat([chunk, Buffer.from(' {262144+}\r\n')]));
          sock.destroy();
        }),
      );
    });
    const afterPreauth = (await resourcesOf(pid)).rss;
    // After login: 255 kB of DEFLATE that inflates to 256 MB of literals in one command.
    const deflate = createDeflateRaw({ level: 9 });
    const bomb: Buffer[] = [];
    deflate.on('data', (d: Buffer) => bomb.push(d));
    deflate.write('a STATUS {262144+}\r\n');
    for (let i = 0; i < 1000; i++)
      deflate.write(Buffer.concat([Buffer.alloc(256 * 1024), Buffer.from(' {262144+}\r\n')]));
    await new Promise<void>((r) => deflate.flush(constants.Z_SYNC_FLUSH, () => r()));
    const wire = Buffer.concat(bomb);
    const compress = await peakRss(pid, async () => {
      const sock = await connect(port);
      sock.on('error', () => {});
      await readUntil(sock, '\r\n');
      await send(sock, 'a LOGIN alice@example.test pw-secret-1\r\nb COMPRESS DEFLATE\r\n');
      await readUntil(sock, 'b OK');
      await send(sock, wire);
      await until(
        async () => sock.destroyed || sock.readableEnded,
        (v) => v,
        'the server kept the bomb connection',
        10_000,
      ).catch(() => {});
      sock.destroy();
    });
    const end = await until(
      () => resourcesOf(pid),
      (r) => r.rss < base + 12 * MB,
      'RSS did not come back',
      10_000,
    ).catch(() => resourcesOf(pid));
    t.diagnostic(
      `RSS base ${mb(base)}; peak with 8 pre-login attackers ${mb(preauth)} (+${mb(preauth - base)}), after ${mb(afterPreauth)}; ` +
        `peak with a ${(wire.length / 1024).toFixed(0)} kB COMPRESS bomb ${mb(compress)} (+${mb(compress - base)}); at the end ${mb(end.rss)}`,
    );
    assert.ok(preauth - base < 8 * MB, `pre-login attack grew RSS by ${mb(preauth - base)}`);
    assert.ok(compress - base < 12 * MB, `COMPRESS bomb grew RSS by ${mb(compress - base)}`);
    assert.ok(end.rss - base < 12 * MB, `RSS stayed ${mb(end.rss - base)} above the baseline`);
    srv.child.kill('SIGTERM');
    assert.equal((await srv.exited).code, 0);
  });
});
