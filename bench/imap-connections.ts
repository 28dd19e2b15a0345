// `npm run bench:imap-conn`: IDLE at scale, two phases against one server process
// (bin/arcline.js serve, spawned here; the clients are this process).
//
// 1. Memory: server RSS per idle, authenticated IMAP connection. N connections (default 2,000;
//    `-- --connections 5000`, 0 to skip) log in, select INBOX and stay idle; the figure is
//    (RSS with N connections - RSS before) / N, after a settle pause. They are closed after it.
// 2. Fan-out: F connections (default 200; `-- --fanout 500`, 0 to skip) of the same user select
//    INBOX and IDLE; then M messages (default 200; `-- --messages 50`) are delivered one at a
//    time over SMTP (port 25), and for each one the time from the SMTP `250` to the `* n EXISTS`
//    line is taken on every idling connection: p50/p99/max over all (connection, message) pairs,
//    and per message the time until the last connection had it (p50/p99/max); also from the end
//    of DATA (the delivery itself included: whatever the order of the 250 and the EXISTS lines).
//    Timestamps are taken as each chunk arrives (process.hrtime). The series starts 2.5 s after the last
//    SELECT (a delivery within 2 s of a change to cur/ also relists cur/; see bench/imap.ts), and
//    messages are `-- --gap 100` ms apart (each delivery's own fs.watch event schedules one more
//    refresh 50 ms later; the gap keeps it out of the next measurement).
//
// The last line says how much CPU other processes used during the series: on a shared machine
// they show in the tail, and a figure above ~10% of a core means the run measured them too.
//
// `-- --pin` runs the server on CPU 0 and this process on the others (taskset): on a small
// machine the clients' wake-ups otherwise land on the server's CPU (both ends of 200 loopback
// connections on 2 cores). `-- --server-flags="--cpu-prof --cpu-prof-dir=/tmp/prof"` passes node
// flags to the server (a CPU profile is written at its exit; --trace-gc lines go to its log).

import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { cpus, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { imapBenchConfig } from './lib/config.ts';
import { pct } from './lib/metrics.ts';

const { values } = parseArgs({
  options: {
    connections: { type: 'string' },
    fanout: { type: 'string' },
    messages: { type: 'string' },
    gap: { type: 'string' },
    'server-flags': { type: 'string' },
    pin: { type: 'boolean' },
  },
});
const N = Number(values.connections ?? 2000);
const FANOUT = Number(values.fanout ?? 200);
const MESSAGES = Number(values.messages ?? 200);
const GAP_MS = Number(values.gap ?? 100);
const BIN = new URL('../bin/arcline.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);
/** CPU time (user + system) of a process, in ms. */
const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100; // utime, stime in clock ticks (USER_HZ 100)
};
const nowMs = () => Number(process.hrtime.bigint()) / 1e6;
/** CPU time used by every process of the machine, in ms (/proc/stat: all but idle and iowait). */
const machineCpuMs = () => {
  const f = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '').split(/\s+/).slice(1).map(Number);
  const busy = f.reduce((a, b) => a + b, 0) - (f[3] ?? 0) - (f[4] ?? 0) - (f[8] ?? 0) - (f[9] ?? 0); // less guest time
  return (busy * 1000) / 100;
};
const ownCpuMs = () => {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
};

const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-conn-'));
const config = join(dir, 'arcline.toml');
// All connections come from 127.0.0.1: lift the per-address limit for the measurement.
const most = Math.max(N, FANOUT) + 10;
await writeFile(config, imapBenchConfig(dir, `max_connections_per_ip = ${most}\nmax_connections = ${most}`));
execFileSync(process.execPath, [BIN, '--config', config, 'domain', 'add', 'example.test']);
execFileSync(process.execPath, [BIN, '--config', config, 'user', 'add', 'alice@example.test', '--password-stdin'], {
  input: 'pw\n',
});
const logFile = join(dir, 'server.log');
const fd = openSync(logFile, 'w');
const flags = values['server-flags']?.split(' ').filter((f) => f !== '') ?? [];
// --pin: the server on CPU 0, this process (every client) on the others, so that the clients'
// wake-ups do not take the server's CPU (Linux, taskset).
const pin = values.pin === true && cpus().length > 1;
if (pin)
  execFileSync('taskset', ['-a', '-p', '-c', `1-${cpus().length - 1}`, String(process.pid)], { stdio: 'ignore' });
