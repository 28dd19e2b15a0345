// The searchable text of a message body (RFC 9051 §6.4.4 BODY/TEXT): every text/* part decoded
// from its Content-Transfer-Encoding (base64, quoted-printable) and charset, plus the decoded
// headers of encapsulated messages. Non-text parts (images, attachments) are not searched.
// Bounded: at most 4 MiB of decoded text per message (or `opts.maxChars`). With `opts.html`,
// text/html parts are turned into text (html-text.ts), as the search index wants them.

import { decodeEncodedWords } from '../core/encoded-words.ts';
import { decodeCharset, decodeTransfer } from './decode.ts';
import { htmlToText } from './html-text.ts';
import { type ByteReader, headerValue, type MimePart } from './structure.ts';

const MAX_TEXT_DEFAULT = 4 * 1024 * 1024;

export async function bodyText(
  fh: ByteReader,
  root: MimePart,
  opts: { readonly maxChars?: number; readonly html?: boolean } = {},
): Promise<string> {
  const MAX_TEXT = opts.maxChars ?? MAX_TEXT_DEFAULT;
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
    const charset = p.params.find(([k]) => k.toLowerCase() === 'charset')?.[1] ?? null;
    const decoded = decodeCharset(
      decodeTransfer(raw, headerValue(p.header, 'content-transfer-encoding')).bytes,
      charset,
    ).text;
    const text = (opts.html && p.subtype === 'html' ? htmlToText(decoded) : decoded).slice(0, MAX_TEXT - total);
    total += text.length;
    out.push(text);
  };
  await visit(root);
  return out.join('\n');
}
