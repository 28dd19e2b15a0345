// DNS resolution through the configured servers ([dns] servers), or the system resolvers.
// Every DNS lookup of the server goes through here, so tests can point all of them at a DNS
// server on 127.0.0.1 and nothing leaves the machine.

import { Resolver as PromiseResolver } from 'node:dns/promises';
import { LruMap } from '../core/lru.ts';
import { reverseName } from './reverse.ts';

/** servers: "1.2.3.4", "1.2.3.4:5353", "::1" or "[::1]:5353"; empty = system resolvers.
 *  Outbound routing, mail authentication, the client's host name. */
export function createPromiseResolver(servers: readonly string[], timeoutMs = 5000): PromiseResolver {
  const r = new PromiseResolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length > 0) r.setServers([...servers]);
  return r;
}

type AnyResolve = (name: string, rrtype: string) => Promise<unknown>;

/** What the cache asks of a resolver: node:dns/promises' Resolver has all three. */
export interface TtlResolver {
  resolve(name: string, rrtype: string): Promise<unknown>;
  resolve4(name: string, opts: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
  resolve6(name: string, opts: { ttl: true }): Promise<{ address: string; ttl: number }[]>;
}

export interface DnsCacheOptions {
  /** Longest time an answer is kept ([dns] cache_max_ttl). A and AAAA answers are kept for
   *  their own TTL when shorter; node:dns does not show the TTL of other types (TXT, MX), so
   *  they are kept this long. */
  readonly maxTtlMs: number;
  /** How long "no such name" (NXDOMAIN) and "no such record" (NODATA) are kept (RFC 2308 §5:
   *  negative answers may be cached; the SOA minimum that bounds it is not visible through
   *  node:dns, so a short fixed time, never above maxTtlMs). */
  readonly negativeTtlMs?: number;
  readonly maxEntries?: number;
  readonly now?: () => number;
}

type Entry = { expires: number; value?: unknown; error?: unknown };

/** An answer cache in front of a resolver, for the lookups every inbound message repeats (SPF
 *  and DMARC records of the same senders, A/MX of SPF mechanisms). Failures (SERVFAIL,
 *  timeouts, refused) are never cached: the next message asks again. Identical queries in
 *  flight share one. Bounded: the least recently used entry goes first. Keys are the type and
 *  the name in lower case (RFC 4343: DNS names compare without case). */
export function cachingResolve(resolver: TtlResolver, opts: DnsCacheOptions): AnyResolve {
  const maxTtl = opts.maxTtlMs;
  const negativeTtl = Math.min(opts.negativeTtlMs ?? 60_000, maxTtl);
  const now = opts.now ?? Date.now;
  const cache = new LruMap<string, Entry>(opts.maxEntries ?? 10_000);
  const inflight = new Map<string, Promise<unknown>>();
  const ask = async (name: string, rrtype: string): Promise<{ value: unknown; ttlMs: number }> => {
    if (rrtype === 'A' || rrtype === 'AAAA') {
      const rows = await (rrtype === 'A'
        ? resolver.resolve4(name, { ttl: true })
        : resolver.resolve6(name, { ttl: true }));
      let ttl = maxTtl;
      for (const r of rows) ttl = Math.min(ttl, r.ttl * 1000);
      return { value: rows.map((r) => r.address), ttlMs: ttl };
    }
    return { value: await resolver.resolve(name, rrtype), ttlMs: maxTtl };
  };
  return (name, rrtype) => {
    const key = `${rrtype} ${name.toLowerCase()}`;
    const hit = cache.get(key);
    if (hit) {
      if (hit.expires > now()) return 'error' in hit ? Promise.reject(hit.error) : Promise.resolve(hit.value);
      cache.delete(key);
    }
    let p = inflight.get(key);
    if (!p) {
      p = ask(name, rrtype).then(
        ({ value, ttlMs }) => {
          if (ttlMs > 0) cache.set(key, { expires: now() + ttlMs, value });
          return value;
        },
        (error: unknown) => {
          const code = (error as NodeJS.ErrnoException)?.code;
          if ((code === 'ENOTFOUND' || code === 'ENODATA') && negativeTtl > 0)
            cache.set(key, { expires: now() + negativeTtl, error });
          throw error;
        },
      );
      const settled = p.finally(() => inflight.delete(key));
      settled.catch(() => {});
      inflight.set(key, p);
    }
    return p;
  };
}

/** The client's host names (PTR, for the Received header), cached like the other answers: a
 *  busy MX sees the same clients again and again. IPv4-mapped IPv6 addresses are asked as IPv4
 *  (reverse.ts). */
export function cachingReverse(resolver: TtlResolver, opts: DnsCacheOptions): (ip: string) => Promise<string[]> {
  const resolve = cachingResolve(resolver, opts);
  return async (ip) => {
    const name = reverseName(ip);
    return name ? ((await resolve(name, 'PTR')) as string[]) : [];
  };
}
