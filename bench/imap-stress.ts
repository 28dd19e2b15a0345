// imaptest stress, side by side: Dovecot's own stress tool (imaptest) against arcline and against
// the Dovecot peer on the same machine in the same run, with the same mbox of varied mail:
//   1. 10 clients on one user, 2. 50 clients on 50 users; each `--seconds` (30) long.
// Reports operations/s (the sum of imaptest's per-command totals over the run), the average
// milliseconds per command of the last report, and the number of `Error:` lines (state errors
// imaptest found: sequence numbers above EXISTS, MODSEQ going back, unannounced keywords ...).
// imaptest prints averages only, so during each run a probe (bench/lib/imap-probe.ts) logs in as
// the first stressed user, one command at a time, and times a fixed mix (NOOP, UID FETCH 1:*
// (FLAGS), FETCH BODY.PEEK[HEADER], UID SEARCH UNSEEN, STORE +FLAGS) from send to tagged reply:
// p50/p99/max of those are the command latency reported per server and scenario.
//
// Needs an imaptest binary (set IMAPTEST=/path/to/imaptest; default /tmp/imaptest-src/src/imaptest,
// where ../shared/tools/peers_setup.sh looks for it) linked against Debian's Dovecot libraries, and
// the Dovecot peer (`../shared/tools/peers_setup.sh up`: 127.0.0.1:10143, users
// load1..load100@example.test / load-pass). Without the peer only arcline runs. Nothing here builds
// or fetches imaptest.
//
//   npm run bench:imap-stress [-- --seconds 30]

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { canConnect } from '../test/harness/pebble.ts';
import { runCli, spawnServer } from '../test/harness/process.ts';
import { imapBenchConfig } from './lib/config.ts';
import { type LatencySummary, PROBE_COMMANDS, type ProbeResult, startProbe, summarise } from './lib/imap-probe.ts';

const { values } = parseArgs({ options: { seconds: { type: 'string' } } });
const SECONDS = Number(values.seconds ?? 30);
const IMAPTEST = process.env.IMAPTEST ?? '/tmp/imaptest-src/src/imaptest';
const PASSWORD = 'stress-pass';
if (!existsSync(IMAPTEST)) {
  console.error(
    `no imaptest binary at ${IMAPTEST}: set IMAPTEST to one (Dovecot's imaptest, built outside this repository)`,
  );
  process.exit(2);
}

/** 200 messages of varied shape, each with its own Message-ID (imaptest tells messages apart by it). */
function mbox(): string {
  const out: string[] = [];
  for (let i = 0; i < 200; i++) {
    const date = new Date(Date.UTC(2026, 0, 1 + (i % 28), i % 24, i % 60)).toUTCString().replace('GMT', '+0000');
    const head = [
      `From sender${i % 7}@example.net ${new Date(Date.UTC(2026, 0, 1)).toUTCString()}`,
      `Message-ID: <stress-${i}@bench.example>`,
      `Date: ${date}`,
      `From: "Sender ${i % 7}" <sender${i % 7}@example.net>`,
      `To: rcpt${i % 5}@example.test${i % 3 === 0 ? ', "Other" <other@example.org>' : ''}`,
      `Subject: ${i % 4 === 0 ? '=?UTF-8?Q?caf=C3=A9_' : 'message '}${i}${i % 4 === 0 ? '?=' : ''}`,
    ];
    const text = Array.from({ length: 3 + (i % 40) }, (_, k) => `line ${k} of message ${i}, some words to search for`);
    if (i % 3 === 1) {
      out.push(
        ...head,
        'MIME-Version: 1.0',
        'Content-Type: multipart/mixed; boundary="b"',
        '',
        '--b',
        'Content-Type: text/plain; charset=utf-8',
        '',
        ...text,
        '--b',
        'Content-Type: application/octet-stream; name="a.bin"',
        'Content-Transfer-Encoding: base64',
        '',
        ...Array.from({ length: 1 + (i % 20) }, () => Buffer.alloc(57, i).toString('base64')),
        '--b--',
        '',
      );
    } else {
      out.push(...head, '', ...text, '');
    }
  }
  return `${out.join('\n')}\n`;
}

interface Result {
  readonly opsPerSec: number;
  readonly msPerCmd: string;
  readonly errors: number;
  readonly probe: ProbeResult;
}

/** Runs imaptest and, beside it, the latency probe as `probeUser` (one of the stressed users). */
async function stress(
  port: number,
  user: string,
  users: number,
  clients: number,
  pass: string,
  probeUser: string,
): Promise<Result> {
  const run = imaptest(port, user, users, clients, mboxFile, pass);
  const probe = await startProbe(port, probeUser, pass);
  const result = await run;
  return { ...result, probe: await probe.stop() };
}

