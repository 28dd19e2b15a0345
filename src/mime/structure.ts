// MIME structure of a stored message (RFC 2045, RFC 2046), shared by IMAP (BODYSTRUCTURE, BODY
// and part sections, RFC 9051 §6.4.5, §7.5.2) and JMAP (RFC 8621 §4.1.4). Streaming: the file is read in chunks and scanned line by
// line; only header blocks are kept (bounded), bodies are described by byte offsets. Nesting
// (multiparts, message/rfc822) is bounded. Part numbering follows RFC 9051 §6.4.5.

import { LIMITS } from '../core/limits.ts';

/** What parsers need of a message: reads at offsets (the store's MessageBody, a file handle, a
 *  buffer). The same shape as store/mailboxes.ts ByteReader; mime/ depends only on core. */
export interface ByteReader {
  read(buffer: Buffer, offset: number, length: number, position: number): Promise<{ bytesRead: number }>;
}

const MAX_DEPTH = LIMITS.imap.maxMimeDepth;
const MAX_HEADER = 256 * 1024;
const MAX_PARTS = LIMITS.imap.maxMimeParts;
/** Bytes of one line looked at (header lines, boundary lines); the rest is only counted. */
const MAX_LINE = MAX_HEADER;

export interface MimePart {
  /** Offset of the part's header (its MIME header; for the root, the message header). */
  readonly headerStart: number;
  /** Offset where the body begins (just after the empty line), or where the header stopped. */
  bodyStart: number;
  /** Offset just past the body (the CRLF before a boundary belongs to the boundary). */
  bodyEnd: number;
  header: Buffer;
  type: string;
  subtype: string;
  params: [string, string][];
  /** Lines of the body (for text/* and message/rfc822 in BODYSTRUCTURE). */
  lines: number;
  /** Index of the first body line. */
  startLine: number;
  readonly parts: MimePart[];
  /** For message/rfc822: the encapsulated message. */
  message: MimePart | null;
}

interface Frame {
  part: MimePart;
  boundary: string;
  /** Child whose body is being read, if any. */
  open: MimePart | null;
  done: boolean;
}

