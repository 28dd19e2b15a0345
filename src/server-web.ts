// The [http] listeners of `arcline serve` (web/: ACME, MTA-STS, autoconfig, health, metrics, the
// admin API and web admin, JMAP) and the listen helper every service uses; split from server.ts.

import type { AddressInfo } from 'node:net';
import type { Readable } from 'node:stream';
import type { MetricsServer } from './admin/metrics-http.ts';
import { createApiApp } from './api/app.ts';
import { metricStats } from './api/summary.ts';
import type { Authenticator } from './auth/authenticator.ts';
import type { CheckReport } from './check/report.ts';
import type { Config } from './config/schema.ts';
import type { DomainName } from './core/ids.ts';
import type { Logger } from './core/log.ts';
import type { AccessView } from './defense/access.ts';
import type { RateLimits } from './defense/rate-limits.ts';
import { createPromiseResolver } from './dns/resolver.ts';
import { DkimSigner } from './hygiene/sign.ts';
import { ClusterPushPeers } from './jmap/push-peers.ts';
import { ClusterPushRelay } from './jmap/push-relay.ts';
import { createJmap, type JmapService } from './jmap/service.ts';
import type { Context } from './main.ts';
import type { Dispatcher, DispatchRequest, ScheduleRequest } from './queue/dispatch.ts';
import { receivedReports } from './reports/received.ts';
import { sharedRoot } from './stores.ts';
import { AcmeManager } from './tls/acme.ts';
import type { AcmeStore } from './tls/acme-store.ts';
import type { TlsManager } from './tls/certs.ts';
import { adminStaticRoute } from './web/admin-static.ts';
import { AUTODISCOVER_BODY_PATHS, autoconfigRoute } from './web/autoconfig.ts';
import type { ClientSettings } from './web/client-config.ts';
import { healthRoute, type Readiness } from './web/health.ts';
import { acmeHttpRoute, metricsRoute, mtaStsRoute, Router } from './web/routes.ts';
import { WebServer } from './web/server.ts';

/** A start-up failure with a one-line reason for the operator (runServer prints it). */
export class StartupError extends Error {}

export async function startWeb(
  config: Config,
  log: Logger,
  ctx: Context,
  tls: TlsManager,
  parts: {
    clients: ClientSettings;
    readiness: Readiness;
    metrics: MetricsServer;
    authenticator: Authenticator;
    access: AccessView;
    check: (domain: string) => Promise<CheckReport>;
    /** For JMAP EmailSubmission (docs/jmap-submission.md). */
    dispatcher: Dispatcher;
    rateLimits: RateLimits;
    /** ACME's store (tls/acme-store.ts): files of this server, or shared in a cluster. */
    acmeStore: AcmeStore | null;
  },
): Promise<{ web: WebServer; bound: AddressInfo[]; acme: AcmeManager | null; jmap: JmapService | null }> {
  const { clients, readiness, metrics, authenticator, access } = parts;
  const domains = async () => (await ctx.directory.listDomains()).map((d) => d.name as string);
  const a = config.acme;
  const acme = a.directory_url
    ? new AcmeManager({
        settings: {
          directoryUrl: a.directory_url,
          email: a.email,
          extraNames: a.domains,
          renewBeforeMs: a.renew_before,
          challenges: a.challenges,
          checkIntervalMs: a.check_interval,
          retryInitialMs: a.retry_initial,
        },
        stateDir: config.storage.state,
        ...(parts.acmeStore ? { store: parts.acmeStore } : {}),
        hostname: config.hostname,
        domains,
        tls,
        log: log.child({ service: 'acme' }),
      })
    : null;
  const m = config.mta_sts;
  const isLocalDomain = (d: string) => ctx.directory.isLocalDomain(d as DomainName);
  const router = new Router()
    .add(mtaStsRoute(config.hostname, { mode: m.mode, maxAgeMs: m.max_age, mx: m.mx }, isLocalDomain))
    .add(healthRoute(readiness))
    .add(autoconfigRoute({ settings: clients, isLocalDomain }), AUTODISCOVER_BODY_PATHS);
  if (acme) router.add(acmeHttpRoute((t) => acme.httpChallenge(t)));
  if (config.metrics.http) router.add(metricsRoute(() => metrics.scrape()));
  const api = createApiApp({
    ops: ctx.ops,
    store: ctx.store,
    dkim: ctx.dkim,
    dkimDefaults: config.dkim,
    queue: ctx.queue,
    access: ctx.access,
    defense: ctx.defense,
    authenticator,
    log: log.child({ component: 'api' }),
    hostname: config.hostname,
    mtaSts: { mode: m.mode, maxAgeMs: m.max_age, mx: m.mx },
    dns: createPromiseResolver(config.dns.servers),
    check: parts.check,
    received: receivedReports(ctx.directory, ctx.store.accounts),
    stats: metricStats(new Date()),
  });
  router.add(adminStaticRoute()); // the web admin at /admin/ (web/admin-static.ts)
  const jmap = config.jmap.enabled
    ? createJmap({
        config: config.jmap,
        stateDir: sharedRoot(config),
        hostname: config.hostname,
        log: log.child({ component: 'jmap' }),
        store: ctx.store.accounts,
        objects: jmapObjects(config, ctx, parts, log),
        auth: {
          authenticator,
          tokens: ctx.access,
          loginName: (n) => ctx.directory.loginName(n),
          userEnabled: async (a) => (await ctx.ops.getUser(a))?.enabled === true,
          log: log.child({ component: 'jmap' }),
        },
      })
    : null;
  await jmap?.ready;
  const relayed = jmap ? await relayPush(jmap, ctx, config.cluster.heartbeat_interval, log) : null;
  const web = new WebServer({
    jmap: jmap?.http ?? null,
    log: log.child({ service: 'http' }),
    accessLog: config.log.access === 'off' ? null : log.child({ service: 'http' }),
    tls,
    router,
    api,
    alpnChallenge: acme ? (n) => acme.alpnChallenge(n) : null,
    maxConnections: config.http.max_connections,
    timeoutMs: config.http.timeout,
    access,
  });
  const bound = await listenOrExplain('http', [...config.http.listen, ...config.http.tls_listen], () =>
    web.listen(config.http.listen, config.http.tls_listen),
  );
  for (const b of bound) log.info({ service: 'http', address: b.address, port: b.port }, 'listening');
  return { web, bound, acme, jmap: relayed };
}

