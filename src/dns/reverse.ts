// Reverse-mapping names of IP addresses: the PTR name of a client (RFC 1035 §3.5 in-addr.arpa,
// RFC 3596 §2.5 ip6.arpa) and the query name of a DNS blocklist (RFC 5782 §2.1, §2.4), which
// are the same labels under another zone. IPv4-mapped IPv6 (::ffff:1.2.3.4) is an IPv4 address.

import { isIPv4, isIPv6 } from 'node:net';
import { ipv6Nibbles, mappedIPv4 } from '../core/ip.ts';

/** The address's labels in reverse order (octets for IPv4, 32 nibbles for IPv6) and whether it
 *  is IPv4; null for what is not an address. */
export function reversedAddress(ip: string): { readonly labels: string; readonly v4: boolean } | null {
  if (isIPv4(ip)) return { labels: ip.split('.').reverse().join('.'), v4: true };
  if (!isIPv6(ip)) return null;
  const hex = ipv6Nibbles(ip);
  if (hex === null) return null;
  const v4 = mappedIPv4(hex);
  if (v4 !== null) return { labels: v4.split('.').reverse().join('.'), v4: true };
  return { labels: hex.split('').reverse().join('.'), v4: false };
}

/** The PTR name of an address (in-addr.arpa or ip6.arpa); null for what is not an address. */
export function reverseName(ip: string): string | null {
  const r = reversedAddress(ip);
  if (r === null) return null;
  return `${r.labels}.${r.v4 ? 'in-addr.arpa' : 'ip6.arpa'}`;
}
