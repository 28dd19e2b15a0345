// What `arcline reports dmarc` prints (docs/delivery.md "Reading the reports you receive"): the
// received aggregate reports (dmarc-parse.ts) summed per reporting organization, policy domain
// and source IP: messages, how many passed DMARC (aligned DKIM or SPF, RFC 7489 §3.1), and the
// receivers' dispositions. Pure.

import type { ReceivedReport } from './dmarc-parse.ts';

export interface SummaryLine {
  readonly org: string;
  readonly domain: string;
  readonly sourceIp: string;
  readonly messages: number;
  readonly pass: number;
  readonly fail: number;
  readonly none: number;
  readonly quarantine: number;
  readonly reject: number;
}

/** One line per (org, domain, source IP), most messages first; reports whose range ends before
 *  `since` (seconds) are left out. Duplicates (one report id of one org twice) count once. */
export function summarize(reports: readonly ReceivedReport[], since = 0): SummaryLine[] {
  const seen = new Set<string>();
  const lines = new Map<string, { -readonly [K in keyof SummaryLine]: SummaryLine[K] }>();
  for (const r of reports) {
    if (r.end < since) continue;
    const id = `${r.orgName}\n${r.reportId}`;
    if (r.reportId && seen.has(id)) continue;
    seen.add(id);
    for (const rec of r.records) {
      const key = `${r.orgName}\n${r.domain}\n${rec.sourceIp}`;
      let l = lines.get(key);
      if (!l) {
        l = {
          org: r.orgName,
          domain: r.domain,
          sourceIp: rec.sourceIp,
          messages: 0,
          pass: 0,
          fail: 0,
          none: 0,
          quarantine: 0,
          reject: 0,
        };
        lines.set(key, l);
      }
      l.messages += rec.count;
      if (rec.dkim === 'pass' || rec.spf === 'pass') l.pass += rec.count;
      else l.fail += rec.count;
      if (rec.disposition === 'quarantine') l.quarantine += rec.count;
      else if (rec.disposition === 'reject') l.reject += rec.count;
      else l.none += rec.count;
    }
  }
  return [...lines.values()].sort(
    (a, b) => b.messages - a.messages || a.org.localeCompare(b.org) || a.sourceIp.localeCompare(b.sourceIp),
  );
}
