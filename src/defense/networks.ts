// Client networks as the abuse defences name them (docs/spam.md "IP allow and deny lists"):
// one canonical spelling for a CIDR network (host bits cleared, IPv4-mapped IPv6 as IPv4), the
// network a ban covers (an IPv4 address, an IPv6 /64: what one customer usually gets), and a
// set of networks matched with node:net BlockList.

import { BlockList, isIPv4, isIPv6 } from 'node:net';
import { ipv6Nibbles, mappedIPv4 } from '../core/ip.ts';

export interface Network {
  /** Canonical CIDR spelling: "192.0.2.0/24", "2001:db8::/32". */
  readonly cidr: string;
  readonly address: string;
  readonly prefix: number;
  readonly family: 'ipv4' | 'ipv6';
}

/** Longest text taken as a network (an IPv6 address with a prefix fits in 50). */
const MAX_TEXT = 64;

/** "a.b.c.d", "a.b.c.d/n", "v6", "v6/n" to its canonical network, or null when it is none.
 *  Host bits are cleared (10.1.2.3/8 is 10.0.0.0/8); ::ffff:a.b.c.d/n (n >= 96) is IPv4. */
export function parseNetwork(text: string): Network | null {
  const s = text.trim();
  if (s.length === 0 || s.length > MAX_TEXT) return null;
  const slash = s.indexOf('/');
  const addr = slash < 0 ? s : s.slice(0, slash);
  const bits = slash < 0 ? null : s.slice(slash + 1);
  if (bits !== null && !/^\d{1,3}$/.test(bits)) return null;
  if (isIPv4(addr)) {
    const prefix = bits === null ? 32 : Number(bits);
    if (prefix > 32) return null;
    return ipv4Network(addr, prefix);
  }
  if (!isIPv6(addr)) return null;
  const hex = ipv6Nibbles(addr);
  if (hex === null) return null;
  const prefix = bits === null ? 128 : Number(bits);
  if (prefix > 128) return null;
  const v4 = mappedIPv4(hex);
  if (v4 !== null && prefix >= 96) return ipv4Network(v4, prefix - 96);
  const kept = [...hex].map((h, i) => {
    const from = i * 4;
    if (from + 4 <= prefix) return h;
    if (from >= prefix) return '0';
    const keep = prefix - from; // 1..3 bits of this nibble
    return (Number.parseInt(h, 16) & (0xf << (4 - keep)) & 0xf).toString(16);
  });
  const address = compressIPv6(kept.join(''));
  return { cidr: `${address}/${prefix}`, address, prefix, family: 'ipv6' };
}

function ipv4Network(addr: string, prefix: number): Network {
  const n = addr.split('.').reduce((acc, o) => acc * 256 + Number(o), 0);
  const mask = prefix === 0 ? 0 : (0xffffffff << (32 - prefix)) >>> 0;
  const masked = (n & mask) >>> 0;
  const address = [24, 16, 8, 0].map((s) => (masked >>> s) & 0xff).join('.');
  return { cidr: `${address}/${prefix}`, address, prefix, family: 'ipv4' };
}

/** 32 hex digits to the RFC 5952 §4 spelling (longest run of zero groups as ::, lower case). */
function compressIPv6(hex: string): string {
  const groups = (hex.match(/.{4}/g) ?? []).map((g) => g.replace(/^0+(?=.)/, ''));
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== '0') {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === '0') j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  if (best < 0) return groups.join(':');
  return `${groups.slice(0, best).join(':')}::${groups.slice(best + bestLen).join(':')}`;
}

/** The network a ban of `ip` covers: the IPv4 address itself, or its IPv6 /64. Null for
 *  something that is not an address. */
export function banNetwork(ip: string): Network | null {
  if (isIPv4(ip)) return parseNetwork(ip);
  if (!isIPv6(ip)) return null;
  const n = parseNetwork(ip);
  if (n === null || n.family === 'ipv4') return n;
  return parseNetwork(`${n.address}/64`);
}

/** A set of networks, matched with node:net BlockList (IPv4-mapped IPv6 addresses match the
 *  IPv4 rules). */
export class NetworkSet {
  readonly #list = new BlockList();
  readonly size: number;

  constructor(networks: Iterable<Network>) {
    let n = 0;
    for (const net of networks) {
      this.#list.addSubnet(net.address, net.prefix, net.family);
      n++;
    }
    this.size = n;
  }

  has(ip: string): boolean {
    if (this.size === 0) return false;
    if (isIPv4(ip)) return this.#list.check(ip, 'ipv4');
    if (isIPv6(ip)) return this.#list.check(ip, 'ipv6');
    return false;
  }
}
