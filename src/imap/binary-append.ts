// APPEND of binary content (RFC 3516 §4.4): a part whose Content-Transfer-Encoding is `binary`
// is stored as base64 (RFC 2045 §6.8) with its header changed to say so, as Dovecot does. The
// store keeps messages with CRLF line endings, which would change the bytes of a binary body;
// base64 keeps them exact, and BINARY[...] (RFC 3516 §4.2) decodes them back to what was sent,
// while BODY[...] returns the encoded text, never the raw bytes.
//
// Every size is converted. This file does it for a message held in memory (an APPEND literal up
// to LIMITS.imap.streamAppendAbove, collected by the framer); a larger literal8 is streamed to a
// spool as sent and converted chunk by chunk by binary-spool.ts, to the same bytes (its tests
// compare the two), never held whole. The helpers below (contentType, rewriteHeader) serve both.
//
// Pure and bounded: Buffer in, Buffer out (the input itself when nothing is binary). One pass
// over the lines per nesting level (indexOf and byte comparisons, no RegExp on the content);
// nesting, the number of parts and the size of a header block are bounded (BINARY_LIMITS:
// LIMITS.imap.maxMimeDepth, maxMimeParts, maxMimeHeaderBytes), beyond which parts are stored as
// sent. Line endings may still be LF or CRLF here (this runs before the normalisation to CRLF):
// a line ends at LF, a CR before it belongs to the ending.

import { LIMITS } from '../core/limits.ts';
import { headerValue, parseParams } from '../mime/structure.ts';

const LF = 0x0a;
const CR = 0x0d;
const DASH = 0x2d;
const CRLF = Buffer.from('\r\n');
/** RFC 2045 §6.8: encoded lines are at most 76 characters. */
const B64_LINE = 76;

interface Edit {
  start: number;
  end: number;
  data: Buffer;
}

/** The bounds of the conversion; tests pass smaller ones. */
export interface BinaryLimits {
  /** Multiparts and message/rfc822 nested deeper are stored as sent. */
  readonly maxDepth: number;
  /** Entities (the message, body parts, encapsulated messages) looked at; the rest as sent. */
  readonly maxParts: number;
  /** An entity whose header block is larger is stored as sent. */
  readonly maxHeader: number;
}

export const BINARY_LIMITS: BinaryLimits = {
  maxDepth: LIMITS.imap.maxMimeDepth,
  maxParts: LIMITS.imap.maxMimeParts,
  maxHeader: LIMITS.imap.maxMimeHeaderBytes,
};

interface Walk {
  readonly msg: Buffer;
  readonly edits: Edit[];
  readonly limits: BinaryLimits;
  parts: number;
}

/** `msg` with every binary part base64-encoded; `msg` itself when there is none. */
export function encodeBinaryParts(msg: Buffer, limits: BinaryLimits = BINARY_LIMITS): Buffer {
  const w: Walk = { msg, edits: [], limits, parts: 0 };
  entity(w, 0, msg.length, 0);
  if (w.edits.length === 0) return msg;
  const out: Buffer[] = [];
  let at = 0;
  for (const e of w.edits) {
    out.push(msg.subarray(at, e.start), e.data);
    at = e.end;
  }
  out.push(msg.subarray(at));
  return Buffer.concat(out);
}

/** One entity (header and body) in msg[start, end). */
function entity(w: Walk, start: number, end: number, depth: number): void {
  if (++w.parts > w.limits.maxParts) return;
  const bodyStart = headerEnd(w.msg, start, end);
  if (bodyStart < 0) return; // no body
  if (bodyStart - start > w.limits.maxHeader) return; // stored as sent
  const header = w.msg.subarray(start, bodyStart);
  const { type, subtype, boundary } = contentType(headerValue(header, 'content-type'));
  if (depth >= w.limits.maxDepth) return;
  if (type === 'multipart') {
    if (boundary) multipart(w, bodyStart, end, boundary, depth + 1);
    return;
  }
  // RFC 2046 §5.2.1: message/rfc822 is never base64 itself; binary parts inside it are.
  if (type === 'message' && subtype === 'rfc822') {
    entity(w, bodyStart, end, depth + 1);
    return;
  }
  if (headerValue(header, 'content-transfer-encoding')?.toLowerCase() !== 'binary') return;
  const body = base64Lines(w.msg.subarray(bodyStart, end));
  // The message's last line ends with CRLF; inside a multipart the delimiter's CRLF follows.
  const tail = end === w.msg.length && body.length > 0 ? CRLF : Buffer.alloc(0);
  w.edits.push({ start, end, data: Buffer.concat([rewriteHeader(header), body, tail]) });
}

/** RFC 2046 §5.1.1: body parts between "--boundary" lines, up to "--boundary--"; the line break
 *  before a delimiter line belongs to the delimiter. Preamble and epilogue are left alone. */
