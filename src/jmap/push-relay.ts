// JMAP push across the nodes of a cluster (issue #18, docs/cluster.md "JMAP push across nodes";
// RFC 8620 §7). A node's PushHub publishes what its own JMAP methods change (Identity/set,
// EmailSubmission, VacationResponse...); an EventSource or PushSubscription held by another
// node must hear of it too. This relay sends those publishes on the channel arcline_jmap as
// {node, account, changed} (pg_notify through the pool) and hands the other nodes' ones to its
// hub's `deliver` (their listeners only: never sent again; its own node's are ignored, the hub
// told them already). The mail types never come here (push.ts JOURNAL_TYPES): every node derives
// them from the shared journal.
//
// - Payloads are untrusted (anyone who can connect can NOTIFY): bounded
//   (LIMITS.cluster.maxPushRelayPayloadBytes) before JSON.parse, the node a node name, the account
//   canonical (db/notify.ts isAccountId, as for the mail channel), at most pushRelayMaxTypes type
//   names and states of plain tokens; else dropped and counted. Types this server does not serve
//   (`known`) and journal types are left out; a payload left with none is dropped.
// - Order and loss: a state is a counter, and a StateChange only tells a client to refetch from
//   the state it has (§7.1), so a late, repeated or lost relay costs a refetch, never a wrong
//   answer. Sends go one at a time, in publish order (the pool would reorder concurrent ones);
//   while one is on its way each account keeps only its newest state per type. After a lost
//   LISTEN session (onResync) the changes of the time away are not told: nothing is published,
//   a client hears of them with the next change of that type (or when it refetches).

import { isNodeName } from '../config/cluster.ts';
import { errorMessage } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { jmapPushRelay } from '../core/metrics.ts';
import { isAccountId, notify } from '../db/notify.ts';
import type { Queryable } from '../db/postgres.ts';
import { JOURNAL_TYPES, type PushHub, type PushRelay, type StateChanges } from './push.ts';

const C = LIMITS.cluster;
/** The channel of JMAP state changes between nodes: payload {node, account, changed}. */
export const JMAP_CHANNEL = 'arcline_jmap';
/** A type name (RFC 8620 §1.1 names are ASCII letters; we allow digits and "_" after one). */
const TYPE = new RegExp(`^[A-Za-z][A-Za-z0-9_]{0,${C.pushRelayMaxToken - 1}}$`);
/** A state: a token of visible ASCII (ours are decimal counters). */
const STATE = new RegExp(`^[\\x21-\\x7e]{1,${C.pushRelayMaxToken}}$`);

/** What the relay needs of the node's Notifier (db/notify.ts). */
export interface PushRelaySource {
  listen(channel: string, listener: (payload: string) => void): Promise<() => void>;
  onResync(hook: () => void): () => void;
}

export interface RelayedChange {
  readonly node: string;
  readonly account: AccountId;
  readonly changed: StateChanges;
}

/** The payload of a publish, or null when it cannot be one (nothing fit to relay). */
export function relayPayload(node: string, account: AccountId, changed: StateChanges): string | null {
  const entries = Object.entries(changed).filter(([t, s]) => TYPE.test(t) && STATE.test(s) && !JOURNAL_TYPES.has(t));
  if (entries.length === 0 || entries.length > C.pushRelayMaxTypes || !isAccountId(account)) return null;
  const p = JSON.stringify({ node, account, changed: Object.fromEntries(entries) });
  return Buffer.byteLength(p) <= C.maxPushRelayPayloadBytes ? p : null;
}

/** Reads a payload: null when malformed; `changed` holds only the types `known` accepts (and
 *  never a journal type), so it may be empty. */
