// `npm run bench:event-loop`: the server's event-loop delay under the worst the store sees at
// once (issue #11: "the event loop never waits on the database or the disk"):
//   - heavy IMAP load: `--clients` (10) sessions on one mailbox, each looping SELECT, FETCH of
//     flags and envelopes, STORE, UID SEARCH, APPEND and NOOP;
//   - concurrent CLI writes: `arcline alias add` once a second, and another process taking
//     the mail index's write lock (BEGIN IMMEDIATE) for 2 s every 3 s, as a CLI or a backup can;
//   - an index rebuild: a folder of `--rebuild` (100,000) messages the index has never seen
//     (written as files before the server starts), selected during the load.
// The delay comes from the server's own monitorEventLoopDelay histogram (prom-client, on its
// Prometheus endpoint, reset at each scrape: one scrape at the start, one at the end). Also
// reported: commands per second and per-command latency of the load, the SELECT time of the
// rebuilt folder, and the greeting latency of a client connecting every 50 ms.
//
//   npm run bench:event-loop [-- --seconds 30 --clients 10 --rebuild 100000 --no-lock --no-cli]

import { spawn } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { RawImap } from '../test/harness/imap-client.ts';
import { runCli, spawnServer } from '../test/harness/process.ts';
import { imapBenchConfig } from './lib/config.ts';
import { eventLoopLag, pct } from './lib/metrics.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    clients: { type: 'string' },
    rebuild: { type: 'string' },
    'no-lock': { type: 'boolean' },
    'no-cli': { type: 'boolean' },
  },
});
const SECONDS = Number(values.seconds ?? 30);
const CLIENTS = Number(values.clients ?? 10);
const REBUILD = Number(values.rebuild ?? 100_000);
const USER = 'alice@example.test';
const PASSWORD = 'bench-pass';

/** Maildir files the index has never seen, as another program (an import, mbsync) leaves them. */
function writeFolder(dir: string, count: number): void {
  for (const sub of ['cur', 'new', 'tmp']) mkdirSync(join(dir, sub), { recursive: true, mode: 0o700 });
  writeFileSync(join(dir, 'maildirfolder'), '');
  const t = Math.floor(Date.now() / 1000) - 86_400;
  for (let i = 0; i < count; i++) {
    const body = `From: s${i % 50}@example.net\r\nSubject: imported ${i}\r\nMessage-ID: <i${i}@bench>\r\n\r\nbody ${i}\r\n`;
    const name = `${t + Math.floor(i / 1000)}.M${i % 1000}P1Q${i}.bench,S=${body.length},W=${body.length}:2,${i % 3 === 0 ? 'S' : ''}`;
    writeFileSync(join(dir, 'cur', name), body);
  }
}

const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-loop-'));
const config = join(dir, 'arcline.toml');
const metricsSection = '\n[metrics]\nlisten = ["127.0.0.1:0"]\n';
await writeFile(config, imapBenchConfig(dir, 'max_connections_per_ip = 1000') + metricsSection);
await runCli(['--config', config, 'domain', 'add', 'example.test']);
await runCli(['--config', config, 'user', 'add', USER, '--password-stdin'], { stdin: `${PASSWORD}\n` });
console.error(`writing ${REBUILD} messages into .Big ...`);
writeFolder(join(dir, 'mail/example.test/alice/.Big'), REBUILD);
const server = await spawnServer(config);
const imapPort = server.ports.imap?.[0] as number;
const metricsPort = server.ports.metrics?.[0] as number;

async function session(): Promise<RawImap> {
  const { client } = await RawImap.connect(imapPort);
  client.timeoutMs = 120_000;
  await client.cmd(`LOGIN ${USER} ${PASSWORD}`);
  return client;
}

// INBOX gets 500 messages first, so FETCH and SEARCH have something to read.
{
  const c = await session();
  for (let i = 0; i < 500; i++) {
    const m = `From: f${i}@example.net\r\nSubject: seed ${i}\r\n\r\nbody ${i}\r\n`;
    c.write(`s${i} APPEND INBOX {${m.length}+}\r\n${m}\r\n`);
    await c.until(`s${i}`);
  }
  c.close();
}

