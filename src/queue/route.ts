// Where mail for a domain goes (RFC 5321 §5.1): the MX hosts by preference, hosts of equal
// preference in random order (load spreading, §5.1), each host's addresses (IPv4 first, then
// IPv6 when enabled). No MX record: the domain itself is the implicit MX (its A/AAAA). A null MX
// (RFC 7505: a single "0 ." record) means the domain takes no mail: a permanent failure at once.
//
// DNS errors are sorted carefully: only an authoritative "no such domain" is permanent; a
// timeout or SERVFAIL is temporary, so a DNS outage never bounces mail (RFC 5321 §5.1: "a
// temporary error ... the message must be queued").

import type { Resolver } from 'node:dns/promises';
import { isIP } from 'node:net';

export interface RouteHost {
  /** Host name (for TLS SNI, logs and DSNs); the IP itself for an address literal. */
  readonly name: string;
  readonly address: string;
  readonly port: number;
}

export type Route =
  | { readonly kind: 'hosts'; readonly hosts: readonly RouteHost[] }
  /** Permanent: the domain takes no mail (null MX, no such domain, no address for any MX). */
  | { readonly kind: 'permanent'; readonly status: string; readonly reason: string }
  /** Temporary: DNS trouble; try again later. */
  | { readonly kind: 'temporary'; readonly status: string; readonly reason: string };

/** The part of node:dns Resolver this module uses (tests may pass any such object). */
export type RouteResolver = Pick<Resolver, 'resolveMx' | 'resolve4' | 'resolve6'>;

export interface RouteOptions {
  readonly port: number;
  readonly ipv6: boolean;
  /** Our own host name: an MX pointing at us for a domain we do not serve is a loop. */
  readonly ownHostname: string;
  readonly maxAddresses: number;
  /** Random source for shuffling equal preferences (tests make it deterministic). */
  readonly random?: () => number;
}

const PERMANENT_DNS = new Set(['ENOTFOUND', 'NXDOMAIN']);
const NO_DATA = new Set(['ENODATA']);

function dnsCode(e: unknown): string {
  return (e as NodeJS.ErrnoException)?.code ?? 'EUNKNOWN';
}

export async function resolveRoute(resolver: RouteResolver, domain: string, opts: RouteOptions): Promise<Route> {
  // An address literal domain ("[192.0.2.1]") is delivered to that address (RFC 5321 §4.1.3).
  const literal = /^\[(?:IPv6:)?([0-9a-fA-F:.]+)\]$/.exec(domain)?.[1];
  if (literal && isIP(literal)) return { kind: 'hosts', hosts: [{ name: literal, address: literal, port: opts.port }] };

  let exchanges: string[];
  try {
    const mx = await resolver.resolveMx(domain);
    // RFC 7505 §3: a null MX is one record with preference 0 and exchange "." (Node gives "").
    const real = mx.filter((r) => r.exchange !== '' && r.exchange !== '.');
    if (real.length === 0 && mx.length > 0) {
      return { kind: 'permanent', status: '5.1.10', reason: `${domain} does not accept mail (null MX)` };
    }
    // RFC 5321 §5.1: if we are one of the MX hosts, only the more preferred ones may be
    // tried (we are a backup MX); mail must never loop back to us.
    const own = opts.ownHostname.toLowerCase();
    const ownPref = Math.min(
      ...real.filter((r) => r.exchange.replace(/\.$/, '').toLowerCase() === own).map((r) => r.priority),
    );
    const usable = real.filter((r) => r.priority < ownPref);
    if (real.length > 0 && usable.length === 0) {
      return { kind: 'permanent', status: '5.4.6', reason: `mail for ${domain} loops back to myself` };
    }
    // c-ares answers some NODATA cases (a CNAME to a name without MX) with an empty list.
    exchanges = mx.length === 0 ? [domain] : orderByPreference(usable, opts.random ?? Math.random);
  } catch (e) {
    const code = dnsCode(e);
    if (PERMANENT_DNS.has(code)) {
      return { kind: 'permanent', status: '5.1.2', reason: `domain ${domain} not found (${code})` };
    }
    if (!NO_DATA.has(code)) {
      return { kind: 'temporary', status: '4.4.3', reason: `MX lookup for ${domain} failed (${code})` };
    }
    // RFC 5321 §5.1: no MX records: the domain is its own implicit MX.
    exchanges = [domain];
  }

  const hosts: RouteHost[] = [];
  let temporary: string | null = null;
  let loops = false;
  for (const name of exchanges) {
    if (hosts.length >= opts.maxAddresses) break;
    if (name.toLowerCase() === opts.ownHostname.toLowerCase()) {
      loops = true;
      continue;
    }
    const found = await addressesOf(resolver, name, opts.ipv6);
    if (found.temporary) temporary ??= found.temporary;
    for (const address of found.addresses) {
      if (hosts.length >= opts.maxAddresses) break;
      hosts.push({ name, address, port: opts.port });
    }
  }
  if (hosts.length > 0) return { kind: 'hosts', hosts };
  if (temporary) return { kind: 'temporary', status: '4.4.3', reason: temporary };
  if (loops) return { kind: 'permanent', status: '5.4.6', reason: `mail for ${domain} loops back to myself` };
  return { kind: 'permanent', status: '5.4.4', reason: `no address found for the mail hosts of ${domain}` };
}

