// Postfix's load generator and its null server, as the benches use them: smtp-source (-s sessions,
// -m messages, -l size, a new connection per message, its default) and smtp-sink (accepts and
// discards everything, writes nothing to disk), so the generator's own ceiling can be measured
// with the same arguments. Only ever pointed at 127.0.0.1.

import { spawn, spawnSync } from 'node:child_process';
import { createServer } from 'node:net';
import { reapedChildrenCpuMs } from './proc.ts';

export function which(cmd: string): string | null {
  const r = spawnSync('sh', ['-c', `command -v ${cmd}`], {
    encoding: 'utf8',
    env: { ...process.env, PATH: `${process.env.PATH}:/usr/sbin:/usr/lib/postfix/sbin` },
  });
  return r.status === 0 ? r.stdout.trim() : null;
}

export interface Load {
  sessions: number;
  count: number;
  size: number;
  from: string;
  to: string;
  port: number;
}

export interface LoadResult {
  /** performance.now() when smtp-source was started and when it exited. */
  start: number;
  end: number;
  /** CPU time smtp-source used (user + system). */
  cpuMs: number;
}

/** Runs smtp-source to completion; rejects if it fails (it exits non-zero on an unexpected reply).
 *  `onStart` runs right after the spawn, for samplers that time the run. */
export function runSmtpSource(bin: string, load: Load, onStart?: () => void): Promise<LoadResult> {
  const cpu0 = reapedChildrenCpuMs();
  const args = ['-s', String(load.sessions), '-m', String(load.count), '-l', String(load.size)];
  args.push('-f', load.from, '-t', load.to, `127.0.0.1:${load.port}`);
  return new Promise((resolve, reject) => {
    const start = performance.now();
    const p = spawn(bin, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr.on('data', (d: Buffer) => {
      if (err.length < 4000) err += d.toString();
    });
    onStart?.();
    p.on('error', reject);
    p.on('exit', (code) => {
      const end = performance.now();
      // cutime/cstime of this process grow once the child has been waited for, which libuv has
      // done when 'exit' is emitted.
      const cpuMs = reapedChildrenCpuMs() - cpu0;
      if (code === 0) resolve({ start, end, cpuMs });
      else reject(new Error(`smtp-source exited ${code}: ${err.trim()}`));
    });
  });
}

/** A free TCP port on 127.0.0.1 (bound, read and released). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.on('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const a = s.address();
      s.close(() => (a && typeof a === 'object' ? resolve(a.port) : reject(new Error('no port'))));
    });
  });
}

/** The generator's ceiling: smtp-source against smtp-sink (C, nothing written to disk) with the
 *  same arguments, in messages per second. smtp-sink needs -u when run as root. */
export async function generatorCeiling(source: string, sink: string, load: Omit<Load, 'port'>): Promise<number> {
  const port = await freePort();
  const args = ['-u', 'nobody', `127.0.0.1:${port}`, '256'];
  const p = spawn(sink, process.getuid?.() === 0 ? args : args.slice(2), { stdio: 'ignore' });
  try {
    await waitListening(port);
    const r = await runSmtpSource(source, { ...load, port });
    return load.count / ((r.end - r.start) / 1000);
  } finally {
    p.kill('SIGTERM');
  }
}

async function waitListening(port: number): Promise<void> {
  const { connect } = await import('node:net');
  for (let i = 0; i < 100; i++) {
    const ok = await new Promise<boolean>((resolve) => {
      const c = connect(port, '127.0.0.1');
      c.on('connect', () => {
        c.destroy();
        resolve(true);
      });
      c.on('error', () => resolve(false));
    });
    if (ok) return;
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`smtp-sink did not listen on 127.0.0.1:${port}`);
}
