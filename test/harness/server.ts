// Starts the real server in-process on ephemeral loopback ports with fresh temp directories,
// and gives tests an admin handle on the same database (a second connection, as the CLI has).

import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { parseConfigText } from '../../src/config/load.ts';
import type { Config } from '../../src/config/schema.ts';
import { openContext } from '../../src/main.ts';
import { type RunningServer, startServer } from '../../src/server.ts';

export type AdminContext = Awaited<ReturnType<typeof openContext>>;

export interface TestServer {
  readonly dir: string;
  readonly config: Config;
  readonly configFile: string;
  readonly port: number;
  /** IMAP with STARTTLS, and with implicit TLS. */
  readonly imapPort: number;
  readonly imapsPort: number;
  /** ManageSieve (0 unless the test's config has a [managesieve] listener). */
  readonly managesievePort: number;
  /** Submission with STARTTLS and with implicit TLS (0 unless `submission: true`). */
  readonly submissionPort: number;
  readonly submissionTlsPort: number;
  readonly server: RunningServer;
  readonly admin: AdminContext;
  /** Every log line the server wrote, parsed. */
  readonly logs: Record<string, unknown>[];
  /** The first log line matching `pred`, waiting for it (lines of the SMTP threads arrive a
   *  moment after the reply they explain). */
  logged(pred: (l: Record<string, unknown>) => boolean, timeoutMs?: number): Promise<Record<string, unknown>>;
  /** `{maildir}/{domain}/{local}/` (+ `.Folder`), for assertions on files. */
  mailboxDir(address: string, folder?: string): string;
  /** Names of the files in new/ of a mailbox. */
  newFiles(address: string, folder?: string): Promise<string[]>;
  /** Contents of the files in new/, sorted by name. */
  messages(address: string, folder?: string): Promise<Buffer[]>;
  stop(): Promise<void>;
}

export const TEST_CONFIG = (dir: string, extra = '') => `hostname = "mx.test.example"
[storage]
maildir = "${dir}/mail"
state = "${dir}/state"
[smtp]
listen = ["127.0.0.1:0"]
reverse_lookup = false
[submission]
listen = []
tls_listen = []
[imap]
listen = ["127.0.0.1:0"]
tls_listen = ["127.0.0.1:0"]
[auth]
bcrypt_cost = 4
[log]
level = "debug"
format = "json"
${extra}
${testDefaults(extra)}`;

/** Sections every test server gets unless the test brings its own:
 *  - [dns]: a resolver address where nothing listens, so no test ever sends a DNS query off
 *    this machine;
 *  - [hygiene]: loopback trusted, so tests that are not about SPF/DKIM/DMARC are not deferred
 *    for want of DNS (the hygiene tests bring their own [hygiene] and a real DNS server);
 *  - [dkim]: Ed25519 keys for new domains (instant, where RSA-2048 takes a noticeable while);
 *  - [http]: no HTTP/HTTPS listeners (their defaults are fixed ports, 8080 and 8443);
 *  - [managesieve]: no listener (its default is the fixed port 4190). */
function testDefaults(extra: string): string {
  let out = '';
  if (!extra.includes('[dns]')) out += '[dns]\nservers = ["127.0.0.1:1"]\n';
  if (!extra.includes('[hygiene')) out += '[hygiene]\ntrusted_networks = ["127.0.0.0/8", "::1/128"]\n';
  if (!extra.includes('[dkim]')) out += '[dkim]\nalgorithm = "ed25519"\n';
  if (!extra.includes('[http]')) out += '[http]\nlisten = []\ntls_listen = []\n';
  if (!extra.includes('[managesieve]')) out += '[managesieve]\nlisten = []\n';
  return out;
}

