// `npm run bench`: inbound SMTP throughput with durable delivery, measured end to end.
// For each scenario (sessions x message size) N messages are sent, each over a new connection,
// and the clock stops when the N-th file is in the user's new/ directory (every file there was
// fsynced and its directory fsynced before the 250). Also reports the server's peak RSS.
//
//   npm run bench                 all scenarios
//   npm run bench -- --quick      a tenth of the messages
//   npm run bench -- --checks     with the inbound checks on (SPF, DKIM, DMARC against a DNS server
//                                 on 127.0.0.1 that publishes SPF and DMARC for the sender domain);
//                                 without it, loopback is a trusted network and the checks are skipped
//   npm run bench -- --sessions 20 --size 4096
//   npm run bench -- --generator node    force the built-in load generator
//   npm run bench -- --vs-postfix [--repeat 3] [--with-50] [--count 3000] [--count-100k 1000]
//                                 [--arcline checks|trusted|both]
//                                 arcline and the Postfix peer side by side (bench/vs-postfix.ts)
//   --server-node-args "--cpu-prof --cpu-prof-dir=/tmp/prof" (or ARCLINE_SERVER_NODE_ARGS): node
//                                 flags for the server process (both modes); then
//                                 `npm run bench:profile-summary -- /tmp/prof` sums up the profiles
//
// The load generator is Postfix's smtp-source when installed (Debian package postfix): it is C
// and leaves both cores to the server; otherwise bench/lib/smtp-load.ts.

