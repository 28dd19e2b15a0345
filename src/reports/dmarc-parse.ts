// DMARC aggregate reports others send us (RFC 7489 §7.2, Appendix C), read from a message: the
// application/gzip, application/zip or text/xml part that holds a <feedback> document, inflated
// and parsed within bounds (LIMITS.dmarcReports: the attachment, the inflated XML, zip entries,
// records, nesting). Pure: bytes in, a report or an error out. Hostile input is expected: a
// document type declaration is refused before parsing (no entities, so no XXE and no entity
// expansion), zlib stops at the output bound (gzip and zip bombs), fast-xml-parser runs with
// entities off and its nesting bound.

import { gunzipSync, inflateRawSync } from 'node:zlib';
import { XMLParser, XMLValidator } from 'fast-xml-parser';
import { LIMITS } from '../core/limits.ts';
import { decodeTransfer } from '../mime/decode.ts';
import { readRange } from '../mime/reader.ts';
import { type ByteReader, headerValue, isMultipart, type MimePart, parseStructure } from '../mime/structure.ts';

export interface ReceivedRecord {
  readonly sourceIp: string;
  readonly count: number;
  readonly disposition: string;
  /** DMARC-aligned DKIM and SPF results (policy_evaluated). */
  readonly dkim: string;
  readonly spf: string;
  readonly headerFrom: string;
}

export interface ReceivedReport {
  readonly orgName: string;
  readonly email: string;
  readonly reportId: string;
  readonly begin: number;
  readonly end: number;
  /** policy_published domain and p. */
  readonly domain: string;
  readonly policy: string;
  readonly records: readonly ReceivedRecord[];
}

export class ReportError extends Error {}

const L = LIMITS.dmarcReports;

/** An attachment's bytes as XML: gunzipped, unzipped (its first .xml entry) or as it is. */
export function reportXml(bytes: Buffer, kind: 'gzip' | 'zip' | 'xml'): Buffer {
  if (bytes.length > L.maxAttachmentBytes) throw new ReportError('attachment too large');
  if (kind === 'xml') {
    if (bytes.length > L.maxXmlBytes) throw new ReportError('XML too large');
    return bytes;
  }
  if (kind === 'gzip') return bounded(() => gunzipSync(bytes, { maxOutputLength: L.maxXmlBytes }));
  return unzipXml(bytes);
}

function bounded(inflate: () => Buffer): Buffer {
  try {
    return inflate();
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    if (code === 'ERR_BUFFER_TOO_LARGE') throw new ReportError('inflated report too large');
    throw new ReportError(`cannot inflate the report: ${(e as Error).message}`);
  }
}

/** The first .xml entry of a zip archive (PKWARE APPNOTE: end of central directory, central
 *  directory entries, local headers; stored or deflated). */
