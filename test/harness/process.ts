// Runs `arcline` as a real child process (the same entry point users run), for tests of
// signals, crashes and start-up errors.

import { type ChildProcess, spawn } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

export const BIN = fileURLToPath(new URL('../../bin/arcline.js', import.meta.url));

export interface ServerProcess {
  readonly child: ChildProcess;
  readonly port: number;
  /** Every listener by service ("smtp", "submission", "imap", "metrics"), in the order bound. */
  readonly ports: Readonly<Record<string, readonly number[]>>;
  readonly logs: Record<string, unknown>[];
  readonly stderr: () => string;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
}

/** Runs an arcline command to completion. */
export function runCli(
  args: readonly string[],
  opts: { stdin?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { env: { ...process.env, ...opts.env } });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    child.on('error', reject);
    child.on('close', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end(opts.stdin ?? '');
  });
}

/** Writes `text` to `configFile`, then adds the domain example.test and the user
 *  alice@example.test (with `password`) through the real CLI, as an operator would before
 *  `arcline serve`. Throws with the CLI's stderr when a command fails. */
export async function provisionAlice(configFile: string, text: string, password: string): Promise<void> {
  await writeFile(configFile, text);
  for (const args of [
    ['domain', 'add', 'example.test'],
    ['user', 'add', 'alice@example.test', '--password-stdin'],
  ]) {
    const r = await runCli(['--config', configFile, ...args], { stdin: `${password}\n` });
    if (r.code !== 0) throw new Error(`arcline ${args.join(' ')} exited ${r.code}: ${r.stderr}`);
  }
}

/** Starts `arcline --config FILE serve`, with --allow-root unless told otherwise (tests run as
 *  root in CI; a config with [server] user drops to it all the same); resolves once it logged
 *  "ready". `command`: the program and its first arguments instead of this Node on bin/arcline.js
 *  (the installed package's `arcline`, run through setpriv); `env`: added to this environment. */
export function spawnServer(
  configFile: string,
  opts: { allowRoot?: boolean; command?: readonly string[]; env?: NodeJS.ProcessEnv } = {},
): Promise<ServerProcess> {
  // ARCLINE_SERVER_NODE_ARGS: Node options for the server process only (benches: "--cpu-prof").
  const nodeArgs = (process.env.ARCLINE_SERVER_NODE_ARGS ?? '').split(' ').filter((a) => a !== '');
  const [cmd = process.execPath, ...first] = opts.command ?? [process.execPath, ...nodeArgs, BIN];
  const args = [...first, '--config', configFile, 'serve', ...(opts.allowRoot === false ? [] : ['--allow-root'])];
  const child = spawn(cmd, args, {
    stdio: ['ignore', 'pipe', 'pipe'],
    ...(opts.env ? { env: { ...process.env, ...opts.env } } : {}),
  });
  const logs: Record<string, unknown>[] = [];
  let stderr = '';
  let pending = '';
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  child.stderr?.on('data', (d) => {
    stderr += d;
  });
  return new Promise((resolve, reject) => {
    let port: number | undefined;
    const ports: Record<string, number[]> = {};
    child.stdout?.on('data', (d: Buffer) => {
      pending += d.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) {
        if (!line.startsWith('{')) continue;
        const entry = JSON.parse(line) as Record<string, unknown>;
        logs.push(entry);
        if (entry.msg === 'listening') {
          const service = entry.service as string;
          ports[service] = [...(ports[service] ?? []), entry.port as number];
          if (entry.service === 'smtp' && port === undefined) port = entry.port as number;
        }
        if (entry.msg === 'ready' && port !== undefined) {
          resolve({ child, port, ports, logs, stderr: () => stderr, exited });
        }
      }
    });
    exited.then(({ code }) => reject(new Error(`server exited with ${code} before ready: ${stderr}`)));
  });
}

/** A free port below 1024 on loopback (only root or CAP_NET_BIND_SERVICE may bind it). */
export async function freePrivilegedPort(): Promise<number> {
  for (let i = 0; i < 200; i++) {
    const port = 600 + Math.floor(Math.random() * 400);
    const s = net.createServer();
    const ok = await new Promise<boolean>((resolve) => {
      s.once('error', () => resolve(false));
      s.listen(port, '127.0.0.1', () => resolve(true));
    });
    if (ok) {
      await new Promise((r) => s.close(r));
      return port;
    }
  }
  throw new Error('no free port below 1024');
}
