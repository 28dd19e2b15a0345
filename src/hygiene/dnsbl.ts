// DNS blocklists (RFC 5782) for the connection stage of inbound SMTP: is the client's address
// listed in any of the configured zones, and if so, why.
// - RFC 5782 §2.1: an IPv4 address is queried as its four octets reversed under the zone;
//   §2.4: an IPv6 address as its 32 nibbles reversed. An IPv4-mapped IPv6 address (::ffff:a.b.c.d,
//   how a dual-stack socket reports an IPv4 client) is queried as the IPv4 address.
// - §2.1 / §2.3: an A record in 127.0.0.0/8 means listed (the addresses are the list's return
//   codes); the TXT record of the same name says why. 127.255.255.0/24 is not a listing: Spamhaus
//   and others answer 127.255.255.252-255 for refused or malformed queries (a public resolver, a
//   typo, over quota). Answers outside 127.0.0.0/8 (a resolver rewriting NXDOMAIN) are ignored.
// Invariants:
// - fail open: NXDOMAIN / NODATA, any DNS error (SERVFAIL, REFUSED, timeout) and a zone that does
//   not answer within timeoutMs all mean "not listed"; check() never rejects, so a broken
//   blocklist can never block mail;
// - errors are never cached; answers are, per (zone, address): NXDOMAIN / NODATA for 300 s,
//   anything else for the smallest TTL of the A answer, bounded to [30 s, 1 h];
// - the cache holds at most maxCacheEntries entries (the oldest stored goes first); concurrent
//   checks of the same (zone, address) share one lookup;
// - a check takes at most about timeoutMs (A and TXT lookups together), and its timers are
//   unref'd so they never keep the process alive;
// - a reason is one line of printable ASCII, at most 200 characters, never empty (else null).

import type { Resolver } from 'node:dns/promises';
import { isIPv4 } from 'node:net';
import { LruMap } from '../core/lru.ts';
import { reversedAddress } from '../dns/reverse.ts';

/** The part of node:dns/promises Resolver used here. */
export type DnsblResolver = Pick<Resolver, 'resolve4' | 'resolveTxt'>;

export interface DnsblListing {
  /** The zone that lists the address (lower-case, no trailing dot). */
  readonly zone: string;
  /** The return codes: the A answers in 127.0.0.0/8, outside 127.255.255.0/24. */
  readonly codes: readonly string[];
  /** The first TXT record, sanitised; null when there is none or it could not be fetched. */
  readonly reason: string | null;
}

export interface DnsblOptions {
  readonly zones: readonly string[];
  readonly resolver: DnsblResolver;
  /** Milliseconds since the epoch, for cache expiry (tests inject a clock). */
  readonly now?: () => number;
  readonly maxCacheEntries?: number;
  /** Per zone, A and TXT lookups together. */
  readonly timeoutMs?: number;
}

const NOT_LISTED_TTL_MS = 300_000;
const MIN_TTL_MS = 30_000;
const MAX_TTL_MS = 3_600_000;
const DEFAULT_MAX_ENTRIES = 10_000;
const DEFAULT_TIMEOUT_MS = 3000;
const MAX_REASON = 200;

function normalizeZone(zone: string): string {
  return zone.trim().toLowerCase().replace(/\.+$/, '');
}

/**
 * RFC 5782 §2.1/§2.4: the query name for ip in zone: IPv4 octets reversed; IPv6 as 32 reversed
 * nibbles (dns/reverse.ts). null for a non-IP. IPv4-mapped IPv6 (::ffff:1.2.3.4) is queried as IPv4.
 */
export function dnsblQueryName(ip: string, zone: string): string | null {
  const z = normalizeZone(zone);
  const r = reversedAddress(ip);
  if (r === null) return null;
  return z === '' ? r.labels : `${r.labels}.${z}`;
}

/** One line of printable ASCII, runs of spaces collapsed, at most MAX_REASON characters; null if empty. */
function sanitizeReason(text: string): string | null {
  const s = text
    .replace(/[^\x20-\x7e]/g, ' ')
    .replace(/ {2,}/g, ' ')
    .trim()
    .slice(0, MAX_REASON)
    .trimEnd();
  return s === '' ? null : s;
}

/** 127.0.0.0/8, but not the error codes in 127.255.255.0/24. */
function isListingCode(address: string): boolean {
  return isIPv4(address) && address.startsWith('127.') && !address.startsWith('127.255.255.');
}

function isNoRecord(err: unknown): boolean {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  return code === 'ENOTFOUND' || code === 'ENODATA';
}

class TimeoutError extends Error {
  readonly code = 'ETIMEOUT';
}

/** p, or a TimeoutError after ms; the timer never keeps the process alive. */
function withTimeout<T>(p: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new TimeoutError(`DNSBL lookup timed out after ${ms} ms`)), Math.max(0, ms));
    timer.unref();
  });
  return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
}

interface CacheEntry {
  readonly listing: DnsblListing | null;
  readonly expires: number;
}

/** One zone's answer for one address: listed (with its codes and reason), clear (NXDOMAIN,
 *  NODATA, or only non-listing answers), or the look-up failed (the caller decides: the SMTP
 *  stage fails open, the blocklist monitor keeps what it knew). */
