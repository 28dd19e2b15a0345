// The contract between the Sieve interpreter (src/sieve/interpret/) and delivery, which runs it
// for every local recipient (docs/sieve.md, docs/architecture.md §3). The interpreter is pure but
// for the lookups of SieveContext (duplicate state, mailbox existence, included scripts), which
// may be asynchronous; it never performs an action itself: it returns the actions, and delivery
// carries them out (RFC 5228 §2.10: actions are executed after the script has completed).

import type { Script } from './ast.ts';

/** The message as a script sees it. Header values are unfolded, with RFC 2047 encoded words
 *  decoded (RFC 5228 §2.7.2); the raw header block is bounded by the SMTP header limit. */
export interface SieveMessage {
  /** Every field of the header, in order, names as written. */
  readonly headers: readonly { readonly name: string; readonly value: string }[];
  /** Size in octets (RFC 5228 §5.9), as delivered (without our per-copy prefix). */
  readonly size: number;
  /** The whole message, read only when a `body` test or `:mime` needs it (bounded by the
   *  interpreter's LIMITS.sieve body budget). */
  readonly raw: () => Promise<Buffer>;
}

/** RFC 5228 §5.4 envelope; RFC 5231/5233 address parts apply to these. */
export interface SieveEnvelope {
  /** The envelope sender (MAIL FROM), '' for the null sender. */
  readonly from: string;
  /** The recipient this run is for (RCPT TO, after alias resolution: the account's address). */
  readonly to: string;
  /** The recipient as the client gave it, when it differs (an alias, a sub-address). */
  readonly originalTo?: string;
  /** The authenticated user (submission), or null. */
  readonly auth: string | null;
}

export interface SieveContext {
  readonly now: Date;
  /** Our addresses for this recipient (its own address and its aliases): vacation's implicit
   *  :addresses (RFC 5230 §4.5) and the "not to our own address" rule. */
  readonly ownAddresses: readonly string[];
  /** RFC 7352: true when a message with this id was tracked under this handle within `seconds`
   *  for this user. Only a check: the interpreter returns a `duplicate-track` action for each
   *  duplicate test, which delivery records once the message is delivered (RFC 7352 §3). */
  readonly duplicateSeen: (handle: string, id: string, seconds: number) => Promise<boolean>;
  /** RFC 5490 `mailboxexists` and fileinto without :create. */
  readonly mailboxExists: (name: string) => Promise<boolean>;
  /** RFC 6609 include: the compiled script or null when there is none. */
  readonly include: (name: string, location: 'personal' | 'global') => Promise<Script | null>;
}

/** One action, in the order the script gave it (RFC 5228 §2.10.1: a duplicate fileinto/keep of
 *  the same mailbox is one action; flags merged as Pigeonhole does). */
export type SieveAction =
  | { readonly kind: 'keep'; readonly flags: readonly string[] | null }
  | {
      readonly kind: 'fileinto';
      /** The mailbox as given (UTF-8; delivery maps it to its store name). */
      readonly mailbox: string;
      readonly flags: readonly string[] | null;
      /** RFC 5490 :create */
      readonly create: boolean;
    }
  | { readonly kind: 'redirect'; readonly address: string }
  | { readonly kind: 'reject'; readonly reason: string; readonly ereject: boolean }
  | { readonly kind: 'discard' }
  | {
      readonly kind: 'vacation';
      /** The address the reply goes to: the envelope sender (RFC 5230 §4.1). Whether a reply is
       *  sent at all (null sender, lists, Auto-Submitted, our address not in To/Cc, the period)
       *  is decided by delivery, src/sieve/vacation*.ts. */
      readonly to: string;
      /** RFC 5230 §4.1 / RFC 6131: the period in seconds (clamped to the configured bounds). */
      readonly seconds: number;
      readonly subject: string | null;
      readonly from: string | null;
      readonly reason: string;
      /** :mime: `reason` is a MIME entity (headers + body). */
      readonly mime: boolean;
      /** :handle, or the default derived from the arguments (RFC 5230 §4.2). */
      readonly handle: string;
      /** RFC 5230 §4.5 :addresses, our further addresses (besides ctx.ownAddresses). */
      readonly addresses?: readonly string[];
    }
  | {
      /** RFC 7352: ids to mark as seen once the run completes (delivery commits them after the
       *  actions succeeded). */
      readonly kind: 'duplicate-track';
      readonly handle: string;
      readonly id: string;
      readonly seconds: number;
    };

export interface SieveOutcome {
  readonly actions: readonly SieveAction[];
  /** RFC 5228 §2.10.2: whether the implicit keep remains (with the flags current at the end, RFC
   *  5232 §3). */
  readonly implicitKeep: { readonly flags: readonly string[] | null } | null;
  /** A run-time error: the message is then kept (implicit keep) and the error logged; the
   *  actions carried out are none but the keep (Pigeonhole's behaviour). */
  readonly error: string | null;
  /** Steps executed (commands and tests), for logs and tests. */
  readonly steps: number;
}

export type SieveRunner = (
  script: Script,
  msg: SieveMessage,
  envelope: SieveEnvelope,
  ctx: SieveContext,
) => Promise<SieveOutcome>;
