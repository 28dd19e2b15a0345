// MTA-STS for outbound delivery (RFC 8461; docs/delivery.md "MTA-STS"): the policy of a
// destination domain, and what it asks of one delivery attempt.
//
// Discovery (§3.1, §5.1): the TXT record `_mta-sts.<domain>` is read on every attempt (the
// resolver's cache makes that cheap); its id says whether the cached policy is current. A new
// id, or no usable cached policy, fetches https://mta-sts.<domain>/.well-known/mta-sts.txt
// (§3.3: no redirects, no HTTP cache, a certificate valid for that name chaining to a trusted
// CA, a bounded body and time), parsed strictly (§3.2, mailauth's parser). A cached policy
// applies until its max_age runs out, whatever DNS says meanwhile (§5.1, §10.2: a downgrade by
// removing the TXT record or breaking the policy host must not work); a failed fetch keeps the
// old policy if it is still valid, else delivery goes on as without one and the fetch is not
// retried for LIMITS.mtaSts.failedFetchRetryMs. A cached policy in use is refreshed in the
// background once it is older than LIMITS.mtaSts.refreshAfterMs or half its max_age (the
// "proactive refresh" the RFC's authors recommend, §10.2: kept warm while mail flows, so that an
// attacker who blocks the policy host at the moment it expires finds a fresh one): delivery
// never waits for it, and a failed refresh keeps the cached policy.
//
// Application (§4, §5): `enforce` keeps only the MX hosts matching the policy and connects to
// them with STARTTLS required and the certificate checked against the MX name; `testing` delivers
// as usual and counts and logs what would have failed; `none` does nothing.

import type { Resolver } from 'node:dns/promises';
import { readFile } from 'node:fs/promises';
import { parsePolicy, resolvePolicy, validateMx } from 'mailauth/lib/mta-sts.js';
import type { Config } from '../config/schema.ts';
import { errorMessage } from '../core/errors.ts';
import { firstAddress, httpsCall, trustedCas } from '../core/https-call.ts';
import { LIMITS } from '../core/limits.ts';
import { mtaStsChecks, mtaStsLookups } from '../core/metrics.ts';
import type { Postgres } from '../db/postgres.ts';
import { type CachedPolicy, openPolicyCache, type PolicyCache } from './mta-sts-cache.ts';
import type { RouteHost } from './route.ts';
import type { AttemptResult, TransportOptions } from './transport.ts';

export type MtaStsResolver = Pick<Resolver, 'resolveTxt' | 'resolve4' | 'resolve6'>;

export interface MtaStsOptions {
  readonly resolver: MtaStsResolver;
  readonly cache: PolicyCache;
  readonly fetchTimeoutMs: number;
  /** Extra trusted CAs (PEM), besides the system's. */
  readonly extraCa: readonly string[];
  readonly policyPort: number;
  /** The clock (tests move it). */
  readonly now?: () => number;
}

/** The policy that applies to one attempt; `source` says whether it was fetched for this one. */
export interface AppliedPolicy {
  readonly policy: CachedPolicy;
  readonly source: 'fetched' | 'cached';
}

/** Why no policy could be had (RFC 8460 §4.4.2 result types, for TLS reporting). */
export type StsProblem = 'sts-policy-fetch-error' | 'sts-policy-invalid' | 'sts-webpki-invalid';

export class MtaStsPolicies {
  readonly #o: MtaStsOptions;
  /** Domains whose last fetch failed -> why (cleared by a good fetch); bounded as #memory. */
  readonly #problems = new Map<string, StsProblem>();
  /** The memory copy in front of the persisted cache. */
  readonly #memory = new Map<string, CachedPolicy>();
  /** Domains whose last fetch failed -> until when no fetch is tried again. */
  readonly #failed = new Map<string, number>();
  /** Background refreshes under way, one per domain. */
  readonly #refreshing = new Map<string, Promise<void>>();
  /** Aborted at close: cuts off the fetches under way. */
  readonly #stop = new AbortController();
  readonly #now: () => number;
  /** Every trusted CA: the system's and the configured ones (`ca` replaces Node's defaults). */
  readonly ca: readonly string[];

  constructor(o: MtaStsOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.ca = trustedCas(o.extraCa);
  }

