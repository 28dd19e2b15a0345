// Prometheus metrics: every metric is defined here, once, with the `arcline_` prefix
// (design.md convention 7). Code that counts imports the metric; the HTTP endpoint
// (admin/metrics-http.ts, `[metrics] listen`) serves the registry.

import { isMainThread } from 'node:worker_threads';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();
// The process-wide metrics (CPU, memory, event loop) are the main thread's; the inbound SMTP
// threads (docs/architecture.md §8) only keep the counters of their service.
if (isMainThread) {
  collectDefaultMetrics({ register: registry, prefix: 'arcline_' });
  // Gauges that prom-client names like counters ("_total"), which `promtool check metrics`
  // rejects; their values are the sums of arcline_nodejs_active_{handles,requests,resources}
  // by type, which stay.
  for (const n of ['handles', 'requests', 'resources']) registry.removeSingleMetric(`arcline_nodejs_active_${n}_total`);
}

/** One per recipient and delivery attempt. result: sent | deferred | failed. */
export const queueAttempts = new Counter({
  name: 'arcline_queue_attempts_total',
  help: 'Outbound delivery attempts per recipient, by result and by whether TLS was used',
  labelNames: ['result', 'tls'] as const,
  registers: [registry],
});

export const queueAttemptSeconds = new Histogram({
  name: 'arcline_queue_attempt_duration_seconds',
  help: 'Time of one delivery attempt (DNS, connection, transaction)',
  buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60],
  registers: [registry],
});

/** MTA-STS policy lookups of destination domains (RFC 8461 §3, queue/mta-sts.ts). result:
 *  found (fetched) | cached (id unchanged) | none (no policy) | errored (TXT or HTTPS failed). */
export const mtaStsLookups = new Counter({
  name: 'arcline_mta_sts_lookups_total',
  help: 'MTA-STS policy lookups of destination domains, by result',
  labelNames: ['result'] as const,
  registers: [registry],
});

/** Delivery attempts to a domain with an MTA-STS policy (RFC 8461 §4, §5). mode: testing |
 *  enforce; result: ok | mx_mismatch | starttls_missing | certificate_invalid. In testing mode
 *  a failure is only counted (and logged); in enforce mode it defers the message. */
export const mtaStsChecks = new Counter({
  name: 'arcline_mta_sts_checks_total',
  help: 'Delivery attempts under an MTA-STS policy, by policy mode and result',
  labelNames: ['mode', 'result'] as const,
  registers: [registry],
});
// Every mode and result exists from the start (0), so alerts on a failure rate work before the
// first policy is met.
for (const mode of ['testing', 'enforce'])
  for (const result of ['ok', 'mx_mismatch', 'starttls_missing', 'certificate_invalid'])
    mtaStsChecks.inc({ mode, result }, 0);

/** kind: failed (bounce) | delayed (warning). */
export const queueNotices = new Counter({
  name: 'arcline_queue_notices_total',
  help: 'Delivery status notifications sent to senders',
  labelNames: ['kind'] as const,
  registers: [registry],
});
// Both kinds exist from the start (0), so rate() over them works before the first notice.
for (const kind of ['failed', 'delayed']) queueNotices.inc({ kind }, 0);

export const queueSize = new Gauge({
  name: 'arcline_queue_messages',
  help: 'Messages with at least one recipient still queued',
  registers: [registry],
});

export const queueRecipients = new Gauge({
  name: 'arcline_queue_recipients',
  help: 'Recipients still queued',
  registers: [registry],
});

/** service: smtp | submission. */
export const smtpMessages = new Counter({
  name: 'arcline_smtp_messages_total',
  help: 'Messages accepted (250 after DATA), by service',
  labelNames: ['service'] as const,
  registers: [registry],
});

/** milter: the [[milter]] name; result: accept | continue | reject | tempfail | discard |
 *  quarantine | failure (unreachable, timeout, protocol error: on_failure applies). */
