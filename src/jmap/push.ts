// Push (RFC 8620 §7): the PushHub the data types publish their new states to
// (publish(account, {Email: "42"})), and the EventSource stream of §7.3 that relays them:
// `state` events with a StateChange object, `ping` events when `ping` seconds pass without an
// event (clamped to LIMITS.jmap [minPingSeconds, maxPingSeconds]; 0 none), and
// closeafter=state ending the response after the first state event (for clients that poll).

import type { ServerResponse } from 'node:http';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';

/** Type name -> new state string, for one account. */
export type StateChanges = Readonly<Record<string, string>>;
export type PushListener = (changed: StateChanges) => void;

export class PushHub {
  readonly #listeners = new Map<AccountId, Set<PushListener>>();
  /** What watches an account while it has listeners (the Mail capability: the store's
   *  watchAccount), and the function that stops each watch. */
  #source: ((account: AccountId) => () => void) | null = null;
  readonly #watching = new Map<AccountId, () => void>();

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

  /** Tells every listener of `account` (synchronously; listeners must not throw). */
  publish(account: AccountId, changed: StateChanges): void {
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
