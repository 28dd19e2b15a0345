// Header fields of a message JMAP creates (RFC 8621 §4.6 Email/set, §4.8 Email/import of a
// create): each header property's value written back in its form (the reverse of
// header-forms.ts), folded at 78 characters where the syntax allows (RFC 5322 §2.1.1), non-ASCII
// text in RFC 2047 encoded words; addresses may hold UTF-8 (RFC 6532). Values come from a
// client: every shape is checked, a bad one is an error naming the property.

import { encodedWords } from '../../core/mime-encode.ts';
import type { HeaderForm } from './header-forms.ts';

/** Why a create object cannot be built: the SetError type (RFC 8620 §5.3, RFC 8621 §4.6) and
 *  the properties (or blob ids) at fault. */
export class BuildError extends Error {
  readonly type: 'invalidProperties' | 'blobNotFound' | 'tooLarge';
  readonly properties: readonly string[];
  readonly notFound: readonly string[];
  constructor(
    type: BuildError['type'],
    properties: readonly string[],
    description: string,
    notFound: readonly string[] = [],
  ) {
    super(description);
    this.type = type;
    this.properties = properties;
    this.notFound = notFound;
  }
}

const FOLD = 78;
// biome-ignore lint/suspicious/noControlCharactersInRegex: refusing control characters is the point
const CONTROLS = /[\x00-\x08\x0a-\x1f\x7f]/;

/** Tokens joined by `sep` (", " or " "), a line break before a token that would pass 78
 *  characters (a token itself is never broken). */
function fold(name: string, tokens: readonly string[], sep: string): string {
  let out = '';
  let line = name.length + 1; // "Name:"
  tokens.forEach((t, i) => {
    if (i > 0) {
      out += sep.trimEnd();
      line += sep.trimEnd().length;
    }
    const first = t.indexOf('\n') < 0 ? t.length : t.indexOf('\n');
    if (i > 0 && line + 1 + first > FOLD) {
      out += '\r\n ';
      line = 1;
    } else {
      out += ' ';
      line += 1;
    }
    out += t;
    line = t.includes('\n') ? t.length - t.lastIndexOf('\n') - 1 : line + t.length;
  });
  return out;
}

function str(value: unknown, prop: string): string {
  if (typeof value !== 'string') throw new BuildError('invalidProperties', [prop], `${prop}: a string is expected`);
  if (CONTROLS.test(value.replace(/\t/g, ' ')))
    throw new BuildError('invalidProperties', [prop], `${prop}: control characters are not allowed`);
  return value;
}

function strings(value: unknown, prop: string): string[] {
  if (!Array.isArray(value) || value.length === 0)
    throw new BuildError('invalidProperties', [prop], `${prop}: a non-empty list of strings is expected`);
  return value.map((v) => str(v, prop));
}

/** Unstructured text (RFC 5322 §3.2.5): printable ASCII folded at spaces, anything else RFC 2047
 *  encoded words. */
export function textValue(name: string, text: string): string {
  if (!/^[\x20-\x7e]*$/.test(text)) return ` ${encodedWords(text, name.length + 2)}`;
  const words = text.split(' ');
  // A word that no fold can shorten (RFC 5322 §2.1.1: 998 octets a line) goes in encoded words.
  if (words.some((w) => w.length > 900)) {
    const pieces: string[] = [];
    for (let i = 0; i < text.length; i += 45)
      pieces.push(`=?UTF-8?B?${Buffer.from(text.slice(i, i + 45)).toString('base64')}?=`);
    return ` ${pieces.join('\r\n ')}`;
  }
  return fold(name, words, ' ');
}

/** A phrase (display name): an atom run as it is, printable ASCII else as a quoted string,
 *  non-ASCII as encoded words (RFC 2047 §5 (3)). */
function phrase(name: string): string {
  if (/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~ -]+$/.test(name) && !/^ | $| {2}/.test(name)) return name;
  if (/^[\x20-\x7e]*$/.test(name)) return `"${name.replace(/(["\\])/g, '\\$1')}"`;
  return encodedWords(name, 0).replace(/\r\n /g, ' ');
}