  /** The policy for `domain` now, or null when none applies. Never throws: trouble finding a
   *  policy is delivery without one (§5.1), unless a valid cached one says otherwise. */
  async policyFor(
    domain: string,
    log: (fields: Record<string, unknown>, msg: string) => void,
  ): Promise<AppliedPolicy | null> {
    const now = this.#now();
    const known = await this.#known(domain);
    const valid = known && known.expires > now ? known : null;
    let id: string | false;
    try {
      id = await resolvePolicy(domain, { strict: true, resolver: this.#txt });
    } catch (e) {
      mtaStsLookups.inc({ result: 'errored' });
      log({ err: errorMessage(e) }, 'MTA-STS: TXT lookup failed');
      return applies(valid);
    }
    if (!id) {
      // No record (or an unusable one): a valid cached policy still applies (§5.1).
      mtaStsLookups.inc({ result: valid ? 'cached' : 'none' });
      return applies(valid);
    }
    if (valid && valid.id === id) {
      mtaStsLookups.inc({ result: 'cached' });
      if (dueForRefresh(valid, now) && !this.#refreshing.has(domain) && (this.#failed.get(domain) ?? 0) <= now) {
        const done = this.#load(domain, id, valid, log)
          .then(() => {})
          .finally(() => this.#refreshing.delete(domain));
        this.#refreshing.set(domain, done);
      }
      return applies(valid);
    }
    if ((this.#failed.get(domain) ?? 0) > now) {
      mtaStsLookups.inc({ result: 'errored' });
      return applies(valid);
    }
    const policy = await this.#load(domain, id, valid, log);
    if (!policy) return applies(valid);
    return policy.mode === 'none' ? null : { policy, source: 'fetched' };
  }

  /** The background refresh of `domain` under way, if any (tests await it). */
  refreshing(domain: string): Promise<void> | undefined {
    return this.#refreshing.get(domain);
  }

  /** Fetches, parses and saves the policy `id` of `domain`; null (logged, counted, not retried
   *  for a while) when that fails. Never throws. */
  async #load(
    domain: string,
    id: string,
    valid: CachedPolicy | null,
    log: (fields: Record<string, unknown>, msg: string) => void,
  ): Promise<CachedPolicy | null> {
    let stage: StsProblem = 'sts-policy-fetch-error';
    try {
      const text = await this.#fetch(domain);
      stage = 'sts-policy-invalid';
      const p = parsePolicy(text, { strict: true });
      const maxAge = p.maxAge ?? 0;
      const now = this.#now();
      const policy: CachedPolicy = { id, mode: p.mode, mx: p.mx ?? [], maxAge, expires: now + maxAge * 1000 };
      this.#failed.delete(domain);
      this.#problems.delete(domain);
      this.#remember(domain, policy);
      if (this.#stop.signal.aborted) return policy;
      await this.#o.cache.put(domain, policy).catch((e: unknown) => {
        log({ err: errorMessage(e) }, 'MTA-STS: could not save the policy');
      });
      mtaStsLookups.inc({ result: 'found' });
      log({ policy_id: id, mode: policy.mode, mx: policy.mx, max_age: maxAge }, 'MTA-STS: policy fetched');
      return policy;
    } catch (e) {
      this.#failed.set(domain, this.#now() + LIMITS.mtaSts.failedFetchRetryMs);
      this.#noteProblem(
        domain,
        stage === 'sts-policy-fetch-error' && isCertificateError(e) ? 'sts-webpki-invalid' : stage,
      );
      mtaStsLookups.inc({ result: 'errored' });
      log({ policy_id: id, err: errorMessage(e), cached: valid !== null }, 'MTA-STS: policy fetch failed');
      return null;
    }
  }

  /** Why the last fetch of `domain`'s policy failed, until one succeeds (RFC 8460 §4.4.2). */
  problem(domain: string): StsProblem | null {
    return this.#problems.get(domain) ?? null;
  }

  #noteProblem(domain: string, p: StsProblem): void {
    this.#problems.delete(domain);
    this.#problems.set(domain, p);
    if (this.#problems.size > LIMITS.mtaSts.maxCachedPolicies) {
      const first = this.#problems.keys().next().value;
      if (first !== undefined) this.#problems.delete(first);
    }
  }

