// Our own addresses on the internet ([server] public_addresses), the ones outbound mail leaves
// from and that receivers judge: `arcline check` tests them against SPF, reverse DNS and DNS
// blocklists, and the blocklist monitor watches them. Empty in the configuration: the A and AAAA
// addresses of the host name, looked up now through the configured resolvers.

import type { Resolver } from 'node:dns/promises';

export type AddressLookups = Pick<Resolver, 'resolve4' | 'resolve6'>;

const ABSENT = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

/** The A and AAAA addresses of `name`; `absent`: the name has none (not an error). */
export async function hostAddresses(
  dns: AddressLookups,
  name: string,
): Promise<{ readonly addresses: string[]; readonly error: string | null }> {
  const [v4, v6] = await Promise.allSettled([dns.resolve4(name), dns.resolve6(name)]);
  const addresses: string[] = [];
  const errors: string[] = [];
  for (const r of [v4, v6]) {
    if (r.status === 'fulfilled') addresses.push(...r.value);
    else {
      const code = (r.reason as NodeJS.ErrnoException)?.code ?? String(r.reason);
      if (!ABSENT.has(code)) errors.push(code);
    }
  }
  return { addresses, error: errors.length > 0 && addresses.length === 0 ? errors.join(', ') : null };
}

/** [server] public_addresses, or the addresses of `hostname` when it is empty. */
export async function publicAddresses(
  dns: AddressLookups,
  configured: readonly string[],
  hostname: string,
): Promise<{ readonly addresses: readonly string[]; readonly configured: boolean; readonly error: string | null }> {
  if (configured.length > 0) return { addresses: [...configured], configured: true, error: null };
  const r = await hostAddresses(dns, hostname);
  return { addresses: r.addresses, configured: false, error: r.error };
}
