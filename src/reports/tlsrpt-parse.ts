// TLS reports addressed to us (RFC 8460 §5.3): the application/tlsrpt+gzip or
// application/tlsrpt+json parts of a message, decoded and read, bounded (the gzip output, the
// JSON's size and nesting), and summed per reporting organisation and policy domain for
// `arcline reports tls`. Pure: bytes in, values out; over the MIME structure of mime/.

import { gunzipSync } from 'node:zlib';
import { LIMITS } from '../core/limits.ts';
import { decodeTransfer } from '../mime/decode.ts';
import { bufferReader, readRange } from '../mime/reader.ts';
import { headerValue, type MimePart, parseStructure } from '../mime/structure.ts';

export interface ReceivedPolicy {
  readonly type: string;
  readonly domain: string;
  readonly successes: number;
  readonly failures: number;
  /** Failed sessions by result type (failure-details). */
  readonly byResult: Readonly<Record<string, number>>;
}

export interface ReceivedReport {
  readonly organization: string;
  readonly reportId: string;
  readonly start: string;
  readonly end: string;
  readonly policies: readonly ReceivedPolicy[];
}

export type ReportRead =
  | { readonly ok: true; readonly report: ReceivedReport }
  | { readonly ok: false; readonly error: string };

/** The report parts of a message: their decoded bytes and whether they are gzipped. */
export async function reportParts(message: Buffer): Promise<{ gzip: boolean; bytes: Buffer }[]> {
  const reader = bufferReader(message);
  const root = await parseStructure(reader, message.length);
  const out: { gzip: boolean; bytes: Buffer }[] = [];
  const visit = async (p: MimePart) => {
    for (const c of p.parts) await visit(c);
    const type = `${p.type}/${p.subtype}`.toLowerCase();
    if (type !== 'application/tlsrpt+gzip' && type !== 'application/tlsrpt+json') return;
    if (p.bodyEnd - p.bodyStart > LIMITS.tlsReports.maxReportBytes * 2) return;
    const raw = await readRange(reader, p.bodyStart, p.bodyEnd);
    const { bytes } = decodeTransfer(raw, headerValue(p.header, 'content-transfer-encoding'));
    out.push({ gzip: type.endsWith('gzip'), bytes });
  };
  await visit(root);
  return out;
}

/** Deepest nesting of arrays and objects in JSON text, in one pass (strings skipped). */
export function jsonDepth(text: string): number {
  let depth = 0;
  let max = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i++;
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x7b || ch === 0x5b) max = Math.max(max, ++depth);
    else if (ch === 0x7d || ch === 0x5d) depth--;
  }
  return max;
}

const asString = (v: unknown): string => (typeof v === 'string' ? v.slice(0, 500) : '');
const asCount = (v: unknown): number => (typeof v === 'number' && Number.isSafeInteger(v) && v >= 0 ? v : 0);

/** A report part (RFC 8460 §4, §5.2): gunzipped within LIMITS.tlsReports.maxReportBytes, the
 *  JSON no deeper than maxJsonDepth, the fields §4 requires present. */
export function readReport(part: { gzip: boolean; bytes: Buffer }): ReportRead {
  const max = LIMITS.tlsReports.maxReportBytes;
  let json: Buffer;
  try {
    json = part.gzip ? gunzipSync(part.bytes, { maxOutputLength: max }) : part.bytes;
  } catch (e) {
    return { ok: false, error: `not gzip, or larger than ${max} bytes (${(e as Error).message})` };
  }
  if (json.length > max) return { ok: false, error: `larger than ${max} bytes` };
  const text = json.toString('utf8');
  if (jsonDepth(text) > LIMITS.tlsReports.maxJsonDepth) return { ok: false, error: 'JSON nested too deep' };
  let data: Record<string, unknown>;
  try {
    data = JSON.parse(text) as Record<string, unknown>;
  } catch {
    return { ok: false, error: 'not JSON' };
  }
  if (!data || typeof data !== 'object' || Array.isArray(data)) return { ok: false, error: 'not a JSON object' };
  const range = data['date-range'] as Record<string, unknown> | undefined;
  if (typeof data['organization-name'] !== 'string' || !range || !Array.isArray(data.policies))
    return { ok: false, error: 'not a TLS report (organization-name, date-range, policies)' };
  const policies: ReceivedPolicy[] = [];
  for (const entry of data.policies as unknown[]) {
    const e = (entry ?? {}) as Record<string, unknown>;
    const policy = (e.policy ?? {}) as Record<string, unknown>;
    const summary = (e.summary ?? {}) as Record<string, unknown>;
    const byResult: Record<string, number> = {};
    for (const d of Array.isArray(e['failure-details']) ? (e['failure-details'] as unknown[]) : []) {
      const detail = (d ?? {}) as Record<string, unknown>;
      const type = asString(detail['result-type']) || 'unknown';
      byResult[type] = (byResult[type] ?? 0) + asCount(detail['failed-session-count']);
    }
    policies.push({
      type: asString(policy['policy-type']),
      domain: asString(policy['policy-domain']).toLowerCase(),
      successes: asCount(summary['total-successful-session-count']),
      failures: asCount(summary['total-failure-session-count']),
      byResult,
    });
  }
  return {
    ok: true,
    report: {
      organization: asString(data['organization-name']),
      reportId: asString(data['report-id']),
      start: asString(range['start-datetime']),
      end: asString(range['end-datetime']),
      policies,
    },
  };
}

export interface SummaryRow {
  readonly organization: string;
  readonly domain: string;
  readonly reports: number;
  readonly successes: number;
  readonly failures: number;
  readonly byResult: Readonly<Record<string, number>>;
}

/** Sums per reporting organisation and policy domain; a report seen twice (same organisation
 *  and report-id, e.g. sent to two of our addresses) counts once. */
export function summarise(reports: readonly ReceivedReport[]): SummaryRow[] {
  const seen = new Set<string>();
  const rows = new Map<
    string,
    {
      organization: string;
      domain: string;
      reports: number;
      successes: number;
      failures: number;
      byResult: Record<string, number>;
    }
  >();
  for (const r of reports) {
    const id = JSON.stringify([r.organization, r.reportId]);
    if (r.reportId && seen.has(id)) continue;
    seen.add(id);
    for (const p of r.policies) {
      const key = JSON.stringify([r.organization, p.domain]);
      const row = rows.get(key) ?? {
        organization: r.organization,
        domain: p.domain,
        reports: 0,
        successes: 0,
        failures: 0,
        byResult: {},
      };
      row.reports++;
      row.successes += p.successes;
      row.failures += p.failures;
      for (const [type, n] of Object.entries(p.byResult)) row.byResult[type] = (row.byResult[type] ?? 0) + n;
      rows.set(key, row);
    }
  }
  return [...rows.values()].sort(
    (a, b) => a.organization.localeCompare(b.organization) || a.domain.localeCompare(b.domain),
  );
}
