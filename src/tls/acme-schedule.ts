// When to ask the ACME CA for a certificate: pure functions of the time, the certificate in use
// and the names the server needs, so the policy is tested without a clock or a CA.

export interface CertFacts {
  readonly notBefore: number;
  readonly notAfter: number;
  /** DNS names of the subjectAltName, lower-cased. */
  readonly names: readonly string[];
}

export type RenewalDecision =
  | { readonly renew: true; readonly reason: 'none' | 'names' | 'expiring' }
  | { readonly renew: false; readonly at: number };

/** The moment to renew `cert`: `renewBeforeMs` before expiry, or a third of its lifetime before
 *  expiry when that is shorter (a 6-day certificate is renewed 2 days before, not at once and
 *  again after every issuance). Let's Encrypt's 90-day certificates: 30 days before. */
export function renewalTime(cert: CertFacts, renewBeforeMs: number): number {
  const lifetime = Math.max(0, cert.notAfter - cert.notBefore);
  return cert.notAfter - Math.min(renewBeforeMs, Math.floor(lifetime / 3));
}

/** Whether to request a certificate now: none yet, one that lacks a needed name (a new local
 *  domain), or one due for renewal; otherwise when it will be due. */
export function renewalDecision(
  now: number,
  cert: CertFacts | null,
  wanted: readonly string[],
  renewBeforeMs: number,
): RenewalDecision {
  if (!cert) return { renew: true, reason: 'none' };
  const have = new Set(cert.names);
  if (wanted.some((n) => !have.has(n))) return { renew: true, reason: 'names' };
  const at = renewalTime(cert, renewBeforeMs);
  return at <= now ? { renew: true, reason: 'expiring' } : { renew: false, at };
}

/** Delay of the next routine check: `intervalMs` less up to 10% (random in [0,1)), so that
 *  servers started together do not ask the CA at the same moment. */
export function checkDelay(intervalMs: number, random: number): number {
  return Math.max(1, Math.round(intervalMs * (1 - 0.1 * random)));
}

/** Delay before retrying after the `failures`-th failure in a row (1, 2, ...): `initialMs`
 *  doubling per failure, capped at `maxMs`, then "full jitter" in its upper half
 *  ([d/2, d)), so retries of many servers spread out but never come back sooner than d/2. */
export function retryDelay(failures: number, initialMs: number, maxMs: number, random: number): number {
  const exp = Math.min(Math.max(0, failures - 1), 30);
  const d = Math.min(maxMs, initialMs * 2 ** exp);
  return Math.max(1, Math.round(d / 2 + (d / 2) * random));
}

/** The next wake-up after a successful check: the renewal time if it comes before the next
 *  routine check. */
export function nextWake(now: number, renewAt: number, checkDelayMs: number): number {
  return Math.max(1, Math.min(renewAt - now, checkDelayMs));
}

/** The names a certificate must carry: the host name, the configured extra names, and
 *  mta-sts.<domain> (RFC 8461 §3.3) and autoconfig.<domain> for every local domain; sorted,
 *  lower-case, without duplicates. */
export function certificateNames(hostname: string, extra: readonly string[], domains: readonly string[]): string[] {
  const all = new Set<string>([hostname.toLowerCase(), ...extra.map((n) => n.toLowerCase())]);
  for (const d of domains) {
    all.add(`mta-sts.${d.toLowerCase()}`);
    all.add(`autoconfig.${d.toLowerCase()}`);
  }
  return [...all].sort();
}