export function unzipXml(zip: Buffer): Buffer {
  const EOCD = 0x06054b50;
  let eocd = -1;
  for (let i = zip.length - 22; i >= Math.max(0, zip.length - 22 - 0xffff); i--) {
    if (zip.readUInt32LE(i) === EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ReportError('not a zip archive');
  const entries = zip.readUInt16LE(eocd + 10);
  let at = zip.readUInt32LE(eocd + 16);
  for (let n = 0; n < Math.min(entries, L.maxZipEntries); n++) {
    if (at + 46 > zip.length || zip.readUInt32LE(at) !== 0x02014b50) throw new ReportError('broken zip directory');
    const method = zip.readUInt16LE(at + 10);
    const compressed = zip.readUInt32LE(at + 20);
    const nameLen = zip.readUInt16LE(at + 28);
    const next = at + 46 + nameLen + zip.readUInt16LE(at + 30) + zip.readUInt16LE(at + 32);
    const name = zip.subarray(at + 46, at + 46 + nameLen).toString('latin1');
    const local = zip.readUInt32LE(at + 42);
    at = next;
    if (!name.toLowerCase().endsWith('.xml')) continue;
    if (local + 30 > zip.length || zip.readUInt32LE(local) !== 0x04034b50) throw new ReportError('broken zip entry');
    const start = local + 30 + zip.readUInt16LE(local + 26) + zip.readUInt16LE(local + 28);
    if (start + compressed > zip.length) throw new ReportError('truncated zip entry');
    const data = zip.subarray(start, start + compressed);
    if (method === 0) {
      if (data.length > L.maxXmlBytes) throw new ReportError('XML too large');
      return data;
    }
    if (method === 8) return bounded(() => inflateRawSync(data, { maxOutputLength: L.maxXmlBytes }));
    throw new ReportError(`zip compression method ${method} not supported`);
  }
  throw new ReportError('no .xml entry in the zip archive');
}

const parser = new XMLParser({
  ignoreAttributes: true,
  processEntities: false,
  htmlEntities: false,
  parseTagValue: false,
  trimValues: true,
  maxNestedTags: L.maxDepth,
  removeNSPrefix: true,
  isArray: (name, jpath) =>
    name === 'record' ||
    name === 'error' ||
    String(jpath).endsWith('.auth_results.dkim') ||
    String(jpath).endsWith('.auth_results.spf'),
});

type Node = Record<string, unknown>;
const obj = (v: unknown): Node => (v && typeof v === 'object' && !Array.isArray(v) ? (v as Node) : {});
const str = (v: unknown): string => (typeof v === 'string' ? v : typeof v === 'number' ? String(v) : '');
const int = (v: unknown): number => {
  const n = Number.parseInt(str(v), 10);
  return Number.isFinite(n) && n >= 0 ? n : 0;
};

/** The <feedback> document (Appendix C; version optional, as most reports leave it out). */
export function parseFeedback(xml: Buffer): ReceivedReport {
  if (xml.length > L.maxXmlBytes) throw new ReportError('XML too large');
  // No DTD at all: entities (XXE, billion laughs) cannot appear.
  if (xml.includes('<!DOCTYPE') || xml.includes('<!ENTITY'))
    throw new ReportError('document type declarations are refused');
  const text = xml.toString('utf8');
  // The parser is lenient (a mismatched end tag passes); its validator, one linear pass, is not.
  const valid = XMLValidator.validate(text);
  if (valid !== true) throw new ReportError(`not well-formed XML: ${valid.err.msg} (line ${valid.err.line})`);
  let doc: Node;
  try {
    doc = obj(parser.parse(text));
  } catch (e) {
    throw new ReportError(`not well-formed XML: ${(e as Error).message}`);
  }
  const fb = obj(doc.feedback);
  if (!doc.feedback) throw new ReportError('no <feedback> element');
  const meta = obj(fb.report_metadata);
  const range = obj(meta.date_range);
  const pp = obj(fb.policy_published);
  const raw = Array.isArray(fb.record) ? fb.record : [];
  if (raw.length > L.maxRecords) throw new ReportError(`more than ${L.maxRecords} records`);
  const records = raw.map((r): ReceivedRecord => {
    const row = obj(obj(r).row);
    const pe = obj(row.policy_evaluated);
    return {
      sourceIp: str(row.source_ip),
      count: int(row.count),
      disposition: str(pe.disposition),
      dkim: str(pe.dkim),
      spf: str(pe.spf),
      headerFrom: str(obj(obj(r).identifiers).header_from),
    };
  });
  return {
    orgName: str(meta.org_name),
    email: str(meta.email),
    reportId: str(meta.report_id),
    begin: int(range.begin),
    end: int(range.end),
    domain: str(pp.domain),
    policy: str(pp.p),
    records,
  };
}

const KINDS: Record<string, 'gzip' | 'zip' | 'xml'> = {
  'application/gzip': 'gzip',
  'application/x-gzip': 'gzip',
  'application/zip': 'zip',
  'application/x-zip-compressed': 'zip',
  'text/xml': 'xml',
  'application/xml': 'xml',
};

/** The aggregate reports in a message (usually one), and the problems of parts that looked like
 *  one but were not readable. `reader`: the message (a store MessageBody, or bufferReader). */
export async function reportsInMessage(
  reader: ByteReader,
  size: number,
): Promise<{ reports: ReceivedReport[]; errors: string[] }> {
  const root = await parseStructure(reader, size);
  const reports: ReceivedReport[] = [];
  const errors: string[] = [];
  const leaves: MimePart[] = [];
  const walk = (p: MimePart) => {
    if (isMultipart(p)) for (const c of p.parts) walk(c);
    else leaves.push(p);
  };
  walk(root);
  for (const p of leaves) {
    let kind = KINDS[`${p.type}/${p.subtype}`];
    if (!kind && p.type === 'application' && p.subtype === 'octet-stream') kind = octetKind(p);
    if (!kind) continue;
    if (p.bodyEnd - p.bodyStart > L.maxAttachmentBytes * 2) {
      errors.push('attachment too large');
      continue;
    }
    try {
      const raw = await readRange(reader, p.bodyStart, p.bodyEnd);
      const { bytes } = decodeTransfer(raw, headerValue(p.header, 'content-transfer-encoding'));
      reports.push(parseFeedback(reportXml(bytes, kind)));
    } catch (e) {
      if (!(e instanceof ReportError)) throw e;
      errors.push(e.message);
    }
  }
  return { reports, errors };
}

/** Some senders label the file application/octet-stream: its name decides. */
function octetKind(p: MimePart): 'gzip' | 'zip' | 'xml' | undefined {
  const name = (p.params.find(([k]) => k === 'name')?.[1] ?? headerValue(p.header, 'content-disposition') ?? '')
    .toLowerCase()
    .trim();
  if (name.includes('.xml.gz')) return 'gzip';
  if (name.includes('.zip')) return 'zip';
  if (name.includes('.xml')) return 'xml';
  return undefined;
}
