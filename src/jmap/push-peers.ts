// PushSubscriptions across the nodes of a cluster (docs/cluster.md "JMAP push across nodes";
// RFC 8620 §7.2). Every node holds every subscription (push-subscription.ts reads the shared
// store), but exactly one live node listens for each and POSTs its StateChanges, so a change
// made through any node reaches the push service once:
//
// - **Ownership** by rendezvous hashing (highest random weight): the owner of a subscription is
//   the live node whose hash of (node name, subscription id) is highest. Every node computes the
//   same answer from the same list, with no coordination; when a node dies (its heartbeat older
//   than LIMITS.cluster.aliveIntervals intervals, db/nodes.ts) only its subscriptions move, each
//   to the next highest. The list is read every heartbeat interval; while two nodes disagree
//   (one has seen a change the other has not yet) a StateChange may be sent twice or not at all
//   for at most that long: a StateChange only tells a client to refetch (§7.1).
// - **Changes**: a /set that changed the account's subscriptions is announced on the channel
//   arcline_jmap_subs as {node, account}; the other nodes read that account again. Payloads are
//   untrusted (bounded, a node name, a canonical account) and a forged one costs one read.
//   After a lost listening session every account is read again.

import { isNodeName } from '../config/cluster.ts';
import { errorMessage } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { listNodes } from '../db/nodes.ts';
import { isAccountId, notify } from '../db/notify.ts';
import type { Postgres } from '../db/postgres.ts';
import type { PushRelaySource } from './push-relay.ts';
import type { PushPeers, PushSubscriptions } from './push-subscription.ts';

/** The channel of PushSubscription changes between nodes: payload {node, account}. */
export const SUBSCRIPTIONS_CHANNEL = 'arcline_jmap_subs';

export interface ClusterPushPeersOptions {
  readonly subscriptions: PushSubscriptions;
  readonly source: PushRelaySource;
  readonly db: Postgres;
  /** This node's name. */
  readonly node: string;
  /** How often the list of live nodes is read ([cluster] heartbeat_interval). */
  readonly everyMs: number;
  readonly log?: Logger;
}

/** The owner of `id` among `nodes` (rendezvous hashing); `nodes` is never empty. */
export function ownerOf(id: string, nodes: readonly string[]): string {
  let best = '';
  let bestWeight = -1;
  for (const n of nodes) {
    const w = weight(n, id);
    if (w > bestWeight || (w === bestWeight && n < best)) {
      best = n;
      bestWeight = w;
    }
  }
  return best;
}

/** 32-bit FNV-1a of "node\0id", mixed (murmur3's finalizer) so near names spread. */
function weight(node: string, id: string): number {
  let h = 0x811c9dc5;
  const s = `${node}\0${id}`;
  for (let i = 0; i < s.length; i++) {
    h ^= s.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The payload of an announce, or null when it is not one. */
export function parseSubscriptionsPayload(payload: string): { node: string; account: AccountId } | null {
  if (payload.length > LIMITS.cluster.maxPushRelayPayloadBytes) return null;
  let v: unknown;
  try {
    v = JSON.parse(payload);
  } catch {
    return null;
  }
  if (typeof v !== 'object' || v === null) return null;
  const { node, account } = v as Record<string, unknown>;
  if (typeof node !== 'string' || !isNodeName(node) || typeof account !== 'string' || !isAccountId(account))
    return null;
  return { node, account };
}

export class ClusterPushPeers implements PushPeers {
  readonly #o: ClusterPushPeersOptions;
  /** The live nodes, sorted, this node always among them. */
  #nodes: readonly string[];
  #timer: NodeJS.Timeout | null = null;
  #stop: () => void = () => {};

  private constructor(o: ClusterPushPeersOptions) {
    this.#o = o;
    this.#nodes = [o.node];
  }

  /** Reads the live nodes, LISTENs for announces and becomes the subscriptions' peers. */
  static async start(o: ClusterPushPeersOptions): Promise<ClusterPushPeers> {
    const p = new ClusterPushPeers(o);
    await p.#refreshNodes();
    const unlisten = await o.source.listen(SUBSCRIPTIONS_CHANNEL, (payload) => p.#received(payload));
    const unresync = o.source.onResync(() => {
      o.subscriptions.reloadAll().catch((e: unknown) => p.#warn('reading the push subscriptions again failed', e));
    });
    p.#stop = () => {
      unlisten();
      unresync();
    };
    p.#timer = setInterval(() => void p.#refreshNodes(), o.everyMs);
    p.#timer.unref();
    o.subscriptions.setPeers(p);
    return p;
  }

  /** The live nodes as this node sees them now. */
  get nodes(): readonly string[] {
    return this.#nodes;
  }

  owns(id: string): boolean {
    return ownerOf(id, this.#nodes) === this.#o.node;
  }

  announce(account: AccountId): void {
    const payload = JSON.stringify({ node: this.#o.node, account });
    notify(this.#o.db, SUBSCRIPTIONS_CHANNEL, payload).catch((e: unknown) =>
      this.#warn('announcing a push subscription change failed', e),
    );
  }

  async #refreshNodes(): Promise<void> {
    try {
      const alive = (await listNodes(this.#o.db)).filter((n) => n.alive).map((n) => n.name);
      const next = [...new Set([...alive, this.#o.node])].sort();
      if (next.join('\n') === this.#nodes.join('\n')) return;
      this.#nodes = next;
      this.#o.subscriptions.rebalance();
      this.#o.log?.info({ nodes: next }, 'jmap: live nodes changed: push subscription owners follow');
    } catch (e) {
      this.#warn('reading the live nodes failed (push subscriptions keep their owners)', e);
    }
  }

  #received(payload: string): void {
    const m = parseSubscriptionsPayload(payload);
    if (m === null || m.node === this.#o.node) return;
    this.#o.subscriptions
      .reload(m.account)
      .catch((e: unknown) => this.#warn('reading the push subscriptions again failed', e));
  }

  #warn(msg: string, e: unknown): void {
    this.#o.log?.warn({ err: errorMessage(e) }, `jmap: ${msg}`);
  }

  close(): void {
    if (this.#timer) clearInterval(this.#timer);
    this.#timer = null;
    this.#stop();
  }
}
