// The searchable text of a message body (RFC 9051 §6.4.4 BODY/TEXT): every text/* part decoded
// from its Content-Transfer-Encoding (base64, quoted-printable) and charset, plus the decoded
// headers of encapsulated messages. Non-text parts (images, attachments) are not searched.
// Bounded: at most 4 MiB of decoded text per message.

import { decodeEncodedWords } from '../core/encoded-words.ts';
import { type ByteReader, headerValue, type MimePart } from './structure.ts';

const MAX_TEXT = 4 * 1024 * 1024;

export async function bodyText(fh: ByteReader, root: MimePart): Promise<string> {
  const out: string[] = [];
  let total = 0;
  const visit = async (p: MimePart): Promise<void> => {
    if (total >= MAX_TEXT) return;
    if (p.message) {
      out.push(decodeEncodedWords(Buffer.from(p.message.header).toString('utf8')));
      return visit(p.message);
    }
    if (p.parts.length > 0) {
      for (const c of p.parts) await visit(c);
      return;
    }
    if (p.type !== 'text') return;
    const len = Math.min(p.bodyEnd - p.bodyStart, MAX_TEXT - total);
    if (len <= 0) return;
    const raw = Buffer.alloc(len);
    await fh.read(raw, 0, len, p.bodyStart);
    const text = decodeCharset(decodeTransfer(raw, headerValue(p.header, 'content-transfer-encoding')), p);
    total += text.length;
    out.push(text);
  };
  await visit(root);
  return out.join('\n');
}

function decodeTransfer(raw: Buffer, encoding: string | null): Buffer {
  switch ((encoding ?? '').trim().toLowerCase()) {
    case 'base64':
      return Buffer.from(raw.toString('latin1').replace(/[^A-Za-z0-9+/=]/g, ''), 'base64');
    case 'quoted-printable':
      return decodeQuotedPrintable(raw);
    default:
      return raw;
  }
}

/** RFC 2045 §6.7: "=XX" escapes (rule 1), white space at the end of an encoded line is
 *  padding and goes (rule 3), and "=" ending a line (after that white space is removed) is a soft
 *  line break (rule 5). A "=" that starts no valid escape is kept as it is. One pass, line by
 *  line; line endings (CRLF or a bare LF) are kept as they were. */
export function decodeQuotedPrintable(raw: Buffer): Buffer {
  const out = Buffer.alloc(raw.length);
  let n = 0;
  const hex = (c: number) =>
    c >= 48 && c <= 57 ? c - 48 : c >= 65 && c <= 70 ? c - 55 : c >= 97 && c <= 102 ? c - 87 : -1;
  for (let start = 0; start < raw.length; ) {
    const lf = raw.indexOf(0x0a, start);
    const next = lf < 0 ? raw.length : lf + 1;
    let end = lf < 0 ? raw.length : lf;
    const crlf = lf >= 0 && end > start && raw[end - 1] === 0x0d;
    if (crlf) end--;
    while (end > start && (raw[end - 1] === 0x20 || raw[end - 1] === 0x09)) end--;
    const soft = end > start && raw[end - 1] === 0x3d;
    if (soft) end--;
    for (let i = start; i < end; i++) {
      const c = raw[i] as number;
      const hi = c === 0x3d && i + 2 < end ? hex(raw[i + 1] as number) : -1;
      const lo = hi >= 0 ? hex(raw[i + 2] as number) : -1;
      if (lo >= 0) {
        out[n++] = hi * 16 + lo;
        i += 2;
      } else {
        out[n++] = c;
      }
    }
    if (lf >= 0 && !soft) {
      if (crlf) out[n++] = 0x0d;
      out[n++] = 0x0a;
    }
    start = next;
  }
  return out.subarray(0, n);
}

function decodeCharset(bytes: Buffer, p: MimePart): string {
  const charset = p.params.find(([k]) => k.toLowerCase() === 'charset')?.[1] ?? 'utf-8';
  try {
    return new TextDecoder(charset.toLowerCase() === 'us-ascii' ? 'utf-8' : charset.toLowerCase()).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}
