// Simultaneous connections per client address. IPv6 clients are counted per /64, the
// smallest block one customer usually gets, so one host cannot dodge the limit by rotating
// addresses inside its own prefix. Wider client networks ([rate_limits] ipv4_prefixes /
// ipv6_prefixes, the second and third: /26 and /21, /56 and /48 by default) may have limits of
// their own (`NetworkLimit`, [rate_limits] concurrent_per_network), so a botnet's neighbours or
// a hoster's range cannot take every slot either (docs/spam.md "Rate limits").

import { isIPv6 } from 'node:net';
import { ipv6Nibbles, mappedIPv4, networkKey } from './ip.ts';
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

/** Why a connection was not admitted: its client is at its limit, its network is, or everyone
 *  together is. */
export type Refusal = 'per-ip' | 'per-network' | 'total';

/** At most `max` simultaneous connections from one network of `v4`/`v6` prefix bits. */
export interface NetworkLimit {
  readonly v4: number;
  readonly v6: number;
  readonly max: number;
}

/** The keys a connection from `ip` counts under, besides its client key. */
export function networkKeys(ip: string, limits: readonly NetworkLimit[]): string[] {
  return limits.map((l) => networkKey(ip, l.v4, l.v6));
}

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
  readonly #nets = new Map<string, number>();
  readonly #max: number;
  readonly #maxTotal: number;
  readonly #networks: readonly NetworkLimit[];
  #total = 0;

  readonly #exempt: (ip: string) => boolean;

  /** `exempt`: clients whose networks are not counted (trusted networks). */
  constructor(
    maxPerClient: number,
    maxTotal = Number.POSITIVE_INFINITY,
    networks: readonly NetworkLimit[] = [],
    exempt: (ip: string) => boolean = () => false,
  ) {
    this.#max = maxPerClient;
    this.#maxTotal = maxTotal;
    this.#networks = networks.filter((l) => l.max > 0);
    this.#exempt = exempt;
  }

  /** Counts a new connection, or says why not (and counts nothing). */
  admit(ip: string): Refusal | null {
    if (this.#total >= this.#maxTotal) return 'total';
    const key = clientKey(ip);
    const n = this.#counts.get(key) ?? 0;
    if (n >= this.#max) return 'per-ip';
    const nets = this.#exempt(ip) ? [] : networkKeys(ip, this.#networks);
    for (let i = 0; i < nets.length; i++) {
      if ((this.#nets.get(nets[i] as string) ?? 0) >= (this.#networks[i] as NetworkLimit).max) return 'per-network';
    }
    for (const k of nets) this.#nets.set(k, (this.#nets.get(k) ?? 0) + 1);
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
    for (const k of this.#exempt(ip) ? [] : networkKeys(ip, this.#networks)) {
      const m = this.#nets.get(k) ?? 0;
      if (m <= 1) this.#nets.delete(k);
      else this.#nets.set(k, m - 1);
    }
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
