// Push (RFC 8620 §7): the PushHub the data types publish their new states to
// (publish(account, {Email: "42"})), and the EventSource stream of §7.3 that relays them:
// `state` events with a StateChange object, `ping` events when `ping` seconds pass without an
// event (clamped to LIMITS.jmap [minPingSeconds, maxPingSeconds]; 0 none), and
// closeafter=state ending the response after the first state event (for clients that poll).
//
// On a cluster (docs/cluster.md "JMAP push across nodes") a hub may be given a PushRelay: what
// it publishes of the types outside the mail journal (Identity, EmailSubmission,
// VacationResponse...) is also sent to the other nodes, whose relays hand it to their hub's
// `deliver` (their listeners only, never sent again). The mail types are never relayed: every
// node derives them from the shared journal itself (mail-push.ts over the store's account watch).

import type { ServerResponse } from 'node:http';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';

/** Type name -> new state string, for one account. */
export type StateChanges = Readonly<Record<string, string>>;
export type PushListener = (changed: StateChanges) => void;

/** The types each node publishes from the mail journal it shares with the others (mail-push.ts
 *  for Mailbox, Email, Thread; EmailDelivery, RFC 8621 §1.5, is of the same journal): a relay
 *  never carries them, or every change would reach the other nodes' clients twice. */
export const JOURNAL_TYPES: ReadonlySet<string> = new Set(['Mailbox', 'Email', 'Thread', 'EmailDelivery']);

/** Where a hub sends the other nodes what it publishes (jmap/push-relay.ts on PostgreSQL).
 *  `send` must not throw nor wait: a relay that is late or loses a message only delays a
 *  client's refetch (a state is a counter, the next change carries the newest). */
export interface PushRelay {
  send(account: AccountId, changed: StateChanges): void;
}

export class PushHub {
  readonly #listeners = new Map<AccountId, Set<PushListener>>();
  /** What watches an account while it has listeners (the Mail capability: the store's
   *  watchAccount), and the function that stops each watch. */
  #source: ((account: AccountId) => () => void) | null = null;
  readonly #watching = new Map<AccountId, () => void>();
  #relay: PushRelay | null = null;

  /** Sends the non-journal part of every later publish to the other nodes too (null: stop). */
  setRelay(relay: PushRelay | null): void {
    this.#relay = relay;
  }

  /** `start(account)` is called when an account gets its first listener and the function it
   *  returns when the last one leaves: a data type publishes only while someone listens. */
  setSource(start: (account: AccountId) => () => void): void {
    this.#source = start;
    for (const account of this.#listeners.keys()) this.#watching.set(account, start(account));
  }

  /** Listens to the changes of `account`; returns the function that stops it. */
  subscribe(account: AccountId, listener: PushListener): () => void {
    let set = this.#listeners.get(account);
    if (!set) {
      set = new Set();
      this.#listeners.set(account, set);
      if (this.#source) this.#watching.set(account, this.#source(account));
    }
    set.add(listener);
    return () => {
      set.delete(listener);
      if (set.size === 0 && this.#listeners.get(account) === set) {
        this.#listeners.delete(account);
        this.#watching.get(account)?.();
        this.#watching.delete(account);
      }
    };
  }

  listeners(account: AccountId): number {
    return this.#listeners.get(account)?.size ?? 0;
  }

  /** Tells every listener of `account` (synchronously; listeners must not throw), and the
   *  other nodes through the relay of the types that are not the journal's. Sent whether or
   *  not this node has listeners of the account: the other nodes may. */
  publish(account: AccountId, changed: StateChanges): void {
    this.deliver(account, changed);
    if (!this.#relay) return;
    const relayed = Object.entries(changed).filter(([t]) => !JOURNAL_TYPES.has(t));
    if (relayed.length > 0) this.#relay.send(account, Object.fromEntries(relayed));
  }

  /** Tells this node's listeners of `account` only: another node's publish, from the relay. */
  deliver(account: AccountId, changed: StateChanges): void {
    for (const l of this.#listeners.get(account) ?? []) l(changed);
  }
}

export interface EventSourceOptions {
  /** "*" or type names. */
  readonly types: '*' | readonly string[];
  readonly closeAfterState: boolean;
  /** Seconds between pings; 0: none. */
  readonly pingSeconds: number;
}

/** The query of GET /jmap/eventsource (§7.3), or an error message. */
export function parseEventSourceQuery(q: URLSearchParams): EventSourceOptions | string {
  const types = q.get('types') ?? '*';
  const closeafter = q.get('closeafter') ?? 'no';
  const ping = q.get('ping') ?? '0';
  if (closeafter !== 'state' && closeafter !== 'no') return 'closeafter is "state" or "no"';
  if (!/^[0-9]{1,6}$/.test(ping)) return 'ping is a number of seconds';
  if (types.length > 1000 || !/^(?:\*|[A-Za-z0-9_]+(?:,[A-Za-z0-9_]+)*)$/.test(types))
    return 'types is "*" or a comma-separated list of type names';
  const n = Number(ping);
  const J = LIMITS.jmap;
  return {
    types: types === '*' ? '*' : types.split(','),
    closeAfterState: closeafter === 'state',
    pingSeconds: n === 0 ? 0 : Math.min(J.maxPingSeconds, Math.max(J.minPingSeconds, n)),
  };
}

/** Streams the events of `account` to `res` until the client goes away (or the first state
 *  event with closeafter=state). `accountId` is the account's JMAP id (the key of `changed`). */
export function streamEvents(
  hub: PushHub,
  account: AccountId,
  accountId: string,
  opts: EventSourceOptions,
  res: ServerResponse,
  headers: Record<string, string>,
): void {
  res.writeHead(200, {
    ...headers,
    'content-type': 'text/event-stream',
    'cache-control': 'no-cache, no-store',
    'x-accel-buffering': 'no',
  });
  res.flushHeaders();
  // The stream outlives [http] timeout (the idle timeout of the socket): pings keep it alive
  // through proxies; a client that goes away closes it.
  res.socket?.setTimeout(0);
  let timer: NodeJS.Timeout | null = null;
  // §7.3: a ping whenever `ping` seconds passed since the previous event (of either kind).
  const arm = () => {
    if (opts.pingSeconds === 0) return;
    if (timer) clearTimeout(timer);
    timer = setTimeout(() => send('ping', { interval: opts.pingSeconds }), opts.pingSeconds * 1000);
  };
  const send = (event: string, data: unknown) => {
    res.write(`event: ${event}\ndata: ${JSON.stringify(data)}\n\n`);
    arm();
  };
  const end = () => {
    unsubscribe();
    if (timer) clearTimeout(timer);
    timer = null;
    res.end();
  };
  const unsubscribe = hub.subscribe(account, (changed) => {
    const wanted = Object.entries(changed).filter(([t]) => opts.types === '*' || opts.types.includes(t));
    if (wanted.length === 0) return;
    send('state', { '@type': 'StateChange', changed: { [accountId]: Object.fromEntries(wanted) } });
    if (opts.closeAfterState) end();
  });
  arm();
  res.once('close', end);
}
