// The tags of a DMARC record that aggregate reports need (RFC 7489 §6.3): the reporting URIs
// (rua, with the optional size limit "!10m" of §6.2) and the policy published (adkim, aspf, p,
// sp, pct, fo) that a report repeats. Pure and linear: the record is split on ";" and "=",
// never matched by a backtracking pattern. mailauth validated the record before we see it.

import { LIMITS } from '../core/limits.ts';

export type Disposition = 'none' | 'quarantine' | 'reject';

export interface PolicyPublished {
  readonly domain: string;
  readonly adkim: 'r' | 's';
  readonly aspf: 'r' | 's';
  readonly p: Disposition;
  readonly sp: Disposition;
  readonly pct: number;
  readonly fo: string;
}

export interface ReportUri {
  /** The mailto: address (RFC 6068, percent-decoded). */
  readonly address: string;
  /** RFC 7489 §6.2: the largest report this address takes, in octets; null for no limit. */
  readonly maxBytes: number | null;
}

/** The record's tags, names in lower case, values trimmed; later duplicates ignored. */
export function recordTags(record: string): Map<string, string> {
  const tags = new Map<string, string>();
  for (const part of record.slice(0, LIMITS.dmarcReports.maxRecordChars).split(';')) {
    const eq = part.indexOf('=');
    if (eq < 0) continue;
    const name = part.slice(0, eq).trim().toLowerCase();
    if (name && !tags.has(name)) tags.set(name, part.slice(eq + 1).trim());
  }
  return tags;
}

const disposition = (v: string | undefined): Disposition | null => {
  const l = v?.toLowerCase();
  return l === 'none' || l === 'quarantine' || l === 'reject' ? l : null;
};

/** §6.3 defaults: adkim and aspf "r", sp as p, pct 100, fo "0". */
export function policyPublished(domain: string, record: string): PolicyPublished {
  const t = recordTags(record);
  const p = disposition(t.get('p')) ?? 'none';
  const pct = Number.parseInt(t.get('pct') ?? '', 10);
  return {
    domain,
    adkim: t.get('adkim')?.toLowerCase() === 's' ? 's' : 'r',
    aspf: t.get('aspf')?.toLowerCase() === 's' ? 's' : 'r',
    p,
    sp: disposition(t.get('sp')) ?? p,
    pct: Number.isInteger(pct) && pct >= 0 && pct <= 100 ? pct : 100,
    fo: (t.get('fo') ?? '0').replace(/[^0-9a-z:]/gi, '') || '0',
  };
}

const UNITS: Record<string, number> = { '': 1, k: 1024, m: 1024 ** 2, g: 1024 ** 3, t: 1024 ** 4 };

/** §6.2: the mailto: URIs of rua, each with its size limit; other schemes are skipped (§6.2
 *  leaves them to the receiver: we send by mail only). At most LIMITS.dmarcReports.maxRua. */
export function reportUris(record: string): ReportUri[] {
  const rua = recordTags(record).get('rua');
  if (!rua) return [];
  const out: ReportUri[] = [];
  for (const raw of rua.split(',')) {
    if (out.length >= LIMITS.dmarcReports.maxRua) break;
    let uri = raw.trim();
    let maxBytes: number | null = null;
    const bang = uri.lastIndexOf('!');
    if (bang > 0) {
      const size = uri.slice(bang + 1).toLowerCase();
      const unit = /[kmgt]$/.test(size) ? size.slice(-1) : '';
      const digits = unit ? size.slice(0, -1) : size;
      if (/^[0-9]{1,12}$/.test(digits)) {
        maxBytes = Number(digits) * (UNITS[unit] ?? 1);
        uri = uri.slice(0, bang);
      }
    }
    if (!/^mailto:/i.test(uri)) continue;
    let address: string;
    try {
      address = decodeURIComponent(uri.slice('mailto:'.length));
    } catch {
      continue;
    }
    // A mailto: may carry ?headers (RFC 6068): not ours to follow.
    const q = address.indexOf('?');
    if (q >= 0) address = address.slice(0, q);
    const at = address.lastIndexOf('@');
    if (at <= 0 || at === address.length - 1 || /[\s<>,;]/.test(address)) continue;
    out.push({ address, maxBytes });
  }
  return out;
}