/** On a cluster (ctx.notifier: PostgreSQL), the hub's publishes of the non-mail types reach the
 *  other nodes' push clients (jmap/push-relay.ts), and the PushSubscriptions are shared with one
 *  owner each (jmap/push-peers.ts; docs/cluster.md "JMAP push across nodes"); the service's
 *  close stops both. Alone on SQLite the service is as it is. */
async function relayPush(jmap: JmapService, ctx: Context, everyMs: number, log: Logger): Promise<JmapService> {
  if (!ctx.notifier || !ctx.postgres) return jmap;
  const jmapLog = log.child({ component: 'jmap' });
  const relay = await ClusterPushRelay.start({
    hub: jmap.hub,
    source: ctx.notifier,
    db: ctx.postgres.db,
    node: ctx.node,
    known: (type) => jmap.registry.lookup(`${type}/get`) !== undefined,
    log: jmapLog,
  });
  const peers = await ClusterPushPeers.start({
    subscriptions: jmap.subscriptions,
    source: ctx.notifier,
    db: ctx.postgres.db,
    node: ctx.node,
    everyMs,
    log: jmapLog,
  });
  return {
    ...jmap,
    close() {
      peers.close();
      relay.close();
      jmap.close();
    },
  };
}

export async function listenOrExplain(
  service: string,
  addrs: readonly string[],
  listen: (a: readonly string[]) => Promise<AddressInfo[]>,
): Promise<AddressInfo[]> {
  try {
    return await listen(addrs);
  } catch (e) {
    const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
    const where = err.address !== undefined ? `${err.address}:${err.port}` : addrs.join(', ');
    if (err.code === 'EADDRINUSE') throw new StartupError(`cannot listen on ${where} (${service}): address in use`);
    if (err.code === 'EACCES') {
      throw new StartupError(
        `cannot listen on ${where} (${service}): permission denied (ports below 1024 need root or CAP_NET_BIND_SERVICE)`,
      );
    }
    if (err.code === 'EADDRNOTAVAIL') {
      throw new StartupError(`cannot listen on ${where} (${service}): no such local address`);
    }
    throw e;
  }
}

/** What JMAP Identity, EmailSubmission and VacationResponse use (docs/jmap-submission.md):
 *  EmailSubmission sends through the dispatcher, DKIM-signed as submission signs. */
function jmapObjects(
  config: Config,
  ctx: Context,
  { dispatcher, rateLimits }: { dispatcher: Dispatcher; rateLimits: RateLimits },
  log: Logger,
) {
  const signer = config.dkim.sign ? new DkimSigner(ctx.dkim, log.child({ service: 'jmap' })) : null;
  return {
    state: ctx.jmap,
    directory: ctx.directory,
    queue: ctx.queue,
    relayed: config.delivery.relay !== '',
    maxDelayedSendMs: config.jmap.max_delayed_send,
    log: log.child({ component: 'jmap' }),
    accounts: ctx.store.accounts,
    send: {
      accounts: ctx.store.accounts,
      directory: ctx.directory,
      dispatch: (req: DispatchRequest) => dispatcher.dispatch(req),
      schedule: (req: ScheduleRequest) => dispatcher.schedule(req),
      sign: signer ? (domain: string, message: Readable) => signer.sign(domain, message) : null,
      hostname: config.hostname,
      rate: rateLimits,
    },
  };
}
