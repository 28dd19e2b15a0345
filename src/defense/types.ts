// What the spam and abuse defences offer the protocol layer (issue #15, docs/spam.md): small
// interfaces so a stage (smtp/accept/) can ask a question without knowing how the answer is
// kept. The implementations live beside this file (greylist, rate limits, network lists and
// bans) and are chosen in main.ts.

/** The greylisting key as postgrey builds it: client network (IPv4 /24, IPv6 /64), sender, recipient. */
export interface GreylistTriplet {
  /** The client's address; the implementation reduces it to its network. */
  readonly ip: string;
  /** The envelope sender ('' for the null sender). */
  readonly sender: string;
  /** One envelope recipient. */
  readonly recipient: string;
  /** The client's verified (forward-confirmed) reverse name, for the allowlist's host names;
   *  absent: the greylister looks it up itself when its allowlist needs it. */
  readonly hostname?: string | null;
}

export type GreylistAnswer =
  /** Not (or no longer) greylisted. */
  | { readonly kind: 'pass' }
  /** Try again later: the client gets 451 4.7.1 with a stable text. */
  | { readonly kind: 'defer'; readonly retryInSeconds: number };

export interface Greylister {
  /** Greylists `t` unless its client or sender is allowed. `force`: greylist even when
   *  greylisting is off in the configuration (rspamd asked for it, docs/spam.md). */
  check(t: GreylistTriplet, opts?: { readonly force?: boolean }): Promise<GreylistAnswer>;
}

/** What a client did that counts towards an automatic ban (docs/spam.md "Auto-ban"). */
export type Offence = 'auth' | 'protocol' | 'unknown-recipient';

/** Where protocol code reports offences; the ban policy decides what they lead to. */
export interface OffenceSink {
  offence(ip: string, kind: Offence): void;
}

/** What the IP lists and the bans say of a client, at connection (docs/spam.md). */
export type AccessVerdict =
  /** On the allow list: never refused, banned, greylisted or rate limited. */
  | { readonly kind: 'allow' }
  /** On no list and not banned. */
  | { readonly kind: 'open' }
  /** On the deny list: refused for good (554 5.7.1). */
  | { readonly kind: 'deny' }
  /** Banned for its offences until `until` (epoch ms): refused for now (421 4.7.1). */
  | { readonly kind: 'banned'; readonly until: number; readonly offence: string };

/** Asked by every listener for each connection it accepts, before anything else. */
export interface NetworkAccess {
  verdict(ip: string): AccessVerdict;
}
