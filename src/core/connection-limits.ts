// Simultaneous connections per client address. IPv6 clients are counted per /64, the
// smallest block one customer usually gets, so one host cannot dodge the limit by rotating
// addresses inside its own prefix.

import { isIPv6 } from 'node:net';
import { ipv6Nibbles, mappedIPv4 } from './ip.ts';
import { LruMap } from './lru.ts';

export function clientKey(ip: string): string {
  if (!isIPv6(ip)) return ip;
  const hex = ipv6Nibbles(ip);
  if (hex === null) return ip;
  const v4 = mappedIPv4(hex);
  if (v4 !== null) return v4;
  const groups = (hex.slice(0, 16).match(/.{4}/g) ?? []).map((g) => g.replace(/^0+(?=.)/, ''));
  return `${groups.join(':')}::/64`;
}

/** Why a connection was not admitted: its client is at its limit, or everyone together is. */
export type Refusal = 'per-ip' | 'total';

/** Where connections are counted: a ConnectionCounter in this thread, or one shared by several
 *  workers (the inbound service in worker threads counts across all of them). */
export interface ConnectionSlots {
  /** Counts a new connection, or says why not (and counts nothing). */
  admit(ip: string): Refusal | null;
  /** Forgets one counted connection of `ip` (call once per admitted connection). */
  release(ip: string): void;
}

/** Client addresses slowed for their errors, remembered across their sessions (SMTP gate). */
export interface ErrorMemory {
  /** Remembers the client of `ip` as slowed until `untilMs` (epoch ms). */
  remember(ip: string, untilMs: number): void;
  /** Until when the client of `ip` is remembered as slowed (0: it is not). */
  slowedUntil(ip: string): number;
}

/** ErrorMemory of one thread: the least recently used client dropped past `max` entries. */
export class LocalErrorMemory implements ErrorMemory {
  readonly #map: LruMap<string, number>;

  constructor(max: number) {
    this.#map = new LruMap(max);
  }

  remember(ip: string, untilMs: number): void {
    this.#map.set(clientKey(ip), untilMs);
  }

  slowedUntil(ip: string): number {
    return this.#map.get(clientKey(ip)) ?? 0;
  }
}

export class ConnectionCounter implements ConnectionSlots {
  readonly #counts = new Map<string, number>();
  readonly #max: number;
  readonly #maxTotal: number;
  #total = 0;

  constructor(maxPerClient: number, maxTotal = Number.POSITIVE_INFINITY) {
    this.#max = maxPerClient;
    this.#maxTotal = maxTotal;
  }

  /** Counts a new connection, or says why not (and counts nothing). */
  admit(ip: string): Refusal | null {
    if (this.#total >= this.#maxTotal) return 'total';
    const key = clientKey(ip);
    const n = this.#counts.get(key) ?? 0;
    if (n >= this.#max) return 'per-ip';
    this.#counts.set(key, n + 1);
    this.#total++;
    return null;
  }

  /** Forgets one counted connection of `ip` (call once per admitted connection). */
  release(ip: string): void {
    const key = clientKey(ip);
    const n = this.#counts.get(key) ?? 0;
    if (n === 0) return;
    this.#total--;
    if (n <= 1) this.#counts.delete(key);
    else this.#counts.set(key, n - 1);
  }

  /** Client addresses (or /64s) with a connection. */
  get size(): number {
    return this.#counts.size;
  }

  /** Connections counted, in all. */
  get total(): number {
    return this.#total;
  }
}
