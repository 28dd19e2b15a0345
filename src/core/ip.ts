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