export const milterResults = new Counter({
  name: 'arcline_milter_results_total',
  help: 'Milter sessions by milter and result',
  labelNames: ['milter', 'result'] as const,
  registers: [registry],
});

/** result: ok | ok_cached (verified-credential cache) | failed | refused (throttled pair) | busy. */
export const authAttempts = new Counter({
  name: 'arcline_auth_attempts_total',
  help: 'Login attempts (IMAP, submission) by service and result',
  labelNames: ['service', 'result'] as const,
  registers: [registry],
});

export const authFailures = new Counter({
  name: 'arcline_auth_failures_total',
  help: 'Failed authentications, by service',
  labelNames: ['service'] as const,
  registers: [registry],
});

/** ACME (tls/acme.ts): certificate requests that failed (CA unreachable, challenge refused ...). */
export const acmeFailures = new Counter({
  name: 'arcline_acme_failures_total',
  help: 'ACME certificate requests that failed',
  registers: [registry],
});

export const acmeIssued = new Counter({
  name: 'arcline_acme_certificates_issued_total',
  help: 'Certificates obtained from the ACME CA',
  registers: [registry],
});

/** Unix time (seconds) when the ACME certificate in use expires; 0 while there is none. */
export const acmeCertificateExpiry = new Gauge({
  name: 'arcline_acme_certificate_expiry_timestamp_seconds',
  help: 'Expiry (notAfter) of the ACME certificate in use, as a Unix time; 0 while none was issued',
  registers: [registry],
});

// ---- Issue #14: by protocol, command and result (docs/metrics.md). Label values are closed
// sets (command names we know, code classes, statuses): no user, no address, and every
// unknown command counts as "UNKNOWN", so the number of series is bounded. Hot paths count
// through pre-bound children (`labels()` once, `inc()` per event).

/** SMTP replies. service: smtp (port 25) | submission (as arcline_smtp_messages_total); command: the verb the reply answers
 *  (CONNECT for the greeting and a 421 outside any command); class: 2xx | 3xx | 4xx | 5xx. */
export const smtpReplies = new Counter({
  name: 'arcline_smtp_replies_total',
  help: 'SMTP replies sent, by service, command and code class',
  labelNames: ['service', 'command', 'class'] as const,
  registers: [registry],
});

/** SMTP transactions (MAIL to the end of DATA, RSET, QUIT or the connection's end), by result:
 *  accepted (250 after DATA) | refused (4xx/5xx after DATA) | abandoned (no DATA reply). */
export const smtpTransactions = new Counter({
  name: 'arcline_smtp_transactions_total',
  help: 'SMTP mail transactions, by service and result',
  labelNames: ['service', 'result'] as const,
  registers: [registry],
});

/** Messages scanned by rspamd ([spam], docs/spam.md), by its action: reject | soft_reject |
 *  greylist | rewrite_subject | add_header | no_action | other (an action of the operator's);
 *  error (no answer: [spam] failure applied) | skipped (over [spam] max_size, or a trusted client). */
export const SPAM_SCAN_ACTIONS = [
  'reject',
  'soft_reject',
  'greylist',
  'rewrite_subject',
  'add_header',
  'no_action',
  'other',
  'error',
  'skipped',
] as const;
export const spamScans = new Counter({
  name: 'arcline_spam_scans_total',
  help: 'Messages given to rspamd, by the action it asked for (or error, skipped)',
  labelNames: ['action'] as const,
  registers: [registry],
});
for (const action of SPAM_SCAN_ACTIONS) spamScans.inc({ action }, 0);