/** Parses the structure of the message in `fh` (size bytes). */
export async function parseStructure(fh: ByteReader, size: number): Promise<MimePart> {
  const root = newPart(0);
  const frames: Frame[] = []; // open multiparts, innermost last
  let current: MimePart | null = root; // part whose header is being read
  let headerBuf: Buffer[] = [];
  let headerLen = 0;
  let partCount = 1;
  const chunk = Buffer.allocUnsafe(64 * 1024);

  let lineNo = 0; // index of the line being processed

  const endHeader = (at: number) => {
    const part = current as MimePart;
    part.header = Buffer.concat(headerBuf);
    part.bodyStart = at;
    part.startLine = lineNo + 1;
    // RFC 2046 §5.1.5: message/rfc822 is the default for the body parts of a digest, not for
    // the message such a part encapsulates (whose default is text/plain again).
    const frame = frames.at(-1);
    parseContentType(part, frame?.part.subtype === 'digest' && frame.open === part);
    headerBuf = [];
    headerLen = 0;
    current = null;
    const b = part.params.find(([k]) => k.toLowerCase() === 'boundary')?.[1];
    if (part.type === 'multipart' && b && frames.length < MAX_DEPTH) {
      frames.push({ part, boundary: b, open: null, done: false });
    } else if (part.type === 'message' && part.subtype === 'rfc822' && frames.length < MAX_DEPTH) {
      part.message = newPart(at);
      part.message.startLine = lineNo + 1;
      current = part.message; // the encapsulated header starts right here
      partCount++;
    }
  };

  const isBoundary = (b: Buffer): boolean => {
    const text = b.toString('latin1').trimEnd();
    return frames.some((fr) => !fr.done && (text === `--${fr.boundary}` || text === `--${fr.boundary}--`));
  };

  /** One line: `bytes` are its first bytes (all of it up to MAX_LINE, line ending included),
   *  `length` its full length (a longer line is only counted, never copied whole). */
  const line = (start: number, bytes: Buffer, length: number) => {
    const whole = length === bytes.length;
    if (current) {
      if (whole && trimEol(bytes).length === 0) return endHeader(start + length);
      // A boundary of an open multipart ends a header that had no empty line (a part, or a
      // message/rfc822 whose message is only a header): its body is empty, and the boundary
      // is not swallowed with the parts after it. No header field starts with "--".
      if (!(whole && bytes[0] === 0x2d && bytes[1] === 0x2d && isBoundary(trimEol(bytes)))) {
        if (headerLen < MAX_HEADER) {
          const kept = Buffer.from(bytes.subarray(0, MAX_HEADER - headerLen)); // the chunk is reused
          headerBuf.push(kept);
          headerLen += kept.length;
        }
        return;
      }
      for (let i = 0; current && i <= MAX_DEPTH; i++) endHeader(start);
    }
    if (whole && bytes[0] === 0x2d && bytes[1] === 0x2d) {
      const text = trimEol(bytes).toString('latin1').trimEnd();
      for (let f = frames.length - 1; f >= 0; f--) {
        const fr = frames[f] as Frame;
        if (fr.done) continue;
        if (text !== `--${fr.boundary}` && text !== `--${fr.boundary}--`) continue;
        // Close everything inside this multipart; its last body ends before our CRLF.
        // RFC 2046 §5.1.1: the CRLF before the boundary line belongs to the boundary, so the
        // line before this one ends the body without its line break.
        const end = Math.max(start - 2, 0);
        if (fr.open) closeDeep(fr.open, end, lineNo - 1);
        frames.length = f + 1;
        if (text.endsWith('--') && text !== `--${fr.boundary}`) {
          fr.done = true;
          fr.open = null;
        } else if (partCount < MAX_PARTS) {
          const child = newPart(start + length);
          fr.part.parts.push(child);
          fr.open = child;
          current = child;
          partCount++;
        }
        return;
      }
    }
  };

  // A line that does not end in the chunk is collected across chunks, at most MAX_LINE bytes of
  // it kept: a message of one 50 MB line costs one pass, not a copy per chunk (quadratic).
  let pending: Buffer[] = [];
  let pendingLen = 0;
  let lineLen = 0; // full length of the pending line so far
  let lineStart = 0;
  const take = (b: Buffer) => {
    if (pendingLen < MAX_LINE) {
      const part = Buffer.from(b.subarray(0, MAX_LINE - pendingLen));
      pending.push(part);
      pendingLen += part.length;
    }
    lineLen += b.length;
  };
  const finish = () => {
    line(lineStart, pending.length === 1 ? (pending[0] as Buffer) : Buffer.concat(pending), lineLen);
    lineNo++;
    pending = [];
    pendingLen = 0;
    lineLen = 0;
  };
  for (let filePos = 0; filePos < size; ) {
    const { bytesRead } = await fh.read(chunk, 0, Math.min(chunk.length, size - filePos), filePos);
    if (bytesRead === 0) break;
    const data = chunk.subarray(0, bytesRead);
    let off = 0;
    for (let nl = data.indexOf(0x0a, off); nl >= 0; nl = data.indexOf(0x0a, off)) {
      if (lineLen === 0) {
        line(filePos + off, data.subarray(off, nl + 1), nl + 1 - off);
        lineNo++;
      } else {
        take(data.subarray(off, nl + 1));
        finish();
      }
      off = nl + 1;
    }
    if (off < data.length) {
      if (lineLen === 0) lineStart = filePos + off;
      take(data.subarray(off));
    }
    filePos += bytesRead;
  }
  const unterminated = lineLen > 0;
  if (unterminated) finish(); // a last line without line ending is still scanned
  if (current) endHeader(size); // header without body
  closeDeep(root, size, unterminated ? lineNo - 1 : lineNo);
  return root;
}

function newPart(headerStart: number): MimePart {
  return {
    headerStart,
    bodyStart: headerStart,
    bodyEnd: -1,
    header: Buffer.alloc(0),
    type: 'text',
    subtype: 'plain',
    params: [],
    lines: 0,
    startLine: 0,
    parts: [],
    message: null,
  };
}

/** Ends a part and every unfinished part inside it at byte `end`. `lfEnd` is the first line
 *  whose line break is not in the body: the body size in lines (RFC 9051 §7.5.2 body-fld-lines)
 *  counts line breaks, as Dovecot does, so a last line without one is not counted. */
function closeDeep(p: MimePart, end: number, lfEnd: number): void {
  if (p.bodyEnd < 0) {
    p.bodyEnd = Math.max(end, p.bodyStart);
    p.lines = Math.max(0, lfEnd - p.startLine);
  }
  if (p.message) closeDeep(p.message, p.bodyEnd, lfEnd);
  for (const c of p.parts) if (c.bodyEnd < 0) closeDeep(c, p.bodyEnd, lfEnd);
}

function trimEol(b: Buffer): Buffer {
  let n = b.length;
  if (n > 0 && b[n - 1] === 0x0a) n--;
  if (n > 0 && b[n - 1] === 0x0d) n--;
  return b.subarray(0, n);
}

/** Value of the first header field called `name` (case-insensitive), unfolded (RFC 5322 §2.2.3:
 *  a line break before white space is removed), trimmed; or null. One pass over the lines, no
 *  RegExp built from the name; white space before the colon is the obsolete form (§4.5.3). */
