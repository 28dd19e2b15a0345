// FETCH items (RFC 9051 §6.4.5, RFC 3516 BINARY): which items a FETCH needs, the byte ranges of
// sections and parts, literals over message bodies, and the items answered from the index alone.
// Used by message-commands.ts.

import { decodeQuotedPrintable } from '../mime/decode.ts';
import { headerValue, type MimePart, resolvePart } from '../mime/structure.ts';
import type { MessageBody } from '../store/mailboxes.ts';
import { filterHeader } from './message.ts';
import type { Part } from './output.ts';
import type { SelectedView } from './selected.ts';
import type { BodySection, FetchItem } from './wire/command.ts';
import { flagList, imapDate } from './wire/encode.ts';

export const CRLF = Buffer.from('\r\n');

/** The message file disappeared between the view and the read. */
export class Vanished extends Error {}

/** RFC822* are BODY[] forms; UID FETCH always includes UID (RFC 9051 §6.4.9). */
export function expandItems(items: readonly FetchItem[], uid: boolean): FetchItem[] {
  const out: FetchItem[] = [];
  const whole = (peek: boolean, text: BodySection['text']) => ({
    kind: 'BODY[]' as const,
    part: [],
    text,
    partial: null,
    peek,
  });
  for (const i of items) {
    if (i.kind === 'RFC822') out.push({ ...whole(false, null), legacy: 'RFC822' });
    else if (i.kind === 'RFC822.HEADER') out.push({ ...whole(true, { kind: 'HEADER' }), legacy: 'RFC822.HEADER' });
    else if (i.kind === 'RFC822.TEXT') out.push({ ...whole(false, { kind: 'TEXT' }), legacy: 'RFC822.TEXT' });
    else out.push(i);
  }
  if (uid && !out.some((i) => i.kind === 'UID')) out.unshift({ kind: 'UID' });
  return out;
}

export function sectionName(item: Extract<FetchItem, { kind: 'BODY[]' }>): string {
  if (item.legacy) return item.legacy;
  const t = item.text;
  const text =
    t === null
      ? ''
      : t.kind === 'HEADER.FIELDS'
        ? `HEADER.FIELDS${t.not ? '.NOT' : ''} (${t.fields.join(' ')})`
        : t.kind;
  const part = item.part.join('.');
  return `BODY[${part}${part && text ? '.' : ''}${text}]${item.partial ? `<${item.partial.offset}>` : ''}`;
}

export type Range = { kind: 'file'; start: number; length: number } | { kind: 'bytes'; bytes: Buffer };

export function sectionRange(item: Extract<FetchItem, { kind: 'BODY[]' }>, size: number, header: Buffer | null): Range {
  const t = item.text;
  if (t === null) return { kind: 'file', start: 0, length: size };
  const h = header ?? Buffer.alloc(0);
  if (t.kind === 'HEADER') return { kind: 'bytes', bytes: h };
  if (t.kind === 'TEXT') return { kind: 'file', start: h.length, length: Math.max(0, size - h.length) };
  if (t.kind === 'HEADER.FIELDS') return { kind: 'bytes', bytes: filterHeader(h, t.fields, t.not) };
  return { kind: 'bytes', bytes: Buffer.alloc(0) };
}

/** A section with part numbers (RFC 9051 §6.4.5): the part's body, its MIME header, or for a
 *  message/rfc822 part the HEADER/TEXT/HEADER.FIELDS of the encapsulated message. A part that
 *  does not exist is an empty string, as Dovecot answers. */
export async function partRange(
  item: Extract<FetchItem, { kind: 'BODY[]' }>,
  root: MimePart,
  fh: MessageBody,
): Promise<Range> {
  const empty: Range = { kind: 'bytes', bytes: Buffer.alloc(0) };
  const p = resolvePart(root, item.part);
  if (!p) return empty;
  const t = item.text;
  const range = (a: number, b: number): Range => ({ kind: 'file', start: a, length: Math.max(0, b - a) });
  if (t === null) return range(p.bodyStart, p.bodyEnd);
  if (t.kind === 'MIME') return range(p.headerStart, p.bodyStart);
  const m = p.message;
  if (!m) return empty;
  if (t.kind === 'TEXT') return range(m.bodyStart, m.bodyEnd);
  const header = Buffer.alloc(Math.max(0, m.bodyStart - m.headerStart));
  await fh.read(header, 0, header.length, m.headerStart);
  return t.kind === 'HEADER'
    ? { kind: 'bytes', bytes: header }
    : { kind: 'bytes', bytes: filterHeader(header, t.fields, t.not) };
}

