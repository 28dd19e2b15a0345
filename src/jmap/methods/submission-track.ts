// Following an EmailSubmission through the outbound queue (RFC 8621 §7: deliveryStatus,
// undoStatus; delayed send and cancel). The queue is the lower layer and knows nothing of JMAP:
// a submission's queue entries carry its tag (queue/types.ts OutboundMessage.tag), and the
// queue's observer seam (QueueBackend.observe, QueueEvent) reports each attempt and each release
// of a scheduled message after it is durable. This module maps them onto the submission record
// in JmapState (a new EmailSubmission state, published to push). The tags live in the queue's
// rows (queue.db or PostgreSQL), so entries queued before a restart are followed after it.
//
// What a record keeps besides its §7 properties (never returned: /get picks the properties):
// `_track` = { queueIds, queued: deliveryStatus key -> the addresses queued for it, addr:
// address -> delivered}.

import type { AccountId } from '../../core/ids.ts';
import type { Logger } from '../../core/log.ts';
import type { JmapState } from '../../jmapstate/types.ts';
import type { QueueBackend, QueueEvent } from '../../queue/types.ts';
import type { Mailboxes } from '../../store/mailboxes.ts';
import type { PushHub } from '../push.ts';
import type { Delivered, DeliveryStatus } from './submission-send.ts';

/** What of the queue the submission methods use (either backend). On a cluster, observe()
 *  hears only this node's attempts and releases (docs/cluster.md). */
export type SubmissionQueue = Pick<QueueBackend, 'observe' | 'cancel'>;

export interface Track {
  queueIds: string[];
  queued: Record<string, string[]>;
  addr: Record<string, Delivered>;
}

type Record_ = Record<string, unknown> & {
  emailId: string;
  undoStatus: string;
  deliveryStatus: Record<string, DeliveryStatus>;
  _track?: Track;
};

const PREFIX = 'jmap ';
export const submissionTag = (account: AccountId, id: string) => PREFIX + JSON.stringify([account, id]);

function parseTag(tag: string | null): [AccountId, string] | null {
  if (tag === null || !tag.startsWith(PREFIX)) return null;
  try {
    const v = JSON.parse(tag.slice(PREFIX.length)) as unknown;
    return Array.isArray(v) && v.length === 2 && v.every((x) => typeof x === 'string')
      ? (v as [AccountId, string])
      : null;
  } catch {
    return null;
  }
}

/** A deliveryStatus key's `delivered` from its addresses' (§7: queued until every one is done). */
function combine(states: readonly Delivered[]): Delivered {
  if (states.includes('no')) return 'no';
  if (states.length === 0 || states.includes('queued')) return 'queued';
  return states.every((s) => s === 'yes') ? 'yes' : 'unknown';
}

const MAX_EARLY = 256;

export interface TrackerDeps {
  readonly state: JmapState;
  readonly hub: PushHub;
  readonly accounts: Mailboxes;
  readonly log: Logger;
  /** Remote mail leaves through [delivery] relay: a 250 there says nothing of the final
   *  delivery (§7 "unknown": relayed to an external machine). */
  readonly relayed: boolean;
}

export class SubmissionTracker {
  readonly #d: TrackerDeps;
  #chain: Promise<void> = Promise.resolve();
  /** Events for a record not written yet (the create answers after the hand-over). */
  readonly #early = new Map<string, QueueEvent[]>();

  constructor(deps: TrackerDeps) {
    this.#d = deps;
  }

  /** Follows the queue's events; returns the function that stops. */
  follow(queue: SubmissionQueue): () => void {
    return queue.observe((e) => {
      if (parseTag(e.tag)) this.#then(() => this.#apply(e));
    });
  }

  /** The record of `tag` now exists: the events that came before it are applied. */
  created(tag: string): Promise<void> {
    const early = this.#early.get(tag);
    this.#early.delete(tag);
    for (const e of early ?? []) this.#then(() => this.#apply(e));
    return this.#chain;
  }

  /** Runs `fn` in the chain of changes (a read-modify-write of a record by the methods). */
  exclusive<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(fn);
    this.#chain = p.then(
      () => {},
      () => {},
    );
    return p;
  }

  /** Every change goes through one chain: two events of a record never interleave. */
  #then(fn: () => Promise<void>): void {
    this.#chain = this.#chain
      .then(fn)
      .catch((e: unknown) => this.#d.log.error({ err: String(e) }, 'jmap: submission status not updated'));
  }

  async #apply(e: QueueEvent): Promise<void> {
    const [account, id] = parseTag(e.tag) as [AccountId, string];
    const s = (await this.#d.state.get(account, 'EmailSubmission', id)) as Record_ | null;
    const track = s?._track;
    if (!s || !track) {
      const tag = e.tag as string;
      this.#early.set(tag, [...(this.#early.get(tag) ?? []), e]);
      if (this.#early.size > MAX_EARLY) this.#early.delete(this.#early.keys().next().value as string);
      return;
    }
    if (e.kind === 'attempt') {
      for (const o of e.outcomes) {
        track.addr[o.address] =
          o.kind === 'sent' ? (this.#d.relayed ? 'unknown' : 'yes') : o.kind === 'failed' ? 'no' : 'queued';
        for (const [key, addrs] of Object.entries(track.queued)) {
          if (!addrs.includes(o.address)) continue;
          const delivered = combine(addrs.map((a) => track.addr[a] ?? 'queued'));
          s.deliveryStatus[key] = { smtpReply: o.reply, delivered, displayed: 'unknown' };
        }
      }
    } else {
      // A delayed send was released (queue/dispatch.ts releaseScheduled): final from now on.
      track.queueIds = [...e.result.queueIds];
      for (const [key, addrs] of Object.entries(track.queued)) {
        const now: string[] = [];
        let refused: string | null = null;
        for (const a of addrs) {
          const route = e.result.routes[a];
          if (!route) now.push(a);
          else if (route.refused !== null) refused = route.refused;
          else now.push(...route.remote);
        }
        track.queued[key] = now;
        s.deliveryStatus[key] =
          refused !== null
            ? { smtpReply: refused, delivered: 'no', displayed: 'unknown' }
            : now.length === 0
              ? { smtpReply: '250 2.1.5 Delivered', delivered: 'yes', displayed: 'unknown' }
              : { smtpReply: '250 2.0.0 Queued', delivered: 'queued', displayed: 'unknown' };
      }
      s.undoStatus = 'final';
    }
    const newState = await this.#d.state.put(account, 'EmailSubmission', id, s);
    this.#d.hub.publish(account, { EmailSubmission: newState });
  }
}
