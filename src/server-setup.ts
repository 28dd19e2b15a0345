// Pieces of start-up that server.ts (the lifecycle) uses: the readiness checks, the login
// path, the privilege drop after binding, the SMTP thread count, the relay password and the
// trusted networks. Split from server.ts to keep it near 600 lines (docs/architecture.md).

import { readFile } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { availableParallelism } from 'node:os';
import { Authenticator } from './auth/authenticator.ts';
import type { Config } from './config/schema.ts';
import { errorMessage } from './core/errors.ts';
import { prebind } from './core/listen.ts';
import type { Logger } from './core/log.ts';
import { dropPrivileges } from './core/privileges.ts';
import type { BanPolicy } from './defense/bans.ts';
import type { Directory } from './directory/types.ts';
import { Networks } from './hygiene/networks.ts';
import type { Context } from './main.ts';
import { prepareStorage, type RunPlan } from './run-as.ts';
import { listenOrExplain, StartupError } from './server-web.ts';
import type { HealthCheck } from './web/health.ts';

/** /healthz/ready (web/health.ts): the directory and the mail index answer a query, mail can be
 *  written under the Maildir root, and the listeners are up; in a cluster PostgreSQL answers
 *  too (a node that lost it drains from the load balancer). */
export function readinessChecks(ctx: Context, serving: () => boolean): HealthCheck[] {
  const pg = ctx.postgres;
  return [
    ...(pg ? [{ name: 'database', run: async () => void (await pg.db.query('SELECT 1')) }] : []),
    { name: 'directory', run: () => ctx.directory.ping() },
    { name: 'mail_index', run: () => ctx.store.pingIndex() },
    { name: 'maildir', run: () => ctx.store.probeWritable() },
    {
      name: 'listeners',
      run: () => {
        if (!serving()) throw new Error('not serving (starting or stopping)');
      },
    },
  ];
}

/** The one login path of IMAP and submission, from [auth]. */
export function buildAuthenticator(config: Config, directory: Directory, log: Logger, bans: BanPolicy): Authenticator {
  const a = config.auth;
  const trusted = new Networks(a.trusted_networks);
  return new Authenticator({
    directory,
    log: log.child({ component: 'auth' }),
    hashing: { scheme: a.password_scheme, bcryptCost: a.bcrypt_cost },
    failureDelayMs: a.failure_delay,
    failureWindowMs: a.failure_window,
    maxPairDelayMs: a.max_delay,
    maxAddressDelayMs: a.max_address_delay,
    trusted: (ip) => trusted.has(ip),
    cacheSize: a.cache_size,
    cacheTtlMs: a.cache_ttl,
    maxPending: a.max_pending,
    concurrency: a.hash_concurrency,
    onFailure: (ip) => bans.offence(ip, 'auth'),
    onSuccess: (ip) => bans.loggedIn(ip),
  });
}

/** Before any file is opened: the data directories made ready for the plan's account; with an
 *  account to become, every listener is bound (as root, so ports below 1024 work), then the
 *  process becomes that account for good (dropPrivileges checks that root cannot come back). */
export async function becomeServiceUser(
  config: Config,
  log: Logger,
  plan: RunPlan,
  bindSmtpThreads: (() => Promise<void>) | null,
): Promise<void> {
  const notes = prepareStorage(config, plan);
  for (const dir of notes.created) log.info({ dir, owner: plan.owner.user }, 'created data directory');
  for (const dir of notes.narrowed) log.info({ dir, mode: '0700' }, 'narrowed the mode of the state directory');
  if (plan.root) {
    log.warn(
      'running as root ([server] allow_root or --allow-root): for development only; set [server] user for production',
    );
  }
  if (!plan.become) return;
  const bindAll = async (addrs: readonly string[]) => {
    const bound: AddressInfo[] = [];
    for (const a of addrs) bound.push(await prebind(a));
    return bound;
  };
  if (bindSmtpThreads) await bindSmtpThreads();
  else await listenOrExplain('smtp', config.smtp.listen, bindAll);
  await listenOrExplain('submission', [...config.submission.listen, ...config.submission.tls_listen], bindAll);
  await listenOrExplain('imap', [...config.imap.listen, ...config.imap.tls_listen], bindAll);
  await listenOrExplain('managesieve', config.managesieve.listen, bindAll);
  await listenOrExplain('metrics', config.metrics.listen, bindAll);
  await listenOrExplain('http', [...config.http.listen, ...config.http.tls_listen], bindAll);
  dropPrivileges(plan.become);
  log.info({ user: plan.become.user, group: plan.become.group }, 'dropped root privileges');
}

/** [smtp] threads: "auto" leaves a core to the main thread and one to the kernel, libuv's pool
 *  and GC: cores - 2, so none on a 2-core machine, where threads were measured to gain nothing
 *  (docs/benchmarks.md, issue #12). None when nothing listens on port 25. */
export function smtpThreadCount(config: Config): number {
  if (config.smtp.listen.length === 0) return 0;
  const t = config.smtp.threads;
  return t === 'auto' ? Math.max(0, availableParallelism() - 2) : t;
}

/** [delivery] relay_password_file: its first line. Read once at start; errors stop start-up. */
export async function readRelayPassword(config: Config): Promise<string | null> {
  const file = config.delivery.relay_password_file;
  if (!file) return null;
  try {
    return (await readFile(file, 'utf8')).split(/\r?\n/)[0] ?? '';
  } catch (e) {
    throw new StartupError(`cannot read delivery.relay_password_file ${file}: ${errorMessage(e)}`);
  }
}

/** Clients in [hygiene] trusted_networks: exempt from the rate limits and the network limits. */
export function trustedFor(config: Config): (ip: string) => boolean {
  const trusted = new Networks(config.hygiene.trusted_networks);
  return (ip) => trusted.has(ip);
}

/** The configuration with each listener's address as bound ("127.0.0.1:0" becomes its port). */
export function withBoundListeners(
  config: Config,
  b: { smtp: AddressInfo[]; submission: AddressInfo[]; imap: AddressInfo[]; http: AddressInfo[] },
): Config {
  const fmt = (a: AddressInfo) => (a.family === 'IPv6' ? `[${a.address}]:${a.port}` : `${a.address}:${a.port}`);
  const split = (all: AddressInfo[], first: number) => [all.slice(0, first).map(fmt), all.slice(first).map(fmt)];
  const [submission, submissionTls] = split(b.submission, config.submission.listen.length);
  const [imap, imapTls] = split(b.imap, config.imap.listen.length);
  const [http, https] = split(b.http, config.http.listen.length);
  return {
    ...config,
    smtp: { ...config.smtp, listen: b.smtp.map(fmt) },
    submission: { ...config.submission, listen: submission ?? [], tls_listen: submissionTls ?? [] },
    imap: { ...config.imap, listen: imap ?? [], tls_listen: imapTls ?? [] },
    http: { ...config.http, listen: http ?? [], tls_listen: https ?? [] },
  };
}
