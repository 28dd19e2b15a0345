// `npm run bench -- --vs-postfix`: arcline and Postfix side by side in one run, with the same load
// generator (Postfix's smtp-source: -s sessions, -m messages, -l size, a new connection per
// message), the servers alternating run by run (Postfix, arcline checks on, arcline checks off,
// Postfix, ...), --repeat times per scenario; the median msg/s per server and arcline/Postfix.
//
// - Postfix: the peer of ../shared/tools/peers_setup.sh (127.0.0.1:10025, virtual(8) to Maildir,
//   no policy checks); its clock stops when the N-th file of this run is in alice's new/ (the
//   files already there are not counted; afterwards the run's files, recognised by the run's
//   envelope sender in Return-Path, are removed again).
// - arcline, its default configuration, with the checks on: a DNS server on 127.0.0.1 publishes
//   SPF "v=spf1 ip4:127.0.0.1 -all" and DMARC p=reject for the sender domain (and a PTR for
//   127.0.0.1, as the default reverse lookup asks for it); and with the checks off (loopback a
//   trusted network). Its clock stops when the N-th file is in the user's new/.
// - The generator's own ceiling per scenario: the same smtp-source against smtp-sink.
// - Resources: peak RSS of the arcline process tree (sampled every 50 ms), CPU time of the
//   server (its process tree), of smtp-source, and of the Postfix instance (master + daemons).

import { execFileSync } from 'node:child_process';
import { chown, mkdir, mkdtemp, open, readdir, rm, stat } from 'node:fs/promises';
import { cpus, loadavg, tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { startTestDns, type TestDnsServer } from '../test/harness/dns.ts';
import { type ArclineServer, startArcline } from './lib/arcline-server.ts';
import { watchArrivals } from './lib/arrivals.ts';
import { cpuMs, postfixMaster, postfixProcesses, processTree, rssKb } from './lib/proc.ts';
import { generatorCeiling, runSmtpSource, which } from './lib/smtp-source.ts';

const PEER = '/tmp/peer-smtp';
const PEER_PORT = 10025;
const RCPT = 'alice@example.test';
const ALICE_NEW = `${PEER}/mail/example.test/alice/new`;
const SENDER_DOMAIN = 'bench.example';
const RUN_TIMEOUT_MS = 300_000;

export interface VsOptions {
  repeat: number;
  /** Messages per run for 4 KB and for 100 KB messages. */
  count4k: number;
  count100k: number;
  with50: boolean;
  /** Which arcline configurations run: checks on, checks off, or both. */
  arcline: 'checks' | 'trusted' | 'both';
  nodeArgs: string[];
  /** [smtp] threads for arcline ("auto", a number); its default when absent. */
  threads?: string;
}

interface Scenario {
  sessions: number;
  size: number;
  count: number;
}

type Side = 'postfix' | 'checks' | 'trusted';

interface Run {
  msgps: number;
  serverCpuMs: number;
  generatorCpuMs: number;
  rssPeakKb?: number;
  /** Files of other senders that arrived in alice's new/ during a Postfix run. */
  foreign?: number;
  error?: string;
}

const LABEL: Record<Side, string> = {
  postfix: 'Postfix',
  checks: 'arcline, checks on',
  trusted: 'arcline, checks off',
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length === 0 ? 0 : s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2;
};

let runSeq = 0;

async function runPostfix(source: string, master: number, s: Scenario): Promise<Run> {
  await ensurePeerMaildir();
  const tag = `load+${process.pid}-${++runSeq}`;
  const from = `${tag}@${SENDER_DOMAIN}`;
  const arrivals = await watchArrivals(ALICE_NEW);
  const cpu0 = cpuMs(postfixProcesses(master));
  try {
    const load = await runSmtpSource(source, { ...s, from, to: RCPT, port: PEER_PORT });
    const end = await arrivals.waitFor(s.count, RUN_TIMEOUT_MS);
    const serverCpuMs = cpuMs(postfixProcesses(master)) - cpu0;
    const foreign = await removeOwn(arrivals.names, from, s.count);
    return { msgps: s.count / ((end - load.start) / 1000), serverCpuMs, generatorCpuMs: load.cpuMs, foreign };
  } finally {
    arrivals.close();
  }
}

/** A freshly set-up peer has no Maildir until its first delivery, and the watcher needs new/:
 *  make it, owned like the mail base (Postfix's virtual_uid_maps), as Postfix's virtual would. */
async function ensurePeerMaildir(): Promise<void> {
  const base = await stat(`${PEER}/mail`);
  for (const dir of [
    'example.test',
    'example.test/alice',
    ...['tmp', 'new', 'cur'].map((d) => `example.test/alice/${d}`),
  ]) {
    const path = `${PEER}/mail/${dir}`;
    await mkdir(path, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
      if (e.code !== 'EEXIST') throw e;
    });
    await chown(path, base.uid, base.gid);
  }
}

