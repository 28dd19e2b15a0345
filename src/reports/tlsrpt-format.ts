// TLS reporting (RFC 8460), the pure part of sending: what a counted session is, how a TLS
// outcome maps to the RFC's result types (§4.4), the `_smtp._tls` record (§3), the JSON report
// (§4), its file name (§5.1) and the message that carries it (§5.3). No I/O here.

import { encodedWords } from '../core/mime-encode.ts';
import { dayRange } from './days.ts';

/** RFC 8460 §4.4 result types we can tell apart (DANE's are not ours: we do no DANE). */
export type ResultType =
  | 'starttls-not-supported'
  | 'certificate-host-mismatch'
  | 'certificate-expired'
  | 'certificate-not-trusted'
  | 'validation-failure'
  | 'sts-policy-fetch-error'
  | 'sts-policy-invalid'
  | 'sts-webpki-invalid';

/** The policy a session was judged under (§4.1 "policy"): an MTA-STS policy, or none. */
export interface ReportPolicy {
  readonly type: 'sts' | 'no-policy-found';
  /** The policy's lines (policy-string) and its mx patterns (mx-host); empty without one. */
  readonly lines: readonly string[];
  readonly mx: readonly string[];
}

/** One counter: sessions of a UTC day to a policy domain under a policy, with one result. A
 *  success carries no host details (only the total is reported, §4.3). */
export interface TlsCount {
  /** YYYY-MM-DD, UTC. */
  readonly day: string;
  /** The policy domain: the recipient domain, lower case. */
  readonly domain: string;
  readonly policy: ReportPolicy;
  readonly result: 'success' | ResultType;
  /** sending-mta-ip, receiving-mx-hostname, receiving-ip, failure-reason-code ('' if unknown). */
  readonly sendingIp: string;
  readonly mxHostname: string;
  readonly receivingIp: string;
  readonly reasonCode: string;
  readonly count: number;
}

/** The key of a counter (every field but the count). */
export function countKey(c: Omit<TlsCount, 'count'>): string {
  return JSON.stringify([
    c.day,
    c.domain,
    c.policy.type,
    c.policy.lines,
    c.policy.mx,
    c.result,
    c.sendingIp,
    c.mxHostname,
    c.receivingIp,
    c.reasonCode,
  ]);
}

/** The MTA-STS policy text as lines (§4.1 policy-string), from what the policy said. */
export function stsPolicyLines(p: { mode: string; mx: readonly string[]; maxAge: number }): string[] {
  return ['version: STSv1', `mode: ${p.mode}`, ...p.mx.map((m) => `mx: ${m}`), `max_age: ${p.maxAge}`];
}

/** §4.4.1 and §4.4.3: the result type of a certificate that node:tls did not verify, from its
 *  error code (X509 verification codes, ERR_TLS_CERT_ALTNAME_INVALID); the code itself goes in
 *  failure-reason-code. */
