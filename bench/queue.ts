// `npm run bench:queue`: the outbound queue, measured with the server as a child process.
//
// 1. Throughput: N messages are put in the queue while the server is stopped (through the real
//    QueueStore: spool file fsynced, rows committed), spread over 10 destination domains whose
//    MX (a DNS server on 127.0.0.1) is a local SMTP sink in this process. The server starts and
//    the clock runs until the sink has accepted the N-th message. Run with opportunistic
//    STARTTLS (the default, as on the internet) and without TLS.
// 2. Memory: Q messages are queued for a domain whose MX refuses connections; the server starts
//    and works through them (every attempt fails and is rescheduled). Reported: RSS before the
//    queue exists, and RSS while the server holds and retries the Q messages.
//
//   npm run bench:queue                          N = 5000, Q = 100000
//   npm run bench:queue -- --messages 2000 --queued 10000 --size 4096

import { execFileSync, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { type AddressInfo, createServer } from 'node:net';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { SMTPServer } from 'smtp-server';
import { silentLogger } from '../src/core/log.ts';
import { QueueStore } from '../src/queue/store.ts';
import { bufferMessage } from '../src/store/spool.ts';
import { generateSelfSigned } from '../src/tls/certs.ts';
import { startTestDns, type TestDnsServer } from '../test/harness/dns.ts';
import { TEST_CONFIG } from '../test/harness/server.ts';
import { installSmtpServerPatches } from '../test/harness/smtp-server-greeting.ts';

const BIN = new URL('../bin/arcline.js', import.meta.url).pathname;
const { values } = parseArgs({
  options: { messages: { type: 'string' }, queued: { type: 'string' }, size: { type: 'string' } },
});
const N = Number(values.messages ?? 5000);
const Q = Number(values.queued ?? 100_000);
const SIZE = Number(values.size ?? 4096);
const DOMAINS = 10;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

function body(i: number): Buffer {
  const head = `From: alice@bench.test\r\nTo: someone@d${i % DOMAINS}.test\r\nSubject: bench ${i}\r\nMessage-ID: <b${i}@bench.test>\r\n\r\n`;
  const line = `${'x'.repeat(76)}\r\n`;
  return Buffer.from(head + line.repeat(Math.max(1, Math.floor((SIZE - head.length) / line.length))));
}

/** Fills the queue through the real enqueue path, 64 at a time (directory fsyncs are shared). */
async function fill(stateDir: string, count: number, domainOf: (i: number) => string): Promise<number> {
  const q = new QueueStore({ stateDir, log: silentLogger() });
  await q.recover();
  const started = performance.now();
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const i = next++;
      await q.enqueue({
        sender: 'alice@bench.test',
        recipients: [{ address: `user${i}@${domainOf(i)}` }],
        prefix: Buffer.alloc(0),
        message: bufferMessage(body(i)),
        origin: 'submission',
        logId: `b${i}`,
      });
    }
  };
  await Promise.all(Array.from({ length: 64 }, worker));
  await q.close();
  return (performance.now() - started) / 1000;
}

async function startSink(tls: boolean): Promise<{ server: SMTPServer; port: number; count: () => number }> {
  const pair = await generateSelfSigned('sink.bench.test');
  let count = 0;
  // smtp-server pauses 100 ms before every greeting unless patched (see smtp-server-patches.ts);
  // the sink must not be the bottleneck, so it greets at once like Postfix's smtpd.
  installSmtpServerPatches();
  const server = new SMTPServer({
    // @ts-expect-error greetingDelay is our patch's option
    greetingDelay: 0,
    key: pair.key,
    cert: pair.cert,
    hideSTARTTLS: !tls,
    disabledCommands: ['AUTH'],
    authOptional: true,
    logger: false,
    disableReverseLookup: true,
    maxClients: 1000,
    onData(stream, _session, cb) {
      stream.on('data', () => {});
      stream.on('end', () => {
        count++;
        cb(null, 'ok');
      });
    },
  });
  server.on('error', () => {});
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  return { server, port: (server.server.address() as AddressInfo).port, count: () => count };
}

// The queue's own throughput: no per-destination rate ([rate_limits] outbound_per_domain_per_minute
// caps one domain at 600 a minute by default, docs/spam.md), which this flood to one domain passes.
async function serverDir(dns: TestDnsServer, port: number, extra: string): Promise<{ dir: string; config: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-queue-'));
  const config = join(dir, 'arcline.toml');
  await writeFile(
    config,
    `${TEST_CONFIG(dir, `[dns]\nservers = ["${dns.address}"]\n`).replace('level = "debug"', 'level = "warn"')}\n[delivery]\nport = ${port}\n${extra}\n[rate_limits]\noutbound_per_domain_per_minute = 0\n`,
  );
  execFileSync(process.execPath, [BIN, '--config', config, 'domain', 'add', 'bench.test']);
  return { dir, config };
}

