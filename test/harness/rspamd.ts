// Debian's real rspamd for tests: started from a temporary configuration directory (its own
// rspamd.conf over /etc/rspamd's stock rules, its own local.d/override.d), a normal worker and
// a controller on loopback ports of their own, optionally the proxy worker in milter mode
// (issue #15: the milter client is tested against it). No Redis, and no packet leaves the
// machine: rspamd's resolver asks only the DNS server the test names (test/harness/dns.ts, or
// a closed port), so no host name of a remote map or fuzzy server resolves; the modules that
// only talk to the network are off. Logs to a file in the directory (tail in errors).
//
// The first start compiles rspamd's regular expressions (~15-35 s); the Hyperscan cache lives
// in one directory under the system temp dir, shared by every run, so later starts are quicker.
// Share ONE rspamd per test file (start it in `before`). Deterministic actions for tests:
//   GTUBE (XJS*C4JDBQADN1...)                        -> reject (rspamd's own test pattern)
//   X-Arcline-Test: soft-reject | greylist            -> that action (multimap, pre-result)
//   X-Arcline-Test: add-header | rewrite-subject      -> a score of 55 | 65 (thresholds below)
// and an ordinary message from loopback scores far below every threshold: "no action".

import assert from 'node:assert/strict';
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { canConnect, freePort } from './pebble.ts';
import { envelope, RawSmtp, type Reply } from './smtp-client.ts';

export const GTUBE = 'XJS*C4JDBQADN1.NSBN3*2IDNEN*GTUBE-STANDARD-ANTI-UBE-TEST-EMAIL*C.34X';
export const RSPAMD_BIN = '/usr/bin/rspamd';

export interface TestRspamd {
  readonly dir: string;
  /** The normal worker, for [spam] rspamd_url. */
  readonly url: string;
  readonly port: number;
  readonly controllerPort: number;
  /** The proxy worker in milter mode (self_scan), when asked for. */
  readonly milterPort: number | null;
  /** rspamd's log so far. */
  log(): Promise<string>;
  stop(): Promise<void>;
}

export interface RspamdOptions {
  /** "127.0.0.1:PORT" of the DNS server rspamd may ask (a closed port is fine: nothing resolves). */
  readonly dns: string;
  /** Also start the proxy worker in milter mode. */
  readonly milter?: boolean;
  /** How long to wait for /ping (first starts compile for a while). */
  readonly startTimeoutMs?: number;
}

const CACHE_DIR = join(tmpdir(), `arcline-rspamd-hs-${process.getuid?.() ?? 0}`);

function mainConfig(p: { normal: number; controller: number; milter: number | null }): string {
  const proxy =
    p.milter === null
      ? ''
      : `worker "rspamd_proxy" {
  bind_socket = "127.0.0.1:${p.milter}";
  milter = yes;
  timeout = 30s;
  count = 1;
  upstream "local" { default = yes; self_scan = yes; }
}
`;
  return `.include "$CONFDIR/common.conf"
options {
  pidfile = "$RUNDIR/rspamd.pid";
  .include "$CONFDIR/options.inc"
  .include(priority=10) "$LOCAL_CONFDIR/override.d/options.inc"
}
logging {
  type = "file";
  filename = "$LOGDIR/rspamd.log";
  level = "info";
}
worker "normal" {
  bind_socket = "127.0.0.1:${p.normal}";
  count = 1;
  mime = true;
}
worker "controller" {
  bind_socket = "127.0.0.1:${p.controller}";
  count = 1;
  secure_ip = "127.0.0.1";
}
${proxy}`;
}

/** local.d and override.d files: options (DNS, no local networks, test patterns), thresholds,
 *  the test actions, headers rspamd asks for, and the network-only modules off. */
function files(dir: string, dns: string): Record<string, string> {
  const off = 'enabled = false;\n';
  return {
    'override.d/options.inc': `dns { nameserver = ["${dns}"]; timeout = 0.5s; retransmits = 1; sockets = 4; }
local_addrs = [];
enable_test_patterns = true;
hs_cache_dir = "${CACHE_DIR}/";
control_socket = "$DBDIR/rspamd.sock mode=0600";
task_timeout = 8s;
`,
    'local.d/actions.conf': 'greylist = 40;\nadd_header = 50;\nrewrite_subject = 60;\nreject = 100;\n',
    'override.d/multimap.conf': `ARCLINE_TEST_SOFT_REJECT {
  type = "header"; header = "X-Arcline-Test"; map = "${dir}/soft-reject.map";
  action = "soft reject"; message = "Test soft reject"; score = 0.0;
}
ARCLINE_TEST_GREYLIST {
  type = "header"; header = "X-Arcline-Test"; map = "${dir}/greylist.map";
  action = "greylist"; score = 0.0;
}
ARCLINE_TEST_ADD_HEADER {
  type = "header"; header = "X-Arcline-Test"; map = "${dir}/add-header.map"; score = 55.0;
}
ARCLINE_TEST_REWRITE_SUBJECT {
  type = "header"; header = "X-Arcline-Test"; map = "${dir}/rewrite-subject.map"; score = 65.0;
}
`,
    'soft-reject.map': 'soft-reject\n',
    'greylist.map': 'greylist\n',
    'add-header.map': 'add-header\n',
    'rewrite-subject.map': 'rewrite-subject\n',
    // The headers rspamd asks the MTA to add (milter.add_headers in the reply), also for loopback.
    'local.d/milter_headers.conf':
      'use = ["x-rspamd-queue-id", "x-spam-level"];\nskip_local = false;\nskip_authenticated = false;\n',
    'local.d/fuzzy_check.conf': off,
    'local.d/rbl.conf': off,
    'local.d/phishing.conf': off,
    'local.d/asn.conf': off,
    'local.d/rspamd_update.conf': off,
    'local.d/url_redirector.conf': off,
    'local.d/whitelist.conf': off,
    'local.d/mx_check.conf': off,
    'local.d/dkim_signing.conf': off,
    'local.d/arc.conf': off,
  };
}

