// DNS blocklists (RFC 5782) for the connection stage of inbound SMTP.
// - §2.1 / §2.4: the query name is the client address reversed (IPv4 octets; IPv6 as 32
//   nibbles) under the zone; an A answer in 127.0.0.0/8 means listed, the TXT says why (§2.1).
// - Spamhaus and others answer 127.255.255.0/24 for refused or malformed queries (a public
//   resolver, an over-quota user): those are errors, never listings.
// - Fail open: any DNS error, a timeout, or an answer outside 127.0.0.0/8 means "not listed",
//   so a broken blocklist never blocks mail. Errors are not cached; answers are cached by TTL.

import type { Resolver } from 'node:dns/promises';
import { isIPv4, isIPv6 } from 'node:net';
import { oneLine } from '../core/text.ts';

export type DnsblResolver = Pick<Resolver, 'resolve4' | 'resolveTxt'>;

export interface DnsblListing {
  readonly zone: string;
  readonly codes: readonly string[];
  readonly reason: string | null;
}

const NOT_LISTED_TTL_MS = 300_000;
const MIN_TTL_MS = 30_000;
const MAX_TTL_MS = 3_600_000;

/** The query name for ip in zone, or null for something that is not an IP address. */
export function dnsblQueryName(ip: string, zone: string): string | null {
  const z = zone.toLowerCase().replace(/\.$/, '');
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip)?.[1];
  const v4 = mapped ?? (isIPv4(ip) ? ip : null);
  if (v4) return `${v4.split('.').reverse().join('.')}.${z}`;
  if (!isIPv6(ip)) return null;
  return `${expandIPv6(ip).split('').reverse().join('.')}.${z}`;
}

/** 32 hex digits of an IPv6 address. */
function expandIPv6(ip: string): string {
  let addr = ip.toLowerCase().split('%')[0] ?? '';
  // An embedded IPv4 tail (::1.2.3.4) becomes two hextets.
  const tail = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(addr);
  if (tail) {
    const [a, b, c, d] = tail.slice(1).map(Number) as [number, number, number, number];
    addr = `${addr.slice(0, tail.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', rest] = addr.split('::');
  const left = head ? head.split(':') : [];
  const right = rest ? rest.split(':') : [];
  const fill = addr.includes('::') ? 8 - left.length - right.length : 0;
  return [...left, ...Array.from({ length: fill }, () => '0'), ...right].map((h) => h.padStart(4, '0')).join('');
}

interface CacheEntry {
  readonly listing: DnsblListing | null;
  readonly expires: number;
}

export class Dnsbl {
  readonly #zones: readonly string[];
  readonly #resolver: DnsblResolver;
  readonly #now: () => number;
  readonly #max: number;
  readonly #timeoutMs: number;
  readonly #cache = new Map<string, CacheEntry>();
  readonly #inflight = new Map<string, Promise<DnsblListing | null>>();

  constructor(opts: {
    zones: readonly string[];
    resolver: DnsblResolver;
    now?: () => number;
    maxCacheEntries?: number;
    timeoutMs?: number;
  }) {
    this.#zones = opts.zones.map((z) => z.toLowerCase().replace(/\.$/, '')).filter((z) => z !== '');
    this.#resolver = opts.resolver;
    this.#now = opts.now ?? Date.now;
    this.#max = opts.maxCacheEntries ?? 10_000;
    this.#timeoutMs = opts.timeoutMs ?? 3000;
  }

  /** The first listing in zone order, or null; zones are queried in parallel. */
  async check(ip: string): Promise<DnsblListing | null> {
    if (this.#zones.length === 0) return null;
    const results = await Promise.all(this.#zones.map((z) => this.#zone(ip, z)));
    return results.find((r) => r !== null) ?? null;
  }

  #zone(ip: string, zone: string): Promise<DnsblListing | null> {
    const name = dnsblQueryName(ip, zone);
    if (!name) return Promise.resolve(null);
    const hit = this.#cache.get(name);
    if (hit && hit.expires > this.#now()) return Promise.resolve(hit.listing);
    let p = this.#inflight.get(name);
    if (!p) {
      p = this.#lookup(name, zone).finally(() => this.#inflight.delete(name));
      this.#inflight.set(name, p);
    }
    return p;
  }

  async #lookup(name: string, zone: string): Promise<DnsblListing | null> {
    let answers: { address: string; ttl: number }[];
    try {
      answers = await withTimeout(this.#resolver.resolve4(name, { ttl: true }), this.#timeoutMs);
    } catch (e) {
      const code = (e as NodeJS.ErrnoException).code;
      if (code === 'ENOTFOUND' || code === 'ENODATA') this.#remember(name, null, NOT_LISTED_TTL_MS);
      return null; // other errors: not listed, not cached
    }
    const codes = answers.map((a) => a.address).filter((a) => a.startsWith('127.') && !a.startsWith('127.255.255.'));
    const ttl = Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, Math.min(...answers.map((a) => a.ttl * 1000))));
    if (codes.length === 0) {
      this.#remember(name, null, answers.length > 0 ? ttl : NOT_LISTED_TTL_MS);
      return null;
    }
    let reason: string | null = null;
    try {
      const txt = await withTimeout(this.#resolver.resolveTxt(name), this.#timeoutMs);
      const first = txt[0]?.join('');
      if (first) reason = oneLine(first.replace(/[^\x20-\x7e]/g, ' ').replace(/ {2,}/g, ' '), 200) || null;
    } catch {
      reason = null;
    }
    const listing = { zone, codes, reason };
    this.#remember(name, listing, ttl);
    return listing;
  }

  #remember(name: string, listing: DnsblListing | null, ttlMs: number): void {
    if (this.#cache.size >= this.#max) {
      const oldest = this.#cache.keys().next().value;
      if (oldest !== undefined) this.#cache.delete(oldest);
    }
    this.#cache.set(name, { listing, expires: this.#now() + ttlMs });
  }
}

function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(Object.assign(new Error('DNSBL timeout'), { code: 'ETIMEOUT' })), ms);
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}