let running = true;
const latencies: number[] = [];
let commands = 0;
async function load(n: number): Promise<void> {
  const c = await session();
  await c.cmd('SELECT INBOX');
  let i = 0;
  while (running) {
    i++;
    const m = `From: load${n}@example.net\r\nSubject: load ${n}.${i}\r\n\r\nbody\r\n`;
    const steps = [
      'FETCH 1:50 (FLAGS UID)',
      `FETCH ${1 + ((i * 7) % 400)}:${10 + ((i * 7) % 400)} (ENVELOPE BODYSTRUCTURE)`,
      `STORE ${1 + ((i * 13) % 400)} +FLAGS (\\Flagged)`,
      `UID SEARCH SUBJECT seed FROM f${i % 50}`,
      'NOOP',
    ];
    for (const step of steps) {
      const t = performance.now();
      await c.cmd(step);
      latencies.push(performance.now() - t);
      commands++;
    }
    const t = performance.now();
    c.write(`ap${i} APPEND INBOX {${m.length}+}\r\n${m}\r\n`);
    await c.until(`ap${i}`);
    latencies.push(performance.now() - t);
    commands++;
  }
  c.close();
}

/** Another process holding the index's write lock for 2 s every 3 s. */
async function lockHolder(): Promise<number> {
  let holds = 0;
  const db = join(dir, 'state', 'mailindex.db');
  const script = `const { DatabaseSync } = require('node:sqlite'); const db = new DatabaseSync(process.argv[1]);
    db.exec('PRAGMA busy_timeout = 5000'); db.exec('BEGIN IMMEDIATE'); setTimeout(() => { db.exec('COMMIT'); }, 2000);`;
  while (running && !values['no-lock']) {
    await new Promise<void>((resolve) => {
      spawn(process.execPath, ['--disable-warning=ExperimentalWarning', '-e', script, db], { stdio: 'ignore' }).on(
        'exit',
        () => resolve(),
      );
    });
    holds++;
    await new Promise((r) => setTimeout(r, 1000));
  }
  return holds;
}

async function cliWriter(): Promise<number> {
  let n = 0;
  while (running && !values['no-cli']) {
    await runCli(['--config', config, 'alias', 'add', `a${n}@example.test`, USER]);
    n++;
    await new Promise((r) => setTimeout(r, 1000)); // an admin's pace, not a CPU hog beside the server
  }
  return n;
}

const greetings: number[] = [];
async function greeter(): Promise<void> {
  while (running) {
    const t = performance.now();
    await new Promise<void>((resolve) => {
      const s = net.connect(imapPort, '127.0.0.1');
      s.once('data', () => {
        greetings.push(performance.now() - t);
        s.destroy();
        resolve();
      });
      s.once('error', () => resolve());
    });
    await new Promise((r) => setTimeout(r, 50));
  }
}

await eventLoopLag(metricsPort); // resets the histogram
const started = performance.now();
const loads = Array.from({ length: CLIENTS }, (_, n) => load(n));
const locks = lockHolder();
const cli = cliWriter();
const greet = greeter();
// The rebuild, 3 s into the load.
await new Promise((r) => setTimeout(r, 3000));
const big = await session(); // with --rebuild 0 an empty folder
const t0 = performance.now();
const selected = await big.cmd('SELECT Big');
const rebuildMs = performance.now() - t0;
const exists = selected.find((l) => / EXISTS$/.test(l)) ?? selected.at(-1);
big.close();
const rest = SECONDS * 1000 - (performance.now() - started);
if (rest > 0) await new Promise((r) => setTimeout(r, rest));
running = false;
await Promise.all(loads);
const [holds, cliRuns] = await Promise.all([locks, cli, greet]);
const seconds = (performance.now() - started) / 1000;
const loop = await eventLoopLag(metricsPort);

server.child.kill('SIGTERM');
await server.exited;
await rm(dir, { recursive: true, force: true });

const ms = (x: number) => `${x.toFixed(1)} ms`;
console.log(
  `## event loop under IMAP load + CLI writes + a ${REBUILD}-message index rebuild (${seconds.toFixed(0)} s)`,
);
console.log('| measure | value |');
console.log('|---|---|');
console.log(
  `| event-loop delay (server) | p50 ${ms(loop.p50)}, p99 ${ms(loop.p99)}, max ${ms(loop.max)}, mean ${ms(loop.mean)} |`,
);
console.log(
  `| IMAP load: ${CLIENTS} sessions on INBOX | ${(commands / seconds).toFixed(0)} commands/s; latency p50 ${ms(pct(latencies, 50))}, p99 ${ms(pct(latencies, 99))} |`,
);
console.log(
  `| index rebuild: SELECT of ${REBUILD} new messages | ${(rebuildMs / 1000).toFixed(2)} s (${exists ?? 'no EXISTS'}) |`,
);
console.log(`| write lock held by another process (2 s each) | ${holds} times |`);
console.log(`| CLI writes (arcline alias add) | ${cliRuns} |`);
console.log(
  `| greeting latency, a connection every 50 ms | p50 ${ms(pct(greetings, 50))}, p99 ${ms(pct(greetings, 99))}, max ${ms(Math.max(...greetings))} |`,
);
