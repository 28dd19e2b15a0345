// `arcline check`: gathers the facts evaluate.ts judges, through the configured resolvers ([dns]
// servers) and from our own configured listeners, each with a timeout (LIMITS.check). Nothing
// here decides; nothing here throws for a DNS or TLS problem (it becomes a fact).
// - SPF is evaluated by mailauth (RFC 7208 §4) for postmaster@<domain> from each of our addresses;
// - blocklists: hygiene/dnsbl.ts queryDnsbl, per address and zone ([monitor] dnsbl and
//   [hygiene] dnsbl), without the cache of the SMTP stage;
// - certificates: each TLS listener probed on its configured address (tls-probe.ts): the
//   wildcard addresses are asked on loopback.

import type { Resolver } from 'node:dns/promises';
import { spf } from 'mailauth';
import type { Config } from '../config/schema.ts';
import { parseListen } from '../config/schema.ts';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import { hostAddresses, publicAddresses } from '../dns/addresses.ts';
import { reverseName } from '../dns/reverse.ts';
import { type DkimKey, dkimRecordName, dkimTxtValue, dkimZoneLine } from '../hygiene/dkim-keys.ts';
import { dnsRecords } from '../hygiene/dns-records.ts';
import { queryDnsbl } from '../hygiene/dnsbl.ts';
import { type MtaStsSettings, mtaStsPolicy, mtaStsTxt } from '../hygiene/mta-sts.ts';
import type { AddressFacts, DomainFacts, Lookup, ServerFacts, TlsProbe } from './facts.ts';
import { fetchMtaStsPolicy, probeTls } from './tls-probe.ts';

export type CheckResolver = Pick<
  Resolver,
  'resolve' | 'resolve4' | 'resolve6' | 'resolveMx' | 'resolveTxt' | 'resolvePtr'
>;

export interface GatherDeps {
  readonly config: Config;
  readonly resolver: CheckResolver;
  /** Active and pending DKIM keys of a domain (hygiene/dkim-keys.ts DkimKeys). */
  readonly dkim: {
    keys(domain: string): Promise<readonly DkimKey[]>;
    pendingKeys(domain: string): Promise<readonly DkimKey[]>;
  };
  /** CA certificates to trust instead of the system's (tests); production uses the system CAs. */
  readonly ca?: readonly string[];
}

const ABSENT = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);

async function lookup<T>(q: () => Promise<T>): Promise<Lookup<T>> {
  try {
    return { ok: true, value: await q() };
  } catch (e) {
    const code = (e as NodeJS.ErrnoException)?.code ?? String(e);
    return ABSENT.has(code) ? { ok: false, absent: true } : { ok: false, absent: false, error: code };
  }
}

const txt = (r: CheckResolver, name: string) =>
  lookup(async () => (await r.resolveTxt(name)).map((chunks) => chunks.join('')));

export function mtaStsSettings(config: Config): MtaStsSettings {
  const m = config.mta_sts;
  return { mode: m.mode, maxAgeMs: m.max_age, mx: m.mx };
}

/** Where to connect to reach a configured listener: its address, wildcards on loopback. */
function target(listen: string): { host: string; port: number } | null {
  const l = parseListen(listen);
  if (!l) return null;
  const host = l.host === '::' ? '::1' : l.host === '0.0.0.0' || l.host === '' ? '127.0.0.1' : l.host;
  return { host, port: l.port };
}

export async function gatherServer(deps: GatherDeps): Promise<ServerFacts> {
  const { config, resolver } = deps;
  const hostname = config.hostname;
  const ours = await publicAddresses(resolver, config.server.public_addresses, hostname);
  const host = ours.configured ? await hostAddresses(resolver, hostname) : ours;
  const zones = [...new Set([...config.monitor.dnsbl, ...config.hygiene.dnsbl].map((z) => z.toLowerCase()))];
  const perAddress = await Promise.all(ours.addresses.map((a) => gatherAddress(resolver, a, zones)));
  const listeners: { service: string; listen: string; mode: 'implicit' | 'smtp-starttls' }[] = [
    ...config.smtp.listen.map((listen) => ({ service: 'smtp', listen, mode: 'smtp-starttls' as const })),
    ...config.submission.listen.map((listen) => ({ service: 'submission', listen, mode: 'smtp-starttls' as const })),
    ...config.submission.tls_listen.map((listen) => ({ service: 'submissions', listen, mode: 'implicit' as const })),
    ...config.imap.tls_listen.map((listen) => ({ service: 'imaps', listen, mode: 'implicit' as const })),
  ];
  const tls = await Promise.all(
    listeners.map(async (l): Promise<TlsProbe> => {
      const t = target(l.listen);
      if (!t || t.port === 0) {
        return { service: l.service, listen: l.listen, result: { ok: false, error: 'port 0 is chosen at start' } };
      }
      const result = await probeTls({ ...t, servername: hostname, ca: deps.ca }, l.mode, hostname);
      return { service: l.service, listen: l.listen, result };
    }),
  );
  return {
    hostname,
    addresses: ours.addresses,
    addressesConfigured: ours.configured,
    addressError: ours.error,
    hostAddresses: host.addresses,
    perAddress,
    zones,
    tls,
  };
}