/** Merges extra TOML into the base config: `smtp.max_recipients = 3` style keys go in sections. */
export async function startTestServer(
  opts: {
    smtp?: string;
    /** The address of the SMTP listener instead of 127.0.0.1:0 (e.g. "[::ffff:127.0.0.1]:0"). */
    smtpListen?: string;
    server?: string;
    domains?: string[];
    users?: string[];
    /** Listen for submission (STARTTLS and implicit TLS) on ephemeral ports; a string adds
     *  keys to the [submission] section. */
    submission?: boolean | string;
    /** Keys added to the [imap] section, e.g. 'login_timeout = "1s"'. */
    imap?: string;
    /** More TOML sections ([delivery], [dns] ...), appended as they are. */
    extra?: string;
    /** Keys added to the [auth] section (e.g. `failure_delay = "0s"`). */
    auth?: string;
    /** An existing directory to run in (restart tests); kept by stop() when given. */
    dir?: string;
    /** Listen for plain HTTP on an ephemeral loopback port (server.http[0]); ignored when
     *  `extra` brings its own [http] section. */
    http?: boolean;
  } = {},
): Promise<TestServer> {
  const dir = opts.dir ?? (await mkdtemp(join(tmpdir(), 'arcline-test-')));
  let text = TEST_CONFIG(dir, opts.extra ?? '');
  if (opts.submission) {
    text = text.replace(
      '[submission]\nlisten = []\ntls_listen = []',
      `[submission]\nlisten = ["127.0.0.1:0"]\ntls_listen = ["127.0.0.1:0"]${typeof opts.submission === 'string' ? `\n${opts.submission}` : ''}`,
    );
  }
  if (opts.http)
    text = text.replace('[http]\nlisten = []\ntls_listen = []', '[http]\nlisten = ["127.0.0.1:0"]\ntls_listen = []');
  if (opts.smtpListen)
    text = text.replace('[smtp]\nlisten = ["127.0.0.1:0"]', `[smtp]\nlisten = ["${opts.smtpListen}"]`);
  if (opts.smtp) text = text.replace('reverse_lookup = false', `reverse_lookup = false\n${opts.smtp}`);
  // Cheap hashes for test users (bcrypt cost 4) unless a test asks for a scheme: the default,
  // Argon2id at 64 MiB, has tests of its own (test/auth/hashing.test.ts).
  const auth = opts.auth?.includes('password_scheme') ? opts.auth : `password_scheme = "bcrypt"\n${opts.auth ?? ''}`;
  text = text.replace('bcrypt_cost = 4', `bcrypt_cost = 4\n${auth}`);
  if (opts.imap) text = text.replace('[imap]\n', `[imap]\n${opts.imap}\n`);
  if (opts.server) text += `[server]\n${opts.server}\n`;
  const configFile = join(dir, 'arcline.toml');
  await writeFile(configFile, text);
  const config = parseConfigText(text, configFile);
  const logs: Record<string, unknown>[] = [];
  const logWaiters = new Set<() => void>();
  const sink = new Writable({
    write(chunk: Buffer, _enc, cb) {
      for (const line of chunk.toString().split('\n')) if (line) logs.push(JSON.parse(line));
      for (const w of logWaiters) w();
      cb();
    },
  });
  // Lines of the inbound SMTP threads reach the log a moment after the reply they explain.
  const logged = (pred: (l: Record<string, unknown>) => boolean, timeoutMs = 5000) =>
    new Promise<Record<string, unknown>>((resolve, reject) => {
      const check = () => {
        const hit = logs.find(pred);
        if (!hit) return false;
        logWaiters.delete(check);
        clearTimeout(timer);
        resolve(hit);
        return true;
      };
      const timer = setTimeout(() => {
        logWaiters.delete(check);
        reject(new Error(`no such log line within ${timeoutMs} ms`));
      }, timeoutMs);
      if (!check()) logWaiters.add(check);
    });
  const log = pino({ level: 'debug' }, sink);
  const admin = await openContext(config, log);
  if (!opts.dir) {
    for (const d of opts.domains ?? ['example.test']) await admin.ops.addDomain(d);
    for (const u of opts.users ?? ['alice@example.test', 'bob@example.test']) {
      await admin.ops.addUser(u, { password: 'secret-password' });
    }
  }
  const server = await startServer(config, log);
  const port = server.smtp[0]?.port;
  if (port === undefined) throw new Error('no smtp listener');
  const [imapPort, imapsPort] = [server.imap[0]?.port ?? 0, server.imap[1]?.port ?? 0];
  const mailboxDir = (address: string, folder?: string) => {
    const at = address.lastIndexOf('@');
    const base = join(config.storage.maildir, address.slice(at + 1), address.slice(0, at));
    return folder ? join(base, `.${folder}`) : base;
  };
  const newFiles = async (address: string, folder?: string) =>
    (await readdir(join(mailboxDir(address, folder), 'new'))).sort();
  return {
    dir,
    config,
    configFile,
    port,
    imapPort,
    imapsPort,
    managesievePort: server.managesieve[0]?.port ?? 0,
    submissionPort: server.submission[0]?.port ?? 0,
    submissionTlsPort: server.submission[1]?.port ?? 0,
    server,
    admin,
    logs,
    logged,
    mailboxDir,
    newFiles,
    async messages(address, folder) {
      const names = await newFiles(address, folder);
      return Promise.all(names.map((n) => readFile(join(mailboxDir(address, folder), 'new', n))));
    },
    async stop() {
      await server.stop();
      await admin.close();
      if (!opts.dir) await rm(dir, { recursive: true, force: true });
    },
  };
}