export function parseRelayPayload(payload: string, known: (type: string) => boolean): RelayedChange | null {
  if (payload.length > C.maxPushRelayPayloadBytes) return null;
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (!isRecord(v)) return null;
  const { node, account, changed } = v;
  if (typeof node !== 'string' || !isNodeName(node)) return null;
  if (typeof account !== 'string' || !isAccountId(account)) return null;
  if (!isRecord(changed)) return null;
  const entries = Object.entries(changed);
  if (entries.length === 0 || entries.length > C.pushRelayMaxTypes) return null;
  const kept: [string, string][] = [];
  for (const [t, s] of entries) {
    if (!TYPE.test(t) || typeof s !== 'string' || !STATE.test(s)) return null;
    if (!JOURNAL_TYPES.has(t) && known(t)) kept.push([t, s]);
  }
  return { node, account, changed: Object.fromEntries(kept) };
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

export interface ClusterPushRelayOptions {
  readonly hub: PushHub;
  /** The node's Notifier. */
  readonly source: PushRelaySource;
  /** Where the NOTIFYs are sent (the node's pool). */
  readonly db: Queryable;
  /** This node's name ([cluster] node_name): its own payloads are ignored. */
  readonly node: string;
  /** The types this server serves (the registry has `<type>/get`); others are dropped. */
  readonly known: (type: string) => boolean;
  readonly log?: Logger;
}

export interface PushRelayStats {
  /** NOTIFYs made; other nodes' changes told to the hub; payloads dropped as malformed or with
   *  no known type; publishes dropped past maxPendingPushRelays or not fit to send; NOTIFYs that
   *  failed; LISTEN sessions lost and made again (their time away not told). */
  readonly sent: number;
  readonly received: number;
  readonly malformed: number;
  readonly dropped: number;
  readonly failed: number;
  readonly resyncs: number;
}

export class ClusterPushRelay implements PushRelay {
  readonly #o: ClusterPushRelayOptions;
  /** Publishes waiting for the NOTIFY on its way, newest state per type, in first-publish order. */
  readonly #pending = new Map<AccountId, Record<string, string>>();
  #sending = false;
  #closed = false;
  #stop: () => void = () => {};
  readonly #stats: Record<keyof PushRelayStats, number> = {
    sent: 0,
    received: 0,
    malformed: 0,
    dropped: 0,
    failed: 0,
    resyncs: 0,
  };

  private constructor(o: ClusterPushRelayOptions) {
    this.#o = o;
  }

  /** LISTENs on JMAP_CHANNEL (resolves once it does) and becomes the hub's relay. */
  static async start(o: ClusterPushRelayOptions): Promise<ClusterPushRelay> {
    const r = new ClusterPushRelay(o);
    // Every result is a series from the start on a cluster node (a rate() needs its zero).
    for (const result of Object.keys(r.#stats)) jmapPushRelay.inc({ result }, 0);
    const unlisten = await o.source.listen(JMAP_CHANNEL, (p) => r.#received(p));
    // Nothing to catch up: the changes of the time away reach a client with the next change
    // of their type (see the header); counted so an operator can see gaps happened.
    const unresync = o.source.onResync(() => r.#count('resyncs'));
    r.#stop = () => {
      unlisten();
      unresync();
    };
    o.hub.setRelay(r);
    return r;
  }

  get stats(): PushRelayStats {
    return { ...this.#stats };
  }

  send(account: AccountId, changed: StateChanges): void {
    if (this.#closed) return;
    const waiting = this.#pending.get(account);
    if (waiting) Object.assign(waiting, changed);
    else if (this.#pending.size >= C.maxPendingPushRelays) {
      this.#count('dropped');
      return;
    } else this.#pending.set(account, { ...changed });
    if (!this.#sending) void this.#drain();
  }

  /** One NOTIFY at a time, so the other nodes hear the publishes in order. */
  async #drain(): Promise<void> {
    this.#sending = true;
    try {
      for (let next = this.#pending.entries().next(); !next.done && !this.#closed; ) {
        const [account, changed] = next.value;
        this.#pending.delete(account);
        const payload = relayPayload(this.#o.node, account, changed);
        if (payload === null) this.#count('dropped');
        else
          try {
            await notify(this.#o.db, JMAP_CHANNEL, payload);
            this.#count('sent');
          } catch (e) {
            this.#count('failed');
            this.#o.log?.warn({ err: errorMessage(e) }, 'jmap: push relay: NOTIFY failed');
          }
        next = this.#pending.entries().next();
      }
    } finally {
      this.#sending = false;
    }
  }

  #received(payload: string): void {
    const m = parseRelayPayload(payload, this.#o.known);
    if (m === null || Object.keys(m.changed).length === 0) {
      this.#count('malformed');
      return;
    }
    if (m.node === this.#o.node) return; // ours: the hub told its listeners at publish
    this.#count('received');
    this.#o.hub.deliver(m.account, m.changed);
  }

  #count(result: keyof PushRelayStats): void {
    this.#stats[result]++;
    jmapPushRelay.inc({ result });
  }

  /** Stops relaying (the hub publishes locally only again); pending sends are dropped. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#o.hub.setRelay(null);
    this.#pending.clear();
    this.#stop();
  }
}
