// Issue #14: log shipping to syslog ([log] syslog), tested against a local receiver on
// 127.0.0.1 that parses what arrives as RFC 6587 §3.4.1 octet-counted frames of RFC 5424
// messages: over TCP, over TLS (RFC 5425) with the receiver's CA, and with the receiver gone
// (lines are queued up to the buffer, then dropped and counted; logging never waits) and back
// (the queued lines arrive after the reconnection).

import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, describe, test } from 'node:test';
import tls from 'node:tls';
import { parseConfigText } from '../../src/config/load.ts';
import { closeLogShipping, createLogger, type Logger } from '../../src/core/log.ts';
import { registry } from '../../src/core/metrics.ts';
import { selfSigned } from '../harness/pebble.ts';
import { spawnServer } from '../harness/process.ts';
import { TEST_CONFIG } from '../harness/server.ts';
import { RawSmtp } from '../harness/smtp-client.ts';
import { waitUntil } from '../harness/submit.ts';

interface Frame {
  readonly pri: number;
  readonly version: string;
  readonly time: string;
  readonly host: string;
  readonly app: string;
  readonly procid: string;
  readonly msgid: string;
  readonly sd: string;
  readonly json: Record<string, unknown>;
}

/** A syslog receiver: every frame it got, parsed strictly (a bad frame fails the test). */
class Receiver {
  readonly frames: Frame[] = [];
  readonly #sockets = new Set<net.Socket>();
  server: net.Server;