export function certificateResult(code: string | null): ResultType {
  const c = code ?? '';
  if (c === 'CERT_HAS_EXPIRED' || /certificate has expired/i.test(c)) return 'certificate-expired';
  if (c === 'ERR_TLS_CERT_ALTNAME_INVALID' || /does not match certificate's altnames/i.test(c))
    return 'certificate-host-mismatch';
  if (
    /^(DEPTH_ZERO_SELF_SIGNED_CERT|SELF_SIGNED_CERT_IN_CHAIN|UNABLE_TO_GET_ISSUER_CERT(_LOCALLY)?|UNABLE_TO_VERIFY_LEAF_SIGNATURE|CERT_UNTRUSTED|CERT_REJECTED)$/.test(
      c,
    ) ||
    /self[- ]signed|unable to (verify|get local issuer)/i.test(c)
  )
    return 'certificate-not-trusted';
  return 'validation-failure';
}

// --- §3: the `_smtp._tls.<domain>` record ---------------------------------------------------

/** §3: tlsrpt-ext-name = (ALPHA / DIGIT) *31(ALPHA / DIGIT / "_" / "-" / ".") */
const EXT_NAME = /^[A-Za-z0-9][A-Za-z0-9_.-]{0,31}$/;
/** §3: tlsrpt-ext-value = 1*(%x21-3A / %x3C / %x3E-7E): visible ASCII but ";" and "=". */
const EXT_VALUE = /^[\x21-\x3a\x3c\x3e-\x7e]+$/;

/** The report URIs of a domain (RFC 8460 §3), from its `_smtp._tls` TXT records (each one's
 *  strings joined). Strict: exactly one record must begin with "v=TLSRPTv1" (others are not
 *  TLSRPT records and are ignored; two or more: none is used); its fields are `;`-separated
 *  (white space around), `v=TLSRPTv1` first, `rua=` a `,`-separated list of mailto: and https:
 *  URIs (other schemes ignored), other fields well-formed extensions. null: no usable record. */
export function parseTlsRptRecord(records: readonly (readonly string[])[], maxBytes: number): string[] | null {
  const texts = records.map((r) => r.join(''));
  const ours = texts.filter((t) => /^v=TLSRPTv1(?:[ \t]*;|[ \t]*$)/.test(t));
  if (ours.length !== 1) return null;
  const text = ours[0] ?? '';
  if (text.length > maxBytes) return null;
  const fields = text.split(';').map((f) => f.replace(/^[ \t]+|[ \t]+$/g, ''));
  if (fields.at(-1) === '' && fields.length > 1) fields.pop(); // a trailing ";" is allowed
  if (fields[0] !== 'v=TLSRPTv1') return null;
  let rua: string[] | null = null;
  for (const f of fields.slice(1)) {
    const eq = f.indexOf('=');
    if (eq <= 0) return null;
    const name = f.slice(0, eq);
    const value = f.slice(eq + 1);
    if (name === 'rua') {
      if (rua) return null; // one rua field
      const uris = value.split(',').map((u) => u.replace(/^[ \t]+|[ \t]+$/g, ''));
      if (uris.some((u) => u === '' || !EXT_VALUE.test(u.replace(/=/g, '!')))) return null;
      rua = uris.filter((u) => /^(mailto|https):/i.test(u));
    } else if (!EXT_NAME.test(name) || !EXT_VALUE.test(value)) return null;
  }
  return rua && rua.length > 0 ? rua : null;
}

/** The address of a mailto: URI (RFC 6068: percent-decoded, no query), or null. */
export function mailtoAddress(uri: string): string | null {
  const m = /^mailto:([^?]+)/i.exec(uri);
  if (!m?.[1]) return null;
  let addr: string;
  try {
    addr = decodeURIComponent(m[1]);
  } catch {
    return null;
  }
  return /^[^\s@<>,;"]+@[A-Za-z0-9.-]+$/.test(addr) ? addr : null;
}

// --- §4: the report --------------------------------------------------------------------------

export interface ReportMeta {
  readonly organization: string;
  readonly contact: string;
  readonly reportId: string;
  readonly day: string;
}

export interface FailureDetail {
  'result-type': string;
  'sending-mta-ip'?: string;
  'receiving-mx-hostname'?: string;
  'receiving-ip'?: string;
  'failed-session-count': number;
  'failure-reason-code'?: string;
}

export interface ReportJson {
  'organization-name': string;
  'date-range': { 'start-datetime': string; 'end-datetime': string };
  'contact-info': string;
  'report-id': string;
  policies: {
    policy: {
      'policy-type': string;
      'policy-string'?: string[];
      'policy-domain': string;
      'mx-host'?: string[];
    };
    summary: { 'total-successful-session-count': number; 'total-failure-session-count': number };
    'failure-details'?: FailureDetail[];
  }[];
}

/** §4: the report of one policy domain for one day, from its counters (one "policies" entry
 *  per distinct policy, its failures by result and hosts). */
export function buildReport(meta: ReportMeta, domain: string, counts: readonly TlsCount[]): ReportJson {
  const byPolicy = new Map<string, { policy: ReportPolicy; counts: TlsCount[] }>();
  for (const c of counts) {
    if (c.domain !== domain || c.day !== meta.day) continue;
    const key = JSON.stringify([c.policy.type, c.policy.lines, c.policy.mx]);
    const entry = byPolicy.get(key) ?? { policy: c.policy, counts: [] };
    entry.counts.push(c);
    byPolicy.set(key, entry);
  }
  const policies = [...byPolicy.values()].map(({ policy, counts: cs }) => {
    let ok = 0;
    let failed = 0;
    const details: FailureDetail[] = [];
    for (const c of cs) {
      if (c.result === 'success') {
        ok += c.count;
        continue;
      }
      failed += c.count;
      details.push({
        'result-type': c.result,
        ...(c.sendingIp ? { 'sending-mta-ip': c.sendingIp } : {}),
        ...(c.mxHostname ? { 'receiving-mx-hostname': c.mxHostname } : {}),
        ...(c.receivingIp ? { 'receiving-ip': c.receivingIp } : {}),
        'failed-session-count': c.count,
        ...(c.reasonCode ? { 'failure-reason-code': c.reasonCode } : {}),
      });
    }
    return {
      policy: {
        'policy-type': policy.type,
        ...(policy.lines.length > 0 ? { 'policy-string': [...policy.lines] } : {}),
        'policy-domain': domain,
        ...(policy.mx.length > 0 ? { 'mx-host': [...policy.mx] } : {}),
      },
      summary: { 'total-successful-session-count': ok, 'total-failure-session-count': failed },
      ...(details.length > 0 ? { 'failure-details': details } : {}),
    };
  });
  return {
    'organization-name': meta.organization,
    // §4.2: a UTC day, 00:00:00 to 23:59:59.
    'date-range': { 'start-datetime': `${meta.day}T00:00:00Z`, 'end-datetime': `${meta.day}T23:59:59Z` },
    'contact-info': meta.contact,
    'report-id': meta.reportId,
    policies,
  };
}

/** §5.1: sender "!" policy-domain "!" begin-timestamp "!" end-timestamp "." extension, the
 *  timestamps in seconds since the epoch; "json.gz" for the gzipped report (§5.2). */
export function reportFilename(submitter: string, domain: string, day: string): string {
  const { begin, end } = dayRange(day);
  return `${submitter}!${domain}!${begin}!${end}.json.gz`;
}

export interface ReportMessage {
  readonly from: string;
  readonly to: string;
  readonly submitter: string;
  readonly domain: string;
  readonly reportId: string;
  readonly day: string;
  readonly gzipped: Buffer;
  readonly date: Date;
  readonly messageId: string;
  readonly boundary: string;
}

/** §5.3: the report as a message: Subject "Report Domain: … Submitter: … Report-ID: <…>", the
 *  TLS-Report-Domain and TLS-Report-Submitter fields, multipart/report with report-type
 *  "tlsrpt", a short text part and the gzipped report as application/tlsrpt+gzip named per
 *  §5.1. The DKIM signature goes in front (the caller's). */
export function reportMessage(m: ReportMessage): Buffer {
  const name = reportFilename(m.submitter, m.domain, m.day);
  const b64 = (m.gzipped.toString('base64').match(/.{1,76}/g) ?? []).join('\r\n');
  const subject = `Report Domain: ${m.domain} Submitter: ${m.submitter} Report-ID: <${m.reportId}>`;
  const lines = [
    `From: <${m.from}>`,
    `To: <${m.to}>`,
    `Date: ${m.date.toUTCString().replace(/GMT$/, '+0000')}`,
    `Message-ID: <${m.messageId}>`,
    `Subject: ${encodedWords(subject, 9)}`,
    `TLS-Report-Domain: ${m.domain}`,
    `TLS-Report-Submitter: ${m.submitter}`,
    'MIME-Version: 1.0',
    `Content-Type: multipart/report; report-type="tlsrpt";\r\n boundary="${m.boundary}"`,
    '',
    `--${m.boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is an aggregate TLS report (RFC 8460) from ${m.submitter}`,
    `for ${m.domain}, ${m.day} (UTC).`,
    '',
    `--${m.boundary}`,
    'Content-Type: application/tlsrpt+gzip',
    'Content-Transfer-Encoding: base64',
    `Content-Disposition: attachment;\r\n filename="${name}"`,
    '',
    b64,
    '',
    `--${m.boundary}--`,
    '',
  ];
  return Buffer.from(lines.join('\r\n'));
}
