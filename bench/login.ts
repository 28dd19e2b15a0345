// `npm run bench:login`: login storms, arcline side by side with Dovecot (issue #10 item 10).
//
// 20 clients reconnect in a loop for 30 s each (connect, greeting, LOGIN, SELECT INBOX, LOGOUT)
// over 50 users load1..load50@example.test whose passwords are bcrypt cost 12 — the SAME hashes
// for both servers (made by `doveadm pw -s BLF-CRYPT -r 12` when Dovecot is installed). Meanwhile
// a second client opens a connection every 50 ms and times its greeting. For arcline, the
// event-loop delay over the storm comes from its Prometheus endpoint (prom-client's
// monitorEventLoopDelay histogram, reset at each scrape: one scrape before, one after).
//
// arcline runs as its own process (bin/arcline.js serve) with its default [auth] settings
// (verified-credential cache on). Dovecot runs as its own instance on 127.0.0.1:10144 under
// /tmp/arcline-bench-dovecot, in its default authentication configuration (no auth cache,
// passwd-file passdb); it needs the Debian packages (`/work/shared/tools/peers_setup.sh install`
// or `apt-get install dovecot-imapd`) and root; without them only arcline is measured.
//
// Options: -- --seconds 30 --clients 20 --users 50 --skip-dovecot

import { execFileSync, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, chown, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { parseConfigText } from '../src/config/load.ts';
import { silentLogger } from '../src/core/log.ts';
import { hashPassword } from '../src/directory/password.ts';
import { openContext } from '../src/main.ts';
import { dovecotConfig } from '../test/harness/dovecot.ts';
import { spawnServer } from '../test/harness/process.ts';
import { TEST_CONFIG } from '../test/harness/server.ts';
import { eventLoopLag } from './lib/metrics.ts';

const { values } = parseArgs({
  options: {
    seconds: { type: 'string' },
    clients: { type: 'string' },
    users: { type: 'string' },
    'skip-dovecot': { type: 'boolean' },
  },
});
const SECONDS = Number(values.seconds ?? 30);
const CLIENTS = Number(values.clients ?? 20);
const USERS = Number(values.users ?? 50);
const PASSWORD = 'load-pass';
const DOVECOT_DIR = '/tmp/arcline-bench-dovecot';
const DOVECOT_PORT = 10144;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

interface Storm {
  readonly logins: number;
  readonly failures: number;
  readonly rate: number;
  readonly greetingP50: number;
  readonly greetingP99: number;
  readonly greetingMax: number;
  readonly probes: number;
}

/** A line reader over one socket. */
function lines(socket: net.Socket): (match: RegExp) => Promise<string> {
  let buf = '';
  let wake: (() => void) | null = null;
  let closed = false;
  socket.setEncoding('latin1');
  socket.on('data', (d: string) => {
    buf += d;
    wake?.();
  });
  socket.on('close', () => {
    closed = true;
    wake?.();
  });
  socket.on('error', () => {});
  return async (match) => {
    for (;;) {
      let nl = buf.indexOf('\r\n');
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (match.test(line)) return line;
        nl = buf.indexOf('\r\n');
      }
      if (closed) throw new Error('closed');
      await new Promise<void>((r) => {
        wake = r;
      });
      wake = null;
    }
  };
}

function connect(port: number): Promise<net.Socket> {
  return new Promise((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1', () => resolve(s));
    s.once('error', reject);
  });
}

/** One reconnecting client's cycle; true when LOGIN and SELECT succeeded. */
async function cycle(port: number, user: string): Promise<boolean> {
  const s = await connect(port);
  try {
    const read = lines(s);
    await read(/^\* OK/);
    s.write(`a LOGIN ${user} ${PASSWORD}\r\n`);
    if (!/^a OK/.test(await read(/^a /))) return false;
    s.write('b SELECT INBOX\r\n');
    if (!/^b OK/.test(await read(/^b /))) return false;
    s.write('c LOGOUT\r\n');
    await read(/^c /);
    return true;
  } finally {
    s.destroy();
  }
}

async function storm(port: number): Promise<Storm> {
  const deadline = performance.now() + SECONDS * 1000;
  let logins = 0;
  let failures = 0;
  let next = 0;
  const workers = Array.from({ length: CLIENTS }, async () => {
    while (performance.now() < deadline) {
      const user = `load${(next++ % USERS) + 1}@example.test`;
      if (await cycle(port, user).catch(() => false)) logins++;
      else failures++;
    }
  });
  const greetings: number[] = [];
  const prober = (async () => {
    while (performance.now() < deadline) {
      const started = performance.now();
      const s = await connect(port);
      await lines(s)(/^\* /);
      greetings.push(performance.now() - started);
      s.destroy();
      await sleep(50);
    }
  })();
  const started = performance.now();
  await Promise.all([...workers, prober]);
  const elapsed = (performance.now() - started) / 1000;
  greetings.sort((a, b) => a - b);
  const q = (p: number) => greetings[Math.min(greetings.length - 1, Math.floor(greetings.length * p))] ?? 0;
  return {
    logins,
    failures,
    rate: logins / elapsed,
    greetingP50: q(0.5),
    greetingP99: q(0.99),
    greetingMax: greetings.at(-1) ?? 0,
    probes: greetings.length,
  };
}

