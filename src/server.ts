// The server's lifecycle: start every configured service, then run until a signal.
//   SIGTERM / SIGINT  stop accepting, let transactions in flight finish within
//                     [server] shutdown_grace (then 421), close the database, exit 0.
//   SIGHUP            re-read the TLS certificate; connections are not dropped; with ACME, check
//                     at once whether the certificate needs new names (a domain added).
// A port in use or not permitted stops start-up with one clear line (exit 1).
// Privileges (run-as.ts): started as root with [server] user, every listener is bound first,
// then the process becomes that user for good, and only then opens a database or a mail file,
// so everything it creates belongs to that user.

import type { AddressInfo } from 'node:net';
import { MetricsServer } from './admin/metrics-http.ts';
import type { LoadedConfig } from './config/load.ts';
import type { Config } from './config/schema.ts';
import { errorMessage, isArclineError } from './core/errors.ts';
import type { DomainName } from './core/ids.ts';
import { LIMITS } from './core/limits.ts';
import { closePrebound } from './core/listen.ts';
import { closeLogShipping, createLogger, type Logger, logSink } from './core/log.ts';
import { queueRecipients, queueRecipientsByState, queueSize } from './core/metrics.ts';
import { currentAccount } from './core/privileges.ts';
import { SharedSlots } from './core/shared-slots.ts';
import { lockState, type StateLock } from './core/state-lock.ts';
import { AccessView } from './defense/access.ts';
import { BanPolicy, banSettings } from './defense/bans.ts';
import { createGreylister, openGreylistStorage, verifiedReverse } from './defense/greylist.ts';
import { networkLimits, openRateLimits } from './defense/rate-limits.ts';
import { SqliteDefenseStore } from './defense/store.ts';
import { cachingReverse, createPromiseResolver } from './dns/resolver.ts';
import { spamDeps } from './filter/rspamd.ts';
import { ArcSealer } from './hygiene/arc-seal.ts';
import { Networks } from './hygiene/networks.ts';
import { Hygiene } from './hygiene/pipeline.ts';
import { DkimSigner } from './hygiene/sign.ts';
import { ImapServer } from './imap/server.ts';
import type { JmapService } from './jmap/service.ts';
import { type Context, openContext } from './main.ts';
import { ManageSieveServer } from './managesieve/server.ts';
import { Dispatcher } from './queue/dispatch.ts';
import { openTlsReporting, type TlsReporting } from './reports/tlsrpt-setup.ts';
import { blocklistMonitor, clusterSmtpThreads, taskRunner } from './server-cluster.ts';
import {
  becomeServiceUser,
  buildAuthenticator,
  readinessChecks,
  readRelayPassword,
  smtpThreadCount,
  trustedFor,
  withBoundListeners,
} from './server-setup.ts';
import { listenOrExplain, StartupError, startWeb } from './server-web.ts';
import { sharedRoot } from './stores.ts';

export { StartupError };

import { openMtaSts } from './queue/mta-sts.ts';
import { QueueRunner } from './queue/runner.ts';
import { createSieveFilter } from './queue/sieve-setup.ts';
import { TLS_REPORT_TAG } from './queue/types.ts';
import { type DmarcReporting, openDmarcReporting } from './reports/dmarc-setup.ts';
import { planServe, type RunPlan } from './run-as.ts';
import { SmtpService } from './smtp/service.ts';
import { SmtpThreads } from './smtp/threads/host.ts';
import { openSrsForwarding } from './srs/forwarding.ts';
import { type AcmeManager, acmeCertificateFile, acmeLeaderTask } from './tls/acme.ts';
import { followAcmeCertificate } from './tls/acme-serve.ts';
import { openAcmeStore } from './tls/acme-store.ts';
import { TlsManager } from './tls/certs.ts';
import { type ClientSettings, endpoints } from './web/client-config.ts';
import { Readiness } from './web/health.ts';

