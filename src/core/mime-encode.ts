// Encodings for message text we generate (vacation replies, edited subjects): RFC 2047 encoded
// words for header text, RFC 2045 §6.7 quoted-printable for bodies. Pure, linear in the input.

/** Header text as it may stand in a field: printable ASCII as it is, anything else as RFC 2047
 *  §4.1 "B" encoded words of UTF-8, one per folded line (joined by CRLF SP). RFC 2047 §2: a
 *  word is at most 75 characters and a line holding one at most 76: `used` is what the line
 *  already holds before the first word ("Subject: " is 9). */
export function encodedWords(text: string, used = 0): string {
  if (/^[\x20-\x7e]*$/.test(text)) return text;
  // A word of n octets is 12 + 4 * ceil(n / 3) characters; later lines start with one space.
  const octets = (lead: number) => 3 * Math.floor((Math.min(76 - lead, 75) - 12) / 4);
  const words: string[] = [];
  let chunk = '';
  let max = octets(used);
  for (const ch of text) {
    if (Buffer.byteLength(chunk + ch) > max && chunk !== '') {
      words.push(chunk);
      chunk = '';
      max = octets(1);
    }
    chunk += ch;
  }
  if (chunk) words.push(chunk);
  return words.map((w) => `=?UTF-8?B?${Buffer.from(w, 'utf8').toString('base64')}?=`).join('\r\n ');
}

/** RFC 2045 §6.7 quoted-printable of UTF-8 text whose lines end in CRLF (or LF, taken as CRLF):
 *  printable ASCII but "=" as it is (rule 2), space and tab kept but at a line's end (rule 3),
 *  everything else "=XX" (rule 1), soft line breaks keep lines at most 76 characters (rule 5). */
export function quotedPrintable(text: string): string {
  const out: string[] = [];
  for (const line of text.replace(/\r\n/g, '\n').split('\n')) {
    const bytes = Buffer.from(line, 'utf8');
    let cur = '';
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i] as number;
      const last = i === bytes.length - 1;
      const plain = (b >= 0x21 && b <= 0x7e && b !== 0x3d) || ((b === 0x20 || b === 0x09) && !last);
      const enc = plain ? String.fromCharCode(b) : `=${b.toString(16).toUpperCase().padStart(2, '0')}`;
      if (cur.length + enc.length > 75) {
        out.push(`${cur}=`);
        cur = '';
      }
      cur += enc;
    }
    out.push(cur);
  }
  return out.join('\r\n');
}
