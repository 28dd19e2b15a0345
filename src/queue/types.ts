// The outbound queue seam (design.md: DeliveryQueue, QueueBackend). Submission, alias
// forwarding and bounce generation put messages in; the runner takes them out to remote MX
// hosts or the relay. Two implementations pass the same contract suite (test/queue/contract.ts):
// SQLite + spool files on one node (queue/store.ts) and PostgreSQL + a shared spool directory
// for several nodes (queue/postgres.ts, docs/cluster.md).
//
// Durability contract of enqueue(), stated once here:
//   write {state}/queue/ID.tmp -> fsync file -> rename to ID.eml -> fsync directory
//   -> INSERT message + recipient rows in one transaction -> resolve.
// Only after that may a 250 be sent. A message whose file exists without a row was never
// acknowledged and is removed at start; a `held` message (the submitter had not answered yet
// when the process died) is removed too: its client never got 250 and sends it again.

import type { Readable } from 'node:stream';
import type { SpooledMessage } from '../store/types.ts';

export type QueueId = string & { readonly __brand: 'QueueId' };

/** Where a queued message came from (logs, metrics, `queue list`). */
export type QueueOrigin = 'submission' | 'forward' | 'dsn';

/** The tag of a TLS report we send (RFC 8460 §5.3: "sending MTAs MUST deliver reports despite
 *  any TLS-related failures and SHOULD NOT include this SMTP session in the next report"): the
 *  runner applies no MTA-STS policy to it (opportunistic TLS, plaintext if the handshake fails)
 *  and does not count its sessions. */
export const TLS_REPORT_TAG = 'tls-report';

export interface OutboundRecipient {
  /** Normalised address (punycode domain). */
  readonly address: string;
  /** RFC 3461 ORCPT as received ("rfc822;addr"), for DSNs. */
  readonly orcpt?: string | null;
  /** RFC 3461 §4.1 NOTIFY, normalised ('NEVER', or of SUCCESS,FAILURE,DELAY in that order);
   *  null: not given (notices of failure and delay, as without DSN). */
  readonly notify?: string | null;
}

/** RFC 3461 §4.3: what a failure notice returns of the message. */
export type DsnRet = 'FULL' | 'HDRS';

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
  /** RFC 3461 RET; null: not given (headers only, as without DSN). */
  readonly ret?: DsnRet | null;
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
  /** See OutboundRecipient.notify. */
  readonly notify: string | null;
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
  readonly ret: DsnRet | null;
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

/** What the queue tells its observers (QueueBackend.observe), after the change is durable. The
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
  release(id: QueueId, opts?: { readonly hold?: boolean }): Promise<void>;
  /** Holds a message (the operator's hold, kept across restarts); false if there is none. */
  hold(id: QueueId): Promise<boolean>;
  /** Every message with at least one recipient still queued, oldest first (held ones too). */
  list(opts?: { limit?: number }): Promise<QueuedMessage[]>;
  get(id: QueueId): Promise<QueuedMessage | null>;
  /** Makes recipients due now; returns how many. */
  retry(id: QueueId | 'all'): Promise<number>;
  /** Removes a message and its file without a bounce; false if there was none. */
  drop(id: QueueId): Promise<boolean>;
}

/** One unit of delivery work: the queued recipients of one message at one domain, leased to
 *  the runner that claimed it until it records the outcome (or its lease runs out). */
export interface Job {
  readonly message: QueuedMessage;
  readonly domain: string;
  readonly recipients: readonly QueuedRecipient[];
  /** Names this claim: an outcome is written only while the lease is still this one. */
  readonly lease: string;
}

/** The observers' event of a recorded attempt. */
export function attemptEvent(job: Job, outcomes: readonly RecipientOutcome[]): QueueEvent {
  return {
    kind: 'attempt',
    queueId: job.message.id,
    tag: job.message.tag,
    outcomes: outcomes.map((o) => ({ address: o.address, kind: o.kind, reply: o.reply })),
  };
}

/** The domain of a scheduled message's release job (claimScheduled): not a DNS name. */
export const SCHEDULED = '*';

