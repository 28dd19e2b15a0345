// IPv6 address spelling (RFC 4291 §2.2): any form ('::', an embedded IPv4 tail, a zone id) to
// its 32 hex digits, so that equal addresses compare equal. Shared by the reverse-mapping names
// (dns/reverse.ts) and the per-client connection keys (core/connection-limits.ts).

import { isIPv4 } from 'node:net';

/** 0:0:0:0:0:ffff::/96 as nibbles (RFC 4291 §2.5.5.2). */
export const MAPPED_PREFIX = `${'0'.repeat(20)}ffff`;

/** The 32 hex digits of an IPv6 address (any spelling: '::', an IPv4 tail, a zone id), or null. */
export function ipv6Nibbles(ip: string): string | null {
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

/** The IPv4 address of an IPv4-mapped IPv6 address (::ffff:1.2.3.4 in any spelling), or null. */
export function mappedIPv4(nibbles: string): string | null {
  if (!nibbles.startsWith(MAPPED_PREFIX)) return null;
  return (nibbles.slice(24).match(/../g) ?? []).map((h) => Number.parseInt(h, 16)).join('.');
}

/** A peer's address as we show and log it: an IPv4 client reaching a dual-stack ("[::]")
 *  listener arrives as ::ffff:a.b.c.d and is shown as a.b.c.d (RFC 4291 §2.5.5.2), so that
 *  Received headers, logs and policies see one form; anything else unchanged, '' when unknown. */
export function peerAddress(raw: string | undefined): string {
  if (raw === undefined) return '';
  if (raw.length > 7 && raw.slice(0, 7).toLowerCase() === '::ffff:' && isIPv4(raw.slice(7))) return raw.slice(7);
  return raw;
}

/** True for 127.0.0.0/8 and ::1 (in any spelling peerAddress leaves). */
export function isLoopback(address: string): boolean {
  return address.startsWith('127.') || address === '::1';
}

/** The network of `ip` as a key: IPv4 (and IPv4-mapped IPv6) cut to `v4Prefix` bits, IPv6 to
 *  `v6Prefix` bits, written "a.b.c.d/n" (host bits zeroed) or "<the prefix's hex digits>/n"
 *  (at most 36 characters; a /48 is 15), the
 *  address itself when it is not one. Greylisting (IPv4 /24, IPv6 /64, as postgrey's
 *  --lookup-by-subnet) and the rate limits (three prefix lengths) key on it. */
export function networkKey(ip: string, v4Prefix: number, v6Prefix: number): string {
  // Every connection computes a few of these: IPv4 is read without allocating.
  let n = ipv4Number(ip);
  let hex: string | null = null;
  if (n < 0) {
    hex = ipv6Nibbles(ip);
    if (hex === null) return ip;
    const v4 = mappedIPv4(hex);
    if (v4 !== null) n = ipv4Number(v4);
  }
  if (n >= 0) {
    const p = Math.max(0, Math.min(32, v4Prefix));
    const masked = p === 0 ? 0 : (n & (~0 << (32 - p))) >>> 0;
    return `${masked >>> 24}.${(masked >>> 16) & 255}.${(masked >>> 8) & 255}.${masked & 255}/${p}`;
  }
  const h = hex as string;
  const p = Math.max(0, Math.min(128, v6Prefix));
  const full = p >> 2;
  let out = h.slice(0, full);
  if (p & 3 && full < 32) {
    const nibble = Number.parseInt(h[full] as string, 16) & (0xf << (4 - (p & 3)));
    out += nibble.toString(16);
  }
  return `${out}/${p}`;
}

/** A dotted-quad IPv4 address as an unsigned 32-bit number; -1 when it is not one. */
function ipv4Number(ip: string): number {
  let n = 0;
  let octet = -1;
  let dots = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (octet < 0 || dots === 3) return -1;
      n = n * 256 + octet;
      octet = -1;
      dots++;
    } else if (c >= 48 && c <= 57) {
      octet = octet < 0 ? c - 48 : octet * 10 + c - 48;
      if (octet > 255) return -1;
    } else {
      return -1;
    }
  }
  if (dots !== 3 || octet < 0) return -1;
  return n * 256 + octet;
}
