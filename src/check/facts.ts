// What `arcline check` gathers (gather.ts, DNS and TLS with timeouts) and what it concludes
// (evaluate.ts, pure): plain data, so every kind of mistake is a table row in a unit test.

/** A DNS answer: the values, or absent (NXDOMAIN / NODATA), or the look-up failed. */
export type Lookup<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly absent: true }
  | { readonly ok: false; readonly absent: false; readonly error: string };

export type Status = 'pass' | 'warn' | 'fail';

/** One line of the report. */
export interface CheckResult {
  /** null for the checks of the server (addresses, reverse DNS, blocklists, certificates). */
  readonly domain: string | null;
  /** addresses | fcrdns | dnsbl | tls | mx | spf | dkim | dmarc | mta-sts | tls-rpt */
  readonly check: string;
  readonly status: Status;
  readonly message: string;
  /** What to do: zone lines as `arcline dns-records` prints them, or a sentence. */
  readonly fix: readonly string[];
}

/** The certificate a listener presented. */
export interface CertFacts {
  /** DNS names of subjectAltName (or the CN when there is none), lower case. */
  readonly names: readonly string[];
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly issuer: string;
  /** Whether the chain verified against the trusted CAs, and why not. */
  readonly trusted: boolean;
  readonly trustError: string | null;
}

export interface TlsProbe {
  /** smtp (25, STARTTLS) | submission (587, STARTTLS) | submissions (465) | imaps (993) */
  readonly service: string;
  /** The configured listen address. */
  readonly listen: string;
  readonly result: { readonly ok: true; readonly cert: CertFacts } | { readonly ok: false; readonly error: string };
}

export interface AddressFacts {
  readonly address: string;
  /** PTR names of the address. */
  readonly ptr: Lookup<readonly string[]>;
  /** For each PTR name, its A/AAAA addresses (forward confirmation). */
  readonly forward: readonly { readonly name: string; readonly addresses: readonly string[] }[];
  /** Per blocklist zone. */
  readonly dnsbl: readonly {
    readonly zone: string;
    readonly result:
      | { readonly kind: 'listed'; readonly codes: readonly string[]; readonly reason: string | null }
      | { readonly kind: 'clear' }
      | { readonly kind: 'error'; readonly error: string };
  }[];
}

export interface ServerFacts {
  readonly hostname: string;
  /** [server] public_addresses, or the A/AAAA of the host name. */
  readonly addresses: readonly string[];
  readonly addressesConfigured: boolean;
  readonly addressError: string | null;
  /** A/AAAA of the host name. */
  readonly hostAddresses: readonly string[];
  readonly perAddress: readonly AddressFacts[];
  readonly zones: readonly string[];
  readonly tls: readonly TlsProbe[];
}

export interface DkimFacts {
  readonly selector: string;
  /** A pending key (a rotation): to publish before `arcline dkim activate`. */
  readonly pending: boolean;
  /** The TXT value we publish (hygiene/dkim-keys.ts dkimTxtValue). */
  readonly expected: string;
  /** Its zone line, the fix. */
  readonly zoneLine: string;
  readonly found: Lookup<readonly string[]>;
}

export interface DomainFacts {
  readonly domain: string;
  /** Every record `arcline dns-records` prints for the domain, as zone lines (the fixes). */
  readonly records: readonly string[];
  /** MX host names we answer for: the host name and [mta_sts] mx ("*.example.net" allowed). */
  readonly ourMx: readonly string[];
  readonly mx: Lookup<readonly { readonly exchange: string; readonly priority: number }[]>;
  /** TXT records of the domain. */
  readonly txt: Lookup<readonly string[]>;
  /** mailauth's SPF result for postmaster@domain from each of our addresses. */
  readonly spf: readonly { readonly address: string; readonly result: string; readonly comment: string }[];
  readonly dkimSign: boolean;
  readonly dkim: readonly DkimFacts[];
  readonly dmarc: Lookup<readonly string[]>;
  readonly mtaStsTxt: Lookup<readonly string[]>;
  /** The _mta-sts TXT value and policy we serve. */
  readonly mtaStsExpected: { readonly txt: string; readonly policy: string };
  /** The policy fetched from our HTTPS listener as mta-sts.<domain>; null: no HTTPS listener. */
  readonly mtaStsServed:
    | { readonly ok: true; readonly status: number; readonly body: string; readonly cert: CertFacts }
    | { readonly ok: false; readonly error: string }
    | null;
  readonly tlsRpt: Lookup<readonly string[]>;
}
