// Reverse-mapping names of IP addresses: the PTR name of a client (RFC 1035 §3.5 in-addr.arpa,
// RFC 3596 §2.5 ip6.arpa) and the query name of a DNS blocklist (RFC 5782 §2.1, §2.4), which
// are the same labels under another zone. IPv4-mapped IPv6 (::ffff:1.2.3.4) is an IPv4 address.

import { isIPv4, isIPv6 } from 'node:net';

/** 0:0:0:0:0:ffff::/96 as nibbles (RFC 4291 §2.5.5.2). */
const MAPPED_PREFIX = `${'0'.repeat(20)}ffff`;

/** The address's labels in reverse order (octets for IPv4, 32 nibbles for IPv6) and whether it
 *  is IPv4; null for what is not an address. */
export function reversedAddress(ip: string): { readonly labels: string; readonly v4: boolean } | null {
  if (isIPv4(ip)) return { labels: ip.split('.').reverse().join('.'), v4: true };
  if (!isIPv6(ip)) return null;
  const hex = ipv6Nibbles(ip);
  if (hex === null) return null;
  if (hex.startsWith(MAPPED_PREFIX)) {
    const octets = (hex.slice(24).match(/../g) ?? []).map((h) => Number.parseInt(h, 16));
    return { labels: octets.reverse().join('.'), v4: true };
  }
  return { labels: hex.split('').reverse().join('.'), v4: false };
}

/** The PTR name of an address (in-addr.arpa or ip6.arpa); null for what is not an address. */
export function reverseName(ip: string): string | null {
  const r = reversedAddress(ip);
  if (r === null) return null;
  return `${r.labels}.${r.v4 ? 'in-addr.arpa' : 'ip6.arpa'}`;
}

/** The 32 hex digits of an IPv6 address (any spelling: '::', an IPv4 tail, a zone id), or null. */
function ipv6Nibbles(ip: string): string | null {
  let addr = ip.toLowerCase();
  const pct = addr.indexOf('%');
  if (pct >= 0) addr = addr.slice(0, pct);
  const lastColon = addr.lastIndexOf(':');
  const last = addr.slice(lastColon + 1);
  if (last.includes('.')) {
    // An embedded IPv4 tail (::ffff:1.2.3.4, ::1.2.3.4) is the last two groups.
    if (!isIPv4(last)) return null;
    const [a = 0, b = 0, c = 0, d = 0] = last.split('.').map(Number);
    addr = `${addr.slice(0, lastColon + 1)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const halves = addr.split('::');
  let groups: string[];
  if (halves.length === 1) {
    groups = addr.split(':');
  } else if (halves.length === 2) {
    const left = halves[0] ? halves[0].split(':') : [];
    const right = halves[1] ? halves[1].split(':') : [];
    const fill = 8 - left.length - right.length;
    if (fill < 1) return null;
    groups = [...left, ...Array.from({ length: fill }, () => '0'), ...right];
  } else {
    return null;
  }
  if (groups.length !== 8 || !groups.every((g) => /^[0-9a-f]{1,4}$/.test(g))) return null;
  return groups.map((g) => g.padStart(4, '0')).join('');
}
