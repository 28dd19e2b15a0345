// Real milters for the tests of src/filter/milter/: the pymilter test milter
// (test/fixtures/milter/test_milter.py, Debian's python3-milter over Sendmail's libmilter) and
// opendkim, each started on a free loopback port (or a Unix socket) and stopped by the test.

import { type ChildProcess, spawn } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';
import { freePort } from './pebble.ts';

export const TEST_MILTER = fileURLToPath(new URL('../fixtures/milter/test_milter.py', import.meta.url));

export interface MilterPeer {
  /** The [[milter]] address: "inet:127.0.0.1:PORT" or "unix:/path". */
  readonly address: string;
  readonly child: ChildProcess;
  output(): string;
  /** Resolves when the process has exited (a crash test waits for it). */
  readonly exited: Promise<number | null>;
  stop(): Promise<void>;
}

function canConnect(o: { port: number } | { path: string }): Promise<boolean> {
  return new Promise((resolve) => {
    const c = 'port' in o ? connect(o.port, '127.0.0.1') : connect(o.path);
    c.once('connect', () => {
      c.destroy();
      resolve(true);
    });
    c.once('error', () => resolve(false));
  });
}

/** Starts `command` and waits until its socket accepts connections. */
async function startPeer(
  command: string,
  args: readonly string[],
  target: { port: number } | { path: string },
  address: string,
  stopSignal: NodeJS.Signals,
): Promise<MilterPeer> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let out = '';
  child.stdout?.on('data', (d) => {
    out += d;
  });
  child.stderr?.on('data', (d) => {
    out += d;
  });
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  let running = true;
  void exited.then(() => {
    running = false;
  });
  const deadline = Date.now() + 10_000;
  while (!(await canConnect(target))) {
    if (!running) throw new Error(`${command} exited: ${out}`);
    if (Date.now() > deadline) {
      child.kill('SIGKILL');
      throw new Error(`${command} did not listen within 10 s: ${out}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
  return {
    address,
    child,
    output: () => out,
    exited,
    async stop() {
      if (running) child.kill(stopSignal);
      const t = setTimeout(() => child.kill('SIGKILL'), 3000);
      await exited;
      clearTimeout(t);
    },
  };
}

/** libmilter's graceful stop on SIGTERM waits ~4 s for its threads; these milters keep nothing
 *  a test needs afterwards. */
const STOP: NodeJS.Signals = 'SIGKILL';

/** The pymilter test milter named `name` (its report field is X-Seen-By-`name`). */
export async function startTestMilter(name: string, opts: { unixPath?: string } = {}): Promise<MilterPeer> {
  if (opts.unixPath) {
    return startPeer(
      '/usr/bin/python3',
      [TEST_MILTER, `unix:${opts.unixPath}`, name],
      { path: opts.unixPath },
      `unix:${opts.unixPath}`,
      STOP,
    );
  }
  const port = await freePort();
  return startPeer(
    '/usr/bin/python3',
    [TEST_MILTER, `inet:${port}@127.0.0.1`, name],
    { port },
    `inet:127.0.0.1:${port}`,
    STOP,
  );
}

/** opendkim in the foreground with `configFile`, listening on `port`. */
export async function startOpendkim(configFile: string, port: number): Promise<MilterPeer> {
  return startPeer(
    '/usr/sbin/opendkim',
    ['-f', '-x', configFile, '-p', `inet:${port}@127.0.0.1`],
    { port },
    `inet:127.0.0.1:${port}`,
    STOP,
  );
}
