// An RFC 5322 message from a JMAP Email create object (RFC 8621 §4.6 Email/set create, and the
// messages Email/import's callers build): the header properties, then the body from
// bodyStructure, or from textBody / htmlBody / attachments, with the text of bodyValues and the
// bytes of blobs. Checks the §4.6 rules (BuildError → invalidProperties / blobNotFound), adds
// MIME-Version, and Date and Message-ID when missing; picks each part's Content-Transfer-Encoding
// (7bit for short ASCII lines, quoted-printable for mostly-ASCII text or long lines, base64
// otherwise; message/* never base64, RFC 2046 §5.2.1). Bounded by LIMITS.jmapMail.

import { randomBytes } from 'node:crypto';
import { LIMITS } from '../../core/limits.ts';
import { quotedPrintable } from '../../core/mime-encode.ts';
import { BuildError, formatField } from './build-headers.ts';
import { formAllowed, type HeaderForm, type HeaderProperty, parseHeaderProperty } from './header-forms.ts';
import { CONVENIENCE } from './headers.ts';

export { BuildError } from './build-headers.ts';

export interface BuildOptions {
  /** Bytes of an uploaded blob, or null when there is none. */
  readonly blob: (blobId: string) => Promise<Buffer | null>;
  /** The Date when the client gave none (and sentAt is absent). */
  readonly now?: Date;
  /** Right-hand side of a generated Message-ID. */
  readonly messageIdDomain: string;
}

type Json = Record<string, unknown>;

interface Field {
  readonly name: string;
  readonly raw: string; // value with its leading space, folding CRLF SP
}

/** Header properties of an object (the Email, or a body part): their fields, in order. The
 *  §4.6 rules: no `headers`, one property per field, forms allowed for the field. */
function headerFields(obj: Json, where: string, topLevel: boolean): Field[] {
  const out: Field[] = [];
  const seen = new Set<string>();
  const prop = (p: string) => (where === '' ? p : `${where}/${p}`);
  for (const [key, value] of Object.entries(obj)) {
    let hp: HeaderProperty | null = null;
    if (key === 'headers') throw new BuildError('invalidProperties', [prop(key)], 'set header fields one by one');
    if (topLevel && key in CONVENIENCE) hp = CONVENIENCE[key] ?? null;
    else if (key.startsWith('header:')) {
      hp = parseHeaderProperty(key);
      if (!hp) throw new BuildError('invalidProperties', [prop(key)], 'malformed header property or form');
    }
    if (!hp || value === null || value === undefined) continue;
    const lower = hp.name.toLowerCase();
    if (seen.has(lower)) throw new BuildError('invalidProperties', [prop(key)], 'two properties for one header field');
    seen.add(lower);
    if (topLevel && lower.startsWith('content-'))
      throw new BuildError('invalidProperties', [prop(key)], 'Content-* fields belong on body parts');
    if (!topLevel && lower === 'content-transfer-encoding')
      throw new BuildError('invalidProperties', [prop(key)], 'the server chooses Content-Transfer-Encoding');
    if (!formAllowed(hp.name, hp.form)) throw new BuildError('invalidProperties', [prop(key)], 'form not allowed');
    const values = hp.all ? value : [value];
    if (!Array.isArray(values)) throw new BuildError('invalidProperties', [prop(key)], ':all takes a list');
    for (const v of values) {
      const raw = formatField(hp.name, hp.form as HeaderForm, v, prop(key));
      // RFC 5322 §2.1.1: no line over 998 octets (a raw value, an address no fold can split).
      if (`${hp.name}:${raw}`.split('\r\n').some((l) => Buffer.byteLength(l) > 998))
        throw new BuildError('invalidProperties', [prop(key)], 'a header line over 998 octets');
      out.push({ name: hp.name, raw });
    }
  }
  return out;
}

interface BuiltPart {
  readonly headers: Field[];
  readonly body: Buffer;
}

interface Context {
  readonly opts: BuildOptions;
  readonly bodyValues: Json;
  parts: number;
  bytes: number;
}

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);

function boundary(): string {
  // "=_" cannot occur in base64 or quoted-printable output; 144 random bits in a 7bit part: no.
  return `=_${randomBytes(18).toString('base64url')}`;
}

