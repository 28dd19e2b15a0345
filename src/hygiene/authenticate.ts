// SPF (RFC 7208), DKIM (RFC 6376, RFC 8463) and DMARC (RFC 7489) for one received message,
// through mailauth, with every DNS query going to our configured resolvers. This module only
// runs the checks and boils the results down to what decide.ts needs; the policy is ours.
//
// SPF checks the MAIL FROM identity, or the HELO identity for a null sender (RFC 7208 §2.4:
// mailauth does this when `sender` is empty). DMARC alignment: relaxed or strict as the record
// says, with the Public Suffix List (tldts) for organizational domains.

import type { Resolver } from 'node:dns/promises';
import type { Readable } from 'node:stream';
import { authenticate } from 'mailauth';

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
  /** Received-SPF and Authentication-Results fields, each ending in CRLF (RFC 7208 §9.1, RFC 8601). */
  readonly headers: string;
}

export interface AuthInput {
  readonly message: Readable;
  readonly ip: string;
  readonly helo: string;
  /** MAIL FROM; '' for the null sender. */
  readonly sender: string;
  readonly authservId: string;
  readonly resolver: Pick<Resolver, 'resolve'>;
}

const SPF: ReadonlySet<string> = new Set(['pass', 'fail', 'softfail', 'neutral', 'none', 'temperror', 'permerror']);

export async function checkMessage(input: AuthInput): Promise<AuthSummary> {
  const res = await authenticate(input.message, {
    ip: input.ip.replace(/^::ffff:(?=\d+\.\d+\.\d+\.\d+$)/i, ''),
    helo: input.helo,
    sender: input.sender,
    mta: input.authservId,
    resolver: (name: string, rrtype: string) => input.resolver.resolve(name, rrtype) as Promise<string[] | string[][]>,
    disableBimi: true,
  });
  const spfRaw = normal(res.spf ? res.spf.status.result : 'none');
  const dmarcRaw = res.dmarc ? normal(res.dmarc.status.result) : null;
  return {
    spf: (SPF.has(spfRaw) ? spfRaw : 'none') as SpfResult,
    dkim: (res.dkim.results ?? []).map((r) => ({ domain: r.signingDomain ?? '', result: normal(r.status.result) })),
    dmarc:
      res.dmarc && dmarcRaw && dmarcRaw !== 'none'
        ? {
            result: (['pass', 'fail', 'temperror', 'permerror'].includes(dmarcRaw) ? dmarcRaw : 'none') as DmarcResult,
            policy: policyOf(res.dmarc.policy),
            domain: res.dmarc.status.header?.from ?? res.dmarc.domain,
          }
        : null,
    headers: authResultsFirst(res.headers),
  };
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
