// The queue runner: takes due work from the queue (QueueBackend) and delivers it, within the limits on
// deliveries in flight (in total and per destination), retrying temporary failures on the
// configured schedule, bouncing permanent ones, warning the sender once of a long delay.
//
// Order of effects for one attempt (nothing is lost in a crash):
//   attempt -> bounce / delay notice made durable (delivered or queued) -> outcome recorded.
// A crash between the last two repeats the notice; the reverse order could lose it.
// RFC 3461 §6.2 / RFC 5321 §4.5.5: nothing is ever sent back to a null sender.
//
// Scheduling is event-driven: a timer for the earliest due recipient, a wake-up on every
// enqueue and on every finished attempt, and a poll every LIMITS.queue.pollIntervalMs for
// changes made by another process (`arcline queue retry`) or node.
//
// Leases (docs/cluster.md): a claimed job is ours until its outcome is recorded; while it is
// being delivered the lease is renewed every third of LIMITS.queue.leaseMs, and checked once
// more before a notice goes to the sender. A runner that lost its lease (another node took the
// job over after a stall) sends no notice and its outcome is refused: the other's result
// stands. A runner that dies leaves its jobs to the others once their leases run out.

import type { Readable } from 'node:stream';
import type { Config } from '../config/schema.ts';
import { parseHostPort } from '../config/schema.ts';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { queueAttemptSeconds, queueAttempts, queueNotices } from '../core/metrics.ts';
import { notifies } from '../smtp/dsn-params.ts';
import { rfc5322Date } from '../smtp/trace.ts';
import { buildDsn, type DsnRecipient } from './dsn.ts';
import { type AppliedPolicy, checkAttempt, type MtaStsPolicies, planDelivery, type StsProblem } from './mta-sts.ts';
import { type Route, type RouteResolver, resolveHostRoute, resolveRoute, retryDelay } from './route.ts';
import {
  type AttemptResult,
  attemptDelivery,
  ConnectionCache,
  type TlsSession,
  type TransportOptions,
} from './transport.ts';
import {
  type Job,
  LeaseLost,
  type QueueBackend,
  type QueuedMessage,
  type QueuedRecipient,
  type RecipientOutcome,
  type ReleaseResult,
  TLS_REPORT_TAG,
} from './types.ts';

/** Delivers a DSN to `to` (locally or through the queue with a null sender). Resolves once durable. */
export type NoticeSink = (to: string, dsn: Buffer, logId: string) => Promise<void>;

export interface RunnerDeps {
  readonly config: Config;
  readonly store: QueueBackend;
  readonly resolver: RouteResolver;
  readonly log: Logger;
  readonly notices: NoticeSink;
  /** The relay password, read once at start ([delivery] relay_password_file). */
  readonly relayPassword: string | null;
  /** Deliveries per destination per minute ([rate_limits], defense/rate-limits.ts): 0 when one
   *  may go now, else the milliseconds until it may. */
  readonly rateLimits?: { outbound(destination: string): Promise<number> };
  /** Routes a scheduled message whose time came (Dispatcher.releaseScheduled: local copies
   *  delivered, remote recipients queued); resolves once that is durable. Without it scheduled
   *  messages wait. */
  readonly release?: (message: QueuedMessage) => Promise<ReleaseResult>;
  /** MTA-STS of destination domains ([mta_sts_outbound], queue/mta-sts.ts); absent: not applied. */
  readonly mtaSts?: MtaStsPolicies;
  /** TLS reporting (RFC 8460, reports/tlsrpt-record.ts): told the TLS outcome of the connections
   *  of every attempt to a domain's MX hosts (never of the relay's), with the policy applied. */
  readonly tlsSessions?: (
    domain: string,
    applied: AppliedPolicy | null,
    problem: StsProblem | null,
    sessions: readonly TlsSession[],
  ) => void;
}

const RELAY_KEY = '(relay)';

