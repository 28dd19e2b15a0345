// SPF (RFC 7208), DKIM (RFC 6376, RFC 8463), DMARC (RFC 7489) and ARC (RFC 8617 §5.2, kept
// for sealing forwarded copies: arc.ts) for one received message, through mailauth, with every
// DNS query going to our configured resolvers. This module only runs the checks and boils the
// results down to what decide.ts needs; the policy is ours.
//
// SPF checks the MAIL FROM identity, or the HELO identity for a null sender (RFC 7208 §2.4:
// mailauth does this when `sender` is empty). DMARC alignment: relaxed or strict as the record
// says, with the Public Suffix List (tldts) for organizational domains.
//
// Cost: mailauth reads the message once for DKIM (headers and body hashes) and once more for
// nothing when the message carries no DKIM-Signature and no ARC set, which is most inbound
// mail: then it gets only the header block (plus the empty line that ends it), which the SMTP
// layer already split off. Every result and header is the same: without a signature no body is
// hashed, and SPF, DMARC (From:) and ARC (its header fields) read only the header
// (test/hygiene/authenticate.test.ts compares both against mailauth on the whole message).

import type { Resolver } from 'node:dns/promises';
import type { Readable } from 'node:stream';
import { type AuthenticateResult, authenticate } from 'mailauth';
import { peerAddress } from '../core/ip.ts';
import { type ArcResult, arcResultOf, withArcNone } from './arc.ts';

export type SpfResult = 'pass' | 'fail' | 'softfail' | 'neutral' | 'none' | 'temperror' | 'permerror';
export type DmarcResult = 'pass' | 'fail' | 'none' | 'temperror' | 'permerror';
export type DmarcPolicy = 'none' | 'quarantine' | 'reject';

export interface AuthSummary {
  readonly spf: SpfResult;
  /** One entry per DKIM-Signature: signing domain and result. */
  readonly dkim: readonly { readonly domain: string; readonly result: string }[];
  /** null when the From: domain publishes no DMARC record (or the message has no single author domain). */
  readonly dmarc: {
    readonly result: DmarcResult;
    /** The effective policy for this author domain (p, or sp for a subdomain; t=y lowers it). */
    readonly policy: DmarcPolicy;
    readonly domain: string;
  } | null;
  /** RFC 8617 §5.2: the ARC chain's validation, and the cv= a seal of ours would carry
   *  (null: the chain already failed and is never sealed again). */
  readonly arc: { readonly result: ArcResult; readonly cv: ArcResult | null };
  /** Received-SPF and Authentication-Results fields, each ending in CRLF (RFC 7208 §9.1, RFC 8601),
   *  the latter always with an arc= result (RFC 8617 §10.1). */
  readonly headers: string;
  /** What a DMARC aggregate report row needs (RFC 7489 §7.2, src/reports/dmarc-*.ts); present
   *  when the policy domain's record has a rua tag and the result is pass or fail. */
  readonly report?: DmarcReportFacts;
}

/** The facts of one DMARC evaluation for aggregate reports (RFC 7489 Appendix C). */
export interface DmarcReportFacts {
  /** The domain whose record applied (the From: domain or its organizational domain). */
  readonly policyDomain: string;
  /** The DMARC record as published (its tags: rua, adkim, aspf, p, sp, pct, fo). */
  readonly record: string;
  readonly headerFrom: string;
  /** The MAIL FROM domain; the HELO name for a null sender. */
  readonly envelopeFrom: string;
  readonly dkimAligned: boolean;
  readonly spfAligned: boolean;
  /** The policy to apply on failure (p, sp; t=y lowers it): a disposition other than this for
   *  a failing message is reported with the reason local_policy. */
  readonly policy: DmarcPolicy;
  readonly dkim: readonly { readonly domain: string; readonly selector: string; readonly result: string }[];
  readonly spf: { readonly domain: string; readonly scope: 'mfrom' | 'helo'; readonly result: SpfResult };
}

export interface AuthInput {
  /** The whole message, opened only when its header has DKIM or ARC fields. */
  readonly message: () => Readable;
  /** The message's header block, without the empty line that ends it. */
  readonly headerBlock: Buffer;
  readonly ip: string;
  readonly helo: string;
  /** MAIL FROM; '' for the null sender. */
  readonly sender: string;
  readonly authservId: string;
  readonly resolver: Pick<Resolver, 'resolve'>;
}

const SPF: ReadonlySet<string> = new Set(['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror']);

