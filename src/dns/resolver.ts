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