function spawnServer(config: string) {
  const child = spawn(process.execPath, [BIN, '--config', config, 'serve', '--allow-root'], {
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  return child;
}

async function throughput(dns: TestDnsServer, tls: boolean): Promise<void> {
  const sink = await startSink(tls);
  const { dir, config } = await serverDir(dns, sink.port, tls ? '' : 'mx_tls = "none"');
  const fillSecs = await fill(join(dir, 'state'), N, (i) => `d${i % DOMAINS}.test`);
  const child = spawnServer(config);
  const started = performance.now();
  let peak = 0;
  while (sink.count() < N) {
    await sleep(20);
    if (child.pid) peak = Math.max(peak, rssKb(child.pid, 'VmRSS'));
    if (performance.now() - started > 600_000) throw new Error(`only ${sink.count()} of ${N} delivered`);
  }
  const secs = (performance.now() - started) / 1000;
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await new Promise<void>((r) => sink.server.close(() => r()));
  await rm(dir, { recursive: true, force: true });
  console.log(
    `throughput ${tls ? 'STARTTLS' : 'plain   '}: ${N} msgs x ${SIZE} B to ${DOMAINS} domains in ${secs.toFixed(2)} s ` +
      `= ${Math.round(N / secs)} msg/s (includes start-up); peak RSS ${Math.round(peak / 1024)} MB; ` +
      `enqueue ${Math.round(N / fillSecs)} msg/s`,
  );
}

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, '127.0.0.1', () => r()));
  const port = (srv.address() as AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** The server's live JavaScript heap, from its own /metrics. */
async function heapUsedMb(port: number): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  return Math.round(Number(/^arcline_nodejs_heap_size_used_bytes (\S+)/m.exec(text)?.[1] ?? 0) / 2 ** 20);
}

async function memory(dns: TestDnsServer): Promise<void> {
  // A port nothing listens on: every attempt is refused at once and rescheduled.
  const metricsPort = await freePort();
  const { dir, config } = await serverDir(
    dns,
    9,
    `retry_schedule = ["10m"]\nconnect_timeout = "2s"\n[metrics]\nlisten = ["127.0.0.1:${metricsPort}"]`,
  );
  let child = spawnServer(config);
  await sleep(1500);
  const idle = rssKb(child.pid ?? 0, 'VmRSS');
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  const fillSecs = await fill(join(dir, 'state'), Q, () => 'refused.test');
  child = spawnServer(config);
  const started = performance.now();
  let peak = 0;
  const samples: number[] = [];
  // Watch the server work through the queue: every message gets one refused attempt.
  const q = new QueueStore({ stateDir: join(dir, 'state'), log: silentLogger() });
  for (;;) {
    await sleep(250);
    const rss = rssKb(child.pid ?? 0, 'VmRSS');
    peak = Math.max(peak, rss);
    samples.push(rss);
    const next = await q.nextDue();
    if (next !== null && next > Date.now() + 60_000) break; // every recipient has been tried once
    if (performance.now() - started > 900_000) break;
  }
  const attemptSecs = (performance.now() - started) / 1000;
  const { messages } = await q.counts();
  await q.close();
  await sleep(5000); // nothing is due for 10 minutes: the server only holds the queue now
  const after = rssKb(child.pid ?? 0, 'VmRSS');
  const heap = await heapUsedMb(metricsPort);
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
  await rm(dir, { recursive: true, force: true });
  console.log(
    `memory: idle RSS ${Math.round(idle / 1024)} MB; ${messages} queued messages: RSS ${Math.round(after / 1024)} MB ` +
      `5 s after one attempt each (JS heap in use ${heap} MB), peak ${Math.round(peak / 1024)} MB; first pass over the queue ${attemptSecs.toFixed(1)} s ` +
      `(${Math.round(Q / attemptSecs)} attempts/s); enqueue ${Math.round(Q / fillSecs)} msg/s`,
  );
}

async function main(): Promise<void> {
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  );
  const records = Array.from({ length: DOMAINS }, (_, i) => [
    { type: 'MX' as const, name: `d${i}.test`, preference: 10, exchange: `mx.d${i}.test` },
    { type: 'A' as const, name: `mx.d${i}.test`, address: '127.0.0.1' },
  ]).flat();
  const dns = await startTestDns([
    ...records,
    { type: 'MX', name: 'refused.test', preference: 10, exchange: 'mx.refused.test' },
    { type: 'A', name: 'mx.refused.test', address: '127.0.0.1' },
  ]);
  try {
    if (N > 0) {
      await throughput(dns, true);
      await throughput(dns, false);
    }
    if (Q > 0) await memory(dns);
  } finally {
    await dns.close();
  }
}

await main();