/** Removes this run's files from alice's new/ (Return-Path is the run's sender), waiting for the
 *  stragglers if foreign files were counted; returns how many foreign files were counted.
 *  `names` is the live list of arrivals (it grows while the watcher is open). */
async function removeOwn(names: readonly string[], from: string, count: number): Promise<number> {
  const mark = Buffer.from(`Return-Path: <${from}>`);
  const buf = Buffer.alloc(mark.length);
  const own = async (name: string) => {
    const fh = await open(join(ALICE_NEW, name), 'r').catch(() => null);
    if (!fh) return false;
    try {
      await fh.read(buf, 0, buf.length, 0);
      return buf.equals(mark);
    } finally {
      await fh.close();
    }
  };
  let removed = 0;
  let foreign = 0;
  const checked = new Set<string>();
  for (let round = 0; removed < count && round < 300; round++) {
    if (round > 0) await sleep(100);
    for (const [i, name] of names.entries()) {
      if (checked.has(name)) continue;
      checked.add(name);
      if (await own(name)) {
        await rm(join(ALICE_NEW, name), { force: true });
        removed++;
      } else if (i < count) {
        foreign++;
      }
    }
  }
  return foreign;
}

async function runArcline(source: string, server: ArclineServer, s: Scenario): Promise<Run> {
  for (const f of await readdir(server.newDir)) await rm(join(server.newDir, f), { force: true });
  const arrivals = await watchArrivals(server.newDir);
  let tree = processTree(server.pid);
  const cpu0 = cpuMs(tree);
  let peak = rssKb(tree);
  let ticks = 0;
  const sampler = setInterval(() => {
    if (++ticks % 10 === 0) tree = processTree(server.pid);
    peak = Math.max(peak, rssKb(tree));
  }, 50);
  try {
    const from = `load+${process.pid}-${++runSeq}@${SENDER_DOMAIN}`;
    const load = await runSmtpSource(source, { ...s, from, to: RCPT, port: server.port });
    const end = await arrivals.waitFor(s.count, RUN_TIMEOUT_MS);
    const serverCpuMs = cpuMs(processTree(server.pid)) - cpu0;
    return {
      msgps: s.count / ((end - load.start) / 1000),
      serverCpuMs,
      generatorCpuMs: load.cpuMs,
      rssPeakKb: peak,
    };
  } finally {
    clearInterval(sampler);
    arrivals.close();
  }
}

function version(cmd: string, args: string[]): string {
  try {
    return execFileSync(cmd, args, { encoding: 'utf8' }).trim();
  } catch {
    return '?';
  }
}