export interface RunningServer {
  /** Bound addresses of the inbound SMTP listeners (port 0 in config resolves here). */
  readonly smtp: readonly AddressInfo[];
  /** Bound IMAP listeners: the plain ones first, then the implicit-TLS ones. */
  readonly imap: readonly AddressInfo[];
  /** Bound submission listeners: the STARTTLS ones first, then the implicit-TLS ones. */
  readonly submission: readonly AddressInfo[];
  /** Bound ManageSieve listeners ([managesieve] listen). */
  readonly managesieve: readonly AddressInfo[];
  readonly queue: QueueRunner;
  /** Bound Prometheus listeners ([metrics] listen). */
  readonly metrics: readonly AddressInfo[];
  readonly tls: TlsManager;
  /** Bound HTTP listeners: the plain ones ([http] listen) first, then the HTTPS ones. */
  readonly http: readonly AddressInfo[];
  /** Certificates from the ACME CA; null when [acme] directory_url is empty. */
  readonly acme: AcmeManager | null;
  /** JMAP ([jmap] enabled): its registry, PushHub and blob store; null when off. */
  readonly jmap: JmapService | null;
  /** TLS reporting ([tls_reports]); null when off. */
  readonly tlsReports: TlsReporting | null;
  /** DMARC aggregate reports ([dmarc_reports] enabled); null when off. */
  readonly dmarcReports: DmarcReporting | null;
  /** Graceful stop (see the header comment). Idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  /** Who to run as (run-as.ts planServe); without it the process stays as it is and the data
   *  directories are taken as they are (tests, embedding). */
  readonly plan?: RunPlan;
}