export function literal(bytes: Buffer, partial: BodySection['partial']): Part[] {
  const b = partial ? bytes.subarray(partial.offset, partial.offset + partial.length) : bytes;
  return [`{${b.length}}\r\n`, b];
}

export function fileLiteral(fh: MessageBody, start: number, length: number, partial: BodySection['partial']): Part[] {
  let s = start;
  let len = length;
  if (partial) {
    s = start + Math.min(partial.offset, length);
    len = Math.max(0, Math.min(partial.length, length - partial.offset));
  }
  return [`{${len}}\r\n`, { file: fh, start: s, length: len }];
}

/** Messages whose cached ENVELOPE/BODYSTRUCTURE are asked of the index at once. */
export const CACHE_BATCH = 1000;

/** Parsed data of the messages of a FETCH batch, from the index. */
export type Known = { envelope: Map<number, string>; structure: Map<number, string> };

/** Items answered from the MIME structure. */
export function needsStructure(i: FetchItem): boolean {
  return (
    i.kind === 'BODYSTRUCTURE' ||
    i.kind === 'BODY' ||
    ((i.kind === 'BODY[]' || i.kind === 'BINARY' || i.kind === 'BINARY.SIZE') && i.part.length > 0)
  );
}

/** FETCH items answered from the index alone. */
export const CHEAP_ITEMS: ReadonlySet<FetchItem['kind']> = new Set([
  'UID',
  'FLAGS',
  'MODSEQ',
  'INTERNALDATE',
  'RFC822.SIZE',
]);

export function cheapLine(
  view: SelectedView,
  uid: number,
  meta: NonNullable<ReturnType<SelectedView['meta']>>,
  items: readonly FetchItem[],
): string {
  const parts: string[] = [];
  for (const item of items) {
    if (item.kind === 'UID') parts.push(`UID ${uid}`);
    else if (item.kind === 'FLAGS') parts.push(`FLAGS ${flagList(view.flagsOf(uid))}`);
    else if (item.kind === 'MODSEQ') parts.push(`MODSEQ (${meta.modseq})`);
    else if (item.kind === 'INTERNALDATE') parts.push(`INTERNALDATE ${imapDate(meta.internalDate)}`);
    else if (item.kind === 'RFC822.SIZE') parts.push(`RFC822.SIZE ${meta.size}`);
  }
  return `* ${view.seqOf(uid)} FETCH (${parts.join(' ')})\r\n`;
}

/** The decoded bytes of a part for BINARY (RFC 3516 §4.2); throws UnknownCte for an encoding
 *  we cannot undo. The whole message ([]) and multipart parts are returned as they are. */
export async function binaryPart(
  part: readonly number[],
  size: number,
  fh: MessageBody,
  root: MimePart | null,
): Promise<Buffer> {
  const read = async (start: number, end: number) => {
    const buf = Buffer.alloc(Math.max(0, end - start));
    if (buf.length > 0) await fh.read(buf, 0, buf.length, start);
    return buf;
  };
  if (part.length === 0 || !root) return read(0, size);
  const p = resolvePart(root, part);
  if (!p) return Buffer.alloc(0);
  const raw = await read(p.bodyStart, p.bodyEnd);
  if (p.parts.length > 0 || p.message) return raw;
  const cte = (headerValue(p.header, 'content-transfer-encoding') ?? '7bit').trim().toLowerCase();
  if (cte === 'base64') return Buffer.from(raw.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
  if (cte === 'quoted-printable') return decodeQuotedPrintable(raw);
  if (cte === '7bit' || cte === '8bit' || cte === 'binary') return raw;
  throw new UnknownCte(cte.slice(0, 32));
}

/** RFC 3516 §4.3: a content-transfer-encoding the server cannot decode. */
export class UnknownCte extends Error {}