async function gatherAddress(
  resolver: CheckResolver,
  address: string,
  zones: readonly string[],
): Promise<AddressFacts> {
  const name = reverseName(address);
  const ptr = name ? await lookup(() => resolver.resolvePtr(name)) : ({ ok: false, absent: true } as const);
  const forward = ptr.ok
    ? await Promise.all(
        ptr.value.slice(0, 10).map(async (n) => ({ name: n, addresses: (await hostAddresses(resolver, n)).addresses })),
      )
    : [];
  const dnsbl = await Promise.all(
    zones.map(async (zone) => {
      const a = await queryDnsbl(resolver, address, zone, LIMITS.check.dnsblTimeoutMs);
      const result =
        a.kind === 'listed'
          ? { kind: 'listed' as const, codes: a.listing.codes, reason: a.listing.reason }
          : a.kind === 'clear'
            ? { kind: 'clear' as const }
            : { kind: 'error' as const, error: a.error };
      return { zone, result };
    }),
  );
  return { address, ptr, forward, dnsbl };
}

export async function gatherDomain(
  deps: GatherDeps,
  domain: string,
  addresses: readonly string[],
): Promise<DomainFacts> {
  const { config, resolver } = deps;
  const hostname = config.hostname;
  const mtaSts = mtaStsSettings(config);
  const active = await deps.dkim.keys(domain);
  const pending = await deps.dkim.pendingKeys(domain);
  const records = dnsRecords({ domain, hostname, keys: [...active, ...pending], mtaSts });
  const policy = mtaStsPolicy(hostname, mtaSts);
  const [mx, txtRecords, dmarc, mtaStsTxtFound, tlsRpt] = await Promise.all([
    lookup(async () => (await resolver.resolveMx(domain)).map((m) => ({ exchange: m.exchange, priority: m.priority }))),
    txt(resolver, domain),
    txt(resolver, `_dmarc.${domain}`),
    txt(resolver, `_mta-sts.${domain}`),
    txt(resolver, `_smtp._tls.${domain}`),
  ]);
  const spfResults = await Promise.all(
    addresses.map(async (address) => {
      try {
        const r = await spf({
          sender: `postmaster@${domain}`,
          ip: address,
          helo: hostname,
          mta: hostname,
          resolver: (name: string, rrtype: string) => resolver.resolve(name, rrtype) as Promise<string[] | string[][]>,
          maxElapsedTime: LIMITS.check.probeTimeoutMs,
        });
        return { address, result: String(r.status.result), comment: String(r.status.comment ?? '') };
      } catch (e) {
        return { address, result: 'temperror', comment: errorMessage(e) };
      }
    }),
  );
  const dkim = await Promise.all(
    [...active.map((k) => ({ k, pending: false })), ...pending.map((k) => ({ k, pending: true }))].map(
      async ({ k, pending }) => ({
        selector: k.selector,
        pending,
        expected: dkimTxtValue(k),
        zoneLine: dkimZoneLine(k),
        found: await txt(resolver, dkimRecordName(k)),
      }),
    ),
  );
  const https = config.http.tls_listen.map(target).find((t) => t !== null && t.port !== 0) ?? null;
  const mtaStsServed = https
    ? await fetchMtaStsPolicy({ ...https, servername: `mta-sts.${domain}`, ca: deps.ca })
    : null;
  return {
    domain,
    records,
    ourMx: [hostname, ...mtaSts.mx],
    mx,
    txt: txtRecords,
    spf: spfResults,
    dkimSign: config.dkim.sign,
    dkim,
    dmarc,
    mtaStsTxt: mtaStsTxtFound,
    mtaStsExpected: { txt: mtaStsTxt(policy), policy },
    mtaStsServed,
    tlsRpt,
  };
}