/** Starts every configured service. Throws StartupError with a one-line reason. */
export async function startServer(config: Config, log: Logger, opts: StartOptions = {}): Promise<RunningServer> {
  // With [database] url this is a node of a cluster (docs/cluster.md): the stores open on
  // PostgreSQL (stores.ts), the shared files under [cluster] shared_dir, and server-cluster.ts
  // adds the heartbeats and the leader tasks.
  let ctx: Context;
  // Held from before the databases open until after they close (core/state-lock.ts): [storage]
  // state stays the node's own, also in a cluster.
  let lock: StateLock | undefined;
  // Inbound SMTP in threads (docs/architecture.md §8): they bind before privileges are dropped.
  const threads = clusterSmtpThreads(config, smtpThreadCount(config));
  const smtpLog = log.child({ service: 'smtp' });
  const pool =
    threads > 0
      ? new SmtpThreads({
          config,
          log: smtpLog,
          logSink: logSink(log),
          slots: SharedSlots.create(
            config.smtp.max_connections_per_ip,
            config.smtp.max_connections,
            networkLimits(config.rate_limits, config.smtp.max_connections_per_ip),
            trustedFor(config),
          ),
        })
      : null;
  let poolBound: AddressInfo[] | null = null;
  const bindPool = pool
    ? async () => {
        poolBound = await listenOrExplain('smtp', config.smtp.listen, (a) => pool.bind(threads, a));
      }
    : null;
  try {
    if (opts.plan) await becomeServiceUser(config, log, opts.plan, bindPool);
    if (bindPool && !poolBound) await bindPool();
    const me = currentAccount();
    log.info({ user: me.user, uid: me.uid, group: me.group, gid: me.gid }, 'running as');
    lock = lockState(config.storage.state);
    ctx = await openContext(config, log, { serve: true });
    await ctx.store.openIndex().catch(async (e: unknown) => {
      await ctx.close();
      throw e;
    });
  } catch (e) {
    lock?.release();
    await pool?.close();
    await closePrebound();
    throw e;
  }
  await ctx.store.cleanSpool();
  const services: { close(): Promise<void> }[] = pool ? [pool] : [];
  const stopAll = async () => {
    // Together, so the whole stop takes at most [server] shutdown_grace (each service ends what
    // is still in flight at that deadline), not the sum of the services' graces.
    const results = await Promise.allSettled(services.map((s) => s.close()));
    await closePrebound();
    await ctx.close().finally(() => lock?.release());
    for (const r of results) if (r.status === 'rejected') throw r.reason;
  };
  try {
    // ACME's account, certificate and challenges: files of this server, or shared by the nodes
    // of a cluster (docs/cluster.md "ACME and the blocklist monitor across nodes").
    const acmeStore = config.acme.directory_url
      ? await openAcmeStore({ stateDir: config.storage.state, db: ctx.postgres?.db ?? null })
      : null;
    const tls = await TlsManager.open(
      {
        files: config.tls.cert && config.tls.key ? { cert: config.tls.cert, key: config.tls.key } : null,
        acmeFile: acmeStore && !ctx.postgres ? acmeCertificateFile(config.storage.state) : null,
        acmeStore: ctx.postgres ? acmeStore : null,
        stateDir: config.storage.state,
        hostname: config.hostname,
      },
      log,
    );
    await ctx.queue.recover();
    const dnsResolver = createPromiseResolver(config.dns.servers);
    // SRS (docs/srs.md): the sender of forwarded copies, and bounces to those addresses at RCPT.
    const srs = await openSrsForwarding(
      config.srs,
      sharedRoot(config),
      (d) => ctx.directory.isLocalDomain(d as DomainName),
      log.child({ component: 'srs' }),
    );
    const dispatcher = new Dispatcher({
      store: ctx.store,
      queue: ctx.queue,
      directory: ctx.directory,
      hostname: config.hostname,
      log: log.child({ service: 'queue' }),
      ...(srs ? { senderRewriter: srs } : {}),
      // RFC 8617 §5.1: forwarded copies of inbound mail sealed (docs/delivery.md "ARC").
      ...(config.arc.seal ? { sealer: new ArcSealer(ctx.dkim, config.hostname, log.child({ component: 'arc' })) } : {}),
    });
    // Sieve at delivery (docs/sieve.md): every local copy the dispatcher delivers, in this thread
    // or handed over by the inbound threads, goes through the recipient's active script.
    const sieveLog = log.child({ service: 'sieve' });
    const sieveSigner = config.dkim.sign ? new DkimSigner(ctx.dkim, sieveLog) : null;
    const sieveFilter = await createSieveFilter({
      config,
      scripts: ctx.sieve,
      store: ctx.store,
      directory: ctx.directory,
      dispatcher,
      sign: sieveSigner ? (domain, message) => sieveSigner.sign(domain, message) : null,
      log: sieveLog,
      jmap: ctx.jmap,
    });
    if (sieveFilter) dispatcher.useFilter(sieveFilter);
    // The IP lists and bans (docs/spam.md): one view for the listeners of this thread, one ban
    // policy counting offences from every service (and from the inbound threads).
    // The view reads through a connection of its own: data_version only tells a connection of
    // other connections' commits, and the admin API writes through ctx.defense. On PostgreSQL
    // the view polls the defense_version row, which every pooled connection reads alike
    // (docs/cluster.md "Bans and IP lists"): it reads through ctx.defense.
    const defenseView = ctx.postgres ? null : new SqliteDefenseStore(config.storage.state);
    const defenseLog = log.child({ component: 'defense' });
    const access = (
      await AccessView.open(defenseView ?? ctx.defense, {
        pollMs: LIMITS.defense.pollMs,
        onError: (e) => defenseLog.warn({ err: String(e) }, 'reading the IP lists and bans failed'),
      })
    ).start();
    const trusted = trustedFor(config);
    const trustedAuth = new Networks(config.auth.trusted_networks);
    const bans = new BanPolicy({
      store: ctx.defense,
      view: access,
      settings: banSettings(config.ban),
      trusted: (ip) => trusted(ip) || trustedAuth.has(ip),
      log: defenseLog,
    });
    services.push({
      close: async () => {
        access.stop();
        defenseView?.close();
      },
    });
    // Periodic work (server-cluster.ts): leader tasks on one node of a cluster, timers here on
    // one machine. Started once everything listens; stopped with the services.
    let connections = () => 0;
    const tasks = taskRunner(config, ctx, log, () => connections());
    services.push({ close: () => tasks.stop() });
    tasks.periodic('ban-sweep', LIMITS.defense.sweepMs, () => bans.sweep());
    // DKIM key rotation (admin/dkim-rotation.ts, docs/hygiene.md "Rotating a key"): a pending key
    // signs once its record is found in DNS; a retired key goes after its grace.
    const dkimLog = log.child({ component: 'dkim' });
    tasks.periodic('dkim-rotation', config.dkim.rotation_check, async () => {
      const { activated, expired } = await ctx.ops.advanceDkimRotations();
      for (const k of activated)
        dkimLog.info({ domain: k.domain, selector: k.selector }, 'DKIM key activated: its record is published');
      for (const k of expired)
        dkimLog.info(
          { domain: k.domain, selector: k.selector },
          'retired DKIM key deleted: its DNS record may be removed',
        );
    });
    // Rate limits (docs/spam.md): one count for the whole server (the SMTP threads ask it), in
    // PostgreSQL for a cluster. The IP allow list is exempt too (access.isAllowed).
    const rateLimits = await openRateLimits(
      config.rate_limits,
      { exempt: (ip) => trusted(ip) || access.isAllowed(ip) },
      ctx.postgres?.db ?? null,
    );
    // The host itself (127.0.0.1, ::1: a webmail or local tools opening a connection per page)
    // is not counted; other loopback addresses are, like any client (docs/spam.md).
    const connectionRate = config.rate_limits.enabled
      ? (ip: string) => (ip === '127.0.0.1' || ip === '::1' ? Promise.resolve(null) : rateLimits.connection(ip))
      : undefined;
    // MTA-STS of destination domains (RFC 8461, docs/delivery.md): policies cached in {state}
    // or the cluster's database.
    const mtaSts = await openMtaSts(config, dnsResolver, ctx.postgres?.db ?? null, (m) =>
      log.warn({ service: 'queue' }, m),
    );
    if (mtaSts) services.push({ close: () => mtaSts.close() });
    // TLS reporting (RFC 8460, reports/tlsrpt-setup.ts): sessions counted, a daily report sent.
    const tlsReports = await openTlsReporting(
      config,
      ctx.postgres?.db ?? null,
      {
        resolver: dnsResolver,
        // RFC 8460 §5.3: delivered despite TLS failures, its session not reported (runner.ts).
        sendMail: (to, message, logId) => dispatcher.notice(to, message, logId, TLS_REPORT_TAG),
        signer: config.dkim.sign ? new DkimSigner(ctx.dkim, log.child({ component: 'tls-reports' })) : null,
      },
      log,
    );
    if (tlsReports) {
      services.push({ close: () => tlsReports.close() });
      tasks.periodic('tls-reports', config.tls_reports.check_interval, () => tlsReports.round());
    }
    const runner = new QueueRunner({
      ...(mtaSts ? { mtaSts } : {}),
      ...(tlsReports ? { tlsSessions: tlsReports.recorder.record.bind(tlsReports.recorder) } : {}),
      rateLimits,
      config,
      store: ctx.queue,
      resolver: dnsResolver,
      log: log.child({ service: 'queue' }),
      notices: (to, dsn, logId) => dispatcher.notice(to, dsn, logId),
      release: (m) => dispatcher.releaseScheduled(m),
      relayPassword: await readRelayPassword(config),
    });
    services.push({ close: () => runner.stop(config.server.shutdown_grace) });
    tasks.task(await blocklistMonitor(config, ctx, dispatcher, dnsResolver, log));
    // The shared queue: old orphan files of any node, events no node collected.
    const shared = ctx.sharedQueue;
    if (shared) tasks.periodic('queue-sweep', LIMITS.queue.sweepMs, () => shared.sweep().then(() => {}));
    const rdns = config.smtp.reverse_lookup
      ? cachingReverse(createPromiseResolver(config.dns.servers), { maxTtlMs: config.dns.cache_max_ttl })
      : null;
    const smtpDeps = {
      config,
      directory: ctx.directory,
      store: ctx.store,
      dispatcher,
      tls,
      resolver: rdns,
      access,
      offences: bans,
      ...spamDeps(config),
      ...(srs ? { srs } : {}),
    };
    // DMARC aggregate reports (reports/dmarc-setup.ts): evaluations recorded, a report a day.
    const dmarcReports = await openDmarcReporting({
      config,
      db: ctx.postgres?.db ?? null,
      dkim: ctx.dkim,
      notice: (to, message, logId) => dispatcher.notice(to, message, logId),
      resolver: dnsResolver,
      log,
    });
    if (dmarcReports) {
      services.push(dmarcReports);
      tasks.periodic('dmarc-reports', config.dmarc_reports.interval, () => dmarcReports.send().then(() => {}));
    }
    const hygiene = new Hygiene({
      config,
      resolver: dnsResolver,
      directory: ctx.directory,
      log: log.child({ service: 'smtp' }),
      ...(dmarcReports ? { dmarcSink: dmarcReports.recorder } : {}),
    });
    // Greylisting: the database is created (and migrated) here, once, before any inbound thread
    // opens it, so the threads never race to set it up; the task greylist-sweep sweeps it
    // (PostgreSQL: on one node). It also exists with greylisting off when rspamd may ask for it
    // (its "greylist" action forces it).
    const greylist =
      config.greylist.enabled || config.spam.rspamd_url
        ? createGreylister(
            config,
            {
              log: smtpLog,
              trusted: (ip) => hygiene.isTrusted(ip),
              allowed: (ip) => access.isAllowed(ip),
              verifiedName: verifiedReverse(dnsResolver),
            },
            await openGreylistStorage(config, ctx.postgres?.db ?? null),
          )
        : null;
    if (greylist) {
      services.push({ close: async () => greylist.close() });
      tasks.periodic('greylist-sweep', LIMITS.defense.greylistSweepIntervalMs, () => greylist.sweep().then(() => {}));
    }
    let smtp: AddressInfo[];
    let inbound: SmtpService | null = null;
    if (pool) {
      await pool.start({
        store: ctx.store,
        dispatcher,
        tls,
        offences: bans,
        ...(connectionRate ? { connectionRate } : {}),
        ...(sieveFilter ? { filtered: (accounts) => sieveFilter.runsFor(accounts) } : {}),
        ...(dmarcReports ? { dmarcRows: (rows) => dmarcReports.addRows(rows) } : {}),
      });
      smtp = poolBound ?? [];
    } else {
      inbound = new SmtpService({
        ...smtpDeps,
        role: 'inbound',
        log: smtpLog,
        hygiene,
        ...(greylist ? { greylist } : {}),
        ...(connectionRate ? { connectionRate } : {}),
      });
      const service = inbound;
      services.push(service);
      smtp = await listenOrExplain('smtp', config.smtp.listen, (a) => service.listen(a));
    }
    for (const a of smtp) log.info({ service: 'smtp', address: a.address, port: a.port }, 'listening');
    const authenticator = buildAuthenticator(config, ctx.directory, log, bans);
    const submissionService = new SmtpService({
      ...smtpDeps,
      role: 'submission',
      log: log.child({ service: 'submission' }),
      authenticator,
      ...(connectionRate ? { connectionRate } : {}),
      userRate: rateLimits,
      ...(config.dkim.sign ? { signer: new DkimSigner(ctx.dkim, log.child({ service: 'submission' })) } : {}),
    });
    services.push(submissionService);
    const submission = [
      ...(await listenOrExplain('submission', config.submission.listen, (a) => submissionService.listen(a))),
      ...(await listenOrExplain('submission', config.submission.tls_listen, (a) => submissionService.listen(a, true))),
    ];
    for (const a of submission) log.info({ service: 'submission', address: a.address, port: a.port }, 'listening');
    const imapServer = new ImapServer({
      config,
      directory: ctx.directory,
      store: ctx.store,
      tls,
      log: log.child({ service: 'imap' }),
      authenticator,
      access,
      offences: bans,
      ...(connectionRate ? { connectionRate } : {}),
    });
    services.push(imapServer);
    const imap = await listenOrExplain('imap', [...config.imap.listen, ...config.imap.tls_listen], () =>
      imapServer.listen(config.imap.listen, config.imap.tls_listen),
    );
    for (const a of imap) log.info({ service: 'imap', address: a.address, port: a.port }, 'listening');
    const manageSieveServer = new ManageSieveServer({
      config,
      scripts: ctx.sieve,
      tls,
      log: log.child({ service: 'managesieve' }),
      authenticator,
      access,
      offences: bans,
      connectionRate,
    });
    services.push(manageSieveServer);
    const managesieve = await listenOrExplain('managesieve', config.managesieve.listen, () =>
      manageSieveServer.listen(config.managesieve.listen),
    );
    for (const a of managesieve) log.info({ service: 'managesieve', address: a.address, port: a.port }, 'listening');
    // Delivery's vacation and duplicate entries whose period ended (sieve/sqlite-store.ts).
    tasks.periodic('sieve-sweep', LIMITS.sieve.stateSweepMs, () => ctx.sieve.sweep(new Date()).then(() => {}));
    const metrics = new MetricsServer(
      log.child({ service: 'metrics' }),
      async () => {
        const c = await ctx.queue.counts();
        queueSize.set(c.messages);
        queueRecipients.set(c.recipients);
        const s = await ctx.queue.countsByState();
        queueRecipientsByState.set({ state: 'waiting' }, s.waiting);
        queueRecipientsByState.set({ state: 'deferred' }, s.deferred);
        queueRecipientsByState.set({ state: 'held' }, s.held);
      },
      pool ? () => pool.metrics() : undefined,
    );
    services.push(metrics);
    const metricsAt = await listenOrExplain('metrics', config.metrics.listen, (a) => metrics.listen(a));
    for (const a of metricsAt) log.info({ service: 'metrics', address: a.address, port: a.port }, 'listening');
    const clients: ClientSettings = {
      hostname: config.hostname,
      imap: endpoints(imap.slice(config.imap.listen.length), imap.slice(0, config.imap.listen.length)),
      submission: endpoints(
        submission.slice(config.submission.listen.length),
        submission.slice(0, config.submission.listen.length),
      ),
    };
    // Every listener is bound once start-up gets here (a failed bind stops it); ready from the
    // end of start-up until stop() begins, so a load balancer drains us during the grace.
    let serving = false;
    const readiness = new Readiness(
      readinessChecks(ctx, () => serving),
      log.child({ service: 'http' }),
    );
    const {
      web,
      bound: http,
      acme,
      jmap,
    } = await startWeb(config, log, ctx, tls, {
      dispatcher,
      rateLimits,
      clients,
      readiness,
      metrics,
      authenticator,
      access,
      acmeStore,
      // The admin API's `arcline check` probes the listeners where they are bound (port 0 in tests).
      // Loaded on first use: its modules (SPF evaluation, certificate parsing) cost every start
      // about half a second otherwise.
      check: async (domain) =>
        (await import('./check/report.ts')).runChecks(
          {
            config: withBoundListeners(config, { smtp, submission, imap, http }),
            resolver: createPromiseResolver(config.dns.servers, LIMITS.check.dnsTimeoutMs),
            dkim: ctx.dkim,
          },
          [domain],
        ),
    });
    services.push(web);
    if (jmap) services.push({ close: async () => jmap.close() });
    if (acme) services.push({ close: async () => acme.stop() });
    // In a cluster the renewal is the leader task `acme`, and every node serves the certificate
    // the leader saved (reloaded on its notification).
    if (acme && acmeStore && ctx.postgres) {
      tasks.task(acmeLeaderTask(acme));
      const follower = await followAcmeCertificate({ tls, store: acmeStore, notifier: ctx.notifier, log });
      services.push({ close: async () => follower.close() });
    }
    // Open client connections, for the node's heartbeat (arcline cluster status).
    connections = () =>
      submissionService.connections +
      imapServer.connections +
      manageSieveServer.connections +
      (inbound?.connections ?? 0);
    runner.start();
    await tasks.start();
    if (!ctx.postgres) acme?.start();
    serving = true;
    let stopping: Promise<void> | null = null;
    return {
      smtp,
      imap,
      submission,
      managesieve,
      queue: runner,
      metrics: metricsAt,
      tls,
      http,
      acme,
      jmap,
      tlsReports,
      dmarcReports,
      stop: () => {
        serving = false;
        stopping ??= stopAll();
        return stopping;
      },
    };
  } catch (e) {
    await stopAll().catch(() => {});
    throw e;
  }
}

