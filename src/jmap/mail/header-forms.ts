// The parsed forms of header field values (RFC 8621 §4.1.2): Raw, Text, Addresses,
// GroupedAddresses, MessageIds, Date, URLs. Input is a raw value (the octets after the colon,
// folding kept, as text). Pure; each form is one linear pass (the address parser is
// nodemailer's tokenizer, which IMAP's ENVELOPE uses too); header blocks are bounded upstream.

import addressparser from 'nodemailer/lib/addressparser';
import { decodeEncodedWords } from '../../core/encoded-words.ts';
import { parseDateTime } from '../../mime/date.ts';

export type HeaderForm = 'Raw' | 'Text' | 'Addresses' | 'GroupedAddresses' | 'MessageIds' | 'Date' | 'URLs';
export const HEADER_FORMS: readonly HeaderForm[] = [
  'Raw',
  'Text',
  'Addresses',
  'GroupedAddresses',
  'MessageIds',
  'Date',
  'URLs',
];

export interface EmailAddress {
  readonly name: string | null;
  readonly email: string;
}
export interface EmailAddressGroup {
  readonly name: string | null;
  readonly addresses: EmailAddress[];
}

/** RFC 5322 §2.2.3: a CRLF (or bare LF) followed by white space is removed. */
export function unfold(raw: string): string {
  return raw.replace(/\r?\n(?=[ \t])/g, '');
}

/** asText (RFC 8621 §4.1.2.2): unfolded, leading and trailing white space removed, RFC 2047
 *  encoded words decoded (control characters they hold dropped), NFC. */
export function asText(raw: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: dropping decoded controls is the rule
  const text = decodeEncodedWords(unfold(raw).trim()).replace(/[\x00-\x08\x0b-\x1f\x7f]/g, '');
  return text.normalize('NFC').trim();
}

interface Parsed {
  name?: string;
  address?: string;
  group?: Parsed[];
}

/** asGroupedAddresses (§4.1.2.4): groups as they are; addresses outside a group gathered, in
 *  order, into groups whose name is null. Best effort on invalid input, as the RFC asks. */
export function asGroupedAddresses(raw: string): EmailAddressGroup[] {
  const value = unfold(raw);
  const out: EmailAddressGroup[] = [];
  let loose: EmailAddress[] | null = null;
  for (const a of (value.trim() === '' ? [] : addressparser(value)) as Parsed[]) {
    if (a.group) {
      loose = null;
      out.push({
        name: a.name ? asText(a.name) : null,
        addresses: a.group.filter((g) => g.address).map(address),
      });
    } else if (a.address || a.name) {
      if (!a.address) continue; // a lone comment or phrase is no address
      if (!loose) {
        loose = [];
        out.push({ name: null, addresses: loose });
      }
      loose.push(address(a));
    }
  }
  return out;
}

/** asAddresses (§4.1.2.3): the same, groups flattened. */
export function asAddresses(raw: string): EmailAddress[] {
  return asGroupedAddresses(raw).flatMap((g) => g.addresses);
}

function address(a: Parsed): EmailAddress {
  const name = a.name ? asText(a.name) : '';
  return { name: name === '' ? null : name, email: (a.address ?? '').replace(/\s+/g, '') };
}

/** asMessageIds (§4.1.2.5): the msg-ids without angle brackets, or null when the value holds
 *  something that is none (comments and white space between them are allowed). */
export function asMessageIds(raw: string): string[] | null {
  const ids = angleList(unfold(raw), 10_000);
  return ids?.some((id) => id === '' || id.includes('<')) ? null : ids;
}

/** The `<...>` items of a list (white space removed inside), with white space, commas and
 *  comments between them; null when anything else stands there or there is no item. */
function angleList(value: string, max: number): string[] | null {
  const items: string[] = [];
  let i = 0;
  while (i < value.length && items.length < max) {
    const c = value[i] as string;
    if (c === ' ' || c === '\t' || c === '\r' || c === '\n' || c === ',') i++;
    else if (c === '(') i = skipComment(value, i);
    else if (c === '<') {
      const close = value.indexOf('>', i);
      if (close < 0) return null;
      items.push(value.slice(i + 1, close).replace(/\s+/g, ''));
      i = close + 1;
    } else return null;
  }
  return items.length === 0 ? null : items;
}