/** What happened to one recipient in one attempt. */
export type RecipientOutcome =
  | { readonly address: string; readonly kind: 'sent'; readonly reply: string; readonly host: string | null }
  | { readonly address: string; readonly kind: 'failed'; readonly reply: string; readonly host: string | null }
  | {
      readonly address: string;
      readonly kind: 'deferred';
      readonly reply: string;
      readonly host: string | null;
      readonly nextAttempt: number;
      readonly delayNotified?: boolean;
    };

/** What start-up recovery removed (see the header comment). */
export interface QueueRecovery {
  readonly held: number;
  readonly orphanFiles: number;
  readonly missingFiles: string[];
}

/** The whole queue as the runner, the dispatcher, the CLI and the API use it. Every method is
 *  async: the PostgreSQL backend answers over the network. */
export interface QueueBackend extends DeliveryQueue {
  /** Called after enqueue/release/retry/record so a runner in this process starts at once. */
  onWork: (() => void) | null;
  /** How long a claim leases a job (ms); the runner renews it every third of that. */
  readonly leaseMs: number;
  /** Start-up recovery: unacknowledged (held) messages and orphan files of this node go. */
  recover(): Promise<QueueRecovery>;
  counts(): Promise<{ messages: number; recipients: number }>;
  /** Queued recipients by state (arcline_queue_recipients_by_state): held (the message is),
   *  deferred (tried before), waiting (not tried yet). */
  countsByState(): Promise<{ held: number; deferred: number; waiting: number }>;
  /** Leases up to `limit` due (message, domain) jobs, oldest first. `admit` is asked in order
   *  for each candidate's domain (the runner's per-destination limits); a refused one stays
   *  due. A job leased by another runner is not handed out until its lease has run out. */
  claim(now: number, limit: number, admit: (domain: string) => boolean): Promise<Job[]>;
  /** When the next recipient not leased now becomes due (ms), or null. */
  nextDue(): Promise<number | null>;
  /** Renews the lease of a job being delivered; false when it is no longer ours. */
  extend(job: Job): Promise<boolean>;
  /** Gives a job back without an attempt (a rate limit held it): due again as it was. */
  unclaim(job: Job): Promise<void>;
  /** Records the outcome of an attempt in one transaction; true when the message is finished
   *  (its rows and file are gone). Throws LeaseLost when another runner took the job over:
   *  its result stands, ours is not written. */
  record(job: Job, outcomes: readonly RecipientOutcome[], now: number): Promise<boolean>;
  /** Follows what happens to queued messages (QueueEvent), told by the node that made the
   *  change once it is durable; returns the unsubscribe. */
  observe(listener: (e: QueueEvent) => void): () => void;
  /** Leases up to `limit` scheduled messages whose release time has come (OutboundMessage
   *  .releaseAt), as jobs of domain SCHEDULED with every recipient. A released one stays
   *  leased while the dispatcher routes it (extend() renews it), so no other runner releases
   *  it and cancel() fails meanwhile. */
  claimScheduled(now: number, limit: number): Promise<Job[]>;
  /** The release is durable (the dispatcher's copies and entries are): the scheduled entry
   *  goes and observers hear 'released'. Throws LeaseLost when the lease is no longer ours. */
  finishScheduled(job: Job, result: ReleaseResult): Promise<void>;
  /** The release failed (local trouble): tried again at `at`, the lease given back. */
  rescheduleScheduled(job: Job, at: number): Promise<void>;
  /** Cancels a scheduled message not yet released (RFC 8621 §7 undoStatus "canceled"): its
   *  rows and file go. False when it is being released, was released or never was scheduled. */
  cancel(id: QueueId): Promise<boolean>;
  /** A message's file as a spooled message (the dispatcher routes a scheduled one from it). */
  messageFile(m: QueuedMessage): SpooledMessage;
  /** False when the message file is gone (damaged storage): the runner bounces it. */
  hasFile(id: QueueId): Promise<boolean>;
  /** The message file, for the transport. */
  open(id: QueueId): Readable;
  close(): Promise<void>;
}

/** record() of a job whose lease another runner has taken over. */
export class LeaseLost extends Error {
  constructor(id: QueueId, domain: string) {
    super(`the lease on ${id} for ${domain} was taken over by another runner`);
    this.name = 'LeaseLost';
  }
}
