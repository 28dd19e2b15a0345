// The outbound queue seam (design.md: DeliveryQueue). Submission, alias forwarding and bounce
// generation put messages in; the runner takes them out to remote MX hosts or the relay. The
// SQLite implementation is queue/db.ts; a PostgreSQL one can follow the same contract.
//
// Durability contract of enqueue(), stated once here:
//   write {state}/queue/ID.tmp -> fsync file -> rename to ID.eml -> fsync directory
//   -> INSERT message + recipient rows in one transaction -> resolve.
// Only after that may a 250 be sent. A message whose file exists without a row was never
// acknowledged and is removed at start; a `held` message (the submitter had not answered yet
// when the process died) is removed too: its client never got 250 and sends it again.

import type { SpooledMessage } from '../store/types.ts';

export type QueueId = string & { readonly __brand: 'QueueId' };

/** Where a queued message came from (logs, metrics, `queue list`). */
export type QueueOrigin = 'submission' | 'forward' | 'dsn';

export interface OutboundRecipient {
  /** Normalised address (punycode domain). */
  readonly address: string;
  /** RFC 3461 ORCPT as received ("rfc822;addr"), for DSNs. */
  readonly orcpt?: string | null;
}

export interface OutboundMessage {
  /** Envelope sender; '' is the null sender (bounces: never bounced themselves). */
  readonly sender: string;
  readonly recipients: readonly OutboundRecipient[];
  /** Header lines to write before the message (Received ...), CRLF-terminated. */
  readonly prefix: Buffer;
  /** The message bytes (CRLF line endings). The caller disposes of it. */
  readonly message: SpooledMessage;
  readonly origin: QueueOrigin;
  /** The message id of the logs (`msg_id`), so one grep follows it from SMTP to delivery. */
  readonly logId: string;
  /** Needs SMTPUTF8 at the next hop (RFC 6531): UTF-8 envelope or headers. */
  readonly smtputf8?: boolean;
  /** Authenticated user who submitted it, if any (logs, `queue show`). */
  readonly authUser?: string | null;
  /** RFC 3461 ENVID. */
  readonly envid?: string | null;
  /** Keep the message invisible to the runner until release() (see header comment). */
  readonly hold?: boolean;
  /** An opaque reference of whoever queued it (JMAP: its EmailSubmission), carried by the
   *  outcome events (QueueEvent) and by the entries a scheduled message becomes. */
  readonly tag?: string | null;
  /** A scheduled message (RFC 4865 FUTURERELEASE, JMAP delayed send): ms since epoch at which
   *  it is released. Until then it waits, durable like any entry, and may be canceled; at that
   *  time the runner hands it back to the dispatcher (its recipients are routed then: local
   *  copies delivered, remote ones queued as ordinary entries with the same tag). */
  readonly releaseAt?: number;
}

export type RecipientState = 'queued' | 'sent' | 'failed';

export interface QueuedRecipient {
  readonly address: string;
  readonly domain: string;
  readonly orcpt: string | null;
  readonly state: RecipientState;
  readonly attempts: number;
  /** ms since epoch */
  readonly nextAttempt: number;
  readonly lastAttempt: number | null;
  /** Last reply or error, e.g. "451 4.7.1 greylisted" or "connection refused". */
  readonly lastReply: string | null;
  readonly lastHost: string | null;
  readonly delayNotified: boolean;
}

export interface QueuedMessage {
  readonly id: QueueId;
  readonly sender: string;
  readonly created: number;
  readonly size: number;
  readonly origin: QueueOrigin;
  readonly logId: string;
  readonly smtputf8: boolean;
  readonly authUser: string | null;
  readonly envid: string | null;
  /** Held by the operator (`hold`): not attempted until released. */
  readonly held: boolean;
  /** See OutboundMessage.tag. */
  readonly tag: string | null;
  /** A scheduled message's release time (ms), 0 for an ordinary entry. */
  readonly releaseAt: number;
  readonly recipients: readonly QueuedRecipient[];
}

/** What a scheduled message became when it was released (Dispatcher.releaseScheduled). */
export interface ReleaseResult {
  /** The ordinary entries made for its remote recipients. */
  readonly queueIds: readonly QueueId[];
  /** Recipient (as queued) -> what it became: delivered locally, refused (a reply), and the
   *  remote addresses queued for it (itself, or where an alias of ours forwards). */
  readonly routes: Readonly<
    Record<string, { readonly local: boolean; readonly refused: string | null; readonly remote: readonly string[] }>
  >;
}

/** What the queue tells its observers (QueueStore.observe), after the change is durable. The
 *  queue knows nothing of who listens: an upper layer (JMAP EmailSubmission) follows its own
 *  entries by their tag. */
export type QueueEvent =
  | {
      readonly kind: 'attempt';
      readonly queueId: QueueId;
      readonly tag: string | null;
      readonly outcomes: readonly {
        readonly address: string;
        readonly kind: 'sent' | 'failed' | 'deferred';
        readonly reply: string;
      }[];
    }
  | {
      readonly kind: 'released';
      readonly queueId: QueueId;
      readonly tag: string | null;
      readonly result: ReleaseResult;
    };

export interface DeliveryQueue {
  enqueue(m: OutboundMessage): Promise<QueueId>;
  /** Makes a held message eligible for delivery (the submitter has answered 250); with `hold`,
   *  turns it into the operator's hold instead (a milter quarantined it). */
  release(id: QueueId, opts?: { readonly hold?: boolean }): void;
  /** Holds a message (the operator's hold, kept across restarts); false if there is none. */
  hold(id: QueueId): boolean;
  /** Every message with at least one recipient still queued, oldest first (held ones too). */
  list(opts?: { limit?: number }): QueuedMessage[];
  get(id: QueueId): QueuedMessage | null;
  /** Makes recipients due now; returns how many. */
  retry(id: QueueId | 'all'): number;
  /** Removes a message and its file without a bounce; false if there was none. */
  drop(id: QueueId): Promise<boolean>;
}