/** Index past a (possibly nested) comment starting at `i`; bounded nesting. */
function skipComment(s: string, i: number): number {
  let depth = 0;
  for (; i < s.length; i++) {
    const c = s[i];
    if (c === '\\') i++;
    else if (c === '(') depth++;
    else if (c === ')' && --depth === 0) return i + 1;
  }
  return s.length;
}

/** asDate (§4.1.2.6): an RFC 5322 date-time as an RFC 3339 date with its own offset
 *  ("2014-10-30T14:12:00+08:00"), or null when it does not parse. */
export function asDate(raw: string): string | null {
  const t = parseDateTime(unfold(raw));
  if (!t) return null;
  const wall = new Date(t.epoch + t.offset * 60_000).toISOString().slice(0, 19);
  const two = (n: number) => String(n).padStart(2, '0');
  const abs = Math.abs(t.offset);
  return `${wall}${t.offset < 0 ? '-' : '+'}${two(Math.floor(abs / 60))}:${two(abs % 60)}`;
}

/** asURLs (§4.1.2.7): the `<URL>` entries of an RFC 2369 list (comments and white space between
 *  them allowed), or null when it does not parse. */
export function asURLs(raw: string): string[] | null {
  return angleList(unfold(raw), 1000);
}

export type FormValue = string | string[] | EmailAddress[] | EmailAddressGroup[] | null;

/** One raw value in one form. */
export function parseForm(raw: string, form: HeaderForm): FormValue {
  switch (form) {
    case 'Raw':
      return raw;
    case 'Text':
      return asText(raw);
    case 'Addresses':
      return asAddresses(raw);
    case 'GroupedAddresses':
      return asGroupedAddresses(raw);
    case 'MessageIds':
      return asMessageIds(raw);
    case 'Date':
      return asDate(raw);
    case 'URLs':
      return asURLs(raw);
  }
}

const ADDRESS_FIELDS = ['from', 'sender', 'reply-to', 'to', 'cc', 'bcc'].flatMap((f) => [f, `resent-${f}`]);
/** RFC 8621 §4.1.2: the forms allowed for the fields RFC 5322 and RFC 2369 define; any other
 *  field may be asked for in any form. */
const ALLOWED = new Map<string, readonly HeaderForm[]>([
  ...['subject', 'comments', 'keywords', 'list-id'].map((f) => [f, ['Raw', 'Text']] as const),
  ...ADDRESS_FIELDS.map((f) => [f, ['Raw', 'Addresses', 'GroupedAddresses']] as const),
  ...['message-id', 'in-reply-to', 'references', 'resent-message-id'].map((f) => [f, ['Raw', 'MessageIds']] as const),
  ...['date', 'resent-date'].map((f) => [f, ['Raw', 'Date']] as const),
  ...['list-help', 'list-unsubscribe', 'list-subscribe', 'list-post', 'list-owner', 'list-archive'].map(
    (f) => [f, ['Raw', 'URLs']] as const,
  ),
  ...['return-path', 'received'].map((f) => [f, ['Raw']] as const),
]);

export function formAllowed(field: string, form: HeaderForm): boolean {
  return ALLOWED.get(field.toLowerCase())?.includes(form) ?? true;
}

export interface HeaderProperty {
  /** The field name as asked (matching is case-insensitive). */
  readonly name: string;
  readonly form: HeaderForm;
  readonly all: boolean;
}

/** `header:{name}[:as{Form}][:all]` (RFC 8621 §4.1.3), or null when malformed or the form is
 *  not allowed for the field (the method answers invalidArguments). */
export function parseHeaderProperty(prop: string): HeaderProperty | null {
  if (!prop.startsWith('header:') || prop.length > 1000) return null;
  const pieces = prop.slice(7).split(':');
  const name = pieces[0] ?? '';
  // RFC 5322 §3.6.8 field-name: printable ASCII but the colon.
  if (!/^[\x21-\x39\x3b-\x7e]+$/.test(name)) return null;
  let form: HeaderForm = 'Raw';
  let all = false;
  let i = 1;
  const p1 = pieces[i];
  if (p1?.startsWith('as')) {
    const f = HEADER_FORMS.find((x) => `as${x}` === p1);
    if (!f) return null;
    form = f;
    i++;
  }
  if (pieces[i] === 'all') {
    all = true;
    i++;
  }
  if (i !== pieces.length || !formAllowed(name, form)) return null;
  return { name, form, all };
}
