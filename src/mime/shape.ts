// Whether bytes are an RFC 5322 message at all (JMAP Email/import and Email/parse, RFC 8621 §4.8
// "invalidEmail", §4.9 "notParsable"). Narrow on purpose: real mail with defects (bare LF, 8-bit
// headers, a missing Date or From, broken MIME, a long line) is a message and is taken; what is
// refused is what no reader could take for one:
// - nothing at all (0 octets);
// - a first line that is not a header field: RFC 5322 §2.2 field-name (printable US-ASCII but
//   ":", §3.6.8 ftext) then ":" (obs-fields, §4.5, may have white space before the colon);
//   so a text file, an mbox "From " line, a body with no header block are not messages;
// - a NUL octet in the header block (RFC 5322 §2.2 and §4 allow none there: a binary file).
// Pure.

/** Why `bytes` are no RFC 5322 message, or null when they are one (possibly a defective one). */
export function notAMessage(bytes: Buffer): string | null {
  if (bytes.length === 0) return 'the blob is empty';
  const lf = bytes.indexOf(0x0a);
  const first = bytes.subarray(0, lf < 0 ? bytes.length : lf).toString('latin1');
  if (!/^[\x21-\x39\x3b-\x7e]+[ \t]*:/.test(first)) return 'the first line is not a header field (RFC 5322 §2.2)';
  const end = headerEnd(bytes);
  if (bytes.subarray(0, end).includes(0)) return 'the header block has a NUL octet';
  return null;
}

/** The offset of the empty line ending the header block (LF or CRLF line ends), or the length. */
function headerEnd(bytes: Buffer): number {
  for (let i = bytes.indexOf(0x0a); i >= 0 && i + 1 < bytes.length; i = bytes.indexOf(0x0a, i + 1)) {
    const next = bytes[i + 1];
    if (next === 0x0a || (next === 0x0d && bytes[i + 2] === 0x0a)) return i;
  }
  return bytes.length;
}
