// Inbound mail hygiene as staged checks on port 25 (design.md: connection -> sender ->
// recipient -> body), each stage returning a verdict the SMTP service maps to the wire:
//   connection: trusted networks skip everything; DNS blocklists ([hygiene] dnsbl);
//   body:       SPF + DKIM + DMARC + ARC (authenticate.ts) -> decide.ts per recipient domain ->
//               one verdict for the message, plus the Authentication-Results header.
// SPF is evaluated with the body stage (mailauth does all three in one pass over the message);
// its result only ever acts at the end of DATA, where DMARC can overrule it.
//
// One message, one answer: when recipients' domains ask for different actions, the message is
// refused only if every local recipient refuses it (or it is deferred if all refuse or defer);
// otherwise the recipients that would refuse get it in Junk (never silently dropped).
// A user's allowlist (`arcline allow add`) turns Junk into INBOX for that user.

import type { Resolver } from 'node:dns/promises';
import type { Config } from '../config/schema.ts';
import { normalizeDomain } from '../core/address.ts';
import { errorMessage } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import type { Directory } from '../directory/types.ts';
import { cachingResolve } from '../dns/resolver.ts';
import type { SpooledMessage } from '../store/types.ts';
import { authResultsValue, type InboundArc } from './arc.ts';
import { type AuthSummary, checkMessage, type DmarcPolicy, type DmarcReportFacts } from './authenticate.ts';
import { type Actions, decide, type Verdict } from './decide.ts';
import { Dnsbl, type DnsblListing } from './dnsbl.ts';
import { withoutOurAuthResults } from './headers.ts';
import { Networks } from './networks.ts';

export interface HygieneDeps {
  readonly config: Config;
  readonly resolver: Resolver;
  readonly directory: Directory;
  readonly log: Logger;
  /** Told of each DMARC evaluation a report was asked for (reports/dmarc-recorder.ts). */
  readonly dmarcSink?: DmarcSink;
}

/** RFC 7489 §7.2: an evaluation for the aggregate reports, with the disposition applied. */
export interface DmarcSink {
  /** `report`: the message is itself an aggregate report (counted, but no report is sent for
   *  a day that has only those: two receivers reporting to each other stop, as mox does). */
  record(facts: DmarcReportFacts, ip: string, disposition: DmarcPolicy, report: boolean): void;
}

export interface BodyInput {
  readonly message: SpooledMessage;
  /** The message's header block (for the forged Authentication-Results check). */
  readonly headerBlock: Buffer;
  readonly ip: string;
  readonly helo: string;
  readonly sender: string;
  /** Local recipients (normalised address -> accounts). */
  readonly recipients: ReadonlyMap<string, readonly AccountId[]>;
  /** Remote addresses the message is forwarded to (their alias decides). */
  readonly forwardedFor: readonly string[];
  /** Author addresses from From: (for the allowlists). */
  readonly authors: readonly string[];
  readonly log: Logger;
}

export type BodyOutcome =
  | { readonly kind: 'refuse'; readonly verdict: Extract<Verdict, { kind: 'reject' | 'defer' }> }
  | {
      readonly kind: 'deliver';
      /** Authentication-Results (+ Received-SPF) fields to put on top of every copy. */
      readonly header: string;
      /** Accounts that get the message in Junk. */
      readonly junk: ReadonlySet<AccountId>;
      /** The header block with forged Authentication-Results removed, or null if unchanged. */
      readonly cleanedHeader: Buffer | null;
      /** RFC 8617: the ARC chain's result and our Authentication-Results, for sealing the
       *  copies we forward (queue/dispatch.ts); null when unchecked (trusted network). */
      readonly arc?: InboundArc | null;
    };

export class Hygiene {
  readonly authservId: string;
  readonly #d: HygieneDeps;
  readonly #trusted: Networks;
  readonly #dnsbl: Dnsbl | null;
  /** [hygiene.domains] with the domain names normalised (lower case, punycode). */
  readonly #overrides = new Map<string, Partial<Actions>>();
  /** SPF/DKIM/DMARC lookups, cached briefly: the same senders' records are asked for again and again. */
  readonly #lookup: Pick<Resolver, 'resolve'>;