export const spamScanSeconds = new Histogram({
  name: 'arcline_spam_scan_duration_seconds',
  help: 'Time of one rspamd scan (sending the message and its answer)',
  buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

/** SRS (docs/srs.md): op forward (a forwarded copy's sender): rewritten | unchanged (the null
 *  sender, a sender of our domains) | failed (could not be rewritten, sent unchanged);
 *  op reverse (an SRS address of ours at RCPT or for our own bounce): valid | forged | expired |
 *  malformed. */
export const SRS_RESULTS = {
  forward: ['rewritten', 'unchanged', 'failed'],
  reverse: ['valid', 'forged', 'expired', 'malformed'],
} as const;
export const srsAddresses = new Counter({
  name: 'arcline_srs_total',
  help: 'SRS: forwarded senders rewritten, and SRS addresses of ours reversed, by result',
  labelNames: ['op', 'result'] as const,
  registers: [registry],
});
for (const [op, results] of Object.entries(SRS_RESULTS))
  for (const result of results) srsAddresses.inc({ op, result }, 0);

/** IMAP tagged replies. command: the IMAP command name (UNKNOWN when unparsable);
 *  status: OK | NO | BAD. */
export const imapCommands = new Counter({
  name: 'arcline_imap_commands_total',
  help: 'IMAP commands answered, by command name and status',
  labelNames: ['command', 'status'] as const,
  registers: [registry],
});

export const imapSessions = new Counter({
  name: 'arcline_imap_sessions_total',
  help: 'IMAP sessions ended (connections closed)',
  registers: [registry],
});

/** Logins by service (imap | submission), mechanism (PLAIN | LOGIN) and result (ok | failed |
 *  refused | busy). */
export const logins = new Counter({
  name: 'arcline_logins_total',
  help: 'Login attempts by service, SASL mechanism (or IMAP LOGIN) and result',
  labelNames: ['service', 'mechanism', 'result'] as const,
  registers: [registry],
});

/** Queued recipients by state: waiting (never tried), deferred (tried, will retry), held
 *  (not to be sent yet: submission before its local copies, or `arcline queue hold`). */
export const queueRecipientsByState = new Gauge({
  name: 'arcline_queue_recipients_by_state',
  help: 'Recipients still queued, by state',
  labelNames: ['state'] as const,
  registers: [registry],
});

/** TLS handshakes completed. service: smtp | submission | imap | http; version: TLSv1.2 |
 *  TLSv1.3 | other. */
export const tlsHandshakes = new Counter({
  name: 'arcline_tls_handshakes_total',
  help: 'TLS handshakes completed, by service and protocol version',
  labelNames: ['service', 'version'] as const,
  registers: [registry],
});

export const tlsHandshakeFailures = new Counter({
  name: 'arcline_tls_handshake_failures_total',
  help: 'TLS handshakes that failed (bad client hello, no shared version or cipher, reset)',
  labelNames: ['service'] as const,
  registers: [registry],
});

/** Log lines a shipping sink ([log] syslog, otlp) dropped: its buffer was full while the
 *  receiver was slow or away. Read from the transport thread at each scrape. */
const dropSources = new Map<string, { read: () => number; seen: number }>();
export const logDropped = new Counter({
  name: 'arcline_log_dropped_total',
  help: 'Log lines dropped by a log shipping sink (receiver slow or unreachable)',
  labelNames: ['sink'] as const,
  registers: [registry],
  collect() {
    for (const [sink, src] of dropSources) {
      const now = src.read();
      if (now > src.seen) this.inc({ sink }, now - src.seen);
      src.seen = Math.max(src.seen, now);
    }
  },
});

/** A sink whose drops arcline_log_dropped_total reports (its series exists from now on). */
export function addDropSource(sink: string, read: () => number): void {
  dropSources.set(sink, { read, seen: 0 });
  logDropped.inc({ sink }, 0);
}

const TLS_VERSIONS = new Set(['TLSv1.2', 'TLSv1.3']);

/** Counts `socket`'s handshake once it ends: its version, or a failure. Call before the
 *  handshake completes (right after creating the TLSSocket or for a server's secureConnection). */
export function countTls(service: string, version: string | null): void {
  if (version === null) tlsHandshakeFailures.inc({ service });
  else tlsHandshakes.inc({ service, version: TLS_VERSIONS.has(version) ? version : 'other' });
}

/** The children of `counter` for one fixed first label, bound once per (second, third) pair. */
export function boundCounter3(
  counter: Counter<string>,
  names: readonly [string, string, string],
  first: string,
): (second: string, third: string) => void {
  const cache = new Map<string, ReturnType<Counter<string>['labels']>>();
  return (second, third) => {
    const key = `${second} ${third}`;
    let c = cache.get(key);
    if (!c) {
      c = counter.labels({ [names[0]]: first, [names[1]]: second, [names[2]]: third });
      cache.set(key, c);
    }
    c.inc();
  };
}

/** Counts the handshake of a server-side TLSSocket once it ends (secure or failed). */
export function watchTls(service: string, t: import('node:tls').TLSSocket): void {
  let done = false;
  t.once('secure', () => {
    done = true;
    countTls(service, t.getProtocol());
  });
  t.once('error', () => {
    if (!done) countTls(service, null);
    done = true;
  });
}

/** Automatic bans (defense/bans.ts) by the offence that caused them. */
export const bansTotal = new Counter({
  name: 'arcline_bans_total',
  help: 'Client networks banned automatically, by offence',
  labelNames: ['offence'] as const,
  registers: [registry],
});
for (const offence of ['auth', 'protocol', 'unknown-recipient']) bansTotal.inc({ offence }, 0);

/** Connections refused by the IP deny list or a ban, by listener service and reason. */
export const accessRefused = new Counter({
  name: 'arcline_access_refused_total',
  help: 'Connections refused at accept by the IP deny list (deny) or a ban (banned)',
  labelNames: ['service', 'reason'] as const,
  registers: [registry],
});
for (const service of ['smtp', 'submission', 'imap', 'managesieve', 'http']) {
  for (const reason of ['deny', 'banned']) accessRefused.inc({ service, reason }, 0);
}
/** 1 while the blocklist monitor (defense/blocklist-monitor.ts) finds one of our outbound
 *  addresses listed in a zone of [monitor] dnsbl, 0 once checked and not listed. */
export const blocklistListed = new Gauge({
  name: 'arcline_blocklist_listed',
  help: 'Whether our outbound address is listed on a DNS blocklist (1) or not (0), per zone and address',
  labelNames: ['zone', 'address'] as const,
  registers: [registry],
});

/** limit: connections_1 | connections_2 | connections_3 (the three prefix lengths of
 *  [rate_limits], narrowest first) | concurrent_network | messages_hour | messages_day |
 *  recipients_hour | recipients_day | outbound_domain. */
export const rateLimited = new Counter({
  name: 'arcline_rate_limited_total',
  help: 'Connections, messages, recipients and deliveries held back by a rate limit, by limit',
  labelNames: ['limit'] as const,
  registers: [registry],
});

/** JMAP method calls (RFC 8620 §3.5). method: a registered method name or "other"; result:
 *  "ok" or the method-level error type (a closed set, jmap/core/errors.ts). */
export const jmapCalls = new Counter({
  name: 'arcline_jmap_method_calls_total',
  help: 'JMAP method calls, by method and result',
  labelNames: ['method', 'result'] as const,
  registers: [registry],
});

/** JMAP push across the nodes of a cluster (jmap/push-relay.ts). result: sent, received,
 *  malformed, dropped, failed, resyncs (PushRelayStats). */
export const jmapPushRelay = new Counter({
  name: 'arcline_jmap_push_relay_total',
  help: 'JMAP state changes relayed between cluster nodes, by result',
  labelNames: ['result'] as const,
  registers: [registry],
});

/** JMAP HTTP requests refused before any method ran. kind: the §3.6.1 type (unknownCapability,
 *  notJSON, notRequest, limit) or auth. */
export const jmapRefused = new Counter({
  name: 'arcline_jmap_requests_refused_total',
  help: 'JMAP requests refused at the request level, by kind',
  labelNames: ['kind'] as const,
  registers: [registry],
});