export class QueueRunner {
  readonly #d: RunnerDeps;
  readonly #relay: { host: string; port: number } | null;
  #active = 0;
  readonly #perDest = new Map<string, number>();
  /** Destinations over their rate limit -> until when (ms): not claimed before. */
  readonly #rateHeld = new Map<string, number>();
  readonly #jobs = new Set<Promise<void>>();
  #timer: NodeJS.Timeout | null = null;
  #wakePending = false;
  /** A scan (claim) is running: wake-ups meanwhile ask for another once it ends. */
  #scanning: Promise<void> | null = null;
  #rescan = false;
  #stopping = false;
  readonly #connections = new ConnectionCache({
    idleMs: LIMITS.queue.connectionIdleMs,
    maxUses: LIMITS.queue.connectionMaxUses,
    maxIdle: LIMITS.queue.maxIdleConnections,
  });

  constructor(deps: RunnerDeps) {
    this.#d = deps;
    this.#relay = deps.config.delivery.relay ? parseHostPort(deps.config.delivery.relay) : null;
  }

  start(): void {
    this.#d.store.onWork = () => this.wake();
    this.wake();
  }

  /** Looks for work soon (coalesced). */
  wake(): void {
    if (this.#wakePending || this.#stopping) return;
    this.#wakePending = true;
    setImmediate(() => {
      this.#wakePending = false;
      this.#tick();
    });
  }

  /** Stops taking work; waits for attempts in flight up to `graceMs`. */
  async stop(graceMs: number): Promise<void> {
    this.#stopping = true;
    this.#d.store.onWork = null;
    if (this.#timer) clearTimeout(this.#timer);
    await this.#scanning; // it launches nothing now, and gives back what it claimed
    const all = Promise.all([...this.#jobs]);
    let t: NodeJS.Timeout | undefined;
    await Promise.race([all, new Promise<void>((r) => (t = setTimeout(r, graceMs)))]);
    clearTimeout(t);
    this.#connections.closeAll();
  }

  get active(): number {
    return this.#active;
  }

  #tick(): void {
    if (this.#stopping) return;
    if (this.#scanning) {
      this.#rescan = true;
      return;
    }
    this.#scanning = this.#scan().finally(() => {
      this.#scanning = null;
      if (this.#rescan) {
        this.#rescan = false;
        this.wake();
      }
    });
  }

  async #scan(): Promise<void> {
    const { config, store } = this.#d;
    const maxTotal = config.delivery.max_connections;
    const maxPerDest = config.delivery.max_connections_per_domain;
    const now = Date.now();
    let started = 0;
    let blocked = false;
    try {
      if (this.#d.release) {
        for (const job of await store.claimScheduled(now, LIMITS.queue.maxReleasesPerTick)) {
          if (this.#stopping) await store.unclaim(job);
          else this.#track(this.#release(job));
        }
      }
      const free = maxTotal - this.#active;
      if (free > 0) {
        for (const [d, until] of this.#rateHeld) if (until <= now) this.#rateHeld.delete(d);
        // Jobs admitted in this claim count against their destination's limit at once.
        const taken = new Map<string, number>();
        const admit = (domain: string): boolean => {
          const dest = this.#relay ? RELAY_KEY : domain;
          const n = (this.#perDest.get(dest) ?? 0) + (taken.get(dest) ?? 0);
          if (n >= maxPerDest || (this.#rateHeld.get(dest) ?? 0) > now) {
            blocked = true;
            return false;
          }
          taken.set(dest, (taken.get(dest) ?? 0) + 1);
          return true;
        };
        const jobs = await store.claim(now, free, admit);
        for (const job of jobs) {
          if (this.#stopping) {
            await store.unclaim(job);
            continue;
          }
          started++;
          this.#launch(job, this.#relay ? RELAY_KEY : job.domain);
        }
        if (jobs.length >= free) blocked = true;
      } else {
        blocked = true;
      }
    } catch (e) {
      this.#d.log.error({ err: errorMessage(e) }, 'queue scan failed');
    }
    if (!this.#stopping) await this.#schedule(now, started > 0 && !blocked);
  }

  async #schedule(now: number, again: boolean): Promise<void> {
    let delay: number = LIMITS.queue.pollIntervalMs;
    if (again) delay = 0;
    else {
      const next = await this.#safeNextDue();
      if (next !== null && next > now) delay = Math.min(delay, next - now);
    }
    if (this.#stopping) return;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => this.#tick(), delay);
    this.#timer.unref();
  }

  async #safeNextDue(): Promise<number | null> {
    try {
      return await this.#d.store.nextDue();
    } catch {
      return null;
    }
  }
  #launch(job: Job, dest: string): void {
    this.#active++;
    this.#perDest.set(dest, (this.#perDest.get(dest) ?? 0) + 1);
    const p = this.#run(job, dest).finally(() => {
      this.#active--;
      const n = (this.#perDest.get(dest) ?? 1) - 1;
      if (n <= 0) this.#perDest.delete(dest);
      else this.#perDest.set(dest, n);
      this.#jobs.delete(p);
      this.wake();
    });
    this.#jobs.add(p);
  }

  #track(p: Promise<void>): void {
    const q = p.finally(() => {
      this.#jobs.delete(q);
      this.wake();
    });
    this.#jobs.add(q);
  }

  /** A scheduled message's time came (types.ts OutboundMessage.releaseAt): routed now through
   *  the dispatcher, its lease renewed meanwhile (no other node releases it, no cancel wins);
   *  a failure tries again after the first retry delay. */
  async #release(job: Job): Promise<void> {
    const m = job.message;
    const log = this.#d.log.child({ msg_id: m.logId, queue_id: m.id });
    const renew = this.#renewing(job, log);
    let result: ReleaseResult;
    try {
      result = await (this.#d.release as NonNullable<RunnerDeps['release']>)(m);
    } catch (e) {
      clearInterval(renew);
      const at = Date.now() + retryDelay(1, this.#d.config.delivery.retry_schedule);
      log.error({ err: errorMessage(e), retry: new Date(at).toISOString() }, 'could not release a scheduled message');
      await this.#d.store
        .rescheduleScheduled(job, at)
        .catch((err: unknown) => log.warn({ err: errorMessage(err) }, 'could not reschedule'));
      return;
    }
    clearInterval(renew);
    try {
      await this.#d.store.finishScheduled(job, result);
      log.info({ queued: result.queueIds }, 'scheduled message released');
    } catch (e) {
      // Routed already: its copies and entries stand. The scheduled entry stays leased (or was
      // taken over after its lease ran out) and is not routed again by this process.
      log.error({ err: errorMessage(e) }, 'released, but the scheduled entry could not be removed');
    }
  }

  async #run(job: Job, dest: string): Promise<void> {
    const { message, domain } = job;
    const log = this.#d.log.child({ msg_id: message.logId, queue_id: message.id, domain });
    // Over the destination's rate ([rate_limits] outbound_per_domain_per_minute): the message
    // stays queued as it is (no attempt counted, nothing recorded) until the window ends.
    const wait = (await this.#d.rateLimits?.outbound(dest)) ?? 0;
    if (wait > 0) {
      this.#rateHeld.set(dest, Date.now() + wait);
      // Not given back (database trouble): the job waits for its lease to run out instead.
      await this.#d.store.unclaim(job).catch((e: unknown) => log.warn({ err: errorMessage(e) }, 'could not unclaim'));
      log.info({ wait_ms: wait }, 'delivery held: destination rate limit');
      setTimeout(() => this.wake(), wait).unref();
      return;
    }
    const started = performance.now();
    const renew = this.#renewing(job, log);
    let attempt: AttemptResult;
    try {
      attempt = await this.#attempt(job, log);
    } catch (e) {
      log.error({ err: errorMessage(e) }, 'delivery attempt failed unexpectedly');
      attempt = failAll(job, 'local error during delivery', '4.3.0', 'deferred');
    } finally {
      clearInterval(renew);
    }
    const ms = Math.round(performance.now() - started);
    queueAttemptSeconds.observe(ms / 1000);
    for (const r of attempt.results) queueAttempts.inc({ result: r.verdict, tls: attempt.tls ? 'yes' : 'no' });
    try {
      await this.#finish(job, attempt, log, ms);
    } catch (e) {
      if (e instanceof LeaseLost) {
        log.warn({}, 'outcome not recorded: another runner took the job over (its result stands)');
        return;
      }
      // The outcome could not be written (database trouble). The lease stays, so this process
      // does not try the message again and again (a remote 250 may not be recorded); the
      // recipients are due again after a restart.
      log.error({ err: errorMessage(e) }, 'could not record the delivery outcome; the message waits for a restart');
    }
  }

  /** Renews the job's lease every third of its length while the attempt runs. */
  #renewing(job: Job, log: Logger): NodeJS.Timeout {
    const every = Math.max(10, Math.floor(this.#d.store.leaseMs / 3));
    const t = setInterval(() => {
      this.#d.store.extend(job).then(
        (ours) => {
          if (!ours) log.warn({}, 'lease lost while delivering');
        },
        (e: unknown) => log.warn({ err: errorMessage(e) }, 'could not renew the lease'),
      );
    }, every);
    t.unref();
    return t;
  }

  async #attempt(job: Job, log: Logger): Promise<AttemptResult> {
    const { config, resolver } = this.#d;
    const d = config.delivery;
    const relay = this.#relay;
    if (!(await this.#d.store.hasFile(job.message.id))) {
      // Only damaged storage does this; the sender must hear of it rather than wait 5 days.
      return failAll(job, 'the queued message file is missing (local storage damaged)', '5.3.0');
    }
    // RFC 8461 §5: the policy of the recipient domain, looked up beside the MX records; mail
    // through a relay is the relay's to protect.
    const stsLog = (fields: Record<string, unknown>, msg: string) => log.warn(fields, msg);
    // RFC 8460 §5.3: a TLS report of ours goes despite TLS failures, and is not reported.
    const tlsReport = job.message.tag === TLS_REPORT_TAG;
    const policy = relay || tlsReport ? null : (this.#d.mtaSts?.policyFor(job.domain, stsLog) ?? null);
    const route: Route = relay
      ? await resolveHostRoute(resolver, relay.host, { port: relay.port, ipv6: d.ipv6 })
      : await resolveRoute(resolver, job.domain, {
          port: d.port,
          ipv6: d.ipv6,
          ownHostname: config.hostname,
          maxAddresses: LIMITS.queue.maxAddressesPerAttempt,
        });
    if (route.kind !== 'hosts') {
      // The policy lookup goes on alone (it never rejects): its result is cached for the next try.
      return failAll(job, route.reason, route.status, route.kind === 'permanent' ? 'failed' : 'deferred');
    }
    const applied = await policy;
    const base: TransportOptions = {
      hostname: config.hostname,
      connectTimeout: d.connect_timeout,
      timeout: d.timeout,
      tls: relay ? d.relay_tls : d.mx_tls,
      verifyTls: relay ? d.relay_verify_tls : false,
      auth: relay && d.relay_username ? { user: d.relay_username, pass: this.#d.relayPassword ?? '' } : null,
    };
    const plan = planDelivery(applied, route.hosts, base, this.#d.mtaSts?.ca ?? []);
    if (plan.kind === 'defer') {
      log.warn({ policy_id: applied?.policy.id, reply: plan.reply }, 'MTA-STS: delivery deferred by the policy');
      return failAll(job, plan.reply, plan.status, 'deferred');
    }
    const { message } = job;
    // RFC 5321 §4.5.3.1.8: servers need take only 100 recipients per transaction; more go in
    // further transactions of the same attempt (over the same connection, from the cache).
    // RFC 3461 §5.2: NOTIFY and ORCPT are per recipient, while nodemailer sends one set per
    // transaction: recipients with different ones go in transactions of their own.
    const per = LIMITS.queue.maxRecipientsPerTransaction;
    let merged: AttemptResult | null = null;
    for (const group of dsnGroups(job.recipients)) {
      const all = group.recipients;
      for (let i = 0; i < all.length; i += per) {
        const tried = await attemptDelivery(
          plan.hosts,
          {
            sender: message.sender,
            recipients: all.slice(i, i + per),
            size: message.size,
            smtputf8: message.smtputf8,
            envid: message.envid,
            ret: message.ret,
            notify: group.notify,
            orcpt: group.orcpt,
            open: () => this.#d.store.open(message.id),
          },
          plan.transport,
          this.#connections,
        );
        if (!relay && !tlsReport && tried.sessions.length > 0) {
          const problem = applied ? null : (this.#d.mtaSts?.problem(job.domain) ?? null);
          this.#d.tlsSessions?.(job.domain, applied, problem, tried.sessions);
        }
        const part = checkAttempt(applied, tried, stsLog);
        // Which recipients went to a host without DSN (a "relayed" notice, RFC 3461 §6.2.1.1)
        const results = part.results.map((r) => ({ ...r, viaDsn: tried.dsn }));
        merged = merged
          ? { ...part, results: [...merged.results, ...results], tried: [...merged.tried, ...part.tried] }
          : { ...part, results };
      }
    }
    return merged ?? failAll(job, 'no recipients', '4.3.0', 'deferred');
  }

  async #finish(job: Job, attempt: AttemptResult, log: Logger, ms: number): Promise<void> {
    const { config, store } = this.#d;
    const d = config.delivery;
    const { message } = job;
    const now = Date.now();
    const age = now - message.created;
    const outcomes: RecipientOutcome[] = [];
    const failed: DsnRecipient[] = [];
    const delayed: DsnRecipient[] = [];
    const relayed: DsnRecipient[] = [];
    const byAddress = new Map(job.recipients.map((r) => [r.address, r]));
    for (const res of attempt.results) {
      const rcpt = byAddress.get(res.address);
      if (!rcpt) continue;
      const base = { address: res.address, reply: res.reply, host: attempt.hostName };
      const dsnBase = {
        address: res.address,
        originalRecipient: rcpt.orcpt,
        remoteMta: attempt.hostName,
        diagnostic: res.reply,
        lastAttempt: new Date(now),
      };
      let line: Record<string, unknown> = { rcpt: res.address, host: attempt.host, tls: attempt.tls, reply: res.reply };
      if (res.verdict === 'sent') {
        outcomes.push({ ...base, kind: 'sent' });
        log.info({ ...line, ms }, 'delivered');
        // RFC 3461 §6.2.1.1: a host with DSN reports success itself (NOTIFY was passed on);
        // one without gets the message, and the sender our "relayed" notice.
        if (notifies(rcpt.notify, 'SUCCESS') && res.viaDsn === false) {
          relayed.push({ ...dsnBase, action: 'relayed', status: res.status });
        }
        continue;
      }
      if (res.verdict === 'failed' || age >= d.max_lifetime) {
        const expired = res.verdict !== 'failed';
        outcomes.push({ ...base, kind: 'failed', reply: expired ? `expired: ${res.reply}` : res.reply });
        // RFC 3461 §4.1: no failure notice for NOTIFY=NEVER or a NOTIFY without FAILURE.
        if (notifies(rcpt.notify, 'FAILURE')) failed.push({ ...dsnBase, action: 'failed', status: res.status });
        else log.info({ rcpt: res.address, notify: rcpt.notify }, 'no failure notice: NOTIFY');
        log.warn({ ...line, status: res.status, expired }, expired ? 'bounced: queue lifetime exceeded' : 'bounced');
        continue;
      }
      const nextAttempt = now + retryDelay(rcpt.attempts + 1, d.retry_schedule);
      const warn =
        d.delay_warning > 0 &&
        !rcpt.delayNotified &&
        age >= d.delay_warning &&
        message.sender !== '' &&
        notifies(rcpt.notify, 'DELAY'); // RFC 3461 §4.1
      outcomes.push({ ...base, kind: 'deferred', nextAttempt, delayNotified: warn });
      if (warn) {
        delayed.push({
          ...dsnBase,
          action: 'delayed',
          status: res.status,
          willRetryUntil: new Date(message.created + d.max_lifetime),
        });
      }
      line = {
        ...line,
        status: res.status,
        attempts: rcpt.attempts + 1,
        next_retry: new Date(nextAttempt).toISOString(),
        ...(attempt.tried.length > 0 ? { tried: attempt.tried } : {}),
      };
      log.info(line, 'deferred');
    }
    const retryAt = now + retryDelay(1, d.retry_schedule);
    // A notice only while the job is still ours: after a takeover the other runner tells.
    if ((failed.length > 0 || delayed.length > 0 || relayed.length > 0) && !(await store.extend(job))) {
      throw new LeaseLost(message.id, job.domain);
    }
    if (failed.length > 0 && !(await this.#tryNotice(message, failed, log))) {
      // The bounce could not be made durable: keep those recipients queued (their failure is
      // found again at the next attempt) rather than lose the bounce. Sent ones stay sent.
      for (const [i, o] of outcomes.entries()) {
        if (o.kind === 'failed') outcomes[i] = { ...o, kind: 'deferred', nextAttempt: retryAt };
      }
    }
    if (delayed.length > 0 && !(await this.#tryNotice(message, delayed, log))) {
      for (const [i, o] of outcomes.entries()) {
        if (o.kind === 'deferred' && o.delayNotified) outcomes[i] = { ...o, delayNotified: false };
      }
    }
    // A success notice that could not be sent is not worth sending the message again for: the
    // message went; the failure is logged.
    if (relayed.length > 0) await this.#tryNotice(message, relayed, log);
    await store.record(job, outcomes, now);
  }

  async #tryNotice(message: QueuedMessage, recipients: DsnRecipient[], log: Logger): Promise<boolean> {
    try {
      await this.#notice(message, recipients, log);
      return true;
    } catch (e) {
      log.error({ err: errorMessage(e), kind: recipients[0]?.action }, 'could not deliver the notice to the sender');
      return false;
    }
  }

  /** Sends a DSN to the envelope sender, never to a null sender. */
  async #notice(message: QueuedMessage, recipients: DsnRecipient[], log: Logger): Promise<void> {
    if (message.sender === '') {
      log.info({ rcpts: recipients.map((r) => r.address) }, 'no notice: null sender');
      return;
    }
    const host = this.#d.config.hostname;
    // RFC 3461 §4.3: RET=FULL returns the whole message in a failure notice (up to a bound:
    // larger ones are returned as headers); otherwise, and in other notices, the headers only.
    const full =
      message.ret === 'FULL' &&
      recipients[0]?.action === 'failed' &&
      message.size <= LIMITS.smtp.maxReturnedMessageBytes;
    const headers = full
      ? await readAll(this.#d.store.open(message.id)).catch(() => Buffer.alloc(0))
      : await readHeaderBlock(this.#d.store.open(message.id), 64 * 1024).catch(() => Buffer.alloc(0));
    const now = new Date();
    const dsn = buildDsn({
      reportingMta: host,
      from: `MAILER-DAEMON@${host}`,
      to: message.sender,
      messageId: `dsn-${message.id}-${now.getTime()}@${host}`,
      date: now,
      arrivalDate: new Date(message.created),
      queueId: message.id,
      envelopeId: message.envid,
      recipients,
      originalHeaders: headers,
      fullMessage: full,
    });
    await this.#d.notices(message.sender, dsn, message.logId);
    queueNotices.inc({ kind: recipients[0]?.action ?? 'failed' });
    log.info(
      {
        to: message.sender,
        kind: recipients[0]?.action,
        rcpts: recipients.map((r) => r.address),
        date: rfc5322Date(now),
      },
      'notice sent to sender',
    );
  }
}

function failAll(job: Job, reply: string, status: string, verdict: 'failed' | 'deferred' = 'failed'): AttemptResult {
  return {
    results: job.recipients.map((r) => ({ address: r.address, verdict, reply, status })),
    host: null,
    hostName: null,
    tls: false,
    tlsAuthorized: false,
    tried: [],
    dsn: false,
    sessions: [],
  };
}

/** The recipients of a job by their NOTIFY and ORCPT (RFC 3461 §5.2: sent per recipient). */
function dsnGroups(
  recipients: readonly QueuedRecipient[],
): { notify: string | null; orcpt: string | null; recipients: string[] }[] {
  const groups = new Map<string, { notify: string | null; orcpt: string | null; recipients: string[] }>();
  for (const r of recipients) {
    const key = `${r.notify ?? ''}\0${r.orcpt ?? ''}`;
    const g = groups.get(key) ?? { notify: r.notify, orcpt: r.orcpt, recipients: [] };
    g.recipients.push(r.address);
    groups.set(key, g);
  }
  return [...groups.values()];
}

/** A whole (bounded) queued message. */
async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) chunks.push(chunk);
    return Buffer.concat(chunks);
  } finally {
    stream.destroy();
  }
}

/** The header block of a message (up to the first empty line), at most `max` bytes. */
export async function readHeaderBlock(stream: Readable, max: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      chunks.push(chunk);
      size += chunk.length;
      const all = Buffer.concat(chunks);
      const end = all.indexOf('\r\n\r\n');
      if (end >= 0) return all.subarray(0, end + 2);
      if (size >= max) return all.subarray(0, max);
    }
    return Buffer.concat(chunks);
  } finally {
    stream.destroy();
  }
}