export async function vsPostfix(o: VsOptions): Promise<void> {
  const source = which('smtp-source');
  const sink = which('smtp-sink');
  if (!source || !sink) throw new Error('smtp-source and smtp-sink are needed (Debian package postfix)');
  const master = postfixMaster(`${PEER}/spool`);
  if (master === null) throw new Error('the Postfix peer is not running: ../shared/tools/peers_setup.sh up');

  const scenarios: Scenario[] = [
    { sessions: 20, size: 4096, count: o.count4k },
    { sessions: 20, size: 102400, count: o.count100k },
    ...(o.with50 ? [{ sessions: 50, size: 4096, count: o.count4k }] : []),
  ];
  const sides: Side[] = ['postfix', ...(o.arcline === 'both' ? (['checks', 'trusted'] as const) : [o.arcline])];
  const load0 = loadavg();

  const dns: TestDnsServer = await startTestDns([
    { type: 'TXT', name: SENDER_DOMAIN, text: 'v=spf1 ip4:127.0.0.1 -all' },
    { type: 'TXT', name: `_dmarc.${SENDER_DOMAIN}`, text: 'v=DMARC1; p=reject' },
    { type: 'PTR', name: '1.0.0.127.in-addr.arpa', target: `client.${SENDER_DOMAIN}` },
    { type: 'A', name: `client.${SENDER_DOMAIN}`, address: '127.0.0.1' },
  ]);
  const base = await mkdtemp(join(tmpdir(), 'arcline-vs-postfix-'));
  const servers = new Map<Side, ArclineServer>();
  try {
    for (const side of sides) {
      if (side === 'postfix') continue;
      servers.set(
        side,
        await startArcline({
          dir: await mkdtemp(join(base, `${side}-`)),
          user: RCPT,
          // The default configuration but for the listeners, the paths and JSON logs
          // (lib/arcline-server.ts): the per-IP cap stays at its default (20), which smtp-source -s 20
          // (a new connection per message) exactly reaches; --with-50 raises it to 50 (every
          // session comes from 127.0.0.1; the Postfix peer has no per-client cap).
          smtp: [
            o.with50 ? 'max_connections_per_ip = 50' : '',
            o.threads !== undefined
              ? `threads = ${/^\d+$/.test(o.threads) ? o.threads : JSON.stringify(o.threads)}`
              : '',
          ].join('\n'),
          // The connection rate limit runs (checks side) but never refuses the flood (docs/spam.md).
          extra: `[dns]\nservers = ["${dns.address}"]\n${side === 'trusted' ? '[hygiene]\ntrusted_networks = ["127.0.0.0/8"]\n' : '[rate_limits]\nconnections_per_minute = [100000000, 100000000, 100000000]\n'}`,
          nodeArgs: o.nodeArgs,
        }),
      );
    }

    const results: { s: Scenario; ceiling: number; runs: Map<Side, Run[]> }[] = [];
    for (const s of scenarios) {
      const ceiling = await generatorCeiling(source, sink, {
        ...s,
        from: `load@${SENDER_DOMAIN}`,
        to: RCPT,
      }).catch(() => Number.NaN);
      const runs = new Map<Side, Run[]>(sides.map((side) => [side, []]));
      for (let r = 0; r < o.repeat; r++) {
        for (const side of sides) {
          const server = servers.get(side);
          const run = await (server ? runArcline(source, server, s) : runPostfix(source, master, s)).catch(
            (e: Error): Run => ({ msgps: 0, serverCpuMs: 0, generatorCpuMs: 0, error: e.message }),
          );
          runs.get(side)?.push(run);
          const note = run.error ? `FAILED: ${run.error}` : `${Math.round(run.msgps)} msg/s`;
          process.stderr.write(`${s.sessions} x ${s.size / 1024} KB, run ${r + 1}, ${LABEL[side]}: ${note}\n`);
        }
      }
      results.push({ s, ceiling, runs });
    }
    report(o, results, load0, sides);
  } finally {
    for (const server of servers.values()) await server.stop();
    await dns.close();
    await rm(base, { recursive: true, force: true });
  }
}

