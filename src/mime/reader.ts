// A ByteReader over bytes in memory (an uploaded blob for Email/parse, a built message, tests).

import { decodeQuotedPrintable } from './decode.ts';
import { type ByteReader, headerValue, type MimePart } from './structure.ts';

export function bufferReader(bytes: Buffer): ByteReader {
  return {
    read(buffer, offset, length, position) {
      const n = Math.max(0, Math.min(length, bytes.length - position));
      if (n > 0) bytes.copy(buffer, offset, position, position + n);
      return Promise.resolve({ bytesRead: n });
    },
  };
}

/** Bytes [start, end) of a reader. */
export async function readRange(reader: ByteReader, start: number, end: number): Promise<Buffer> {
  const buf = Buffer.alloc(Math.max(0, end - start));
  let got = 0;
  while (got < buf.length) {
    const { bytesRead } = await reader.read(buf, got, buf.length - got, start + got);
    if (bytesRead === 0) break;
    got += bytesRead;
  }
  return buf.subarray(0, got);
}

/** Octets of a leaf part's body after transfer decoding (RFC 8621 §4.1.4 EmailBodyPart size),
 *  counted in one bounded pass in 64 KiB pieces that end at line breaks. */
export async function decodedSize(reader: ByteReader, p: MimePart): Promise<number> {
  const encoded = Math.max(0, p.bodyEnd - p.bodyStart);
  const cte = (headerValue(p.header, 'content-transfer-encoding') ?? '').trim().toLowerCase();
  if (p.type === 'multipart' || (cte !== 'base64' && cte !== 'quoted-printable')) return encoded;
  let sextets = 0;
  let padded = false;
  let total = 0;
  for (let pos = p.bodyStart; pos < p.bodyEnd; ) {
    let chunk = await readRange(reader, pos, Math.min(p.bodyEnd, pos + 64 * 1024));
    if (chunk.length === 0) break;
    const lf = chunk.lastIndexOf(0x0a);
    if (pos + chunk.length < p.bodyEnd && lf >= 0) chunk = chunk.subarray(0, lf + 1);
    pos += chunk.length;
    if (cte === 'quoted-printable') {
      total += decodeQuotedPrintable(chunk).length;
      continue;
    }
    for (let i = 0; i < chunk.length && !padded; i++) {
      const c = chunk[i] as number;
      if ((c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47) sextets++;
      else if (c === 61) padded = true;
    }
  }
  return cte === 'base64' ? Math.floor((sextets * 6) / 8) : total;
}
