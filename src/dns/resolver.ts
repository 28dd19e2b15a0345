// DNS resolution through the configured servers ([dns] servers), or the system resolvers.
// Every DNS lookup of the server goes through here, so tests can point all of them at a DNS
// server on 127.0.0.1 and nothing leaves the machine.

import { Resolver } from 'node:dns';
import { Resolver as PromiseResolver } from 'node:dns/promises';

/** servers: "1.2.3.4", "1.2.3.4:5353", "::1" or "[::1]:5353"; empty = system resolvers. */
export function createResolver(servers: readonly string[], timeoutMs = 5000): Resolver {
  const r = new Resolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length > 0) r.setServers([...servers]);
  return r;
}

/** The same, with promises (outbound routing, mail authentication). */
export function createPromiseResolver(servers: readonly string[], timeoutMs = 5000): PromiseResolver {
  const r = new PromiseResolver({ timeout: timeoutMs, tries: 2 });
  if (servers.length > 0) r.setServers([...servers]);
  return r;
}

type AnyResolve = (name: string, rrtype: string) => Promise<unknown>;

/** A small answer cache in front of `resolve(name, rrtype)`, for the lookups every inbound message
 *  repeats (SPF and DMARC records of the same senders). Answers and "no such name/record" are kept
 *  for `ttlMs` (DNS TTLs are not visible through this API; 60 s is below almost every published
 *  TTL); failures (timeouts, SERVFAIL) are never cached. Bounded: the oldest entry goes first. */
export function cachingResolve(
  resolve: AnyResolve,
  opts: { ttlMs?: number; maxEntries?: number; now?: () => number } = {},
): AnyResolve {
  const ttl = opts.ttlMs ?? 60_000;
  const max = opts.maxEntries ?? 10_000;
  const now = opts.now ?? Date.now;
  const cache = new Map<string, { expires: number; value?: unknown; error?: unknown }>();
  const inflight = new Map<string, Promise<unknown>>();
  const remember = (key: string, entry: { expires: number; value?: unknown; error?: unknown }) => {
    if (cache.size >= max) {
      const oldest = cache.keys().next().value;
      if (oldest !== undefined) cache.delete(oldest);
    }
    cache.set(key, entry);
  };
  return (name, rrtype) => {
    const key = `${rrtype} ${name.toLowerCase()}`;
    const hit = cache.get(key);
    if (hit && hit.expires > now()) return 'error' in hit ? Promise.reject(hit.error) : Promise.resolve(hit.value);
    let p = inflight.get(key);
    if (!p) {
      p = resolve(name, rrtype).then(
        (value) => {
          remember(key, { expires: now() + ttl, value });
          return value;
        },
        (error: unknown) => {
          const code = (error as NodeJS.ErrnoException)?.code;
          if (code === 'ENOTFOUND' || code === 'ENODATA') remember(key, { expires: now() + ttl, error });
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
