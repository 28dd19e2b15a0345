// An inbound SMTP thread (docs/architecture.md §8): the whole SMTP conversation and every check
// of port 25 (connection limits, DNSBL, SPF, DKIM, DMARC, header checks) run here, on this
// thread's own listening socket (SO_REUSEPORT: the kernel spreads new connections over the
// threads). What must stay one for the whole server is asked of the main thread: the store and
// the queue (delivery and queueing, the 250 waits for them), an account's usage (quotas), and
// the log. Connection limits are shared through core/shared-slots.ts.
//
// Start-up in two steps, so that a server started as root binds port 25 in every thread before
// it drops privileges: `bound` once the sockets are bound, then (after `start`) the databases
// are opened and connections served.

import { join } from 'node:path';
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { pino } from 'pino';
import { errorMessage } from '../../core/errors.ts';
import type { DomainName } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import { closePrebound, prebind } from '../../core/listen.ts';
import { registry } from '../../core/metrics.ts';
import { SharedSlots } from '../../core/shared-slots.ts';
import { AccessView } from '../../defense/access.ts';
import { createGreylister, verifiedReverse } from '../../defense/greylist.ts';
import { SqliteDefenseStore } from '../../defense/store.ts';
import { openSqliteDirectory } from '../../directory/sqlite.ts';
import { cachingReverse, createPromiseResolver } from '../../dns/resolver.ts';
import { spamDeps } from '../../filter/rspamd.ts';
import { Networks } from '../../hygiene/networks.ts';
import { Hygiene } from '../../hygiene/pipeline.ts';
import { DmarcRecorder } from '../../reports/dmarc-recorder.ts';
import { openSrsForwarding } from '../../srs/forwarding.ts';
import { createMaildirStore } from '../../store/maildir/index.ts';
import type { TlsPair } from '../../tls/certs.ts';
import { SmtpService } from '../service.ts';
import type { FromThread, ThreadInit, ToThread } from './protocol.ts';
import { Rpc, ThreadStore, threadDispatcher } from './remote.ts';

const port = parentPort;
if (!port) throw new Error('smtp/threads/worker.ts runs only as a worker thread');
const init = workerData as ThreadInit;
const { config } = init;
const post = (m: FromThread, transfer?: ArrayBuffer[]) => port.postMessage(m, transfer ?? []);

// Log lines go to the main thread in batches: one writer for the log, whole lines whatever
// else writes there, and one message per LOG_BATCH_MS or LOG_BATCH_BYTES rather than per line
// (a message costs both threads about as much as formatting several lines).
const LOG_BATCH_MS = 20;
const LOG_BATCH_BYTES = 32 * 1024;
let pending: string[] = [];
let pendingBytes = 0;
let logTimer: NodeJS.Timeout | null = null;
const flushLogs = () => {
  if (logTimer) clearTimeout(logTimer);
  logTimer = null;
  if (pending.length === 0) return;
  post({ t: 'log', lines: pending.join('') });
  pending = [];
  pendingBytes = 0;
};
const log = pino(
  { level: config.log.level, base: { pid: process.pid, thread: threadId } },
  {
    write(line: string) {
      pending.push(line);
      pendingBytes += line.length;
      if (pendingBytes >= LOG_BATCH_BYTES) flushLogs();
      else logTimer ??= setTimeout(flushLogs, LOG_BATCH_MS);
    },
  },
).child({ service: 'smtp' });

