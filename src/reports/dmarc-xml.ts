// The aggregate report document of RFC 7489 Appendix C and its file name (§7.2.1.1). Pure.
// The elements are written in the schema's order; text is escaped, and characters XML 1.0
// does not allow are dropped. IPv6 sources are written in full (eight groups): the schema's
// IPAddress pattern does not take the compressed form.

import { isIPv4, isIPv6 } from 'node:net';
import type { DmarcRow } from './dmarc-aggregate.ts';
import type { PolicyPublished } from './dmarc-record.ts';

export interface ReportMetadata {
  readonly orgName: string;
  readonly email: string;
  readonly reportId: string;
  /** The day's range in seconds since the epoch, UTC (§7.2: whole UTC days). */
  readonly begin: number;
  readonly end: number;
}

// biome-ignore lint/suspicious/noControlCharactersInRegex: the characters XML 1.0 forbids
const NOT_XML = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g;

export function xmlText(s: string): string {
  return s
    .replace(NOT_XML, '')
    .replace(/&/g, '&amp;')
    .replace(/</g, '&lt;')
    .replace(/>/g, '&gt;')
    .replace(/"/g, '&quot;')
    .replace(/'/g, '&apos;');
}

/** An IPv6 address in its eight groups (an embedded IPv4 tail turned into two). */
export function fullIp(ip: string): string {
  if (isIPv4(ip) || !isIPv6(ip)) return ip;
  let text = ip.toLowerCase();
  const v4 = /(\d+)\.(\d+)\.(\d+)\.(\d+)$/.exec(text);
  if (v4) {
    const [a, b, c, d] = v4.slice(1).map(Number) as [number, number, number, number];
    text = `${text.slice(0, v4.index)}${((a << 8) | b).toString(16)}:${((c << 8) | d).toString(16)}`;
  }
  const [head = '', tail] = text.split('::');
  const h = head ? head.split(':') : [];
  const t = tail ? tail.split(':') : [];
  const groups = tail === undefined ? h : [...h, ...Array<string>(8 - h.length - t.length).fill('0'), ...t];
  return groups.map((g) => g.padStart(4, '0')).join(':');
}

const el = (name: string, value: string | number) => `<${name}>${xmlText(String(value))}</${name}>`;

/** The <feedback> document (RFC 7489 Appendix C). */
export function aggregateXml(meta: ReportMetadata, policy: PolicyPublished, rows: readonly DmarcRow[]): string {
  const out: string[] = [
    '<?xml version="1.0" encoding="UTF-8"?>',
    '<feedback>',
    el('version', '1.0'),
    '<report_metadata>',
    el('org_name', meta.orgName),
    el('email', meta.email),
    el('report_id', meta.reportId),
    `<date_range>${el('begin', meta.begin)}${el('end', meta.end)}</date_range>`,
    '</report_metadata>',
    '<policy_published>',
    el('domain', policy.domain),
    el('adkim', policy.adkim),
    el('aspf', policy.aspf),
    el('p', policy.p),
    el('sp', policy.sp),
    el('pct', policy.pct),
    el('fo', policy.fo),
    '</policy_published>',
  ];
  for (const r of rows) {
    out.push(
      '<record>',
      '<row>',
      el('source_ip', fullIp(r.sourceIp)),
      el('count', r.count),
      `<policy_evaluated>${el('disposition', r.disposition)}${el('dkim', r.dkim)}${el('spf', r.spf)}${r.override ? `<reason>${el('type', r.override)}</reason>` : ''}</policy_evaluated>`,
      '</row>',
      `<identifiers>${el('envelope_from', r.envelopeFrom)}${el('header_from', r.headerFrom)}</identifiers>`,
      '<auth_results>',
    );
    for (const d of r.dkimResults) {
      const selector = d.selector ? el('selector', d.selector) : '';
      out.push(`<dkim>${el('domain', d.domain)}${selector}${el('result', dkimResult(d.result))}</dkim>`);
    }
    const s = r.spfResult;
    out.push(`<spf>${el('domain', s.domain)}${el('scope', s.scope)}${el('result', s.result)}</spf>`);
    out.push('</auth_results>', '</record>');
  }
  out.push('</feedback>', '');
  return out.join('\n');
}

const DKIM_RESULTS = new Set(['none', 'pass', 'fail', 'policy', 'neutral', 'temperror', 'permerror']);

/** Appendix C DKIMResultType (RFC 8601 §2.7.1 results); anything else mailauth says is "neutral". */
function dkimResult(r: string): string {
  return DKIM_RESULTS.has(r) ? r : 'neutral';
}

/** §7.2.1.1: receiver "!" policy-domain "!" begin "!" end ".xml.gz". */
export function reportFileName(receiver: string, policyDomain: string, begin: number, end: number): string {
  return `${receiver}!${policyDomain}!${begin}!${end}.xml.gz`;
}