async function ping(port: number): Promise<boolean> {
  try {
    const r = await fetch(`http://127.0.0.1:${port}/ping`, { signal: AbortSignal.timeout(1000) });
    return r.ok && (await r.text()).includes('pong');
  } catch {
    return false;
  }
}

/** Starts rspamd and resolves once the normal worker (and the controller, and the proxy when
 *  asked for) answer. Rejects, with the log's tail, if it exits or is not up in time. */
export async function startRspamd(opts: RspamdOptions): Promise<TestRspamd> {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-rspamd-'));
  await mkdir(join(dir, 'local.d'));
  await mkdir(join(dir, 'override.d'));
  await mkdir(join(dir, 'db'));
  await mkdir(CACHE_DIR, { recursive: true });
  const ports = {
    normal: await freePort(),
    controller: await freePort(),
    milter: opts.milter ? await freePort() : null,
  };
  await writeFile(join(dir, 'rspamd.conf'), mainConfig(ports));
  for (const [name, text] of Object.entries(files(dir, opts.dns))) await writeFile(join(dir, name), text);
  const logFile = join(dir, 'rspamd.log');
  const log = () => readFile(logFile, 'utf8').catch(() => '');
  let output = '';
  const child: ChildProcess = spawn(
    RSPAMD_BIN,
    [
      '-f', // stay in the foreground: the test owns the process
      '-i', // workers may run as root (CI runs as root); -u would need a user
      '-c',
      join(dir, 'rspamd.conf'),
      `--var=LOCAL_CONFDIR=${dir}`,
      `--var=DBDIR=${join(dir, 'db')}`,
      `--var=RUNDIR=${dir}`,
      `--var=LOGDIR=${dir}`,
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  );
  child.stdout?.on('data', (d) => {
    output += d;
  });
  child.stderr?.on('data', (d) => {
    output += d;
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  let gone = false;
  // A test process that ends without stop() (a crash, a killed run) takes rspamd with it.
  const orphan = () => child.kill('SIGTERM');
  process.once('exit', orphan);
  void exited.then(() => {
    gone = true;
    process.off('exit', orphan);
  });
  const stop = async () => {
    if (!gone) {
      child.kill('SIGTERM');
      const timer = setTimeout(() => child.kill('SIGKILL'), 5000);
      await exited;
      clearTimeout(timer);
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + (opts.startTimeoutMs ?? 90_000);
  const wanted = [ports.normal, ports.controller];
  for (;;) {
    if (gone) {
      const tail = (await log()).slice(-3000);
      await stop();
      throw new Error(`rspamd exited during start-up: ${output.slice(-2000)}\n${tail}`);
    }
    const up = await Promise.all(wanted.map(ping));
    const milterUp = ports.milter === null || (await canConnect(ports.milter));
    if (up.every(Boolean) && milterUp) break;
    if (Date.now() > deadline) {
      const tail = (await log()).slice(-3000);
      await stop();
      throw new Error(`rspamd did not answer /ping in time\n${tail}`);
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  return {
    dir,
    url: `http://127.0.0.1:${ports.normal}`,
    port: ports.normal,
    controllerPort: ports.controller,
    milterPort: ports.milter,
    log,
    stop,
  };
}

// What the spam tests share.

/** [dns] on the test's DNS server (nothing resolves), loopback not trusted (so it is scanned). */
export const spamConfig = (dns: string, url: string, more = '') =>
  `[dns]\nservers = ["${dns}"]\n[hygiene]\ntrusted_networks = []\n[spam]\nrspamd_url = "${url}"\n${more}\n`;

export function message(o: { subject?: string; headers?: string; body?: string } = {}): string {
  return (
    'From: Sender <sender@remote.example>\r\nTo: bob@example.test\r\n' +
    `Subject: ${o.subject ?? 'hello'}\r\nMessage-ID: <${Math.random().toString(36).slice(2)}@remote.example>\r\n` +
    `Date: Mon, 07 Dec 2026 00:00:00 +0000\r\n${o.headers ?? ''}\r\n${o.body ?? 'An ordinary message about ordinary things.'}\r\n`
  );
}

/** One message over port 25; the reply to the end of DATA. */
export async function send(port: number, data: string, rcpt = 'bob@example.test'): Promise<Reply> {
  const c = await RawSmtp.connect(port);
  try {
    const r = await envelope(c, 'sender@remote.example', [rcpt]);
    assert.equal(r.at(-1)?.code, 250, r.at(-1)?.text);
    assert.equal((await c.cmd('DATA')).code, 354);
    c.write(`${data}.\r\n`);
    return await c.read(20_000);
  } finally {
    c.close();
  }
}