/** `arcline serve`: runs until SIGTERM/SIGINT; resolves with the process exit code. */
export async function runServer(loaded: LoadedConfig, opts: { allowRoot?: boolean } = {}): Promise<number> {
  const { config } = loaded;
  const log = createLogger({
    level: config.log.level,
    format: config.log.format,
    ...(config.log.syslog
      ? {
          syslog: {
            url: config.log.syslog,
            hostname: config.hostname,
            maxLines: config.log.ship_buffer,
            ca: config.log.syslog_ca,
          },
        }
      : {}),
    ...(config.log.otlp
      ? { otlp: { url: config.log.otlp, hostname: config.hostname, maxLines: config.log.ship_buffer } }
      : {}),
  });
  log.info({ config: loaded.file ?? '(embedded defaults)', hostname: config.hostname }, 'starting arcline');
  if (!config.hostname.includes('.')) {
    // RFC 5321 §4.1.1.1: EHLO carries the fully qualified name; receivers refuse bare names, and
    // the MX record must point at one (`arcline dns-records` warns as well).
    log.warn({ hostname: config.hostname }, 'hostname is not fully qualified: set hostname in the config file');
  }
  let server: RunningServer;
  try {
    server = await startServer(config, log, { plan: planServe(config, opts.allowRoot === true) });
  } catch (e) {
    const message = e instanceof StartupError || isArclineError(e) ? e.message : `start-up failed: ${errorMessage(e)}`;
    log.fatal(message);
    log.flush();
    process.stderr.write(`arcline: ${message}\n`);
    return 1;
  }
  log.info('ready');
  process.on('unhandledRejection', (err) => log.error({ err: errorMessage(err) }, 'unhandled rejection'));
  process.on('SIGHUP', () => {
    server.acme?.trigger();
    server.tls.reload(log).then(
      () => log.info('TLS certificate reloaded'),
      (err: unknown) => log.error({ err: errorMessage(err) }, 'TLS reload failed; keeping the old certificate'),
    );
  });
  return new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals) => {
      log.info({ signal }, 'shutting down');
      server.stop().then(
        () => {
          log.info('stopped');
          log.flush();
          void closeLogShipping(log).then(() => resolve(0));
        },
        (err: unknown) => {
          log.error({ err: errorMessage(err) }, 'error during shutdown');
          log.flush();
          void closeLogShipping(log).then(() => resolve(1));
        },
      );
    };
    process.once('SIGTERM', onSignal);
    process.once('SIGINT', onSignal);
  });
}