import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import { cpus, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { startTestDns } from '../test/harness/dns.ts';
import { TEST_CONFIG } from '../test/harness/server.ts';
import { runLoad } from './lib/smtp-load.ts';
import { vsPostfix } from './vs-postfix.ts';

const BIN = new URL('../bin/arcline.js', import.meta.url).pathname;
// parseArgs refuses `--server-node-args "--cpu-prof ..."` (a value that looks like an option), so
// that one is taken out of argv first (`--server-node-args=...` works either way).
const argv = process.argv.slice(2);
const nodeArgsAt = argv.indexOf('--server-node-args');
const nodeArgsValue = nodeArgsAt >= 0 ? argv.splice(nodeArgsAt, 2)[1] : undefined;
const { values } = parseArgs({
  args: argv,
  options: {
    quick: { type: 'boolean' },
    checks: { type: 'boolean' },
    sessions: { type: 'string' },
    size: { type: 'string' },
    generator: { type: 'string' },
    'vs-postfix': { type: 'boolean' },
    repeat: { type: 'string' },
    count: { type: 'string' },
    'count-100k': { type: 'string' },
    'with-50': { type: 'boolean' },
    arcline: { type: 'string' },
    'server-node-args': { type: 'string' },
    threads: { type: 'string' },
  },
});
const nodeArgs = (nodeArgsValue ?? values['server-node-args'] ?? process.env.ARCLINE_SERVER_NODE_ARGS ?? '')
  .split(/\s+/)
  .filter(Boolean);

interface Scenario {
  sessions: number;
  size: number;
  count: number;
}

const ALL: Scenario[] = [
  { sessions: 1, size: 4096, count: 1000 },
  { sessions: 20, size: 4096, count: 5000 },
  { sessions: 50, size: 4096, count: 5000 },
  { sessions: 1, size: 102400, count: 500 },
  { sessions: 20, size: 102400, count: 2000 },
  { sessions: 50, size: 102400, count: 2000 },
];

const scenarios = ALL.filter(
  (s) =>
    (values.sessions === undefined || s.sessions === Number(values.sessions)) &&
    (values.size === undefined || s.size === Number(values.size)),
).map((s) => ({ ...s, count: values.quick ? Math.ceil(s.count / 10) : s.count }));

const smtpSource = values.generator === 'node' ? null : which('smtp-source');

function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], { encoding: 'utf8' });
  return r.status === 0 ? r.stdout.trim() : null;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function rssKb(pid: number, field: 'VmRSS' | 'VmHWM'): number {
  const m = new RegExp(`${field}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

async function main(): Promise<void> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-'));
  const config = join(dir, 'arcline.toml');
  // --checks: the sender domain publishes SPF (this machine) and DMARC p=reject, as a well-run
  // domain does, so every message goes through SPF, DKIM (none) and DMARC with real lookups.
  const dns = values.checks
    ? await startTestDns([
        { type: 'TXT', name: 'bench.example', text: 'v=spf1 ip4:127.0.0.1 -all' },
        { type: 'TXT', name: '_dmarc.bench.example', text: 'v=DMARC1; p=reject' },
      ])
    : null;
  // With the checks on, loopback is an ordinary client: the connection rate limit (300 a
  // minute per address by default, docs/spam.md) would refuse a benchmark's flood, so it is set
  // where the load never reaches it: the limiter still runs on every connection (its cost is
  // measured), it never refuses.
  const extra = dns
    ? `[dns]\nservers = ["${dns.address}"]\n[hygiene]\ndnsbl = []\n[rate_limits]\nconnections_per_minute = [100000000, 100000000, 100000000]`
    : '';
  // The tests' config, with logging at the production level and no per-IP cap for the load.
  await writeFile(
    config,
    TEST_CONFIG(dir, extra)
      .replace('reverse_lookup = false', 'reverse_lookup = false\nmax_connections_per_ip = 1000')
      .replace('level = "debug"', 'level = "info"'),
  );
  const cli = (...args: string[]) =>
    execFileSync(process.execPath, [BIN, '--config', config, ...args], { input: 'pw\n' });
  cli('domain', 'add', 'bench.test');
  cli('user', 'add', 'sink@bench.test', '--password-stdin');
  const newDir = join(dir, 'mail/bench.test/sink/new');

  // The server logs one JSON line per connection and message, as in production, to a file.
  const logFile = join(dir, 'server.log');
  const logFd = openSync(logFile, 'w');
  const server = spawn(process.execPath, [...nodeArgs, BIN, '--config', config, 'serve', '--allow-root'], {
    stdio: ['ignore', logFd, 'inherit'],
  });
  closeSync(logFd);
  let port = 0;
  for (let i = 0; i < 200 && port === 0; i++) {
    await sleep(50);
    const m = /"port":(\d+),"msg":"listening"/.exec(readFileSync(logFile, 'utf8'));
    if (m) port = Number(m[1]);
  }
  if (!port || server.pid === undefined) throw new Error('server did not start');
  const pid = server.pid;

  const version = smtpSource ? 'smtp-source (Postfix)' : 'bench/lib/smtp-load.ts';
  console.log(`# arcline inbound SMTP benchmark\n`);
  console.log(
    `machine: ${cpus().length} x ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, node ${process.version}`,
  );
  console.log(`load generator: ${version}; new connection per message; durable delivery counted in new/`);
  console.log(`inbound checks: ${dns ? 'on (SPF + DKIM + DMARC, DNS on 127.0.0.1)' : 'off (loopback trusted)'}\n`);
  console.log('| sessions | size | messages | seconds | msg/s | server RSS peak during run |');
  console.log('|---:|---:|---:|---:|---:|---:|');
  for (const s of scenarios) {
    for (const f of await readdir(newDir)) await rm(join(newDir, f));
    let peak = 0;
    const sampler = setInterval(() => {
      peak = Math.max(peak, rssKb(pid, 'VmRSS'));
    }, 50);
    const start = performance.now();
    const load = smtpSource
      ? new Promise<void>((resolve, reject) => {
          const p = spawn(
            smtpSource,
            [
              '-s',
              String(s.sessions),
              '-m',
              String(s.count),
              '-l',
              String(s.size),
              '-f',
              'load@bench.example',
              '-t',
              'sink@bench.test',
              `127.0.0.1:${port}`,
            ],
            { stdio: 'inherit' },
          );
          p.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`smtp-source exited ${code}`))));
        })
      : runLoad({ port, sessions: s.sessions, count: s.count, size: s.size, to: 'sink@bench.test' }).then((n) => {
          if (n !== s.count) throw new Error(`only ${n} of ${s.count} accepted`);
        });
    await load;
    for (;;) {
      const delivered = (await readdir(newDir)).length;
      if (delivered >= s.count) break;
      if (performance.now() - start > 600_000) throw new Error(`only ${delivered} of ${s.count} delivered`);
      await sleep(5);
    }
    const secs = (performance.now() - start) / 1000;
    clearInterval(sampler);
    console.log(
      `| ${s.sessions} | ${s.size / 1024} KB | ${s.count} | ${secs.toFixed(2)} | ${Math.round(s.count / secs)} | ${Math.round(peak / 1024)} MB |`,
    );
  }
  console.log(`\nserver peak RSS over the whole run (VmHWM): ${Math.round(rssKb(pid, 'VmHWM') / 1024)} MB`);
  server.kill('SIGTERM');
  await new Promise((r) => server.on('exit', r));
  await rm(dir, { recursive: true, force: true });
  await dns?.close();
}

if (values['vs-postfix']) {
  const arcline = values.arcline ?? 'both';
  if (arcline !== 'checks' && arcline !== 'trusted' && arcline !== 'both')
    throw new Error('--arcline checks|trusted|both');
  const quick = values.quick ? 10 : 1;
  await vsPostfix({
    repeat: Number(values.repeat ?? 3),
    count4k: Math.ceil(Number(values.count ?? 3000) / quick),
    count100k: Math.ceil(Number(values['count-100k'] ?? 1000) / quick),
    with50: values['with-50'] === true,
    arcline,
    nodeArgs,
    ...(values.threads !== undefined ? { threads: values.threads } : {}),
  });
} else {
  await main();
}