function imaptest(
  port: number,
  user: string,
  users: number,
  clients: number,
  mboxFile: string,
  pass: string,
): Promise<Omit<Result, 'probe'>> {
  const args = [
    'host=127.0.0.1',
    `port=${port}`,
    `user=${user}`,
    `pass=${pass}`,
    `mbox=${mboxFile}`,
    `clients=${clients}`,
    `secs=${SECONDS}`,
    ...(users > 1 ? [`users=${users}`] : []),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(IMAPTEST, args, { env: { ...process.env, LD_LIBRARY_PATH: '/usr/lib/dovecot' } });
    let out = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      out += d;
    });
    child.on('error', reject);
    child.on('close', () => {
      const lines = out.split('\n');
      const errors = lines.filter((l) => l.startsWith('Error:')).length;
      const totals = lines.lastIndexOf('Totals:');
      const sums = (lines[totals + 4] ?? '').trim().split(/\s+/).map(Number);
      const ops = sums.filter((n) => Number.isFinite(n)).reduce((a, b) => a + b, 0);
      const avg = [...lines].reverse().find((l) => l.includes('ms/cmd avg')) ?? '';
      const msPerCmd = avg.replace('ms/cmd avg', '').trim().split(/\s+/).join(' ');
      resolve({ opsPerSec: ops / SECONDS, msPerCmd, errors });
    });
  });
}

const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-stress-'));
const mboxFile = join(dir, 'stress.mbox');
await writeFile(mboxFile, mbox());
const config = join(dir, 'arcline.toml');
await writeFile(config, imapBenchConfig(dir, 'max_connections_per_ip = 200'));
console.log('creating 50 users ...');
await runCli(['--config', config, 'domain', 'add', 'example.test']);
for (let i = 1; i <= 50; i++) {
  await runCli(['--config', config, 'user', 'add', `stress${i}@example.test`, '--password-stdin'], {
    stdin: `${PASSWORD}\n`,
  });
}
const server = await spawnServer(config);
console.log(`arcline IMAP on 127.0.0.1:${server.ports.imap?.[0]}`);
const imapPort = server.ports.imap?.[0] ?? 0;
const dovecot = await canConnect(10143);
console.log(`imaptest ${IMAPTEST}; ${SECONDS} s per run; mbox of 200 varied messages`);
const rows: string[] = [];
const details: string[] = [];
const ms = (n: number) => (n < 10 ? n.toFixed(1) : n.toFixed(0));
const latency = (l: LatencySummary) => `${ms(l.p50)} / ${ms(l.p99)} / ${ms(l.max)}`;
/** The table row for one server's run, and its per-command latencies for the lines below it. */
function report(label: string, server: string, r: Result): LatencySummary {
  const all = summarise(r.probe.samples);
  const probe = `${latency(all)} (${all.count} commands, ${r.probe.refused} NO/BAD)`;
  rows.push(`| ${label} | ${server} | ${r.opsPerSec.toFixed(1)} | ${r.errors} | ${probe} | ${r.msPerCmd} |`);
  const each = PROBE_COMMANDS.map((c) => `${c} ${latency(summarise(r.probe.samples, c))}`).join('; ');
  details.push(`${label}, ${server}: ${each}`);
  if (r.probe.failure !== undefined) details.push(`${label}, ${server}: the probe stopped early: ${r.probe.failure}`);
  return all;
}
for (const [label, clients, users] of [
  ['10 clients, 1 user', 10, 1],
  ['50 clients, 50 users', 50, 50],
] as const) {
  console.log(`${label} ... (load average over the last minute: ${loadavg()[0]?.toFixed(2)})`);
  const a = await stress(
    imapPort,
    users > 1 ? 'stress%d@example.test' : 'stress1@example.test',
    users,
    clients,
    PASSWORD,
    'stress1@example.test',
  );
  const al = report(label, 'arcline', a);
  if (dovecot) {
    const d = await stress(
      10143,
      users > 1 ? 'load%d@example.test' : 'load1@example.test',
      users,
      clients,
      'load-pass',
      'load1@example.test',
    );
    const dl = report(label, 'Dovecot', d);
    const ratio = (x: number, y: number) => `${(x / y).toFixed(2)}x`;
    rows.push(
      `| ${label} | arcline/Dovecot | ${ratio(a.opsPerSec, d.opsPerSec)} | | p50 ${ratio(al.p50, dl.p50)}, p99 ${ratio(al.p99, dl.p99)} | |`,
    );
  }
}
console.log(
  '| run | server | operations/s | Error: lines | probe latency p50 / p99 / max ms | ms/cmd (last report, per command) |',
);
console.log('| --- | --- | ---: | ---: | --- | --- |');
for (const r of rows) console.log(r);
console.log('probe latency per command, p50 / p99 / max ms:');
for (const d of details) console.log(`  ${d}`);
if (!dovecot) console.log('(the Dovecot peer on 127.0.0.1:10143 is not running: ../shared/tools/peers_setup.sh up)');
server.child.kill('SIGTERM');
await server.exited;
await rm(dir, { recursive: true, force: true });