  /** Stops: fetches under way (a refresh in the background) are cut off rather than waited
   *  for (up to fetch_timeout each), so a stop is never held up by a slow policy host. */
  async close(): Promise<void> {
    this.#stop.abort();
    await Promise.all(this.#refreshing.values());
    await this.#o.cache.close();
  }

  readonly #txt = async (name: string, type: string): Promise<string[][]> => {
    if (type !== 'TXT') throw new Error(`unexpected lookup ${type}`);
    return this.#o.resolver.resolveTxt(name);
  };

  async #known(domain: string): Promise<CachedPolicy | null> {
    const m = this.#memory.get(domain);
    if (m) return m;
    const stored = await this.#o.cache.get(domain).catch(() => null);
    if (stored) this.#remember(domain, stored);
    return stored;
  }

  #remember(domain: string, p: CachedPolicy): void {
    this.#memory.delete(domain);
    this.#memory.set(domain, p);
    // Oldest first out (a Map keeps insertion order; a use re-inserts).
    if (this.#memory.size > LIMITS.mtaSts.maxCachedPolicies) {
      const first = this.#memory.keys().next().value;
      if (first !== undefined) this.#memory.delete(first);
    }
  }

  /** RFC 8461 §3.3: GET over HTTPS from the policy host, certificate checked for its name,
   *  status 200 only (no redirects followed), text/plain, bounded body and time. */
  async #fetch(domain: string): Promise<string> {
    const host = `mta-sts.${domain}`;
    const max = LIMITS.mtaSts.maxPolicyBytes;
    const { body } = await httpsCall({
      address: await firstAddress(this.#o.resolver, host),
      port: this.#o.policyPort,
      path: '/.well-known/mta-sts.txt',
      method: 'GET',
      servername: host,
      headers: { host, 'cache-control': 'no-cache' },
      ca: this.ca,
      timeoutMs: this.#o.fetchTimeoutMs,
      maxBytes: max,
      timedOut: `policy fetch from ${host} timed out`,
      tooLarge: `policy of ${host} larger than ${max} bytes`,
      cutOff: `policy fetch from ${host} cut off: stopping`,
      signal: this.#stop.signal,
      accept: (status, headers) => {
        const type = (headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
        if (status !== 200) return new Error(`HTTP ${status} from ${host}`);
        if (type !== 'text/plain') return new Error(`Content-Type ${type || '(none)'} from ${host}`);
        return null;
      },
    });
    return body.toString('utf8');
  }
}

/** A cached policy older than LIMITS.mtaSts.refreshAfterMs or half its max_age. */
function dueForRefresh(p: CachedPolicy, now: number): boolean {
  const fetchedAt = p.expires - p.maxAge * 1000;
  return now - fetchedAt >= Math.min(LIMITS.mtaSts.refreshAfterMs, (p.maxAge * 1000) / 2);
}

/** node:tls refused the policy host's certificate (RFC 8461 §3.3 asks for a valid one). */
function isCertificateError(e: unknown): boolean {
  const code = String((e as { code?: unknown } | null)?.code ?? '');
  return /^(CERT_|ERR_TLS_CERT_ALTNAME|DEPTH_ZERO_SELF_SIGNED|SELF_SIGNED_CERT|UNABLE_TO_(GET|VERIFY))/.test(code);
}

function applies(p: CachedPolicy | null): AppliedPolicy | null {
  return p && p.mode !== 'none' ? { policy: p, source: 'cached' } : null;
}

/** RFC 8461 §4.1: the hosts whose MX name matches one of the policy's patterns. */
export function matchingHosts(hosts: readonly RouteHost[], policy: CachedPolicy): RouteHost[] {
  const p = { mode: policy.mode, mx: [...policy.mx] };
  return hosts.filter((h) => validateMx(h.name, p).valid);
}

export type StsPlan =
  | { readonly kind: 'deliver'; readonly hosts: readonly RouteHost[]; readonly transport: TransportOptions }
  /** enforce, and no MX host matches the policy: nothing may be tried (§5). */
  | { readonly kind: 'defer'; readonly reply: string; readonly status: string };

/** RFC 3463 X.7.5 (cryptographic failure), as Postfix answers for its TLS policies. */
const STS_STATUS = '4.7.5';

