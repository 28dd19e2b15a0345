// Body values and the preview (RFC 8621 §4.1.4, §4.2): the text of a text/* part, decoded from
// its Content-Transfer-Encoding and charset, cut at maxBodyValueBytes on a UTF-8 character
// boundary (isTruncated), with isEncodingProblem when the bytes did not decode cleanly. Reads
// only the bytes needed, never more than LIMITS.jmapMail.maxBodyValueBytes decoded octets' worth.

import { LIMITS } from '../../core/limits.ts';
import { decodeCharset, decodeTransfer } from '../../mime/decode.ts';
import { htmlToText } from '../../mime/html-text.ts';
import { readRange } from '../../mime/reader.ts';
import { type ByteReader, headerValue, type MimePart } from '../../mime/structure.ts';
import type { BodyLists, BodyTree } from './body.ts';

export interface EmailBodyValue {
  readonly value: string;
  readonly isEncodingProblem: boolean;
  readonly isTruncated: boolean;
}

/** The text of one part: at most `maxBytes` UTF-8 octets of it (0: no limit but the hard one). */
export async function bodyValue(reader: ByteReader, p: MimePart, maxBytes: number): Promise<EmailBodyValue> {
  const hard = LIMITS.jmapMail.maxBodyValueBytes;
  const limit = maxBytes > 0 ? Math.min(maxBytes, hard) : hard;
  const encoded = Math.max(0, p.bodyEnd - p.bodyStart);
  // Decoded text is never more than 4 UTF-8 octets per encoded octet... but may be fewer by up
  // to 3x (quoted-printable): read enough for `limit` octets of text in the worst case.
  const want = Math.min(encoded, limit * 3 + 1024);
  const cutRaw = want < encoded;
  let raw = await readRange(reader, p.bodyStart, p.bodyStart + want);
  // A cut read ends at a line break: no base64 quantum or quoted-printable escape is split.
  if (cutRaw && raw.lastIndexOf(0x0a) > 0) raw = raw.subarray(0, raw.lastIndexOf(0x0a) + 1);
  const transfer = decodeTransfer(raw, headerValue(p.header, 'content-transfer-encoding'));
  const charset = p.params.find(([k]) => k.toLowerCase() === 'charset')?.[1] ?? null;
  const { text, problem } = decodeCharset(transfer.bytes, charset);
  const cut = truncateUtf8(text, limit);
  return {
    value: cut,
    // A character split by the cut read is no problem of the part: only one before its end is.
    isEncodingProblem: transfer.problem || (problem && (!cutRaw || text.slice(0, -4).includes('\uFFFD'))),
    isTruncated: cutRaw || cut.length < text.length,
  };
}

/** At most `maxBytes` octets of `text` in UTF-8, cut before a character, never inside one. */
export function truncateUtf8(text: string, maxBytes: number): string {
  if (text.length * 3 <= maxBytes) return text;
  const buf = Buffer.from(text, 'utf8');
  if (buf.length <= maxBytes) return text;
  let end = maxBytes;
  while (end > 0 && ((buf[end] as number) & 0xc0) === 0x80) end--;
  return buf.subarray(0, end).toString('utf8');
}

export interface BodyValueOptions {
  readonly fetchTextBodyValues?: boolean;
  readonly fetchHTMLBodyValues?: boolean;
  readonly fetchAllBodyValues?: boolean;
  readonly maxBodyValueBytes?: number;
}

/** bodyValues (RFC 8621 §4.2 Email/get): by partId, for the text/* parts of textBody, htmlBody
 *  or every leaf, as the fetch options ask. */
export async function bodyValues(
  reader: ByteReader,
  root: BodyTree,
  lists: BodyLists,
  opts: BodyValueOptions,
): Promise<Record<string, EmailBodyValue>> {
  const chosen: BodyTree[] = [];
  if (opts.fetchAllBodyValues) {
    const walk = (t: BodyTree) => {
      chosen.push(t);
      for (const c of t.children) walk(c);
    };
    walk(root);
  } else {
    if (opts.fetchTextBodyValues) chosen.push(...lists.textBody);
    if (opts.fetchHTMLBodyValues) chosen.push(...lists.htmlBody);
  }
  const out: Record<string, EmailBodyValue> = {};
  for (const t of chosen) {
    const id = t.part.partId;
    if (id === null || id in out || !t.part.type.startsWith('text/')) continue;
    out[id] = await bodyValue(reader, t.mime, opts.maxBodyValueBytes ?? 0);
  }
  return out;
}

/** preview (RFC 8621 §4.1.4): up to 256 characters of the message's plain text (its textBody
 *  parts; HTML ones converted), white space collapsed. */
export async function preview(reader: ByteReader, lists: BodyLists): Promise<string> {
  const max = LIMITS.jmapMail.previewChars;
  let out = '';
  for (const t of lists.textBody) {
    if (out.length >= max) break;
    const type = t.part.type;
    if (type !== 'text/plain' && type !== 'text/html') continue;
    const { value } = await bodyValue(reader, t.mime, LIMITS.jmapMail.previewReadBytes);
    const text = (type === 'text/html' ? htmlToText(htmlBody(value)) : value).replace(/\s+/g, ' ').trim();
    if (text !== '') out = out === '' ? text : `${out} ${text}`;
  }
  return [...out].slice(0, max).join('').trimEnd();
}

/** The document's body: what follows `<body` (the head's title is no preview), or all of it. */
function htmlBody(html: string): string {
  const at = html.search(/<body[\s>]/i);
  return at < 0 ? html : html.slice(at);
}
