// Where a message accepted by us goes: local copies through MailStore.deliver (the same path as
// inbound mail), remote recipients into the outbound queue. Used by submission, by inbound mail
// whose aliases forward outside, and by the runner for bounces.
//
// Durability across the two (the caller answers 250 only when this resolves):
//   1. queue the remote part HELD (file + rows durable, invisible to the runner);
//   2. deliver the local copies (durable);
//   3. release the queued part.
// If 2 fails the held part is dropped and the caller answers 451: nothing was acknowledged and
// nothing will be sent. If the process dies between 1 and 3, recovery drops the held part (the
// client never saw 250 and resends); local copies made in 2 may then arrive twice, the same
// at-least-once window every MTA has.
//
// Forwarded remote recipients (an alias or catch-all pointing outside, an SRS bounce sent on)
// leave with the sender the SenderRewriter gives (SRS, docs/srs.md); recipients addressed
// directly keep the sender as it is. A queue entry has one sender, so one message may become
// several entries: all are queued held in step 1 and released together in step 3. So do the
// copies a Sieve script redirects (queue/sieve-filter.ts), which run before step 1.
//
// ARC (RFC 8617 §5.1, docs/delivery.md "ARC"): a forwarded part of an inbound message gets an
// ARC set (hygiene/arc-seal.ts) over the bytes it is queued with, just before step 1; its
// forwarded recipients are grouped by forwarding domain too, since that domain's key seals.

import { Readable } from 'node:stream';
import { formatAddress, parseAddress } from '../core/address.ts';
import { ArclineError, errorMessage, isArclineError } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import type { Directory } from '../directory/types.ts';
import type { InboundArc } from '../hygiene/arc.ts';
import type { ForwardSealer } from '../hygiene/arc-seal.ts';
import { localReceivedHeader, traceHeaders } from '../smtp/trace.ts';
import { NO_REWRITE, type SenderRewriter } from '../srs/forwarding.ts';
import { bufferMessage } from '../store/spool.ts';
import type { DeliveredCopy, DeliveryTarget, MailStore, SpooledMessage } from '../store/types.ts';
import { buildDsn } from './dsn.ts';
import { readHeaderBlock } from './runner.ts';
import type { FilterPlan, FilterRequest } from './sieve-filter.ts';
import type {
  DsnRet,
  OutboundMessage,
  OutboundRecipient,
  QueueBackend,
  QueuedMessage,
  QueueId,
  QueueOrigin,
  ReleaseResult,
} from './types.ts';

/** A remote recipient; `forwardedVia` marks one that an address of ours forwards (its domain),
 *  whose copy leaves with a rewritten sender. */
export interface DispatchRecipient extends OutboundRecipient {
  readonly forwardedVia?: string;
}

export interface DispatchRequest {
  readonly sender: string;
  readonly local: readonly DeliveryTarget[];
  readonly remote: readonly DispatchRecipient[];
  /** Prefix for the queued copy (Received ...); local targets carry their own. */
  readonly remotePrefix: Buffer;
  readonly message: SpooledMessage;
  readonly origin: QueueOrigin;
  readonly logId: string;
  readonly smtputf8?: boolean;
  readonly authUser?: string | null;
  /** RFC 3461 §4.3, §4.4: MAIL's RET and ENVID, kept with the queued parts of the sender's. */
  readonly ret?: DsnRet | null;
  readonly envid?: string | null;
  /** Local recipients that asked NOTIFY=SUCCESS (RFC 3461 §4.1): once their copies are
   *  durable the sender gets a "delivered" notice (RFC 3464 §2.3.3). */
  readonly notifyDelivered?: readonly { readonly address: string; readonly orcpt: string | null }[];
  /** Keep the remote part held in the queue (the operator's hold; a milter's quarantine)
   *  until an administrator releases it (admin API). */
  readonly hold?: boolean;
  /** The owner's tag of the queued parts (types.ts OutboundMessage.tag); Sieve's redirected
   *  copies of local recipients are not the sender's and carry none. */
  readonly tag?: string | null;
  /** Inbound mail (port 25): our ARC validation and Authentication-Results, with which the
   *  forwarded copies are sealed (RFC 8617 §5.1); absent: forwarded copies are not sealed. */
  readonly arc?: InboundArc | null;
}