function report(
  o: VsOptions,
  results: { s: Scenario; ceiling: number; runs: Map<Side, Run[]> }[],
  load0: number[],
  sides: Side[],
): void {
  const cpu = cpus();
  const out: string[] = [];
  const fmt = (n: number, d = 0) => (Number.isFinite(n) ? n.toFixed(d) : '—');
  out.push('# arcline vs Postfix, inbound SMTP side by side\n');
  out.push(
    `machine: ${cpu.length} cores, ${cpu[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB; load average before: ${load0.map((l) => l.toFixed(2)).join(' ')}`,
  );
  out.push(
    `node ${process.version}; Postfix ${version('postconf', ['-d', '-h', 'mail_version'])} (peer on 127.0.0.1:${PEER_PORT})`,
  );
  out.push(
    `load generator: smtp-source, new connection per message; servers alternate run by run; --repeat ${o.repeat}, median${o.nodeArgs.length ? `; server node flags: ${o.nodeArgs.join(' ')}` : ''}${o.threads !== undefined ? `; [smtp] threads = ${o.threads}` : ''}\n`,
  );
  out.push(
    '| scenario | server | msg/s per run | median msg/s | arcline / Postfix | server CPU ms/msg | generator CPU ms/msg | server RSS peak |',
  );
  out.push('|---|---|---|---:|---:|---:|---:|---:|');
  const warnings: string[] = [];
  for (const { s, ceiling, runs } of results) {
    const name = `${s.sessions} sessions, ${s.size / 1024} KB, ${s.count} msgs`;
    const med = (side: Side) => median((runs.get(side) ?? []).filter((r) => !r.error).map((r) => r.msgps));
    const pf = med('postfix');
    out.push(`| ${name} | smtp-sink (generator ceiling) | | ${fmt(ceiling)} | | | | |`);
    for (const side of sides) {
      const list = runs.get(side) ?? [];
      const ok = list.filter((r) => !r.error);
      const m = med(side);
      const perMsg = (f: (r: Run) => number) => median(ok.map((r) => f(r) / s.count));
      const rss = ok.some((r) => r.rssPeakKb)
        ? `${Math.round(Math.max(...ok.map((r) => r.rssPeakKb ?? 0)) / 1024)} MB`
        : '';
      const foreign = list.reduce((n, r) => n + (r.foreign ?? 0), 0);
      out.push(
        `| ${name} | ${LABEL[side]}${foreign ? ` (${foreign} foreign files counted)` : ''} | ${list.map((r) => (r.error ? 'failed' : fmt(r.msgps))).join(', ')} | ${ok.length ? `**${fmt(m)}**` : 'failed'} | ${side === 'postfix' || !ok.length ? '' : `**${fmt(m / pf, 2)}**`} | ${fmt(
          perMsg((r) => r.serverCpuMs),
          2,
        )} | ${fmt(
          perMsg((r) => r.generatorCpuMs),
          3,
        )} | ${rss} |`,
      );
      if (Number.isFinite(ceiling) && m > 0.7 * ceiling) {
        warnings.push(`${name}: ${LABEL[side]} reached ${fmt((100 * m) / ceiling)}% of the generator's ceiling`);
      }
      for (const r of list) if (r.error) warnings.push(`${name}: ${LABEL[side]}: ${r.error}`);
    }
  }
  out.push(
    '\nserver CPU: arcline = its process tree (utime+stime, with reaped children); Postfix = its master and daemons (/usr/lib/postfix). RSS: sum over the arcline process tree, peak of 50 ms samples.',
  );
  if ((load0[0] ?? 0) > cpu.length / 2) {
    warnings.push(
      `the machine was busy before the run (load average ${load0[0]?.toFixed(2)} on ${cpu.length} cores): other work shares the cores, compare only runs made on a quiet machine`,
    );
  }
  for (const w of warnings) out.push(`WARNING: ${w}`);
  console.log(out.join('\n'));
}
