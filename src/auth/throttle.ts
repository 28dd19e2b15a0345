// Fair login throttling, as Dovecot's auth penalty and Postfix's anvil do it: failures SLOW DOWN,
// they do not lock anybody out.
//
// Two keys count failed logins, each for `failureWindowMs` after its last failure:
//   the address  - the client's address (IPv4 /32, IPv6 per /64: core/connection-limits clientKey);
//   the pair     - (address, canonical account).
// The n-th failure of a key costs delay(n) = firstDelay * 2^(n-1), capped (max_delay for a pair,
// max_address_delay for an address). The delay is taken BEFORE the attempt is verified, and
// attempts of one pair are spaced by it whatever connection they come from: each attempt reserves
// the pair's next slot, so more connections do not make guessing one account faster. An address's
// slots are reserved too, but never more than max_address_delay ahead, so a neighbour behind it
// waits at most that long; spraying many accounts from one address over parallel connections is
// therefore bounded by the connection limits (about max_connections_per_ip attempts per
// max_address_delay), as with Dovecot's auth penalty: fail2ban bans such addresses
// (docs/security.md).
//
// Fairness:
// - The account itself is never throttled: its owner logging in from an address that has not
//   failed is neither delayed nor refused, however many failures others caused for it elsewhere.
// - Another account behind a failing address (a household NAT) is slowed by the address's delay,
//   capped at max_address_delay, and never refused; a pair that logged in successfully before
//   (a known device) skips the address's delay altogether.
// - Refusal exists only for an attacking pair: when its queued attempts would wait more than
//   pairQueueFactor * max_delay, the attempt is refused at once without being verified.
// - Trusted networks ([auth] trusted_networks) are never throttled.
// Memory is bounded: at most LIMITS.auth.maxThrottleEntries keys, least recently used go first.

import { clientKey } from '../core/connection-limits.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { LruMap } from '../core/lru.ts';

export interface ThrottleOptions {
  readonly failureWindowMs: number;
  readonly maxPairDelayMs: number;
  readonly maxAddressDelayMs: number;
  /** True for clients that are never throttled. */
  readonly trusted: (ip: string) => boolean;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

interface Entry {
  failures: number;
  /** Time of the last failure. */
  last: number;
  /** Earliest start of the next attempt of this key. */
  next: number;
  /** Time of the last success (pairs only), 0 for none. */
  good: number;
}

/** What the gate says about one attempt. */
export type Gate =
  | { readonly kind: 'go'; readonly waitMs: number; readonly pairFailures: number; readonly addressFailures: number }
  | { readonly kind: 'refuse'; readonly pairFailures: number };

/** The pair key's account part for names that name no account. */
const INVALID = '(invalid)';

export class LoginThrottle {
  readonly #entries: LruMap<string, Entry>;
  readonly #opts: ThrottleOptions;
  readonly #now: () => number;
  readonly #max: number;

  constructor(opts: ThrottleOptions) {
    this.#opts = opts;
    this.#now = opts.now ?? Date.now;
    this.#max = opts.maxEntries ?? LIMITS.auth.maxThrottleEntries;
    this.#entries = new LruMap(this.#max);
  }

  get size(): number {
    return this.#entries.size;
  }

  /** Decides when an attempt may be verified, and reserves that slot. */
  gate(ip: string, account: AccountId | null): Gate {
    if (this.#opts.trusted(ip)) return { kind: 'go', waitMs: 0, pairFailures: 0, addressFailures: 0 };
    const now = this.#now();
    const [aKey, pKey] = keys(ip, account);
    const addr = this.#get(aKey, now);
    const pair = this.#get(pKey, now);
    const pf = pair?.failures ?? 0;
    const af = addr?.failures ?? 0;
    let wait = 0;
    if (pair && pf > 0) {
      wait = Math.max(0, pair.next - now);
      if (wait > LIMITS.auth.pairQueueFactor * this.#opts.maxPairDelayMs) return { kind: 'refuse', pairFailures: pf };
    }
    const knownGood = pair !== undefined && pf === 0 && pair.good > 0;
    const useAddress = addr !== undefined && af > 0 && !knownGood;
    if (useAddress) wait = Math.max(wait, Math.min(Math.max(0, addr.next - now), this.#opts.maxAddressDelayMs));
    const start = now + wait;
    if (pair && pf > 0) pair.next = Math.max(pair.next, start) + this.#delay(pf, this.#opts.maxPairDelayMs);
    if (useAddress) {
      const d = this.#delay(af, this.#opts.maxAddressDelayMs);
      addr.next = Math.min(Math.max(addr.next, start) + d, now + this.#opts.maxAddressDelayMs);
    }
    return { kind: 'go', waitMs: wait, pairFailures: pf, addressFailures: af };
  }

  failed(ip: string, account: AccountId | null): void {
    if (this.#opts.trusted(ip)) return;
    const now = this.#now();
    const [aKey, pKey] = keys(ip, account);
    for (const [key, cap] of [
      [aKey, this.#opts.maxAddressDelayMs],
      [pKey, this.#opts.maxPairDelayMs],
    ] as const) {
      const e = this.#get(key, now) ?? { failures: 0, last: now, next: 0, good: 0 };
      e.failures++;
      e.last = now;
      e.next = Math.max(e.next, now + this.#delay(e.failures, cap));
      this.#set(key, e);
    }
  }

  /** Clears the pair and remembers it as known; the address keeps its count (one valid account
   *  must not wash an attacking address clean). */
  succeeded(ip: string, account: AccountId): void {
    if (this.#opts.trusted(ip)) return;
    const now = this.#now();
    this.#set(keys(ip, account)[1], { failures: 0, last: now, next: 0, good: now });
  }

  #delay(failures: number, cap: number): number {
    return Math.min(cap, LIMITS.auth.firstDelayMs * 2 ** Math.min(30, failures - 1));
  }

  /** The live entry of a key (failures forgotten after the window, known pairs after
   *  knownGoodMs), refreshed as most recently used; undefined when nothing is left of it. */
  #get(key: string, now: number): Entry | undefined {
    const e = this.#entries.get(key);
    if (!e) return undefined;
    if (e.failures > 0 && now - e.last > this.#opts.failureWindowMs) {
      e.failures = 0;
      e.next = 0;
    }
    if (e.good > 0 && now - e.good > LIMITS.auth.knownGoodMs) e.good = 0;
    if (e.failures === 0 && e.good === 0) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }

  #set(key: string, e: Entry): void {
    this.#entries.set(key, e);
  }
}

function keys(ip: string, account: AccountId | null): [string, string] {
  const a = clientKey(ip);
  return [`a ${a}`, `p ${a} ${account ?? INVALID}`];
}
