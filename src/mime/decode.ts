// Decoding a MIME part's body to text: Content-Transfer-Encoding (RFC 2045 §6: base64,
// quoted-printable, 7bit/8bit/binary) and then its charset (RFC 2046 §4.1.2) through
// TextDecoder (the WHATWG encodings: UTF-8, ISO-8859-x, Windows-125x, KOI8, Shift_JIS, GB18030,
// ...). Each step says whether it met a problem (bad base64, malformed bytes for the charset, an
// unknown charset or encoding), which JMAP reports as isEncodingProblem (RFC 8621 §4.1.4).
// Linear in the input, no backtracking patterns; callers bound the bytes they pass.

/** Undoes the Content-Transfer-Encoding. An unknown encoding passes the bytes as they are and
 *  counts as a problem (RFC 8621 §4.1.4 isEncodingProblem). */
export function decodeTransfer(raw: Buffer, encoding: string | null): { bytes: Buffer; problem: boolean } {
  switch ((encoding ?? '').trim().toLowerCase()) {
    case 'base64':
      return decodeBase64(raw);
    case 'quoted-printable':
      return { bytes: decodeQuotedPrintable(raw), problem: false };
    case '':
    case '7bit':
    case '8bit':
    case 'binary':
      return { bytes: raw, problem: false };
    default:
      return { bytes: raw, problem: true };
  }
}

/** RFC 2045 §6.8: characters outside the alphabet are ignored (line breaks, and garbage, which
 *  is a problem); decoding stops at the first "=" pad. */
export function decodeBase64(raw: Buffer): { bytes: Buffer; problem: boolean } {
  const clean = Buffer.allocUnsafe(raw.length);
  let n = 0;
  let problem = false;
  let pad = false;
  for (let i = 0; i < raw.length; i++) {
    const c = raw[i] as number;
    const alpha = (c >= 65 && c <= 90) || (c >= 97 && c <= 122) || (c >= 48 && c <= 57) || c === 43 || c === 47;
    if (alpha && !pad) clean[n++] = c;
    else if (c === 61) pad = true;
    else if (alpha || !(c === 13 || c === 10 || c === 32 || c === 9)) problem = true;
  }
  if (n % 4 === 1) problem = true; // a lone sextet is no octet
  return { bytes: Buffer.from(clean.subarray(0, n).toString('latin1'), 'base64'), problem };
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

/** Charset labels TextDecoder does not know under the names mail uses. */
const ALIASES: Record<string, string> = { 'us-ascii': 'utf-8', ascii: 'utf-8', 'x-unknown': 'utf-8', utf8: 'utf-8' };

/** Bytes in `charset` (null: UTF-8, as RFC 6532 allows) to text. Malformed sequences become
 *  U+FFFD and are a problem; an unknown charset is read as UTF-8 and is a problem too. */
export function decodeCharset(bytes: Buffer, charset: string | null): { text: string; problem: boolean } {
  const label = (charset ?? 'utf-8').trim().toLowerCase();
  let decoder: InstanceType<typeof TextDecoder>;
  let problem = false;
  try {
    decoder = new TextDecoder(ALIASES[label] ?? label, { fatal: true });
  } catch {
    decoder = new TextDecoder('utf-8', { fatal: true });
    problem = true;
  }
  try {
    return { text: decoder.decode(bytes), problem };
  } catch {
    return { text: new TextDecoder(decoder.encoding).decode(bytes), problem: true };
  }
}