/** How one attempt goes under the policy (§5): the hosts it may try and how it connects. */
export function planDelivery(
  applied: AppliedPolicy | null,
  hosts: readonly RouteHost[],
  transport: TransportOptions,
  ca: readonly string[],
): StsPlan {
  if (!applied) return { kind: 'deliver', hosts, transport };
  const withCa: TransportOptions = { ...transport, nameBound: true, ...(ca.length > 0 ? { ca } : {}) };
  if (applied.policy.mode !== 'enforce') return { kind: 'deliver', hosts, transport: withCa };
  const matching = matchingHosts(hosts, applied.policy);
  if (matching.length === 0) {
    const names = [...new Set(hosts.map((h) => h.name))].join(', ');
    return {
      kind: 'defer',
      status: STS_STATUS,
      reply: `MTA-STS policy (enforce): no MX host matches the policy (${names} not in ${applied.policy.mx.join(', ')})`,
    };
  }
  // §4.2: STARTTLS required (never plaintext, no fallback), the certificate checked against
  // the MX name (the SNI the transport sends) and chained to a trusted CA, TLS 1.2 at least.
  return {
    kind: 'deliver',
    hosts: matching,
    transport: { ...withCa, tls: 'starttls', verifyTls: true, minVersion: 'TLSv1.2' },
  };
}

type CheckResult = 'ok' | 'mx_mismatch' | 'starttls_missing' | 'certificate_invalid';

function classify(error: string): CheckResult | null {
  if (/certificate|self[- ]signed|altname|unable to verify|CERT_|hostname\/IP/i.test(error))
    return 'certificate_invalid';
  if (/STARTTLS|ETLS/i.test(error)) return 'starttls_missing';
  return null;
}

/** After the attempt: counts and logs the outcome under the policy (§5); in enforce mode a
 *  failure of TLS gives the recipients 4.7.5 (they stay queued, retried later). */
export function checkAttempt(
  applied: AppliedPolicy | null,
  attempt: AttemptResult,
  log: (fields: Record<string, unknown>, msg: string) => void,
): AttemptResult {
  if (!applied) return attempt;
  const { mode, id } = applied.policy;
  if (mode === 'enforce') {
    if (attempt.hostName !== null) {
      mtaStsChecks.inc({ mode, result: 'ok' });
      return attempt;
    }
    const results = attempt.tried.map((t) => classify(t.error)).filter((r): r is CheckResult => r !== null);
    const result = results[0];
    if (!result) return attempt;
    mtaStsChecks.inc({ mode, result });
    log({ policy_id: id, result, tried: attempt.tried }, 'MTA-STS: delivery deferred by the policy');
    const reply = `MTA-STS policy (enforce): no MX host with valid TLS (${attempt.tried.map((t) => `${t.host}: ${t.error}`).join('; ')})`;
    return { ...attempt, results: attempt.results.map((r) => ({ ...r, status: STS_STATUS, reply })) };
  }
  if (attempt.hostName === null) return attempt; // nothing reached: no TLS outcome to judge
  let result: CheckResult = 'ok';
  if (matchingHosts([{ name: attempt.hostName, address: '', port: 0 }], applied.policy).length === 0) {
    result = 'mx_mismatch';
  } else if (!attempt.tls) result = 'starttls_missing';
  else if (!attempt.tlsAuthorized) result = 'certificate_invalid';
  mtaStsChecks.inc({ mode, result });
  if (result !== 'ok') {
    log(
      { policy_id: id, result, host: attempt.host },
      'MTA-STS (testing): delivered, but the policy would have refused',
    );
  }
  return attempt;
}

/** The server's MTA-STS from [mta_sts_outbound]; null when disabled or when everything goes
 *  through a relay. The cache is the file under {state} or the cluster's PostgreSQL. */
export async function openMtaSts(
  config: Config,
  resolver: MtaStsResolver,
  db: Postgres | null,
  onWarn: (msg: string) => void,
): Promise<MtaStsPolicies | null> {
  const o = config.mta_sts_outbound;
  if (!o.enabled || config.delivery.relay) return null;
  const extraCa = o.ca_file ? [await readFile(o.ca_file, 'utf8')] : [];
  const cache = await openPolicyCache({ stateDir: config.storage.state, db, onWarn });
  return new MtaStsPolicies({ resolver, cache, fetchTimeoutMs: o.fetch_timeout, extraCa, policyPort: o.policy_port });
}