/** bcrypt-12 hashes of the users' password: Dovecot's own when it is installed. */
function makeHash(): Promise<string> | string {
  if (hasDovecot()) {
    const out = execFileSync('doveadm', ['pw', '-s', 'BLF-CRYPT', '-r', '12', '-p', PASSWORD], { encoding: 'utf8' });
    return out.trim().replace(/^\{BLF-CRYPT\}/, '');
  }
  return hashPassword(PASSWORD, 12);
}

function hasDovecot(): boolean {
  return !values['skip-dovecot'] && process.getuid?.() === 0 && existsSync('/usr/sbin/dovecot');
}

async function benchArcline(hashes: readonly string[]) {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-login-'));
  try {
    const text = `${TEST_CONFIG(dir).replace('level = "debug"', 'level = "info"')}\n[metrics]\nlisten = ["127.0.0.1:0"]\n`;
    const configFile = join(dir, 'arcline.toml');
    await writeFile(configFile, text);
    const admin = await openContext(parseConfigText(text, configFile), silentLogger());
    await admin.ops.addDomain('example.test');
    for (let i = 1; i <= USERS; i++) {
      await admin.ops.addUserWithHash(`load${i}@example.test`, { passwordHash: hashes[i - 1] ?? '' });
    }
    await admin.close();
    const server = await spawnServer(configFile);
    try {
      const imap = server.ports.imap?.[0] ?? 0;
      const metrics = server.ports.metrics?.[0] ?? 0;
      await eventLoopLag(metrics); // resets the histogram
      const result = await storm(imap);
      const lag = await eventLoopLag(metrics);
      return { ...result, lag };
    } finally {
      server.child.kill('SIGTERM');
      await server.exited;
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

async function benchDovecot(hash: string) {
  await mkdir(join(DOVECOT_DIR, 'run'), { recursive: true });
  await mkdir(join(DOVECOT_DIR, 'mail'), { recursive: true });
  await chown(join(DOVECOT_DIR, 'mail'), uid('nobody'), gid('nogroup'));
  const users = Array.from({ length: USERS }, (_, i) => `load${i + 1}@example.test:{BLF-CRYPT}${hash}::::::\n`);
  await writeFile(join(DOVECOT_DIR, 'users'), users.join(''));
  await chmod(join(DOVECOT_DIR, 'users'), 0o644);
  const conf = join(DOVECOT_DIR, 'dovecot.conf');
  // Dovecot's defaults for authentication (auth_cache_size = 0: no cache), passwd-file passdb.
  await writeFile(
    conf,
    dovecotConfig({
      dir: DOVECOT_DIR,
      stateDir: `${DOVECOT_DIR}/run`,
      name: 'arcline-bench',
      port: DOVECOT_PORT,
      mailLocation: `maildir:${DOVECOT_DIR}/mail/%d/%n/Maildir`,
      home: `${DOVECOT_DIR}/mail/%d/%n`,
      extra: `mail_max_userip_connections = 1000
default_client_limit = 2000
default_process_limit = 1000
service imap {
  process_limit = 1000
}
`,
    }),
  );
  const start = spawn('/usr/sbin/dovecot', ['-c', conf], { stdio: 'inherit' });
  await new Promise((r) => start.on('exit', r));
  try {
    for (let i = 0; i < 100; i++) {
      if (
        await connect(DOVECOT_PORT)
          .then((s) => {
            s.destroy();
            return true;
          })
          .catch(() => false)
      )
        break;
      await sleep(100);
    }
    return await storm(DOVECOT_PORT);
  } finally {
    execFileSync('/usr/bin/doveadm', ['-c', conf, 'stop']);
  }
}

function uid(name: string): number {
  return Number(execFileSync('id', ['-u', name], { encoding: 'utf8' }).trim());
}
function gid(name: string): number {
  return Number(execFileSync('getent', ['group', name], { encoding: 'utf8' }).split(':')[2]);
}

const hash = await makeHash();
console.log(
  `bcrypt-12 hash of the ${USERS} users (${hasDovecot() ? 'doveadm pw' : 'arcline'}): ${hash.slice(0, 7)}...`,
);
console.log(`${CLIENTS} clients, ${SECONDS} s per server, connect + LOGIN + SELECT INBOX + LOGOUT`);
const fmt = (s: Storm) =>
  `${s.rate.toFixed(1)} logins/s (${s.logins} ok, ${s.failures} failed); greeting of a second client p50 ${s.greetingP50.toFixed(1)} ms, p99 ${s.greetingP99.toFixed(1)} ms, max ${s.greetingMax.toFixed(0)} ms (${s.probes} probes)`;
const a = await benchArcline(Array.from({ length: USERS }, () => hash));
console.log(
  `arcline: ${fmt(a)}; event-loop delay p99 ${a.lag.p99.toFixed(1)} ms, mean ${a.lag.mean.toFixed(1)} ms, max ${a.lag.max.toFixed(0)} ms`,
);
if (hasDovecot()) {
  const d = await benchDovecot(hash);
  console.log(`dovecot: ${fmt(d)}`);
  console.log(`arcline / dovecot: ${(a.rate / d.rate).toFixed(1)}x`);
} else {
  console.log('dovecot: not measured (needs root and the Debian dovecot-imapd package)');
}