const cmd = [...flags, BIN, '--config', config, 'serve', '--allow-root'];
const server = spawn(pin ? 'taskset' : process.execPath, pin ? ['-c', '0', process.execPath, ...cmd] : cmd, {
  stdio: ['ignore', fd, 'inherit'],
});
closeSync(fd);
const listening = (service: string) =>
  Number(
    new RegExp(`"service":"${service}","address":"[^"]+","port":(\\d+)`).exec(readFileSync(logFile, 'utf8'))?.[1] ?? 0,
  );
let port = 0;
for (let i = 0; i < 200 && !port; i++) {
  await sleep(50);
  port = listening('imap');
}
const smtpPort = listening('smtp');
const pid = server.pid as number;
await sleep(500);

/** Connects and runs `steps` (wait for the pattern, then send the line); resolves with the
 *  socket once the last pattern was seen (fails after 10 s). */
const open = (steps: [RegExp, string | null][]) =>
  new Promise<net.Socket>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no answer: ${buf.slice(-200)}`)), 10_000);
    s.setEncoding('latin1');
    s.on('error', reject);
    const onData = (d: string) => {
      buf += d;
      while (steps.length > 0 && (steps[0] as [RegExp, string | null])[0].test(buf)) {
        const [, send] = steps.shift() as [RegExp, string | null];
        buf = '';
        if (send) s.write(send);
        else {
          clearTimeout(timer);
          s.off('data', onData);
          resolve(s);
        }
      }
      if (/^\S+ (NO|BAD)|^\* BYE/m.test(buf)) reject(new Error(buf));
    };
    s.on('data', onData);
  });
/** Logged in, INBOX selected, and (with `idle`) idling. */
const selected = (idle: boolean) =>
  open([
    [/^\* OK/m, 'a LOGIN alice@example.test pw\r\n'],
    [/^a OK/m, 'b SELECT INBOX\r\n'],
    ...(idle ? ([[/^b OK/m, 'c IDLE\r\n']] as [RegExp, string][]) : []),
    [idle ? /^\+ /m : /^b OK/m, null],
  ]);

try {
  if (N > 0) await memoryPhase();
  if (FANOUT > 0 && MESSAGES > 0) await fanoutPhase();
} finally {
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  await rm(dir, { recursive: true, force: true });
}

async function memoryPhase(): Promise<void> {
  const sockets: net.Socket[] = [];
  // One connection first, outside the count: the first login verifies the password hash
  // (Argon2id takes 64 MiB while it runs, which the allocator may keep), later ones are cache
  // hits; measuring "before" after it keeps that one-off out of the per-connection figure.
  sockets.push(await selected(false));
  await sleep(500);
  const before = rss(pid);
  for (let i = 0; i < N; i += 100) {
    sockets.push(...(await Promise.all(Array.from({ length: Math.min(100, N - i) }, () => selected(false)))));
  }
  await sleep(2000);
  const after = rss(pid);
  console.log(`| idle authenticated IMAP connections | ${N} |`);
  console.log(`| server RSS before | ${(before / 1024).toFixed(1)} MB |`);
  console.log(`| server RSS with the connections | ${(after / 1024).toFixed(1)} MB |`);
  console.log(`| per connection | ${((after - before) / N).toFixed(1)} KB |`);
  for (const s of sockets) s.destroy();
  await sleep(1000); // the server sees the closes and lets the sessions go
}

async function fanoutPhase(): Promise<void> {
  // The first alone: with the memory phase skipped, its login verifies the password hash and
  // fills the credential cache for the others.
  const idlers: net.Socket[] = [await selected(true)];
  while (idlers.length < FANOUT) {
    const batch = Math.min(100, FANOUT - idlers.length);
    idlers.push(...(await Promise.all(Array.from({ length: batch }, () => selected(true)))));
  }
  // arrivals[m * FANOUT + c]: when connection c saw "* m+1 EXISTS" (ms, hrtime clock).
  const arrivals = new Float64Array(MESSAGES * FANOUT).fill(Number.NaN);
  let target = 0;
  let reached = 0;
  let wake: (() => void) | null = null;
  for (const [c, s] of idlers.entries()) {
    let seen = 0;
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      const at = nowMs();
      for (const m of d.matchAll(/\* (\d+) EXISTS\r\n/g)) {
        const n = Number(m[1]);
        for (let k = seen + 1; k <= n && k <= MESSAGES; k++) arrivals[(k - 1) * FANOUT + c] = at;
        if (n > seen && seen < target && n >= target && ++reached === FANOUT) wake?.();
        seen = Math.max(seen, n);
      }
    });
  }
  const smtp = await smtpClient(smtpPort);
  await smtp.reply();
  await smtp.cmd('EHLO bench.example');
  await sleep(2500); // quiet: no change to cur/ within MTIME_SLACK_MS
  const cpu0 = cpuMs(pid);
  const [all0, own0, t0] = [machineCpuMs(), ownCpuMs(), nowMs()];

  const pairs: number[] = [];
  const last: number[] = [];
  const fromData: number[] = []; // end of DATA sent -> EXISTS: the delivery itself included
  const reply: number[] = []; // end of DATA sent -> 250
  let before250 = 0;
  for (let m = 0; m < MESSAGES; m++) {
    await smtp.cmd('MAIL FROM:<a@b.example>');
    await smtp.cmd('RCPT TO:<alice@example.test>');
    await smtp.cmd('DATA');
    target = m + 1;
    reached = 0;
    const all = new Promise<void>((r) => {
      wake = r;
    });
    const timeout = setTimeout(() => wake?.(), 10_000);
    const sent = nowMs();
    const r = await smtp.cmd(`Subject: fan-out ${m}\r\n\r\nx\r\n.`);
    if (r.code !== 250) throw new Error(`delivery refused: ${r.text}`);
    await all;
    clearTimeout(timeout);
    if (reached < FANOUT) throw new Error(`message ${m + 1}: ${reached} of ${FANOUT} connections saw EXISTS`);
    let worst = 0;
    for (let c = 0; c < FANOUT; c++) {
      const at = arrivals[m * FANOUT + c] as number;
      if (at < r.at) before250++;
      pairs.push(Math.max(0, at - r.at));
      fromData.push(at - sent);
      worst = Math.max(worst, at - r.at);
    }
    last.push(worst);
    reply.push(r.at - sent);
    if (GAP_MS > 0) await sleep(GAP_MS);
  }
  const cpu = cpuMs(pid) - cpu0;
  const others = machineCpuMs() - all0 - (ownCpuMs() - own0) - cpu;
  const elapsed = nowMs() - t0;

  smtp.close();
  for (const s of idlers) s.destroy();
  const fmt = (xs: number[]) =>
    `p50 ${pct(xs, 50).toFixed(1)} ms, p99 ${pct(xs, 99).toFixed(1)} ms, max ${pct(xs, 100).toFixed(1)} ms`;
  console.log(`| IDLE fan-out: connections idling on INBOX, messages | ${FANOUT}, ${MESSAGES} (${GAP_MS} ms apart) |`);
  console.log(`| SMTP 250 -> \`* n EXISTS\`, every (connection, message) | ${fmt(pairs)} |`);
  console.log(`| SMTP 250 -> EXISTS on the last connection, per message | ${fmt(last)} |`);
  console.log(`| EXISTS before the 250 (counted as 0 ms) | ${before250} of ${pairs.length} |`);
  console.log(`| end of DATA -> 250 (spool, fsync, rename, fsync of new/) | ${fmt(reply)} |`);
  console.log(`| end of DATA -> \`* n EXISTS\`, every (connection, message) | ${fmt(fromData)} |`);
  console.log(`| server CPU per delivery (SMTP + fan-out) | ${(cpu / MESSAGES).toFixed(1)} ms |`);
  // Other processes sharing the machine meanwhile (a busy machine shows in the tail).
  console.log(
    `| other processes' CPU during the series | ${((100 * Math.max(0, others)) / elapsed).toFixed(0)}% of a core |`,
  );
}

/** A minimal SMTP client that timestamps each reply as its last line arrives. */
async function smtpClient(p: number) {
  const s = net.connect(p, '127.0.0.1');
  await new Promise((r, j) => {
    s.once('connect', r);
    s.once('error', j);
  });
  s.setNoDelay(true);
  s.setEncoding('latin1');
  let buf = '';
  const replies: { code: number; text: string; at: number }[] = [];
  let waiter: (() => void) | null = null;
  s.on('data', (d: string) => {
    const at = nowMs();
    buf += d;
    for (let i = buf.indexOf('\r\n'); i >= 0; i = buf.indexOf('\r\n')) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (/^\d{3} /.test(line)) replies.push({ code: Number(line.slice(0, 3)), text: line, at });
    }
    if (replies.length > 0) waiter?.();
  });
  const reply = async () => {
    while (replies.length === 0) await new Promise<void>((r) => (waiter = r));
    return replies.shift() as { code: number; text: string; at: number };
  };
  return {
    reply,
    cmd: (line: string) => {
      s.write(`${line}\r\n`);
      return reply();
    },
    close: () => s.destroy(),
  };
}