export function headerValue(header: Buffer, name: string): string | null {
  const text = header.toString('latin1');
  const want = name.toLowerCase();
  for (let pos = 0; pos < text.length; ) {
    const eol = lineEnd(text, pos);
    let j = pos + want.length;
    if (j <= eol && text.slice(pos, j).toLowerCase() === want) {
      while (j < eol && (text[j] === ' ' || text[j] === '\t')) j++;
      if (text[j] === ':') {
        const parts = [text.slice(j + 1, trimCr(text, eol))];
        for (let next = eol + 1; next < text.length && (text[next] === ' ' || text[next] === '\t'); ) {
          const end = lineEnd(text, next);
          parts.push(` ${text.slice(next + 1, trimCr(text, end))}`);
          next = end + 1;
        }
        return parts.join('').trim();
      }
    }
    pos = eol + 1;
  }
  return null;
}

/** Index of the LF ending the line that starts at `pos` (or the end of the text). */
function lineEnd(text: string, pos: number): number {
  const i = text.indexOf('\n', pos);
  return i < 0 ? text.length : i;
}

/** `eol` less a CR just before it. */
function trimCr(text: string, eol: number): number {
  return eol > 0 && text[eol - 1] === '\r' ? eol - 1 : eol;
}

/** Content-Type (RFC 2045 §5.1) with defaults (RFC 2045 §5.2; digest parts RFC 2046 §5.1.5). */
function parseContentType(part: MimePart, inDigest: boolean): void {
  const value = headerValue(part.header, 'content-type');
  const m = value ? /^\s*([!#$%&'*+.^_`|~0-9A-Za-z-]+)\/([!#$%&'*+.^_`|~0-9A-Za-z-]+)\s*(.*)$/s.exec(value) : null;
  if (!m) {
    [part.type, part.subtype] = inDigest ? ['message', 'rfc822'] : ['text', 'plain'];
    part.params = inDigest ? [] : [['charset', 'us-ascii']];
    return;
  }
  part.type = (m[1] ?? 'text').toLowerCase();
  part.subtype = (m[2] ?? 'plain').toLowerCase();
  part.params = parseParams(m[3] ?? '');
  if (part.type === 'text' && !part.params.some(([k]) => k.toLowerCase() === 'charset'))
    part.params.push(['charset', 'us-ascii']);
}

/** `; name=value; name="quoted value"` -> pairs (RFC 2231 pieces are passed through as is).
 *  Linear: an attempt that fails costs at most the distance to the next ";" (no part of the
 *  pattern crosses one outside quotes, and quoted-pair alternatives are disjoint), and at most 65
 *  attempts succeed, each at most one pass over the text. */
export function parseParams(text: string): [string, string][] {
  const out: [string, string][] = [];
  const re = /;\s*([^\s=;]+)\s*=\s*(?:"((?:[^"\\]|\\.)*)"|([^\s;]*))/g;
  for (let m = re.exec(text); m; m = re.exec(text)) {
    out.push([m[1] ?? '', m[2] !== undefined ? m[2].replace(/\\(.)/g, '$1') : (m[3] ?? '')]);
    if (out.length > 64) break;
  }
  return out;
}

/** The JSON form kept in the index cache: headers as latin1 text (they are bytes). */
type StoredPart = Omit<MimePart, 'header' | 'parts' | 'message'> & {
  header: string;
  parts: StoredPart[];
  message: StoredPart | null;
};

export function serializeStructure(p: MimePart): string {
  const toStored = (q: MimePart): StoredPart => ({
    ...q,
    header: q.header.toString('latin1'),
    parts: q.parts.map(toStored),
    message: q.message ? toStored(q.message) : null,
  });
  return JSON.stringify(toStored(p));
}

export function deserializeStructure(json: string): MimePart {
  const fromStored = (q: StoredPart): MimePart => ({
    ...q,
    header: Buffer.from(q.header, 'latin1'),
    parts: q.parts.map(fromStored),
    message: q.message ? fromStored(q.message) : null,
  });
  return fromStored(JSON.parse(json) as StoredPart);
}

/** The part a section's part numbers name (RFC 9051 §6.4.5), or null. A message (the root, or
 *  the one a message/rfc822 part encapsulates) numbers its multipart's children, or has just a
 *  part 1 (its body) when it is not multipart; a message/rfc822 part's own numbers are those of
 *  its encapsulated message ("3.1" is part 1 of the message in part 3, "1" of a top-level
 *  message/rfc822 is the whole encapsulated message); a multipart part numbers its children. */
export function resolvePart(root: MimePart, numbers: readonly number[]): MimePart | null {
  let p: MimePart | null = numbers.length === 0 ? root : null;
  let numbering: MimePart | null = root; // whose numbers come next
  for (const n of numbers) {
    if (!numbering) return null;
    p = isMultipart(numbering) ? (numbering.parts[n - 1] ?? null) : n === 1 ? numbering : null;
    if (!p) return null;
    numbering = p.message ?? (isMultipart(p) ? p : null);
  }
  return p;
}

export function isMultipart(p: MimePart): boolean {
  return p.type === 'multipart' && p.parts.length > 0;
}