class ThreadTls {
  #pair: TlsPair;
  readonly #listeners = new Set<(p: TlsPair) => void>();
  constructor(pair: TlsPair) {
    this.#pair = pair;
  }
  get current(): TlsPair {
    return this.#pair;
  }
  onChange(listener: (p: TlsPair) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }
  update(pair: TlsPair): void {
    this.#pair = pair;
    for (const l of this.#listeners) l(pair);
  }
}

const rpc = new Rpc(post);
let service: SmtpService | null = null;
let tls: ThreadTls | null = null;
let closeDirectory = () => {};
let closeDefense = () => {};
let closeStore = async () => {};
let greylist: ReturnType<typeof createGreylister> | null = null;
let dmarc: DmarcRecorder | null = null;

async function bind(): Promise<void> {
  const bound = [];
  for (const a of init.addresses) bound.push(await prebind(a, { reusePort: true }));
  post({ t: 'bound', addresses: bound });
}

async function start(pair: TlsPair): Promise<void> {
  tls = new ThreadTls(pair);
  const directory = openSqliteDirectory({
    path: join(config.storage.state, 'arcline.db'),
    bcryptCost: config.auth.bcrypt_cost,
    passwordScheme: config.auth.password_scheme,
    log: log.child({ component: 'directory' }),
  });
  closeDirectory = () => directory.close();
  const spoolDir = join(config.storage.state, 'spool');
  // Delivery only: this store never opens the mail index (that is the main thread's).
  const maildir = createMaildirStore({
    root: config.storage.maildir,
    spoolDir,
    indexPath: join(config.storage.state, 'mailindex.db'),
    log: log.child({ component: 'store' }),
  });
  const store = new ThreadStore(rpc, maildir, post);
  // DMARC report rows: counted here, posted to the main thread's recorder in batches.
  dmarc = config.dmarc_reports.enabled
    ? new DmarcRecorder({
        write: (rows) => post({ t: 'dmarc', rows }),
        flushMs: LIMITS.dmarcReports.threadFlushMs,
        maxPendingRows: LIMITS.dmarcReports.maxPendingRows,
        maxDkimPerRow: LIMITS.dmarcReports.maxDkimPerRow,
        log,
      })
    : null;
  const hygiene = new Hygiene({
    config,
    resolver: createPromiseResolver(config.dns.servers),
    directory,
    log,
    ...(dmarc ? { dmarcSink: dmarc } : {}),
  });
  closeStore = () => store.close();
  // The IP lists and bans: this thread's own view of defense.db (the main thread writes bans,
  // the CLI and the API the lists; data_version tells this connection of both).
  const defense = new SqliteDefenseStore(config.storage.state);
  const access = (
    await AccessView.open(defense, {
      pollMs: LIMITS.defense.pollMs,
      onError: (e) => log.warn({ err: String(e) }, 'reading the IP lists and bans failed'),
    })
  ).start();
  closeDefense = () => {
    access.stop();
    defense.close();
  };
  // Opened now (the main thread made the database before starting us): a problem stops start-up.
  // With greylisting off it exists when rspamd may force it (its "greylist" action).
  greylist = config.greylist.enabled || config.spam.rspamd_url ? inboundGreylister(hygiene, access).open() : null;
  // SRS bounces are reversed here at RCPT (the main thread made the secret file already).
  const srs = await openSrsForwarding(
    config.srs,
    config.storage.state,
    (d) => directory.isLocalDomain(d as DomainName),
    log.child({ component: 'srs' }),
  );
  service = new SmtpService({
    role: 'inbound',
    config,
    directory,
    store,
    dispatcher: threadDispatcher(rpc, store, spoolDir, config.sieve.enabled),
    tls,
    log,
    resolver: config.smtp.reverse_lookup
      ? cachingReverse(createPromiseResolver(config.dns.servers), { maxTtlMs: config.dns.cache_max_ttl })
      : null,
    hygiene,
    access,
    offences: { offence: (ip, kind) => post({ t: 'offence', ip, kind }) },
    ...spamDeps(config),
    ...(srs ? { srs } : {}),
    // Each thread its own connection to {state}/greylist.db (WAL; one short transaction a check).
    ...(greylist ? { greylist } : {}),
    // The connection rate is counted once, in the main thread.
    ...(config.rate_limits.enabled
      ? { connectionRate: (ip: string) => rpc.call<string | null>({ op: 'rate', ip }) }
      : {}),
    ...sharedClients(access),
  });
  await service.listen(init.addresses, false, { reusePort: true });
  post({ t: 'listening' });
}

function inboundGreylister(hygiene: Hygiene, access: AccessView) {
  return createGreylister(config, {
    log,
    trusted: (ip) => hygiene.isTrusted(ip),
    allowed: (ip) => access.isAllowed(ip),
    verifiedName: verifiedReverse(createPromiseResolver(config.dns.servers)),
  });
}

/** Connection counts and slowed clients, the same table in every thread. */
function sharedClients(access: AccessView) {
  const trusted = new Networks(config.hygiene.trusted_networks);
  const shared = new SharedSlots(init.slots, (ip) => trusted.has(ip) || access.isAllowed(ip));
  return { slots: shared, errorMemory: shared };
}

async function close(): Promise<void> {
  await service?.close();
  // Sockets bound but never served (start-up failed in another thread): else they keep this
  // thread alive until the host gives up on it.
  await closePrebound();
  await closeStore();
  await dmarc?.close();
  await greylist?.close();
  closeDirectory();
  closeDefense();
  flushLogs();
  post({ t: 'closed' });
  port?.close();
}

port.on('message', (m: ToThread) => {
  switch (m.t) {
    case 'start':
      start(m.tls).catch((e: unknown) => post({ t: 'failed', error: errorMessage(e) }));
      return;
    case 'tls':
      tls?.update(m.tls);
      return;
    case 'close':
      close().catch((e: unknown) => post({ t: 'failed', error: errorMessage(e) }));
      return;
    case 'metrics':
      registry.getMetricsAsJSON().then((own) => post({ t: 'metrics', id: m.id, metrics: own as never }));
      return;
    case 'reply':
      rpc.settle(m);
      return;
  }
});

bind().catch((e: unknown) => {
  const err = e as NodeJS.ErrnoException & { address?: string; port?: number };
  post({
    t: 'failed',
    error: errorMessage(e),
    ...(err.code !== undefined ? { code: err.code } : {}),
    ...(err.address !== undefined ? { address: err.address } : {}),
    ...(err.port !== undefined ? { port: err.port } : {}),
  });
});