function mailbox(value: unknown, prop: string): string {
  const a = value as { name?: unknown; email?: unknown } | null;
  if (typeof a !== 'object' || a === null)
    throw new BuildError('invalidProperties', [prop], `${prop}: EmailAddress objects are expected`);
  const email = str(a.email, prop).trim();
  if (!/^[^\s<>(),;:"@]+@[^\s<>(),;:"@]+$/.test(email) && !/^"[^"\\\r\n]*"@[^\s<>(),;:"@]+$/.test(email))
    throw new BuildError('invalidProperties', [prop], `${prop}: not an email address: ${email.slice(0, 100)}`);
  const name = a.name === null || a.name === undefined ? '' : str(a.name, prop).trim();
  return name === '' ? email : `${phrase(name)} <${email}>`;
}

function addresses(value: unknown, prop: string): string[] {
  if (!Array.isArray(value)) throw new BuildError('invalidProperties', [prop], `${prop}: a list is expected`);
  return value.map((a) => mailbox(a, prop));
}

/** RFC 3339 date with offset (JMAP Date) to RFC 5322 §3.3 date-time in the same offset. */
export function rfc5322Date(value: string, prop: string): string {
  const m = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$/i.exec(value);
  const bad = () => new BuildError('invalidProperties', [prop], `${prop}: not an RFC 3339 date`);
  if (!m) throw bad();
  const [y, mo, d, h, mi, s] = [m[1], m[2], m[3], m[4], m[5], m[6]].map(Number) as number[];
  const date = new Date(Date.UTC(y as number, (mo as number) - 1, d, h, mi, s));
  if (date.getUTCDate() !== d || (h as number) > 23 || (mi as number) > 59 || (s as number) > 60) throw bad();
  const zone = (m[7] ?? 'Z').toUpperCase() === 'Z' ? '+0000' : (m[7] ?? '').replace(':', '');
  const day = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'][date.getUTCDay()];
  const mon = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'][date.getUTCMonth()];
  return `${day}, ${String(d).padStart(2, '0')} ${mon} ${y} ${m[4]}:${m[5]}:${m[6]} ${zone}`;
}

/** The raw value (with its leading space) of one header field of `form`, from a client value. */
export function formatField(name: string, form: HeaderForm, value: unknown, prop: string): string {
  switch (form) {
    case 'Raw': {
      const raw = typeof value === 'string' ? value : '';
      // Folding is kept, but no line break may start another field or end the header.
      if (typeof value !== 'string' || /\r?\n(?![ \t])|\r(?!\n)/.test(raw) || raw.includes('\0'))
        throw new BuildError('invalidProperties', [prop], `${prop}: a raw value without bare line breaks is expected`);
      return /^[ \t]/.test(raw) ? raw : ` ${raw}`;
    }
    case 'Text':
      return textValue(name, str(value, prop));
    case 'Addresses':
      return fold(name, addresses(value, prop), ', ');
    case 'GroupedAddresses': {
      if (!Array.isArray(value)) throw new BuildError('invalidProperties', [prop], `${prop}: a list is expected`);
      const tokens: string[] = [];
      for (const g of value as { name?: unknown; addresses?: unknown }[]) {
        const list = addresses(g?.addresses, prop);
        if (g?.name === null || g?.name === undefined) tokens.push(...list);
        else tokens.push(`${phrase(str(g.name, prop))}: ${list.join(', ')};`);
      }
      return fold(name, tokens, ', ');
    }
    case 'MessageIds':
      return fold(
        name,
        strings(value, prop).map((id) => {
          if (!/^[^\s<>()@]+@[^\s<>()]+$/.test(id))
            throw new BuildError('invalidProperties', [prop], `${prop}: not a message id: ${id.slice(0, 100)}`);
          return `<${id}>`;
        }),
        ' ',
      );
    case 'Date':
      return ` ${rfc5322Date(str(value, prop), prop)}`;
    case 'URLs':
      return fold(
        name,
        strings(value, prop).map((u) => {
          if (/[\s<>]/.test(u)) throw new BuildError('invalidProperties', [prop], `${prop}: not a URL`);
          return `<${u}>`;
        }),
        ', ',
      );
  }
}