/** A message to send later (types.ts OutboundMessage.releaseAt): every recipient waits in one
 *  scheduled entry, routed when it is released (releaseScheduled). */
export type ScheduleRequest = Omit<OutboundMessage, 'origin' | 'hold' | 'releaseAt'> & { readonly releaseAt: number };

export interface DispatchResult {
  readonly copies: readonly DeliveredCopy[];
  /** The first queue entry, null when nothing was queued. */
  readonly queueId: QueueId | null;
  /** Every queue entry made (one per envelope sender). */
  readonly queueIds: readonly QueueId[];
}

export class Dispatcher {
  readonly #store: MailStore;
  readonly #queue: QueueBackend;
  readonly #directory: Directory;
  readonly #hostname: string;
  readonly #log: Logger;
  readonly #rewriter: SenderRewriter;
  readonly #sealer: ForwardSealer | null;
  #filter: { plan(req: FilterRequest): Promise<FilterPlan | null> } | null = null;

  constructor(deps: {
    store: MailStore;
    queue: QueueBackend;
    directory: Directory;
    hostname: string;
    log: Logger;
    /** The sender of forwarded copies (SRS); unchanged without one. */
    senderRewriter?: SenderRewriter;
    /** ARC sealing of forwarded copies ([arc] seal); none without one. */
    sealer?: ForwardSealer;
  }) {
    this.#store = deps.store;
    this.#queue = deps.queue;
    this.#directory = deps.directory;
    this.#hostname = deps.hostname;
    this.#log = deps.log;
    this.#rewriter = deps.senderRewriter ?? NO_REWRITE;
    this.#sealer = deps.sealer ?? null;
  }

  /** The rewriter of forwarded senders, for other forwarding paths (Sieve redirect). */
  get senderRewriter(): SenderRewriter {
    return this.#rewriter;
  }

  /** The Sieve filter of local copies (queue/sieve-filter.ts), set once by the server: after
   *  construction, since its vacation replies and notices come back through notice(). */
  useFilter(filter: { plan(req: FilterRequest): Promise<FilterPlan | null> }): void {
    this.#filter = filter;
  }

