// Reading parts of a stored message for FETCH and SEARCH (RFC 9051 §6.4.5, §7.5.2): where the
// header ends, HEADER.FIELDS(.NOT) filtering, and the ENVELOPE structure. Messages are stored
// with CRLF line endings, so byte offsets in the file are the offsets IMAP talks about.

import addressparser from 'nodemailer/lib/addressparser';
import type { ByteReader } from '../store/mailboxes.ts';
import { nstr } from './wire/encode.ts';

const MAX_HEADER = 1024 * 1024;

/** Reads the header block (up to and including the empty line). */
export async function readHeader(fh: ByteReader, size: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let read = 0;
  const buf = Buffer.allocUnsafe(16 * 1024);
  while (read < Math.min(size, MAX_HEADER)) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, read);
    if (bytesRead === 0) break;
    chunks.push(Buffer.from(buf.subarray(0, bytesRead)));
    read += bytesRead;
    const all = Buffer.concat(chunks);
    const end = headerEnd(all);
    if (end >= 0) return all.subarray(0, end);
  }
  return Buffer.concat(chunks); // no body: the whole message is header
}

/** Offset just after the CRLF CRLF ending the header, or -1. A message starting with CRLF
 *  has an empty header. */
export function headerEnd(buf: Buffer): number {
  if (buf[0] === 0x0d && buf[1] === 0x0a) return 2;
  const i = buf.indexOf('\r\n\r\n');
  return i < 0 ? -1 : i + 4;
}

/** Header fields as [name, raw value] pairs, unfolded values, in order. */
export function headerFields(header: Buffer): [string, string][] {
  const out: [string, string][] = [];
  for (const line of header.toString('latin1').split(/\r\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    out.push([
      line.slice(0, colon).trim(),
      line
        .slice(colon + 1)
        .replace(/\r\n([ \t])/g, '$1')
        .trim(),
    ]);
  }
  return out;
}

/** HEADER.FIELDS / HEADER.FIELDS.NOT: the matching raw lines (folding kept) plus the blank line. */
export function filterHeader(header: Buffer, fields: readonly string[], not: boolean): Buffer {
  const wanted = new Set(fields.map((f) => f.toLowerCase()));
  const kept: string[] = [];
  for (const line of header.toString('latin1').split(/\r\n(?![ \t])/)) {
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    if (wanted.has(line.slice(0, colon).trim().toLowerCase()) !== not) kept.push(`${line}\r\n`);
  }
  return Buffer.from(`${kept.join('')}\r\n`, 'latin1');
}

/** ENVELOPE (RFC 9051 §7.5.2): date, subject, from, sender, reply-to, to, cc, bcc, in-reply-to,
 *  message-id. Values are as in the header (encoded words stay encoded); sender and reply-to
 *  default to from. */
export function envelope(header: Buffer): string {
  const fields = headerFields(header);
  const get = (name: string) => fields.find(([n]) => n.toLowerCase() === name)?.[1] ?? null;
  const utf8 = (s: string | null) => (s === null ? null : Buffer.from(s, 'latin1').toString('utf8'));
  const from = addresses(utf8(get('from')));
  const sender = addresses(utf8(get('sender')));
  const replyTo = addresses(utf8(get('reply-to')));
  return `(${[
    nstr(utf8(get('date'))),
    nstr(utf8(get('subject'))),
    from,
    sender === 'NIL' ? from : sender,
    replyTo === 'NIL' ? from : replyTo,
    addresses(utf8(get('to'))),
    addresses(utf8(get('cc'))),
    addresses(utf8(get('bcc'))),
    nstr(utf8(get('in-reply-to'))),
    nstr(utf8(get('message-id'))),
  ].join(' ')})`;
}

interface Parsed {
  name?: string;
  address?: string;
  group?: Parsed[];
}

/** An address list: ((name adl mailbox host) ...), groups as RFC 9051 §7.5.2 describes. */
function addresses(value: string | null): string {
  if (value === null || value.trim() === '') return 'NIL';
  const list = addressparser(value) as Parsed[];
  const routes = sourceRoutes(value);
  const out: string[] = [];
  const one = (a: Parsed) => {
    const addr = a.address ?? '';
    const at = addr.lastIndexOf('@');
    const mailbox = at < 0 ? addr : addr.slice(0, at);
    const host = at < 0 ? null : addr.slice(at + 1);
    const adl = routes.get(addr) ?? null;
    out.push(`(${nstr(a.name ? a.name : null)} ${nstr(adl)} ${nstr(mailbox === '' ? null : mailbox)} ${nstr(host)})`);
  };
  for (const a of list) {
    if (a.group) {
      out.push(`(NIL NIL ${nstr(a.name ?? '')} NIL)`);
      // A comment alone is no group member ("group: (foo) ;" is an empty group, RFC 5322 §3.4).
      for (const g of a.group) if (g.address) one(g);
      out.push('(NIL NIL NIL NIL)');
    } else {
      one(a);
    }
  }
  return out.length === 0 ? 'NIL' : `(${out.join('')})`;
}

/** Source routes (RFC 5322 §4.4 obs-route, `<@route,@other:user@host>`), by the address they
 *  precede: the ENVELOPE's at-domain-list (RFC 9051 §7.5.2 addr-adl), which the address parser
 *  drops. Linear: one pass over the value, no backtracking pattern. */
function sourceRoutes(value: string): Map<string, string> {
  const routes = new Map<string, string>();
  // Each search starts after the last ">", so every character is looked at a bounded number of times.
  for (let i = value.indexOf('<@'); i >= 0 && routes.size < 100; ) {
    const close = value.indexOf('>', i);
    if (close < 0) break;
    const inner = value.slice(i + 1, close);
    const colon = inner.indexOf(':');
    const address = inner.slice(colon + 1).trim();
    if (colon > 1 && address) routes.set(address, inner.slice(0, colon).replace(/\s+/g, ''));
    i = value.indexOf('<@', close);
  }
  return routes;
}