function multipart(w: Walk, start: number, end: number, boundary: Buffer, depth: number): void {
  const msg = w.msg;
  let open = -1; // start of the body part being read
  for (let pos = start; pos < end; ) {
    const nl = msg.indexOf(LF, pos);
    const eol = nl < 0 || nl >= end ? end : nl;
    const next = eol === end ? end : eol + 1;
    const close = delimiter(msg, pos, eol, boundary);
    if (close !== null) {
      if (open >= 0) {
        let partEnd = pos;
        if (partEnd > open && msg[partEnd - 1] === LF) partEnd--;
        if (partEnd > open && msg[partEnd - 1] === CR) partEnd--;
        entity(w, open, partEnd, depth);
      }
      if (close) return;
      open = next;
    }
    pos = next;
  }
  if (open >= 0 && open < end) entity(w, open, end, depth); // no close delimiter: up to the end
}

/** Whether msg[pos, eol) is "--boundary" (false) or "--boundary--" (true), each possibly
 *  followed by white space (RFC 2046 §5.1.1 transport padding); null if neither. */
function delimiter(msg: Buffer, pos: number, eol: number, boundary: Buffer): boolean | null {
  if (eol - pos < boundary.length + 2 || msg[pos] !== DASH || msg[pos + 1] !== DASH) return null;
  if (msg.compare(boundary, 0, boundary.length, pos + 2, pos + 2 + boundary.length) !== 0) return null;
  let i = pos + 2 + boundary.length;
  const close = i + 1 < eol && msg[i] === DASH && msg[i + 1] === DASH;
  if (close) i += 2;
  for (; i < eol; i++) if (msg[i] !== 0x20 && msg[i] !== 0x09 && msg[i] !== CR) return null;
  return close;
}

/** Offset just past the empty line that ends the header at `start`, or -1 if there is none. */
function headerEnd(msg: Buffer, start: number, end: number): number {
  for (let pos = start; pos < end; ) {
    const nl = msg.indexOf(LF, pos);
    if (nl < 0 || nl >= end) return -1;
    if (nl === pos || (nl === pos + 1 && msg[pos] === CR)) return nl + 1;
    pos = nl + 1;
  }
  return -1;
}

/** RFC 2045 §5.1: type, subtype (lower case) and the boundary parameter of a Content-Type. */
export function contentType(value: string | null): { type: string; subtype: string; boundary: Buffer | null } {
  if (value === null) return { type: 'text', subtype: 'plain', boundary: null };
  const semi = value.indexOf(';');
  const media = (semi < 0 ? value : value.slice(0, semi)).trim().toLowerCase();
  const slash = media.indexOf('/');
  const type = slash < 0 ? media : media.slice(0, slash).trim();
  const subtype = slash < 0 ? '' : media.slice(slash + 1).trim();
  const b = semi < 0 ? undefined : parseParams(value.slice(semi)).find(([k]) => k.toLowerCase() === 'boundary')?.[1];
  // RFC 2046 §5.1.1: a boundary is 1 to 70 characters.
  return { type, subtype, boundary: b && b.length <= 70 ? Buffer.from(b, 'latin1') : null };
}

/** The header with its Content-Transfer-Encoding field (and its folded lines) replaced by
 *  `Content-Transfer-Encoding: base64`; the other lines as they were. */
export function rewriteHeader(header: Buffer): Buffer {
  const out: Buffer[] = [];
  let replaced = false;
  let skipping = false;
  for (let pos = 0; pos < header.length; ) {
    const nl = header.indexOf(LF, pos);
    const next = nl < 0 ? header.length : nl + 1;
    const line = header.subarray(pos, next);
    const folded = line[0] === 0x20 || line[0] === 0x09;
    if (skipping && folded) {
      pos = next;
      continue;
    }
    skipping = isCte(line);
    if (skipping && !replaced) out.push(Buffer.from('Content-Transfer-Encoding: base64\r\n'));
    replaced ||= skipping;
    if (!skipping) out.push(line);
    pos = next;
  }
  return Buffer.concat(out);
}

const CTE = 'content-transfer-encoding';

/** Whether a header line is a Content-Transfer-Encoding field (RFC 5322 §4.5.3: white space may
 *  precede the colon in the obsolete syntax). */
function isCte(line: Buffer): boolean {
  if (line.length <= CTE.length || line.toString('latin1', 0, CTE.length).toLowerCase() !== CTE) return false;
  let i = CTE.length;
  while (i < line.length && (line[i] === 0x20 || line[i] === 0x09)) i++;
  return line[i] === 0x3a;
}

/** RFC 2045 §6.8: base64 in lines of 76 characters, each ended by CRLF but the last. */
function base64Lines(body: Buffer): Buffer {
  const text = body.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < text.length; i += B64_LINE) lines.push(text.slice(i, i + B64_LINE));
  return Buffer.from(lines.join('\r\n'), 'latin1');
}
