// RFC 2047 encoded words in header values ("=?charset?Q?...?=" / "=?charset?B?...?="), decoded
// for IMAP SEARCH (RFC 9051 §6.4.4 compares against the decoded text) and Sieve header tests
// (RFC 5228 §2.7.2). Charsets are those Node's
// TextDecoder knows (UTF-8, ISO-8859-x, Windows-125x, KOI8, Shift_JIS, GB18030 ...); a word in an
// unknown charset or with bad encoding is left as it is. Whitespace between two adjacent
// encoded words is dropped (RFC 2047 §6.2).

const WORD = /=\?([^?\s*]+)(?:\*[^?\s]*)?\?([QqBb])\?([^?\s]*)\?=/g;

function decodeOne(charset: string, enc: string, text: string): string | null {
  let bytes: Buffer;
  if (enc.toUpperCase() === 'B') {
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(text)) return null;
    bytes = Buffer.from(text, 'base64');
  } else {
    const raw = text.replace(/_/g, ' ');
    const out: number[] = [];
    for (let i = 0; i < raw.length; i++) {
      const c = raw[i] as string;
      if (c === '=' && /^[0-9A-Fa-f]{2}$/.test(raw.slice(i + 1, i + 3))) {
        out.push(Number.parseInt(raw.slice(i + 1, i + 3), 16));
        i += 2;
      } else {
        out.push(c.charCodeAt(0) & 0xff);
      }
    }
    bytes = Buffer.from(out);
  }
  try {
    return new TextDecoder(charset.toLowerCase(), { fatal: false }).decode(bytes);
  } catch {
    return null; // unknown charset
  }
}

export function decodeEncodedWords(value: string): string {
  if (!value.includes('=?')) return value;
  // Drop whitespace between adjacent encoded words first.
  const joined = value.replace(/(\?=)\s+(?==\?)/g, '$1');
  return joined.replace(
    WORD,
    (whole, charset: string, enc: string, text: string) => decodeOne(charset, enc, text) ?? whole,
  );
}