/** RFC 2045 §5.1 parameter, RFC 2231 §3-§4 when the value is not printable ASCII or long. */
function param(name: string, value: string): string {
  if (/^[\x20-\x7e]*$/.test(value) && value.length <= 60) return `; ${name}="${value.replace(/(["\\])/g, '\\$1')}"`;
  const enc = encodeURIComponent(value).replace(/['()*!]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  if (enc.length <= 60) return `; ${name}*=utf-8''${enc}`;
  const pieces: string[] = [];
  for (let i = 0; i < enc.length; ) {
    let end = Math.min(enc.length, i + 60);
    while (end < enc.length && end > i && (enc[end - 1] === '%' || enc[end - 2] === '%')) end--; // keep %XX whole
    pieces.push(enc.slice(i, end));
    i = end;
  }
  return pieces.map((p, i) => `;\r\n ${name}*${i}*=${i === 0 ? "utf-8''" : ''}${p}`).join('');
}

/** Printable ASCII (and tab) in CRLF lines of at most `max` octets: 7bit (RFC 2045 §2.7). */
function asciiShortLines(b: Buffer, max: number): boolean {
  let line = 0;
  for (let i = 0; i < b.length; i++) {
    const c = b[i] as number;
    if (c === 0x0d && b[i + 1] === 0x0a) {
      line = 0;
      i++;
    } else if (c > 0x7e || (c < 0x20 && c !== 0x09) || ++line > max) return false;
  }
  return true;
}

const crlf = (text: string) => text.replace(/\r?\n|\r/g, '\r\n');

/** Body and transfer encoding of one leaf. */
function encodeLeaf(type: string, data: Buffer, text: boolean): { cte: string; body: Buffer } {
  if (asciiShortLines(data, 78)) return { cte: '7bit', body: data };
  if (type.startsWith('message/') || type.startsWith('multipart/'))
    return { cte: asciiShortLines(data, 998) ? '7bit' : '8bit', body: data };
  if (text) {
    let high = 0;
    for (const c of data) if (c > 0x7e) high++;
    if (high * 3 < data.length)
      return { cte: 'quoted-printable', body: Buffer.from(quotedPrintable(data.toString('utf8'))) };
  }
  const b64 = data.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 76) lines.push(b64.slice(i, i + 76));
  return { cte: 'base64', body: Buffer.from(lines.join('\r\n')) };
}

async function buildPart(part: unknown, where: string, depth: number, ctx: Context): Promise<BuiltPart> {
  if (!isObject(part)) throw new BuildError('invalidProperties', [where], 'a body part object is expected');
  if (++ctx.parts > LIMITS.jmapMail.maxBuiltParts || depth > LIMITS.jmapMail.maxBuiltDepth)
    throw new BuildError('tooLarge', [where], 'too many body parts or too deep');
  const fields = headerFields(part, where, false);
  const type = typeof part.type === 'string' ? part.type.toLowerCase().trim() : null;
  if (part.type !== undefined && (type === null || !/^[!#$%&'*+.^_`|~0-9a-z-]+\/[!#$%&'*+.^_`|~0-9a-z-]+$/.test(type)))
    throw new BuildError('invalidProperties', [`${where}/type`], 'not a media type');
  const str = (k: string): string | null => {
    const v = part[k];
    if (v === undefined || v === null) return null;
    if (typeof v !== 'string' || /[\r\n]/.test(v))
      throw new BuildError('invalidProperties', [`${where}/${k}`], `${k}: a one-line string is expected`);
    return v;
  };
  const name = str('name');
  const disposition = str('disposition');
  const cid = str('cid');
  const location = str('location');
  const language = part.language;
  if (
    language !== undefined &&
    language !== null &&
    !(Array.isArray(language) && language.every((l) => typeof l === 'string' && /^[A-Za-z0-9-]+$/.test(l)))
  )
    throw new BuildError('invalidProperties', [`${where}/language`], 'language tags are expected');
  const hasContentType = fields.some((f) => f.name.toLowerCase() === 'content-type');

  let ctype: string;
  let body: Buffer;
  let cte: string | null = null;
  if (Array.isArray(part.subParts)) {
    if (part.partId !== undefined || part.blobId !== undefined)
      throw new BuildError('invalidProperties', [where], 'a multipart has no partId or blobId');
    ctype = type ?? 'multipart/mixed';
    if (!ctype.startsWith('multipart/'))
      throw new BuildError('invalidProperties', [`${where}/type`], 'subParts need a multipart type');
    const kids: BuiltPart[] = [];
    for (const [i, c] of part.subParts.entries())
      kids.push(await buildPart(c, `${where}/subParts/${i}`, depth + 1, ctx));
    const b = boundary();
    ctype += `; boundary="${b}"`;
    body = joinParts(kids, b);
  } else if (typeof part.partId === 'string') {
    if (part.blobId !== undefined)
      throw new BuildError('invalidProperties', [where], 'partId and blobId exclude each other');
    if (part.charset !== undefined && part.charset !== null && String(part.charset).toLowerCase() !== 'utf-8')
      throw new BuildError('invalidProperties', [`${where}/charset`], 'body values are UTF-8');
    const bv = ctx.bodyValues[part.partId];
    if (!isObject(bv) || typeof bv.value !== 'string' || bv.isEncodingProblem === true || bv.isTruncated === true)
      throw new BuildError('invalidProperties', [`${where}/partId`], 'no usable body value for this partId');
    const t = type ?? 'text/plain';
    if (!t.startsWith('text/')) throw new BuildError('invalidProperties', [`${where}/type`], 'a body value is text');
    ctype = `${t}; charset=utf-8`;
    const enc = encodeLeaf(t, Buffer.from(crlf(bv.value), 'utf8'), true);
    ({ cte, body } = enc);
  } else if (typeof part.blobId === 'string') {
    const data = await ctx.opts.blob(part.blobId);
    if (!data) throw new BuildError('blobNotFound', [`${where}/blobId`], 'no such blob', [part.blobId]);
    const t = type ?? 'application/octet-stream';
    const charset = str('charset');
    ctype = t + (charset ? `; charset="${charset.replace(/["\\]/g, '')}"` : '');
    ({ cte, body } = encodeLeaf(t, data, false));
  } else {
    throw new BuildError('invalidProperties', [where], 'a body part needs subParts, a partId or a blobId');
  }
  if (name !== null && !hasContentType) ctype += param('name', name);
  const own: Field[] = [];
  if (!hasContentType) own.push({ name: 'Content-Type', raw: ` ${ctype}` });
  if (cte) own.push({ name: 'Content-Transfer-Encoding', raw: ` ${cte}` });
  if (disposition !== null || (name !== null && !Array.isArray(part.subParts))) {
    const d = (disposition ?? 'attachment').toLowerCase();
    if (!/^[a-z0-9-]+$/.test(d))
      throw new BuildError('invalidProperties', [`${where}/disposition`], 'not a disposition');
    own.push({ name: 'Content-Disposition', raw: ` ${d}${name !== null ? param('filename', name) : ''}` });
  }
  if (cid !== null) own.push({ name: 'Content-ID', raw: ` <${cid.replace(/^<|>$/g, '')}>` });
  if (Array.isArray(language) && language.length > 0)
    own.push({ name: 'Content-Language', raw: ` ${language.join(', ')}` });
  if (location !== null) own.push({ name: 'Content-Location', raw: ` ${location}` });
  // RFC 8621 §4.6: no two properties for one field (type and header:Content-Type, cid and
  // header:Content-ID ...); a multipart's Content-Type carries our boundary.
  if (hasContentType && (Array.isArray(part.subParts) || part.type !== undefined))
    throw new BuildError('invalidProperties', [`${where}/header:Content-Type`], 'Content-Type is given twice');
  const given = new Set(fields.map((f) => f.name.toLowerCase()));
  const twice = own.find((f) => given.has(f.name.toLowerCase()));
  if (twice) throw new BuildError('invalidProperties', [where], `${twice.name} is given twice`);
  ctx.bytes += body.length;
  if (ctx.bytes > LIMITS.jmapMail.maxBuiltMessageBytes)
    throw new BuildError('tooLarge', [where], 'the message is too large');
  return { headers: [...own, ...fields], body };
}

function joinParts(kids: readonly BuiltPart[], b: string): Buffer {
  const chunks: Buffer[] = [];
  for (const k of kids) {
    chunks.push(Buffer.from(`--${b}\r\n${headerText(k.headers)}\r\n`), k.body, Buffer.from('\r\n'));
  }
  chunks.push(Buffer.from(`--${b}--\r\n`));
  return Buffer.concat(chunks);
}

function headerText(fields: readonly Field[]): string {
  return fields.map((f) => `${f.name}:${f.raw}\r\n`).join('');
}

/** RFC 8621 §4.6: textBody (one text/plain), htmlBody (one text/html) and attachments as a
 *  bodyStructure: alternative for both bodies, related for inline attachments with a Content-ID
 *  next to the HTML, mixed for the other attachments. */
function structureFrom(email: Json): Json {
  const one = (key: 'textBody' | 'htmlBody', type: string): Json | null => {
    const v = email[key];
    if (v === undefined || v === null) return null;
    if (!Array.isArray(v) || v.length !== 1 || !isObject(v[0]))
      throw new BuildError('invalidProperties', [key], `${key} holds exactly one part`);
    const p = v[0];
    if (p.type !== undefined && String(p.type).toLowerCase() !== type)
      throw new BuildError('invalidProperties', [`${key}/0/type`], `${key} is ${type}`);
    return { ...p, type };
  };
  const text = one('textBody', 'text/plain');
  let html = one('htmlBody', 'text/html');
  const atts = email.attachments ?? [];
  if (!Array.isArray(atts)) throw new BuildError('invalidProperties', ['attachments'], 'a list is expected');
  const inline = html ? atts.filter((a) => isObject(a) && a.disposition === 'inline' && typeof a.cid === 'string') : [];
  const others = atts.filter((a) => !inline.includes(a));
  if (html && inline.length > 0) html = { type: 'multipart/related', subParts: [html, ...inline] };
  let body: Json | null = text && html ? { type: 'multipart/alternative', subParts: [text, html] } : (text ?? html);
  if (others.length > 0) body = { type: 'multipart/mixed', subParts: body ? [body, ...others] : others };
  return body ?? { type: 'text/plain', partId: '\0empty' };
}

/** The message bytes of a create object. Throws BuildError. */
export async function buildMessage(email: unknown, opts: BuildOptions): Promise<Buffer> {
  if (!isObject(email)) throw new BuildError('invalidProperties', [], 'an Email object is expected');
  const bodyValues = email.bodyValues ?? {};
  if (!isObject(bodyValues)) throw new BuildError('invalidProperties', ['bodyValues'], 'an object is expected');
  const hasLists = ['textBody', 'htmlBody', 'attachments'].some((k) => email[k] !== undefined);
  if (email.bodyStructure !== undefined && hasLists)
    throw new BuildError(
      'invalidProperties',
      ['bodyStructure'],
      'bodyStructure excludes textBody, htmlBody and attachments',
    );
  const top = headerFields(email, '', true);
  const structure = email.bodyStructure !== undefined ? email.bodyStructure : structureFrom(email);
  if (isObject(structure)) {
    const topNames = new Set(top.map((f) => f.name.toLowerCase()));
    for (const key of Object.keys(structure)) {
      const hp = key.startsWith('header:') ? parseHeaderProperty(key) : null;
      if (hp && topNames.has(hp.name.toLowerCase()))
        throw new BuildError('invalidProperties', [`bodyStructure/${key}`], 'a field the Email already sets');
    }
  }
  const ctx: Context = { opts, bodyValues: { ...bodyValues, '\0empty': { value: '' } }, parts: 0, bytes: 0 };
  const root = await buildPart(structure, email.bodyStructure !== undefined ? 'bodyStructure' : 'body', 0, ctx);
  const names = new Set(top.map((f) => f.name.toLowerCase()));
  const extra: Field[] = [];
  if (!names.has('date')) extra.push({ name: 'Date', raw: ` ${rfc5322Now(opts.now ?? new Date())}` });
  if (!names.has('message-id'))
    extra.push({ name: 'Message-ID', raw: ` <${randomBytes(12).toString('base64url')}@${opts.messageIdDomain}>` });
  if (!names.has('mime-version')) extra.push({ name: 'MIME-Version', raw: ' 1.0' });
  const head = headerText([...top, ...extra, ...root.headers]);
  return Buffer.concat([Buffer.from(`${head}\r\n`, 'utf8'), root.body]);
}

function rfc5322Now(d: Date): string {
  return d
    .toUTCString()
    .replace(/GMT$/, '+0000')
    .replace(/^(\w+), (\d) /, '$1, 0$2 ');
}