  async dispatch(req: DispatchRequest): Promise<DispatchResult> {
    // Sieve first (docs/sieve.md): it may change the local copies (mailbox, flags, none) and
    // add redirected ones, each its own queue entry (its own sender, SRS, and trace fields).
    const plan =
      this.#filter && req.local.length > 0
        ? await this.#filter.plan({ ...req, refusable: req.remote.length === 0 && req.origin !== 'dsn' })
        : null;
    if (plan?.refused != null) throw new ArclineError('REFUSED', plan.refused);
    const local = plan ? plan.local : req.local;
    const parts: {
      sender: string;
      recipients: readonly OutboundRecipient[];
      prefix: Buffer;
      origin: QueueOrigin;
      authUser: string | null;
      tag: string | null;
      ret?: DsnRet | null;
      envid?: string | null;
      via?: string | undefined;
    }[] = (await this.#bySender(req)).map(([sender, via, recipients]) => ({
      sender,
      via,
      recipients,
      prefix: req.remotePrefix,
      origin: req.origin,
      authUser: req.authUser ?? null,
      tag: req.tag ?? null,
      ret: req.ret ?? null,
      envid: req.envid ?? null,
    }));
    for (const f of plan?.forwards ?? []) {
      parts.push({
        sender: f.sender,
        via: f.via,
        recipients: f.recipients,
        prefix: f.prefix,
        origin: 'forward',
        authUser: null,
        tag: null,
      });
    }
    const held = local.length > 0 || parts.length > 1 || req.hold === true;
    const queueIds: QueueId[] = [];
    let copies: readonly DeliveredCopy[] = [];
    for (const p of parts) if (p.via !== undefined) p.prefix = await this.#sealed(req, p.via, p.prefix);
    try {
      for (const { via: _, ...p } of parts) {
        queueIds.push(
          await this.#queue.enqueue({
            ...p,
            message: req.message,
            logId: req.logId,
            smtputf8: req.smtputf8 ?? false,
            hold: held,
          }),
        );
      }
      if (local.length > 0) copies = await this.#store.deliver(local, req.message);
    } catch (e) {
      for (const id of queueIds) await this.#queue.drop(id);
      throw e;
    }
    if (held) for (const id of queueIds) await this.#queue.release(id, { hold: req.hold === true });
    // Vacation replies, rejection notices, duplicate tracking: once the copies are durable.
    if (plan) await plan.after();
    if (req.notifyDelivered && req.notifyDelivered.length > 0 && copies.length > 0) await this.#delivered(req);
    return { copies, queueId: queueIds[0] ?? null, queueIds };
  }

  /** RFC 3461 §6.2.1.1: the "delivered" notice of local recipients that asked for it. The copies
   *  are durable already: a notice that cannot be made is logged, the message stays accepted. */
  async #delivered(req: DispatchRequest): Promise<void> {
    if (req.sender === '') return; // RFC 3461 §6.2: never to a null sender
    try {
      const headers = await readHeaderBlock(req.message.open(), 64 * 1024);
      const now = new Date();
      const dsn = buildDsn({
        reportingMta: this.#hostname,
        from: `MAILER-DAEMON@${this.#hostname}`,
        to: req.sender,
        messageId: `dsn-${req.logId}-${now.getTime()}@${this.#hostname}`,
        date: now,
        arrivalDate: now,
        queueId: req.logId,
        envelopeId: req.envid ?? null,
        recipients: (req.notifyDelivered ?? []).map((r) => ({
          address: r.address,
          originalRecipient: r.orcpt,
          action: 'delivered' as const,
          status: '2.0.0',
          diagnostic: null,
        })),
        originalHeaders: headers,
      });
      await this.notice(req.sender, dsn, req.logId);
      this.#log.info(
        { msg_id: req.logId, to: req.sender, rcpts: req.notifyDelivered?.map((r) => r.address) },
        'success notice sent',
      );
    } catch (e) {
      this.#log.error({ msg_id: req.logId, err: errorMessage(e) }, 'could not send the success notice');
    }
  }

  /** Queues a message to be sent at `releaseAt` (JMAP delayed send); durable when it resolves. */
  async schedule(req: ScheduleRequest): Promise<QueueId> {
    return this.#queue.enqueue({ ...req, origin: 'submission', smtputf8: req.smtputf8 ?? false });
  }

  /** Routes a scheduled message whose time came, as dispatch() routes a new one: each recipient
   *  resolved now (a local user removed since is refused), local copies delivered (through
   *  Sieve), remote ones queued with the same tag. The runner then removes the scheduled entry. */
  async releaseScheduled(m: QueuedMessage): Promise<ReleaseResult> {
    const routes: Record<string, { local: boolean; refused: string | null; remote: string[] }> = {};
    const local = new Set<AccountId>();
    const remote: DispatchRecipient[] = [];
    for (const r of m.recipients) {
      const addr = parseAddress(r.address);
      const res = addr ? await this.#directory.resolveRecipient(addr) : null;
      if (!addr || !res || res.kind === 'unknown-user') {
        routes[r.address] = { local: false, refused: '550 5.1.1 no such user here any more', remote: [] };
      } else if (res.kind === 'unknown-domain') {
        routes[r.address] = { local: false, refused: null, remote: [r.address] };
        remote.push({ address: r.address, orcpt: r.orcpt, notify: r.notify });
      } else {
        for (const a of res.accounts) local.add(a);
        const forwards = res.remote.map((a) => formatAddress(a));
        for (const a of forwards) remote.push({ address: a, forwardedVia: addr.domain });
        routes[r.address] = { local: res.accounts.length > 0, refused: null, remote: forwards };
      }
    }
    const received = Buffer.alloc(0); // the scheduled file begins with our trace field already
    const result = await this.#dispatchOrRefused({
      sender: m.sender,
      local: [...local].map((account) => ({
        account,
        prefix: traceHeaders({ returnPath: m.sender, deliveredTo: account, received: '' }),
      })),
      remote,
      remotePrefix: received,
      message: this.#queue.messageFile(m),
      origin: m.origin,
      logId: m.logId,
      smtputf8: m.smtputf8,
      authUser: m.authUser,
      tag: m.tag,
      ret: m.ret,
      envid: m.envid,
    });
    if (typeof result === 'string') {
      // Every copy was local and their Sieve refused it (RFC 5429): nothing sent, for good.
      for (const r of Object.values(routes)) if (r.local) r.refused = `550 5.7.1 ${result}`;
      return { queueIds: [], routes };
    }
    return { queueIds: result.queueIds, routes };
  }

  /** dispatch(), or the reason when Sieve refused the message (ArclineError REFUSED). */
  async #dispatchOrRefused(req: DispatchRequest): Promise<DispatchResult | string> {
    try {
      return await this.dispatch(req);
    } catch (e) {
      if (isArclineError(e, 'REFUSED')) return e.message || 'Rejected';
      throw e;
    }
  }

  /** The remote recipients grouped by the envelope sender they leave with (the request's for
   *  direct ones, the rewritten one for forwarded ones) and, when the forwarded copies are
   *  sealed, by forwarding domain (its key seals; `via` is undefined for the unsealed). */
  async #bySender(req: DispatchRequest): Promise<[string, string | undefined, OutboundRecipient[]][]> {
    const groups = new Map<string, [string, string | undefined, OutboundRecipient[]]>();
    const sealing = this.#sealer !== null && req.arc != null;
    for (const { forwardedVia, ...r } of req.remote) {
      const sender =
        forwardedVia === undefined ? req.sender : await this.#rewriter.forwardSender(req.sender, forwardedVia);
      const via = sealing ? forwardedVia : undefined;
      const key = `${sender}\0${via ?? ''}`;
      const group = groups.get(key);
      if (group) group[2].push(r);
      else groups.set(key, [sender, via, [r]]);
    }
    return [...groups.values()];
  }

  /** RFC 8617 §5.1: the prefix of a forwarded part with an ARC set on top, sealed by `via`'s key
   *  over the bytes queued (this prefix, then the message); unchanged when not sealed. */
  async #sealed(req: DispatchRequest, via: string, prefix: Buffer): Promise<Buffer> {
    if (!this.#sealer || !req.arc) return prefix;
    const message = req.message;
    const bytes = Readable.from(
      (async function* () {
        yield prefix;
        yield* message.open() as AsyncIterable<Buffer>;
      })(),
      { objectMode: false },
    );
    const set = await this.#sealer.seal(via, req.arc, bytes);
    return set === '' ? prefix : Buffer.concat([Buffer.from(set, 'utf8'), prefix]);
  }

  /** Delivers a bounce or delay notice (null sender) to `sender`: into the local mailbox when
   *  the address is ours, else through the queue; for an SRS sender of ours (a forwarded copy),
   *  to the address it stands for. Resolves once durable. `tag`: the queued part's
   *  (TLS_REPORT_TAG for a TLS report). */
  async notice(sender: string, dsn: Buffer, logId: string, tag: string | null = null): Promise<void> {
    const to = await this.#rewriter.bounceAddress(sender);
    const addr = parseAddress(to);
    if (!addr) {
      this.#log.warn({ msg_id: logId, to }, 'notice dropped: sender address does not parse');
      return;
    }
    const res = await this.#directory.resolveRecipient(addr);
    const id = newId('m');
    const msg = bufferMessage(dsn);
    const received = localReceivedHeader({ byHost: this.#hostname, id, date: new Date() });
    if (res.kind === 'unknown-user') {
      // Our own user is gone: nobody to tell. Postfix would send this to the postmaster.
      this.#log.warn({ msg_id: logId, to }, 'notice dropped: sender is no longer a local user');
      return;
    }
    const local =
      res.kind === 'deliver'
        ? res.accounts.map((account) => ({
            account,
            prefix: traceHeaders({ returnPath: '', deliveredTo: account, received }),
          }))
        : [];
    const remote = res.kind === 'deliver' ? res.remote.map((a) => ({ address: formatAddress(a) })) : [{ address: to }];
    await this.dispatch({
      sender: '',
      local,
      remote,
      remotePrefix: Buffer.from(received),
      message: msg,
      origin: 'dsn',
      logId: id,
      tag,
    });
    this.#log.info({ msg_id: id, about: logId, to, local: local.length, remote: remote.length }, 'notice queued');
  }
}
