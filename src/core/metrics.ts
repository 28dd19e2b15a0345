// Prometheus metrics: every metric is defined here, once, with the `arcline_` prefix
// (design.md convention 7). Code that counts imports the metric; the HTTP endpoint
// (admin/metrics-http.ts, `[metrics] listen`) serves the registry.

import { isMainThread } from 'node:worker_threads';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';

export const registry = new Registry();
// The process-wide metrics (CPU, memory, event loop) are the main thread's; the inbound SMTP
// threads (docs/architecture.md §8) only keep the counters of their service.
if (isMainThread) collectDefaultMetrics({ register: registry, prefix: 'arcline_' });

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

/** kind: failed (bounce) | delayed (warning). */
export const queueNotices = new Counter({
  name: 'arcline_queue_notices_total',
  help: 'Delivery status notifications sent to senders',
  labelNames: ['kind'] as const,
  registers: [registry],
});

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
