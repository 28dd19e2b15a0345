// TLS reporting (RFC 8460): the counting of sessions. The queue runner tells the recorder the
// TLS outcome of every connection an attempt made to a domain's MX hosts (queue/transport.ts
// TlsSession) with the MTA-STS policy that applied; the recorder judges each (§4.3, §4.4),
// counts them in memory per day, policy domain, policy and result, and adds the counters to
// the store every LIMITS.tlsReports.flushMs: one write per flush, not one per connection.

import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { AppliedPolicy, StsProblem } from '../queue/mta-sts.ts';
import { matchingHosts } from '../queue/mta-sts.ts';
import type { TlsSession } from '../queue/transport.ts';
import { utcDay } from './days.ts';
import {
  certificateResult,
  countKey,
  type ReportPolicy,
  type ResultType,
  stsPolicyLines,
  type TlsCount,
} from './tlsrpt-format.ts';
import type { TlsReportStore } from './tlsrpt-store.ts';

const NO_POLICY: ReportPolicy = { type: 'no-policy-found', lines: [], mx: [] };
/** A policy that could not be had (fetch failed, invalid): reported as sts without its text. */
const STS_UNKNOWN: ReportPolicy = { type: 'sts', lines: [], mx: [] };

/** The verdict on one session under the policy: success, or a result type with its reason. */
export function judgeSession(
  s: TlsSession,
  applied: AppliedPolicy | null,
  problem: StsProblem | null,
): { policy: ReportPolicy; result: 'success' | ResultType; reason: string } {
  if (!applied) {
    // §4.4.2: no policy because fetching or reading it failed: that is the failure reported.
    if (problem) return { policy: STS_UNKNOWN, result: problem, reason: '' };
    // Without a policy the certificate is not checked (RFC 7435): negotiating TLS is success.
    if (s.problem === 'starttls') return { policy: NO_POLICY, result: 'starttls-not-supported', reason: '' };
    if (!s.tls) return { policy: NO_POLICY, result: 'validation-failure', reason: s.certError ?? '' };
    return { policy: NO_POLICY, result: 'success', reason: '' };
  }
  const p = applied.policy;
  const policy: ReportPolicy = { type: 'sts', lines: stsPolicyLines(p), mx: [...p.mx] };
  if (s.problem === 'starttls') return { policy, result: 'starttls-not-supported', reason: '' };
  // RFC 8461 §4.1 (testing mode connects to any MX): an MX not in the policy.
  if (matchingHosts([{ name: s.hostName, address: s.address, port: 0 }], p).length === 0)
    return { policy, result: 'validation-failure', reason: 'mx-not-in-policy' };
  if (!s.tls || !s.authorized) return { policy, result: certificateResult(s.certError), reason: s.certError ?? '' };
  return { policy, result: 'success', reason: '' };
}

export class TlsReportRecorder {
  readonly #store: TlsReportStore;
  readonly #log: Logger;
  readonly #now: () => number;
  readonly #pending = new Map<string, TlsCount>();
  #dropped = 0;
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();

  constructor(o: { store: TlsReportStore; log: Logger; now?: () => number }) {
    this.#store = o.store;
    this.#log = o.log;
    this.#now = o.now ?? Date.now;
  }

  /** Counts the sessions of one attempt to `domain` (the policy domain: RFC 8460 §4.1). */
  record(domain: string, applied: AppliedPolicy | null, problem: StsProblem | null, sessions: readonly TlsSession[]) {
    if (sessions.length === 0) return;
    const day = utcDay(this.#now());
    for (const s of sessions) {
      const { policy, result, reason } = judgeSession(s, applied, problem);
      const ok = result === 'success';
      const count: TlsCount = {
        day,
        domain: domain.toLowerCase(),
        policy,
        result,
        sendingIp: ok ? '' : (s.localAddress ?? ''),
        mxHostname: ok ? '' : s.hostName,
        receivingIp: ok ? '' : s.address,
        reasonCode: ok ? '' : reason.slice(0, 200),
        count: 1,
      };
      const key = countKey(count);
      const known = this.#pending.get(key);
      if (known) this.#pending.set(key, { ...known, count: known.count + 1 });
      else if (this.#pending.size < LIMITS.tlsReports.maxPending) this.#pending.set(key, count);
      else this.#dropped++;
    }
    this.#schedule();
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, LIMITS.tlsReports.flushMs);
    this.#timer.unref();
  }

  /** Adds what is pending to the store (one flush at a time). A failed write keeps the counts
   *  for the next flush. */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      if (this.#dropped > 0) {
        this.#log.warn({ dropped: this.#dropped }, 'TLS reporting: too many distinct counters; sessions not counted');
        this.#dropped = 0;
      }
      if (this.#pending.size === 0) return;
      const batch = [...this.#pending.values()];
      this.#pending.clear();
      try {
        await this.#store.add(batch);
      } catch (e) {
        this.#log.warn({ err: errorMessage(e) }, 'TLS reporting: could not save the counters; kept for the next try');
        for (const c of batch) {
          const key = countKey(c);
          const known = this.#pending.get(key);
          this.#pending.set(key, known ? { ...known, count: known.count + c.count } : c);
        }
        this.#schedule();
      }
    });
    return this.#flushing;
  }

  /** Flushes what is pending; later sessions are still counted (and flushed by the next close). */
  async close(): Promise<void> {
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.flush();
  }
}