  constructor(deps: HygieneDeps) {
    this.#d = deps;
    const h = deps.config.hygiene;
    for (const [name, o] of Object.entries(h.domains)) this.#overrides.set(normalizeDomain(name) ?? name, o);
    this.authservId = h.authserv_id || deps.config.hostname;
    this.#trusted = new Networks(h.trusted_networks);
    this.#dnsbl = h.dnsbl.length > 0 ? new Dnsbl({ zones: h.dnsbl, resolver: deps.resolver }) : null;
    this.#lookup = {
      resolve: cachingResolve(deps.resolver, { maxTtlMs: deps.config.dns.cache_max_ttl }),
    } as Pick<Resolver, 'resolve'>;
  }

  isTrusted(ip: string): boolean {
    return this.#trusted.has(ip);
  }

  /** Connection stage: the DNSBL listing of a client that is to be refused, or null. */
  async atConnect(ip: string): Promise<DnsblListing | null> {
    if (!this.#dnsbl || this.isTrusted(ip)) return null;
    return this.#dnsbl.check(ip);
  }

  /** Body stage (see the header comment). */
  async atBody(input: BodyInput): Promise<BodyOutcome> {
    const cleanedHeader = withoutOurAuthResults(input.headerBlock, this.authservId);
    if (cleanedHeader) input.log.warn('removed an Authentication-Results header that claimed to be ours');
    if (this.isTrusted(input.ip)) {
      return {
        kind: 'deliver',
        header: `Authentication-Results: ${this.authservId}; none (trusted network)\r\n`,
        junk: new Set(),
        cleanedHeader,
        arc: null,
      };
    }
    let auth: AuthSummary;
    try {
      auth = await checkMessage({
        message: () => input.message.open(),
        headerBlock: input.headerBlock,
        ip: input.ip,
        helo: input.helo,
        sender: input.sender,
        authservId: this.authservId,
        resolver: this.#lookup,
      });
    } catch (e) {
      // A failure of the checks themselves (not a DNS answer) must not lose or refuse mail for good.
      input.log.error({ err: errorMessage(e) }, 'authentication checks failed');
      return {
        kind: 'refuse',
        verdict: {
          kind: 'defer',
          reason: 'checks failed',
          code: 451,
          enhanced: '4.3.0',
          text: 'Temporary local problem, please try again later',
        },
      };
    }
    const perDomain = new Map<string, Verdict>();
    const verdictFor = (domain: string): Verdict => {
      let v = perDomain.get(domain);
      if (!v) {
        v = decide(auth, this.#actions(domain));
        perDomain.set(domain, v);
      }
      return v;
    };
    const local = [...input.recipients.entries()].map(([rcpt, accounts]) => ({
      accounts,
      verdict: verdictFor(domainOf(rcpt)),
    }));
    const all = local.map((l) => l.verdict);
    if (local.length === 0) {
      // Only forwarded copies (an alias to outside): the alias domain's verdict decides.
      for (const f of input.forwardedFor) all.push(verdictFor(domainOf(f)));
    }
    input.log.info(
      {
        spf: auth.spf,
        dkim: auth.dkim.map((d) => `${d.domain}:${d.result}`),
        dmarc: auth.dmarc ? `${auth.dmarc.result} p=${auth.dmarc.policy} ${auth.dmarc.domain}` : 'none',
        arc: auth.arc.result,
        verdicts: [...perDomain.entries()].map(([d, v]) => `${d}:${v.kind}`),
      },
      'authentication results',
    );
    const refusals = all.filter((v): v is Extract<Verdict, { kind: 'reject' | 'defer' }> =>
      ['reject', 'defer'].includes(v.kind),
    );
    if (all.length > 0 && refusals.length === all.length) {
      // Everyone refuses: a deferral wins over a rejection (it may pass later).
      const verdict = refusals.find((v) => v.kind === 'defer') ?? (refusals[0] as (typeof refusals)[number]);
      if (verdict.kind === 'reject') this.#report(auth, input, 'reject');
      return { kind: 'refuse', verdict };
    }
    const junk = new Set<AccountId>();
    for (const l of local) {
      if (l.verdict.kind === 'accept') continue;
      for (const account of l.accounts) {
        if (await this.#d.directory.allowsSender(account, [input.sender, ...input.authors])) continue;
        junk.add(account);
      }
    }
    this.#report(auth, input, junk.size > 0 ? 'quarantine' : 'none');
    const ar = authResultsValue(auth.headers);
    const arc = ar === null ? null : { ...auth.arc, authResults: ar };
    return { kind: 'deliver', header: auth.headers, junk, cleanedHeader, arc };
  }

  /** RFC 7489 §7.2: the evaluation for the aggregate reports, with what we did (a deferred
   *  message is not counted: it comes again). */
  #report(auth: AuthSummary, input: BodyInput, disposition: DmarcPolicy): void {
    if (this.#d.dmarcSink && auth.report)
      this.#d.dmarcSink.record(auth.report, input.ip, disposition, isAggregateReport(input.headerBlock));
  }

  #actions(domain: string): Actions {
    const h = this.#d.config.hygiene;
    const override = this.#overrides.get(domain) ?? {};
    return {
      dmarc_reject: override.dmarc_reject ?? h.dmarc_reject,
      dmarc_quarantine: override.dmarc_quarantine ?? h.dmarc_quarantine,
      spf_fail: override.spf_fail ?? h.spf_fail,
    };
  }
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

const REPORT_SUBJECT = Buffer.from('subject:');
const REPORT_PREFIX = 'report domain:';

/** RFC 7489 §7.2.1.1: an aggregate report's Subject starts "Report Domain:". Linear: one pass
 *  over the line starts of the header block. */
export function isAggregateReport(header: Buffer): boolean {
  for (let start = 0; start < header.length; ) {
    const nl = header.indexOf(0x0a, start);
    const end = nl < 0 ? header.length : nl;
    if (end - start >= REPORT_SUBJECT.length) {
      const line = header
        .subarray(start, Math.min(end, start + 64))
        .toString('latin1')
        .toLowerCase();
      if (line.startsWith('subject:')) return line.slice(8).trimStart().startsWith(REPORT_PREFIX);
    }
    if (nl < 0) break;
    start = nl + 1;
  }
  return false;
}