/** The route to one named host (the relay): its addresses, no MX lookup. Every failure is
 *  temporary: a relay's trouble is never the recipient's fault. */
export async function resolveHostRoute(
  resolver: RouteResolver,
  host: string,
  opts: { readonly port: number; readonly ipv6: boolean },
): Promise<Route> {
  const found = await addressesOf(resolver, host, opts.ipv6);
  if (found.addresses.length === 0) {
    return { kind: 'temporary', status: '4.4.1', reason: found.temporary ?? `relay ${host} has no address` };
  }
  return { kind: 'hosts', hosts: found.addresses.map((address) => ({ name: host, address, port: opts.port })) };
}

function orderByPreference(records: { priority: number; exchange: string }[], random: () => number): string[] {
  const shuffled = records.map((r) => ({ r, k: random() }));
  shuffled.sort((a, b) => a.r.priority - b.r.priority || a.k - b.k);
  const seen = new Set<string>();
  const out: string[] = [];
  for (const { r } of shuffled) {
    const name = r.exchange.replace(/\.$/, '').toLowerCase();
    if (!seen.has(name)) out.push(name);
    seen.add(name);
  }
  return out;
}

async function addressesOf(
  resolver: RouteResolver,
  name: string,
  ipv6: boolean,
): Promise<{ addresses: string[]; temporary: string | null }> {
  // An MX must name a host, not an address (RFC 5321 §5.1), but some do; accept it as Postfix does.
  if (isIP(name)) return { addresses: [name], temporary: null };
  const lookups: Promise<string[]>[] = [resolver.resolve4(name)];
  if (ipv6) lookups.push(resolver.resolve6(name));
  const results = await Promise.allSettled(lookups);
  const addresses: string[] = [];
  let temporary: string | null = null;
  for (const r of results) {
    if (r.status === 'fulfilled') addresses.push(...r.value);
    else {
      const code = dnsCode(r.reason);
      if (!PERMANENT_DNS.has(code) && !NO_DATA.has(code)) temporary = `address lookup for ${name} failed (${code})`;
    }
  }
  return { addresses, temporary: addresses.length > 0 ? null : temporary };
}

/** The delay before the next attempt after `attempts` failed ones (1-based): the schedule's
 *  entry, the last entry repeating. */
export function retryDelay(attempts: number, schedule: readonly number[]): number {
  const i = Math.min(Math.max(attempts, 1), schedule.length) - 1;
  return schedule[i] ?? 60_000;
}
