// Modified UTF-7 mailbox names (RFC 3501 §5.1.3): printable ASCII stands for itself except "&",
// written "&-"; other characters are UTF-16, base64 with "," for "/", between "&" and "-".
// decode() is strict: it refuses what no conforming client sends (unterminated shifts, padding,
// shifted printable ASCII, odd bytes, unpaired surrogates), so a name has one spelling only.
// It lives in core because two layers speak it: IMAP on the wire, and the Maildir store, whose
// Maildir++ folder names on disk are modified UTF-7 as Dovecot writes them.

const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+,';

export function encodeMutf7(name: string): string {
  let out = '';
  let pending: number[] = [];
  const flush = () => {
    if (pending.length === 0) return;
    const bytes = Buffer.alloc(pending.length * 2);
    pending.forEach((u, i) => {
      bytes.writeUInt16BE(u, i * 2);
    });
    out += `&${bytes.toString('base64').replace(/=+$/, '').replace(/\//g, ',')}-`;
    pending = [];
  };
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c >= 0x20 && c <= 0x7e) {
      flush();
      out += c === 0x26 ? '&-' : name[i];
    } else {
      pending.push(c);
    }
  }
  flush();
  return out;
}

/** Decodes a modified UTF-7 name; null when it is not valid modified UTF-7. */
export function decodeMutf7(text: string): string | null {
  let out = '';
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c < 0x20 || c > 0x7e) return null;
    if (c !== 0x26) {
      out += text[i];
      continue;
    }
    const end = text.indexOf('-', i + 1);
    if (end < 0) return null;
    const b64 = text.slice(i + 1, end);
    i = end;
    if (b64 === '') {
      out += '&';
      continue;
    }
    if (![...b64].every((ch) => B64.includes(ch)) || b64.length % 4 === 1) return null;
    const bytes = Buffer.from(b64.replace(/,/g, '/'), 'base64');
    if (bytes.length % 2 !== 0 || bytes.length === 0) return null;
    let chunk = '';
    for (let k = 0; k < bytes.length; k += 2) chunk += String.fromCharCode(bytes.readUInt16BE(k));
    // Shifted runs hold only non-ASCII: printables are written directly, controls are never valid.
    if ([...chunk].some((ch) => (ch.codePointAt(0) as number) < 0x80) || !chunk.isWellFormed()) return null;
    // Unused base64 bits must be zero, else two spellings would name one mailbox.
    if (encodeMutf7(chunk) !== `&${b64}-`) return null;
    out += chunk;
  }
  return out;
}
