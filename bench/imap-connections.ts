// `npm run bench:imap-conn`: server RSS per idle, authenticated IMAP connection. The server runs
// as its own process (bin/arcline.js serve); this process opens N connections (default 2,000;
// `-- --connections 5000`), logs each in, selects INBOX, and leaves it idle. The per-connection
// figure is (RSS with N connections - RSS before) / N, after a settle pause.

import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { imapBenchConfig } from './lib/config.ts';

const { values } = parseArgs({ options: { connections: { type: 'string' } } });
const N = Number(values.connections ?? 2000);
const BIN = new URL('../bin/arcline.js', import.meta.url).pathname;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const rss = (pid: number) => Number(/VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1] ?? 0);

const dir = await mkdtemp(join(tmpdir(), 'arcline-bench-conn-'));
const config = join(dir, 'arcline.toml');
// All connections come from 127.0.0.1: lift the per-address limit for the measurement.
await writeFile(config, imapBenchConfig(dir, `max_connections_per_ip = ${N + 10}\nmax_connections = ${N + 10}`));
execFileSync(process.execPath, [BIN, '--config', config, 'domain', 'add', 'example.test']);
execFileSync(process.execPath, [BIN, '--config', config, 'user', 'add', 'alice@example.test', '--password-stdin'], {
  input: 'pw\n',
});
const logFile = join(dir, 'server.log');
const fd = openSync(logFile, 'w');
const server = spawn(process.execPath, [BIN, '--config', config, 'serve', '--allow-root'], {
  stdio: ['ignore', fd, 'inherit'],
});
closeSync(fd);
let port = 0;
for (let i = 0; i < 200 && !port; i++) {
  await sleep(50);
  port = Number(/"service":"imap","address":"[^"]+","port":(\d+)/.exec(readFileSync(logFile, 'utf8'))?.[1] ?? 0);
}
const pid = server.pid as number;
await sleep(500);
const sockets: net.Socket[] = [];
/** Connects, logs in, selects INBOX; resolves once SELECT completed (fails after 10 s). */
const open = () =>
  new Promise<void>((resolve, reject) => {
    const s = net.connect(port, '127.0.0.1');
    sockets.push(s);
    const steps: [RegExp, string | null][] = [
      [/^\* OK/m, 'a LOGIN alice@example.test pw\r\n'],
      [/^a OK/m, 'b SELECT INBOX\r\n'],
      [/^b OK/m, null],
    ];
    let buf = '';
    const timer = setTimeout(() => reject(new Error(`no answer: ${buf.slice(-200)}`)), 10_000);
    s.setEncoding('latin1');
    s.on('error', reject);
    s.on('data', (d: string) => {
      buf += d;
      while (steps.length > 0 && (steps[0] as [RegExp, string | null])[0].test(buf)) {
        const [, send] = steps.shift() as [RegExp, string | null];
        buf = '';
        if (send) s.write(send);
        else {
          clearTimeout(timer);
          resolve();
        }
      }
      if (/^\S+ (NO|BAD)|^\* BYE/m.test(buf)) reject(new Error(buf));
    });
  });
let before = 0;
try {
  // One connection first, outside the count: the first login verifies the password hash
  // (Argon2id takes 64 MiB while it runs, which the allocator may keep), later ones are cache
  // hits; measuring "before" after it keeps that one-off out of the per-connection figure.
  await open();
  await sleep(500);
  before = rss(pid);
  for (let i = 0; i < N; i += 100) await Promise.all(Array.from({ length: Math.min(100, N - i) }, open));
} catch (e) {
  server.kill('SIGKILL');
  throw e;
}
await sleep(2000);
const after = rss(pid);
console.log(`| idle authenticated IMAP connections | ${N} |`);
console.log(`| server RSS before | ${(before / 1024).toFixed(1)} MB |`);
console.log(`| server RSS with the connections | ${(after / 1024).toFixed(1)} MB |`);
console.log(`| per connection | ${((after - before) / N).toFixed(1)} KB |`);
for (const s of sockets) s.destroy();
server.kill('SIGTERM');
await new Promise((r) => server.on('exit', r));
await rm(dir, { recursive: true, force: true });
