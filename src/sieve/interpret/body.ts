// The texts the `body` test compares (RFC 5173 §5): :raw the undecoded body, :content the
// decoded parts of the given content types, :text (the default) the text parts. Bounded: at most
// LIMITS.sieve.maxBodyBytes of the message, LIMITS.sieve.maxMimeParts parts, maxMimeDepth
// levels of multipart.

import { LIMITS } from '../../core/limits.ts';
import { htmlToText } from '../../mime/html-text.ts';
import { parseHeaderBlock } from './message.ts';

export { htmlToText } from '../../mime/html-text.ts';

interface Part {
  readonly type: string; // "text/plain", lower-case
  readonly params: ReadonlyMap<string, string>;
  readonly encoding: string;
  readonly body: Buffer;
}

function headerEnd(b: Buffer): { head: Buffer; body: Buffer } {
  if (b.length > 0 && (b[0] === 0x0a || (b[0] === 0x0d && b[1] === 0x0a)))
    return { head: Buffer.alloc(0), body: b.subarray(b[0] === 0x0a ? 1 : 2) };
  const crlf = b.indexOf('\r\n\r\n');
  const lf = b.indexOf('\n\n');
  if (crlf >= 0 && (lf < 0 || crlf < lf)) return { head: b.subarray(0, crlf + 2), body: b.subarray(crlf + 4) };
  if (lf >= 0) return { head: b.subarray(0, lf + 1), body: b.subarray(lf + 2) };
  return { head: b, body: Buffer.alloc(0) };
}

/** RFC 2045 §5.1 Content-Type: type/subtype; parameters (quoted values unquoted). */
function contentType(value: string | undefined, dflt: string): { type: string; params: Map<string, string> } {
  const params = new Map<string, string>();
  if (value === undefined) return { type: dflt, params };
  const parts: string[] = [];
  let cur = '';
  let quoted = false;
  for (const ch of value) {
    if (ch === '"') quoted = !quoted;
    else if (ch === ';' && !quoted) {
      parts.push(cur);
      cur = '';
      continue;
    }
    cur += ch;
  }
  parts.push(cur);
  const type = (parts[0] ?? '').trim().toLowerCase();
  for (const p of parts.slice(1)) {
    const eq = p.indexOf('=');
    if (eq < 0) continue;
    let v = p.slice(eq + 1).trim();
    if (v.startsWith('"') && v.endsWith('"') && v.length >= 2) v = v.slice(1, -1);
    params.set(p.slice(0, eq).trim().toLowerCase(), v);
  }
  return { type: type.includes('/') ? type : dflt, params };
}

/** The leaf parts of a MIME entity, depth first (RFC 2046 §5.1). */
function leaves(entity: Buffer, dflt: string, depth: number, out: Part[]): void {
  if (out.length >= LIMITS.sieve.maxMimeParts) return;
  const { head, body } = headerEnd(entity);
  const fields = parseHeaderBlock(head);
  const get = (n: string): string | undefined => fields.find((f) => f.name.toLowerCase() === n)?.value;
  const ct = contentType(get('content-type'), dflt);
  const encoding = (get('content-transfer-encoding') ?? '7bit').trim().toLowerCase();
  const boundary = ct.params.get('boundary');
  if (ct.type.startsWith('multipart/') && boundary !== undefined && depth < LIMITS.sieve.maxMimeDepth) {
    const childDefault = ct.type === 'multipart/digest' ? 'message/rfc822' : 'text/plain';
    for (const child of splitMultipart(body, boundary)) leaves(child, childDefault, depth + 1, out);
    return;
  }
  if (ct.type === 'message/rfc822' && depth < LIMITS.sieve.maxMimeDepth) {
    leaves(body, 'text/plain', depth + 1, out);
    return;
  }
  out.push({ type: ct.type, params: ct.params, encoding, body });
}

function splitMultipart(body: Buffer, boundary: string): Buffer[] {
  const delim = Buffer.from(`--${boundary}`);
  const parts: Buffer[] = [];
  let start = -1;
  let i = 0;
  while (i <= body.length) {
    const at = body.indexOf(delim, i);
    if (at < 0) break;
    const lineStart = at === 0 || body[at - 1] === 0x0a;
    if (!lineStart) {
      i = at + delim.length;
      continue;
    }
    if (start >= 0) {
      let end = at;
      if (body[end - 1] === 0x0a) end--;
      if (body[end - 1] === 0x0d) end--;
      parts.push(body.subarray(start, Math.max(start, end)));
      if (parts.length >= LIMITS.sieve.maxMimeParts) break;
    }
    const after = at + delim.length;
    if (body[after] === 0x2d && body[after + 1] === 0x2d) break; // the close delimiter
    const nl = body.indexOf(0x0a, after);
    if (nl < 0) break;
    start = nl + 1;
    i = start;
  }
  return parts;
}

function decodeTransfer(body: Buffer, encoding: string): Buffer {
  if (encoding === 'base64') return Buffer.from(body.toString('latin1').replace(/[^A-Za-z0-9+/]/g, ''), 'base64');
  if (encoding !== 'quoted-printable') return body;
  const out = Buffer.alloc(body.length);
  let n = 0;
  for (let i = 0; i < body.length; i++) {
    const c = body[i] as number;
    if (c !== 0x3d) {
      out[n++] = c;
      continue;
    }
    const h = body.subarray(i + 1, i + 3).toString('latin1');
    if (/^[0-9A-Fa-f]{2}$/.test(h)) {
      out[n++] = Number.parseInt(h, 16);
      i += 2;
    } else if (body[i + 1] === 0x0d && body[i + 2] === 0x0a)
      i += 2; // soft line break
    else if (body[i + 1] === 0x0a) i += 1;
    else out[n++] = c;
  }
  return out.subarray(0, n);
}

function toText(bytes: Buffer, charset: string | undefined): string {
  try {
    return new TextDecoder((charset ?? 'us-ascii').toLowerCase(), { fatal: false }).decode(bytes);
  } catch {
    return bytes.toString('utf8');
  }
}

/** RFC 5173 §5.2: a content type key matches a part when it names its type ("text"), its
 *  type/subtype ("text/plain"), or is empty (every part). */
function typeMatches(key: string, type: string): boolean {
  const k = key.toLowerCase().trim();
  if (k === '') return true;
  return k.includes('/') ? k === type : k === type.slice(0, type.indexOf('/'));
}

/** The texts to compare for one body test. `message` is the first LIMITS.sieve.maxBodyBytes
 *  octets of the message. */
export function bodyTexts(message: Buffer, transform: 'raw' | 'text' | 'content', types: readonly string[]): string[] {
  const { body } = headerEnd(message);
  if (transform === 'raw') return [body.toString('utf8')];
  const parts: Part[] = [];
  leaves(message, 'text/plain', 0, parts);
  const keys = transform === 'text' ? ['text'] : types;
  const out: string[] = [];
  for (const p of parts) {
    if (!keys.some((k) => typeMatches(k, p.type))) continue;
    const text = toText(decodeTransfer(p.body, p.encoding), p.params.get('charset'));
    out.push(transform === 'text' && p.type === 'text/html' ? htmlToText(text) : text);
  }
  return out;
}
