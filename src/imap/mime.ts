// BODYSTRUCTURE and BODY (RFC 9051 §7.5.2) from the MIME structure that mime/structure.ts parses.

import { headerValue, type MimePart, parseParams } from '../mime/structure.ts';
import { envelope } from './message.ts';
import { nstr, str } from './wire/encode.ts';

const upper = (s: string) => str(s.toUpperCase());

function paramList(params: readonly [string, string][]): string {
  return params.length === 0 ? 'NIL' : `(${params.map(([k, v]) => `${str(k.toUpperCase())} ${str(v)}`).join(' ')})`;
}

function disposition(h: Buffer): string {
  const v = headerValue(h, 'content-disposition');
  if (!v) return 'NIL';
  const m = /^\s*([^\s;]+)(.*)$/s.exec(v);
  return `(${upper(m?.[1] ?? 'attachment')} ${paramList(parseParams(m?.[2] ?? ''))})`;
}

function utf8(h: Buffer, name: string): string | null {
  const v = headerValue(h, name);
  return v === null ? null : Buffer.from(v, 'latin1').toString('utf8');
}

/** BODYSTRUCTURE (extensible) or BODY (RFC 9051 §7.5.2). */
export function bodyStructure(p: MimePart, extensible: boolean): string {
  const h = p.header;
  if (p.type === 'multipart' && p.parts.length > 0) {
    const kids = p.parts.map((c) => bodyStructure(c, extensible)).join('');
    const ext = extensible
      ? ` ${paramList(p.params)} ${disposition(h)} ${nstr(headerValue(h, 'content-language'))} ${nstr(headerValue(h, 'content-location'))}`
      : '';
    return `(${kids} ${upper(p.subtype)}${ext})`;
  }
  const size = Math.max(0, p.bodyEnd - p.bodyStart);
  const enc = (headerValue(h, 'content-transfer-encoding') ?? '7BIT').toUpperCase();
  let out = `(${upper(p.type)} ${upper(p.subtype)} ${paramList(p.params)} ${nstr(headerValue(h, 'content-id'))} ${nstr(utf8(h, 'content-description'))} ${str(enc)} ${size}`;
  if (p.type === 'message' && p.subtype === 'rfc822' && p.message) {
    out += ` ${envelope(p.message.header)} ${bodyStructure(p.message, extensible)} ${p.lines}`;
  } else if (p.type === 'text') {
    out += ` ${p.lines}`;
  }
  if (extensible) {
    out += ` ${nstr(headerValue(h, 'content-md5'))} ${disposition(h)} ${nstr(headerValue(h, 'content-language'))} ${nstr(headerValue(h, 'content-location'))}`;
  }
  return `${out})`;
}