  constructor(secure?: { cert: string; key: string }) {
    const onSocket = (s: net.Socket) => {
      this.#sockets.add(s);
      s.on('close', () => this.#sockets.delete(s));
      s.on('error', () => {});
      let buf = Buffer.alloc(0);
      s.on('data', (chunk: Buffer) => {
        buf = Buffer.concat([buf, chunk]);
        for (;;) {
          const sp = buf.indexOf(0x20);
          if (sp < 0) return;
          const len = Number(buf.subarray(0, sp).toString('ascii'));
          assert.ok(Number.isInteger(len) && len > 0, `bad octet count: ${buf.subarray(0, sp).toString()}`);
          if (buf.length < sp + 1 + len) return;
          this.frames.push(parse(buf.subarray(sp + 1, sp + 1 + len)));
          buf = buf.subarray(sp + 1 + len);
        }
      });
    };
    this.server = secure ? tls.createServer(secure, onSocket) : net.createServer(onSocket);
  }

  async listen(port = 0): Promise<number> {
    await new Promise<void>((resolve) => this.server.listen(port, '127.0.0.1', resolve));
    return (this.server.address() as net.AddressInfo).port;
  }

  /** Goes away: stops listening and cuts every connection. */
  async close(): Promise<void> {
    for (const s of this.#sockets) s.destroy();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  find(pred: (j: Record<string, unknown>) => boolean): Frame | undefined {
    return this.frames.find((f) => pred(f.json));
  }
}

/** RFC 5424 §6: <PRI>VERSION SP TIMESTAMP SP HOSTNAME SP APP-NAME SP PROCID SP MSGID SP SD SP MSG. */
function parse(bytes: Buffer): Frame {
  const text = bytes.toString('utf8');
  const m = /^<(\d{1,3})>(\d) (\S+) (\S+) (\S+) (\S+) (\S+) (-) \u{feff}(.*)$/su.exec(text);
  assert.ok(m, `not an RFC 5424 message: ${text}`);
  const [, pri, version, time, host, app, procid, msgid, sd, msg] = m as unknown as string[];
  return {
    pri: Number(pri),
    version: version as string,
    time: time as string,
    host: host as string,
    app: app as string,
    procid: procid as string,
    msgid: msgid as string,
    sd: sd as string,
    json: JSON.parse(msg as string) as Record<string, unknown>,
  };
}

const nowhere = () => new Writable({ write: (_c, _e, cb) => cb() });

async function dropped(): Promise<number> {
  const m = await registry.getSingleMetric('arcline_log_dropped_total')?.get();
  return m?.values.find((v) => v.labels.sink === 'syslog')?.value ?? 0;
}

describe('log shipping to syslog', () => {
  const loggers: Logger[] = [];
  const receivers: Receiver[] = [];
  let dir = '';
  after(async () => {
    await Promise.all(loggers.map((l) => closeLogShipping(l)));
    for (const r of receivers) if (r.server.listening) await r.close();
    if (dir) await rm(dir, { recursive: true, force: true });
  });

  /** A receiver, and a logger shipping to it (at most 50 lines waiting). */
  async function setUp(scheme: 'tcp' | 'tls', pair?: { cert: string; key: string }, ca?: string) {
    const rx = new Receiver(pair);
    receivers.push(rx);
    const port = await rx.listen();
    const log = createLogger({
      level: 'info',
      format: 'json',
      destination: nowhere(),
      syslog: {
        url: `${scheme}://127.0.0.1:${port}`,
        hostname: 'mx.test.example',
        maxLines: 50,
        ...(ca ? { ca } : {}),
      },
    });
    loggers.push(log);
    return { rx, port, log };
  }

  test('RFC 5424 frames over TCP; the receiver goes away (bounded loss, counted) and comes back', async () => {
    const { rx, port, log } = await setUp('tcp');
    log.info({ access: 'smtp', protocol: 'smtp', client: '192.0.2.1', code: 250, bytes: 12 }, 'smtp access');
    log.warn({ n: 1 }, 'a warning');
    log.debug('below the level');
    await waitUntil('two frames', async () => rx.frames.length >= 2);
    const access = rx.find((j) => j.msg === 'smtp access');
    assert.ok(access);
    // Facility mail (2): 2*8 + 6 (informational); warnings are 4.
    assert.deepEqual(
      [access.pri, access.version, access.host, access.app, access.procid, access.msgid, access.sd],
      [22, '1', 'mx.test.example', 'arcline', String(process.pid), 'smtp', '-'],
    );
    assert.ok(!Number.isNaN(Date.parse(access.time)) && access.time.endsWith('Z'));
    assert.deepEqual([access.json.client, access.json.code, access.json.bytes], ['192.0.2.1', 250, 12]);
    const warning = rx.find((j) => j.msg === 'a warning');
    assert.equal(warning?.pri, 20);
    assert.equal(warning?.msgid, '-');
    assert.ok(!rx.find((j) => j.msg === 'below the level'));

    // Gone: logging goes on at full speed; past 50 waiting lines they are dropped and counted.
    await rx.close();
    const before = await dropped();
    const started = performance.now();
    let sent = 0;
    await waitUntil('drops counted', async () => {
      for (let i = 0; i < 100; i++) log.info({ seq: sent++ }, 'while away');
      return (await dropped()) > before;
    });
    assert.ok(performance.now() - started < 5000, 'logging never waited for the receiver');
    const text = await registry.getSingleMetricAsString('arcline_log_dropped_total');
    assert.match(text, /^arcline_log_dropped_total\{sink="syslog"\} [1-9]\d*$/m);

    // Back on the same port: the 50 waiting lines arrive (the oldest; the newest were the
    // ones dropped), then what is logged from now on.
    const back = new Receiver();
    receivers.push(back);
    await back.listen(port);
    await waitUntil('the queued lines', async () => back.frames.length >= 50, 15_000);
    assert.ok(back.frames.slice(0, 50).every((f) => f.json.msg === 'while away'));
    const seqs = back.frames.slice(0, 50).map((f) => f.json.seq as number);
    assert.deepEqual(
      seqs,
      [...seqs].sort((x, y) => x - y),
      'in order',
    );
    log.info('after the return');
    await waitUntil('the line after the return', async () => back.find((j) => j.msg === 'after the return'));
    assert.equal(back.frames.length, 51);
  });

  test('over TLS (RFC 5425) with the receiver certificate checked against [log] syslog_ca', async () => {
    const pair = selfSigned();
    dir = await mkdtemp(join(tmpdir(), 'arcline-syslog-'));
    const ca = join(dir, 'ca.pem');
    await writeFile(ca, pair.cert);
    const { rx, log } = await setUp('tls', pair, ca);
    log.info({ access: 'imap', user: 'alice@example.test' }, 'imap access');
    await waitUntil('the TLS frame', async () => rx.find((j) => j.msg === 'imap access'));
    assert.equal(rx.frames[0]?.msgid, 'imap');
    assert.equal(rx.frames[0]?.json.user, 'alice@example.test');
  });

  test('arcline serve with [log] syslog: its lines, an SMTP access line and the last line before exit arrive', async () => {
    const rx = new Receiver();
    receivers.push(rx);
    const port = await rx.listen();
    const home = await mkdtemp(join(tmpdir(), 'arcline-syslog-serve-'));
    try {
      const file = join(home, 'arcline.toml');
      const text = TEST_CONFIG(home).replace('format = "json"', `format = "json"\nsyslog = "tcp://127.0.0.1:${port}"`);
      await writeFile(file, text);
      const srv = await spawnServer(file);
      const c = await RawSmtp.connect(srv.port);
      await c.read();
      await c.cmd('EHLO client.example');
      assert.equal((await c.cmd('MAIL FROM:<a@remote.example>')).code, 250);
      await c.cmd('RSET');
      await c.cmd('QUIT');
      c.close();
      const access = await waitUntil('the SMTP access line', async () => rx.find((j) => j.msg === 'smtp access'));
      assert.equal(access.msgid, 'smtp');
      assert.equal(access.host, 'mx.test.example');
      assert.deepEqual(
        [access.json.result, access.json.ended_by, access.json.commands],
        ['abandoned', 'RSET', 'MAIL:250'],
      );
      assert.ok(rx.find((j) => j.msg === 'starting arcline'));
      srv.child.kill('SIGTERM');
      assert.equal((await srv.exited).code, 0);
      // The sink was closed after the last line, before the process ended.
      assert.ok(
        rx.find((j) => j.msg === 'stopped'),
        'the last line was shipped before exit',
      );
    } finally {
      await rm(home, { recursive: true, force: true });
    }
  });

  test('[log] syslog takes tcp:// and tls:// URLs only; [log] otlp an http(s) URL', () => {
    const at = (log: string) => parseConfigText(`hostname = "mx.test.example"\n[log]\n${log}\n`, 'x.toml').log;
    assert.equal(at('syslog = "tls://logs.example.net:6514"').syslog, 'tls://logs.example.net:6514');
    assert.equal(at('syslog = "tcp://[::1]:514"').syslog, 'tcp://[::1]:514');
    for (const bad of ['udp://logs:514', 'tcp://logs', 'logs:514', 'tcp://a b:1']) {
      assert.throws(() => at(`syslog = "${bad}"`), /syslog/);
    }
    assert.throws(() => at('otlp = "grpc://collector:4317"'), /otlp/);
    assert.throws(() => at('access = "some"'), /access/);
  });
});