export async function checkMessage(input: AuthInput): Promise<AuthSummary> {
  const res = await authenticate(signed(input.headerBlock) ? input.message() : headerOnly(input.headerBlock), {
    ip: peerAddress(input.ip),
    helo: input.helo,
    sender: input.sender,
    mta: input.authservId,
    resolver: (name: string, rrtype: string) => input.resolver.resolve(name, rrtype) as Promise<string[] | string[][]>,
    disableBimi: true,
  });
  const spfRaw = normal(res.spf ? res.spf.status.result : 'none');
  const dmarcRaw = res.dmarc ? normal(res.dmarc.status.result) : null;
  const spf = (SPF.has(spfRaw) ? spfRaw : 'none') as SpfResult;
  const report = res.dmarc && (dmarcRaw === 'pass' || dmarcRaw === 'fail') ? reportFacts(res, spf, input) : null;
  return {
    spf,
    dkim: (res.dkim.results ?? []).map((r) => ({ domain: r.signingDomain ?? '', result: normal(r.status.result) })),
    dmarc:
      res.dmarc && dmarcRaw && dmarcRaw !== 'none'
        ? {
            result: (['pass', 'fail', 'temperror', 'permerror'].includes(dmarcRaw) ? dmarcRaw : 'none') as DmarcResult,
            policy: policyOf(res.dmarc.policy),
            domain: res.dmarc.status.header?.from ?? res.dmarc.domain,
          }
        : null,
    arc: arcResultOf(res.arc),
    headers: authResultsFirst(withArcNone(res.headers)),
    ...(report ? { report } : {}),
  };
}

/** RFC 7489 §7.2: the facts of a report row, from mailauth's result; null without a rua tag
 *  (the record's raw text is mailauth's `rr`; src/reports/dmarc-record.ts reads its tags). */
function reportFacts(res: AuthenticateResult, spf: SpfResult, input: AuthInput): DmarcReportFacts | null {
  const d = res.dmarc || null;
  if (!d?.rr || !/(^|;)\s*rua\s*=/i.test(d.rr)) return null;
  const helo = input.sender === '';
  const spfDomain = res.spf ? res.spf.domain : helo ? input.helo : domainPart(input.sender);
  return {
    policyDomain: (d.policyDomain ?? d.domain).toLowerCase(),
    record: d.rr,
    headerFrom: (d.status.header?.from ?? d.domain).toLowerCase(),
    envelopeFrom: (helo ? input.helo : domainPart(input.sender)).toLowerCase(),
    dkimAligned: Boolean(d.alignment.dkim.result),
    spfAligned: Boolean(d.alignment.spf.result),
    policy: policyOf(d.policy),
    // mailauth reports a message without a signature as one result "none" without a domain.
    dkim: (res.dkim.results ?? [])
      .filter((r) => r.signingDomain)
      .map((r) => ({
        domain: (r.signingDomain ?? '').toLowerCase(),
        selector: r.selector ?? '',
        result: normal(r.status.result),
      })),
    spf: { domain: (spfDomain ?? '').toLowerCase(), scope: helo ? 'helo' : 'mfrom', result: spf },
  };
}

function domainPart(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

/** RFC 8601 §5: Authentication-Results goes above the other trace fields (Received-SPF). */
function authResultsFirst(headers: string): string {
  const fields = headers.split(/\r\n(?=[^ \t])/).filter((f) => f.trim() !== '');
  fields.sort((a, b) => Number(!/^authentication-results:/i.test(a)) - Number(!/^authentication-results:/i.test(b)));
  return fields.map((f) => (f.endsWith('\r\n') ? f : `${f}\r\n`)).join('');
}

/** mailauth spells temporary errors "temperror" or "temperr". */
function normal(result: string): string {
  return result === 'temperr' ? 'temperror' : result;
}

function policyOf(p: string | undefined): DmarcPolicy {
  return p === 'reject' || p === 'quarantine' ? p : 'none';
}

const CRLF = Buffer.from('\r\n');
/** Field names whose presence needs the whole message (DKIM body hashes; ARC-Message-Signature
 *  hashes the body too), matched as line prefixes without case: "dkim-signature", "arc-". */
const NEEDS_BODY = [Buffer.from('dkim-signature'), Buffer.from('arc-')];

/** True when a line of the header block starts with one of NEEDS_BODY (a continuation line
 *  starts with white space and never matches). Linear: one pass over the line starts. */
function signed(header: Buffer): boolean {
  for (let start = 0; start < header.length; ) {
    for (const name of NEEDS_BODY) if (startsWithNoCase(header, start, name)) return true;
    const nl = header.indexOf(0x0a, start);
    if (nl < 0) break;
    start = nl + 1;
  }
  return false;
}

function startsWithNoCase(buf: Buffer, at: number, lower: Buffer): boolean {
  if (at + lower.length > buf.length) return false;
  for (let i = 0; i < lower.length; i++) {
    const b = buf[at + i] as number;
    if ((b >= 0x41 && b <= 0x5a ? b | 0x20 : b) !== lower[i]) return false;
  }
  return true;
}

/** The header block as a message without a body: the block and the empty line after it. */
function headerOnly(header: Buffer): Buffer {
  return Buffer.concat([header, CRLF]);
}
