// Whether the records `arcline dns-records` prints are published (the admin API's DNS page,
// the activation of a rotated DKIM key): each zone line of
// hygiene/dns-records.ts is parsed back (our own output, not outside input) and looked up now
// through the configured resolvers. published: true (found as wanted), false (the name has no
// such record, or other values), null (the lookup failed: timeout, SERVFAIL ...).

/** The look-ups it needs (node:dns/promises' Resolver has them). */
export interface DnsLookups {
  resolveTxt(name: string): Promise<string[][]>;
  resolveMx(name: string): Promise<{ exchange: string; priority: number }[]>;
  resolveSrv(name: string): Promise<{ name: string; port: number; priority: number; weight: number }[]>;
  resolveCname(name: string): Promise<string[]>;
}

export interface WantedRecord {
  readonly name: string;
  readonly type: string;
  readonly value: string;
  readonly purpose: string;
}

const QUOTED = /"((?:[^"\\]|\\.)*)"/g;

/** `name. ttl IN TYPE rdata` -> a record; null for comments and blank lines. */
export function parseZoneLine(line: string): WantedRecord | null {
  if (line === '' || line.startsWith(';')) return null;
  const m = /^(\S+)\s+\d+\s+IN\s+([A-Z]+)\s+(.+)$/.exec(line);
  if (!m) return null;
  const name = (m[1] as string).replace(/\.$/, '');
  const type = m[2] as string;
  let value = (m[3] as string).trim();
  if (type === 'TXT') value = [...value.matchAll(QUOTED)].map((q) => q[1]).join('');
  else value = value.replace(/\.$/, '');
  return { name, type, value, purpose: purposeOf(name, type, value) };
}

function purposeOf(name: string, type: string, value: string): string {
  if (type === 'MX') return 'mail for the domain comes here';
  if (type === 'SRV') return 'mail clients find the servers (RFC 6186)';
  if (type === 'CNAME') return 'a name this server answers on HTTPS';
  if (value.startsWith('v=spf1')) return 'SPF';
  if (name.includes('._domainkey.')) return 'DKIM public key';
  if (name.startsWith('_dmarc.')) return 'DMARC policy';
  if (name.startsWith('_mta-sts.')) return 'MTA-STS policy id';
  if (name.startsWith('_smtp._tls.')) return 'TLS reporting';
  return type;
}

const ABSENT = new Set(['ENOTFOUND', 'ENODATA', 'NXDOMAIN']);
const bare = (s: string) => s.toLowerCase().replace(/\.$/, '');

export async function lookupRecord(
  dns: DnsLookups,
  r: WantedRecord,
): Promise<WantedRecord & { published: boolean | null; found: string[] }> {
  let found: string[];
  try {
    switch (r.type) {
      case 'TXT':
        found = (await dns.resolveTxt(r.name)).map((chunks) => chunks.join(''));
        break;
      case 'MX':
        found = (await dns.resolveMx(r.name)).map((m) => `${m.priority} ${bare(m.exchange)}`);
        break;
      case 'SRV':
        found = (await dns.resolveSrv(r.name)).map((s) => `${s.priority} ${s.weight} ${s.port} ${bare(s.name)}`);
        break;
      case 'CNAME':
        found = (await dns.resolveCname(r.name)).map(bare);
        break;
      default:
        return { ...r, published: null, found: [] };
    }
  } catch (e) {
    const code = (e as { code?: string }).code ?? '';
    return { ...r, published: ABSENT.has(code) ? false : null, found: [] };
  }
  const want = r.type === 'TXT' ? r.value : bare(r.value);
  return { ...r, published: found.includes(want), found };
}

/** Whether a TXT record of exactly `value` is at `name` now (false: absent or other values; null:
 *  the lookup failed), for the activation of a rotated DKIM key (admin/dkim-rotation.ts). */
export function txtPublished(dns: DnsLookups) {
  return async (name: string, value: string): Promise<boolean | null> =>
    (await lookupRecord(dns, { name, type: 'TXT', value, purpose: 'DKIM public key' })).published;
}
