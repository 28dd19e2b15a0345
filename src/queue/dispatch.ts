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

import { formatAddress, parseAddress } from '../core/address.ts';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import type { Directory } from '../directory/types.ts';
import { localReceivedHeader, traceHeaders } from '../smtp/trace.ts';
import { bufferMessage } from '../store/spool.ts';
import type { DeliveredCopy, DeliveryTarget, MailStore, SpooledMessage } from '../store/types.ts';
import type { FilterPlan, FilterRequest } from './sieve-filter.ts';
import type { QueueStore } from './store.ts';
import type { OutboundRecipient, QueueId, QueueOrigin } from './types.ts';

export interface DispatchRequest {
  readonly sender: string;
  readonly local: readonly DeliveryTarget[];
  readonly remote: readonly OutboundRecipient[];
  /** Prefix for the queued copy (Received ...); local targets carry their own. */
  readonly remotePrefix: Buffer;
  readonly message: SpooledMessage;
  readonly origin: QueueOrigin;
  readonly logId: string;
  readonly smtputf8?: boolean;
  readonly authUser?: string | null;
  /** Keep the remote part held in the queue (the operator's hold; a milter's quarantine)
   *  until an administrator releases it (admin API). */
  readonly hold?: boolean;
}

export interface DispatchResult {
  readonly copies: readonly DeliveredCopy[];
  readonly queueId: QueueId | null;
}

export class Dispatcher {
  readonly #store: MailStore;
  readonly #queue: QueueStore;
  readonly #directory: Directory;
  readonly #hostname: string;
  readonly #log: Logger;
  #filter: { plan(req: FilterRequest): Promise<FilterPlan | null> } | null = null;

  constructor(deps: {
    store: MailStore;
    queue: QueueStore;
    directory: Directory;
    hostname: string;
    log: Logger;
  }) {
    this.#store = deps.store;
    this.#queue = deps.queue;
    this.#directory = deps.directory;
    this.#hostname = deps.hostname;
    this.#log = deps.log;
  }

  /** The Sieve filter of local copies (queue/sieve-filter.ts); set once by the server. It is
   *  set after construction because its vacation replies and notices come back through here. */
  useFilter(filter: { plan(req: FilterRequest): Promise<FilterPlan | null> }): void {
    this.#filter = filter;
  }

  async dispatch(req: DispatchRequest): Promise<DispatchResult> {
    // Sieve first (docs/sieve.md): it may change the local copies and add redirected ones, each
    // its own queue entry since its envelope sender differs (SRS).
    const plan = this.#filter && req.local.length > 0 ? await this.#filter.plan(req) : null;
    const local = plan ? plan.local : req.local;
    const forwards = plan?.forwards ?? [];
    // Queued entries stay held (invisible to the runner) until the local copies are durable.
    const holdMain = local.length > 0 || req.hold === true || forwards.length > 0;
    const held: QueueId[] = [];
    let queueId: QueueId | null = null;
    try {
      if (req.remote.length > 0) {
        queueId = await this.#queue.enqueue({
          sender: req.sender,
          recipients: req.remote,
          prefix: req.remotePrefix,
          message: req.message,
          origin: req.origin,
          logId: req.logId,
          smtputf8: req.smtputf8 ?? false,
          authUser: req.authUser ?? null,
          hold: holdMain,
        });
        held.push(queueId);
      }
      for (const f of forwards) {
        held.push(
          await this.#queue.enqueue({
            sender: f.sender,
            recipients: f.recipients,
            prefix: f.prefix,
            message: req.message,
            origin: 'forward',
            logId: req.logId,
            smtputf8: req.smtputf8 ?? false,
            authUser: null,
            hold: true,
          }),
        );
      }
    } catch (e) {
      for (const id of held) await this.#queue.drop(id);
      throw e;
    }
    let copies: readonly DeliveredCopy[] = [];
    if (local.length > 0) {
      try {
        copies = await this.#store.deliver(local, req.message);
      } catch (e) {
        for (const id of held) await this.#queue.drop(id);
        throw e;
      }
    }
    for (const id of held) {
      if (id !== queueId) this.#queue.release(id, { hold: false });
      else if (holdMain) this.#queue.release(id, { hold: req.hold === true });
    }
    // Vacation replies, rejection notices, duplicate tracking: only once the copies are durable.
    if (plan) await plan.after();
    return { copies, queueId };
  }

  /** Delivers a bounce or delay notice (null sender) to `to`: into the local mailbox when the
   *  address is ours, else through the queue. Resolves once durable. */
  async notice(to: string, dsn: Buffer, logId: string): Promise<void> {
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
    });
    this.#log.info({ msg_id: id, about: logId, to, local: local.length, remote: remote.length }, 'notice queued');
  }
}