export type DnsblAnswer =
  | { readonly kind: 'listed'; readonly listing: DnsblListing; readonly ttlMs: number }
  | { readonly kind: 'clear'; readonly ttlMs: number }
  | { readonly kind: 'error'; readonly error: string };

/** Asks `zone` about `ip` now (no cache): A, then TXT for the reason, within timeoutMs.
 *  Never rejects. Also used by `arcline check` and the blocklist monitor. */
export function queryDnsbl(resolver: DnsblResolver, ip: string, zone: string, timeoutMs: number): Promise<DnsblAnswer> {
  const z = normalizeZone(zone);
  const name = dnsblQueryName(ip, z);
  if (name === null) return Promise.resolve({ kind: 'error', error: `not an IP address: ${ip}` });
  return queryDnsblName(resolver, name, z, timeoutMs);
}

async function queryDnsblName(
  resolver: DnsblResolver,
  name: string,
  zone: string,
  timeoutMs: number,
): Promise<DnsblAnswer> {
  const deadline = performance.now() + timeoutMs;
  let answers: { address: string; ttl: number }[];
  try {
    answers = await withTimeout(resolver.resolve4(name, { ttl: true }), timeoutMs);
  } catch (err) {
    if (isNoRecord(err)) return { kind: 'clear', ttlMs: NOT_LISTED_TTL_MS };
    return { kind: 'error', error: (err as NodeJS.ErrnoException)?.code ?? String(err) };
  }
  const ttlMs =
    answers.length === 0
      ? NOT_LISTED_TTL_MS
      : Math.min(MAX_TTL_MS, Math.max(MIN_TTL_MS, Math.min(...answers.map((a) => a.ttl * 1000))));
  // Error codes (127.255.255.x) and answers outside 127/8 are ignored: not listed.
  const codes = answers.map((a) => a.address).filter(isListingCode);
  if (codes.length === 0) return { kind: 'clear', ttlMs };
  const reason = await dnsblReason(resolver, name, deadline - performance.now());
  return { kind: 'listed', listing: { zone, codes, reason }, ttlMs };
}

/** RFC 5782 §2.1: the TXT record of the same name; the strings of the first one, joined. */
async function dnsblReason(resolver: DnsblResolver, name: string, budgetMs: number): Promise<string | null> {
  if (budgetMs <= 0) return null;
  try {
    const records = await withTimeout(resolver.resolveTxt(name), budgetMs);
    const first = records[0];
    return first ? sanitizeReason(first.join('')) : null;
  } catch {
    return null;
  }
}

export class Dnsbl {
  readonly #zones: readonly string[];
  readonly #resolver: DnsblResolver;
  readonly #now: () => number;
  readonly #timeoutMs: number;
  /** null when caching is off (maxCacheEntries 0). */
  readonly #cache: LruMap<string, CacheEntry> | null;
  readonly #inflight = new Map<string, Promise<DnsblListing | null>>();

  constructor(opts: DnsblOptions) {
    const maxEntries = opts.maxCacheEntries ?? DEFAULT_MAX_ENTRIES;
    const timeoutMs = opts.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    if (!Number.isInteger(maxEntries) || maxEntries < 0) throw new RangeError(`bad maxCacheEntries: ${maxEntries}`);
    if (!Number.isFinite(timeoutMs) || timeoutMs <= 0) throw new RangeError(`bad timeoutMs: ${timeoutMs}`);
    this.#zones = [...new Set(opts.zones.map(normalizeZone).filter((z) => z !== ''))];
    this.#resolver = opts.resolver;
    this.#now = opts.now ?? Date.now;
    this.#cache = maxEntries > 0 ? new LruMap(maxEntries) : null;
    this.#timeoutMs = timeoutMs;
  }

  /** Looks the address up in every zone (in parallel); resolves with the first listing in zone order, or null. */
  async check(ip: string): Promise<DnsblListing | null> {
    if (this.#zones.length === 0) return null;
    const results = await Promise.all(this.#zones.map((zone) => this.#checkZone(ip, zone)));
    return results.find((r) => r !== null) ?? null;
  }

  #checkZone(ip: string, zone: string): Promise<DnsblListing | null> {
    const name = dnsblQueryName(ip, zone);
    if (name === null) return Promise.resolve(null);
    const key = `${zone} ${name}`;
    const hit = this.#cache?.get(key);
    if (hit) {
      if (hit.expires > this.#now()) return Promise.resolve(hit.listing);
      this.#cache?.delete(key);
    }
    let p = this.#inflight.get(key);
    if (!p) {
      p = this.#lookup(key, name, zone).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, p);
    }
    return p;
  }

  /** Never rejects. */
  async #lookup(key: string, name: string, zone: string): Promise<DnsblListing | null> {
    const a = await queryDnsblName(this.#resolver, name, zone, this.#timeoutMs);
    // SERVFAIL, REFUSED, timeouts...: not listed, and asked again next time.
    if (a.kind === 'error') return null;
    const listing = a.kind === 'listed' ? a.listing : null;
    this.#remember(key, listing, a.ttlMs);
    return listing;
  }

  #remember(key: string, listing: DnsblListing | null, ttlMs: number): void {
    this.#cache?.set(key, { listing, expires: this.#now() + ttlMs });
  }
}
