// MTA-STS (RFC 8461): the policy arcline serves at https://mta-sts.<domain>/.well-known/mta-sts.txt
// (web/routes.ts) and the records `arcline dns-records` prints for it. Pure.

import { createHash } from 'node:crypto';

export interface MtaStsSettings {
  /** RFC 8461 §5: none | testing | enforce. */
  readonly mode: 'none' | 'testing' | 'enforce';
  readonly maxAgeMs: number;
  /** MX names besides the host name ("*.example.net" allowed, RFC 8461 §4.1). */
  readonly mx: readonly string[];
}

/** The policy text (RFC 8461 §3.2): key/value lines, CRLF-terminated. The same for every local
 *  domain, since they all have the host name as MX. */
export function mtaStsPolicy(hostname: string, s: MtaStsSettings): string {
  const mx = [...new Set([hostname, ...s.mx].map((m) => m.toLowerCase()))];
  const lines = [
    'version: STSv1',
    `mode: ${s.mode}`,
    ...mx.map((m) => `mx: ${m}`),
    `max_age: ${Math.floor(s.maxAgeMs / 1000)}`,
  ];
  return `${lines.join('\r\n')}\r\n`;
}

/** The policy id of the _mta-sts TXT record (RFC 8461 §3.1: 1-32 letters and digits): a hash of the
 *  policy text, so it changes exactly when the policy does. */
export function mtaStsId(policy: string): string {
  return createHash('sha256').update(policy).digest('hex').slice(0, 20);
}

/** The `_mta-sts` TXT value (RFC 8461 §3.1). */
export function mtaStsTxt(policy: string): string {
  return `v=STSv1; id=${mtaStsId(policy)}`;
}

/** The `_smtp._tls` TXT value (SMTP TLS Reporting, RFC 8460 §3): reports go to postmaster@,
 *  the address every domain has (RFC 5321 §4.5.1), as the DMARC reports do. */
export function tlsRptTxt(domain: string): string {
  return `v=TLSRPTv1; rua=mailto:postmaster@${domain}`;
}
