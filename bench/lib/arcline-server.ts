// A real arcline server for the SMTP benches: `arcline serve` as a child process (optionally with
// node flags such as --cpu-prof), its configuration written to a temp directory, the domain and
// user created through the CLI, JSON logs at level info written to a file as in production.

import { execFileSync, spawn } from 'node:child_process';
import { closeSync, openSync, readFileSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const BIN = new URL('../../bin/arcline.js', import.meta.url).pathname;

export interface ArclineServer {
  pid: number;
  port: number;
  /** new/ of the user's INBOX. */
  newDir: string;
  stop(): Promise<void>;
}

export interface ArclineOptions {
  dir: string;
  /** Local part and domain of the one user. */
  user: string;
  /** Extra TOML appended to the configuration (whole sections). */
  extra: string;
  /** Keys added to [smtp]. */
  smtp?: string;
  /** Node flags for the server process, e.g. ['--cpu-prof', '--cpu-prof-dir=/tmp/prof']. */
  nodeArgs?: string[];
}

/** The configuration: the defaults except what a bench on loopback needs (ephemeral port, temp
 *  directory, no submission, IMAP or HTTP listeners, JSON logs so the port can be read from them). */
export function benchConfig(o: ArclineOptions): string {
  return `hostname = "mx.arcline.bench"
[storage]
maildir = "${o.dir}/mail"
state = "${o.dir}/state"
[smtp]
listen = ["127.0.0.1:0"]
${o.smtp ?? ''}
[submission]
listen = []
tls_listen = []
[imap]
listen = []
tls_listen = []
[http]
listen = []
tls_listen = []
[log]
format = "json"
${o.extra}
`;
}

export async function startArcline(o: ArclineOptions): Promise<ArclineServer> {
  const config = join(o.dir, 'arcline.toml');
  await writeFile(config, benchConfig(o));
  const cli = (...args: string[]) =>
    execFileSync(process.execPath, [BIN, '--config', config, ...args], { input: 'bench-password\n' });
  const [local, domain] = o.user.split('@') as [string, string];
  cli('domain', 'add', domain);
  cli('user', 'add', o.user, '--password-stdin');

  const logFile = join(o.dir, 'server.log');
  const logFd = openSync(logFile, 'w');
  const server = spawn(process.execPath, [...(o.nodeArgs ?? []), BIN, '--config', config, 'serve', '--allow-root'], {
    stdio: ['ignore', logFd, 'inherit'],
  });
  closeSync(logFd);
  const exited = new Promise<void>((r) => server.on('exit', () => r()));
  let port = 0;
  for (let i = 0; i < 400 && port === 0 && server.exitCode === null; i++) {
    await new Promise((r) => setTimeout(r, 50));
    const m = /"port":(\d+),"msg":"listening"/.exec(readFileSync(logFile, 'utf8'));
    if (m) port = Number(m[1]);
  }
  if (!port || server.pid === undefined) {
    server.kill('SIGKILL');
    throw new Error(`arcline did not start; see ${logFile}`);
  }
  return {
    pid: server.pid,
    port,
    newDir: join(o.dir, 'mail', domain, local, 'new'),
    async stop() {
      if (server.exitCode === null) server.kill('SIGTERM');
      await exited;
    },
  };
}
