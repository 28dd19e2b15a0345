// A header block as JMAP shows it (RFC 8621 §4.1.2-§4.1.3): `headers` (every field, raw, in
// order), `header:{name}[:as{Form}][:all]` and the convenience properties (messageId, from,
// subject, sentAt, ...), for a message and for each body part alike.

import { type FormValue, type HeaderProperty, parseForm, parseHeaderProperty } from './header-forms.ts';

export interface EmailHeader {
  readonly name: string;
  readonly value: string;
}

/** Most fields one block is split into (the block itself is bounded by the MIME parser). */
const MAX_FIELDS = 10_000;

/** The fields of a header block in order: the name as written, the raw value (every octet after
 *  the colon up to the field's final line break, folding kept), as UTF-8 with malformed octets
 *  replaced by U+FFFD (RFC 8621 §4.1.2.1). Lines without a colon are skipped. */
export function headerList(header: Buffer): EmailHeader[] {
  const text = header.toString('utf8');
  const out: EmailHeader[] = [];
  let pos = 0;
  while (pos < text.length && out.length < MAX_FIELDS) {
    // The field runs to the first line break not followed by white space.
    let end = pos;
    for (;;) {
      const lf = text.indexOf('\n', end);
      if (lf < 0) {
        end = text.length;
        break;
      }
      const next = text[lf + 1];
      if (next !== ' ' && next !== '\t') {
        end = lf + 1;
        break;
      }
      end = lf + 1;
    }
    let stop = end;
    if (text[stop - 1] === '\n') stop--;
    if (text[stop - 1] === '\r') stop--;
    const line = text.slice(pos, stop);
    const colon = line.indexOf(':');
    if (colon > 0) {
      const name = line.slice(0, colon).trimEnd();
      if (name !== '' && !/[\s]/.test(name)) out.push({ name, value: line.slice(colon + 1) });
    }
    pos = end;
  }
  return out;
}

/** The value of one header property (RFC 8621 §4.1.3): the last field of the name, or all of
 *  them in order with `:all` (null / [] when there is none). */
export function headerProperty(fields: readonly EmailHeader[], p: HeaderProperty): FormValue | FormValue[] {
  const want = p.name.toLowerCase();
  const values = fields.filter((f) => f.name.toLowerCase() === want).map((f) => parseForm(f.value, p.form));
  if (p.all) return values;
  return values.length === 0 ? null : (values.at(-1) ?? null);
}

/** RFC 8621 §4.1.3 convenience properties as header properties. */
export const CONVENIENCE: Readonly<Record<string, HeaderProperty>> = {
  messageId: { name: 'Message-ID', form: 'MessageIds', all: false },
  inReplyTo: { name: 'In-Reply-To', form: 'MessageIds', all: false },
  references: { name: 'References', form: 'MessageIds', all: false },
  sender: { name: 'Sender', form: 'Addresses', all: false },
  from: { name: 'From', form: 'Addresses', all: false },
  to: { name: 'To', form: 'Addresses', all: false },
  cc: { name: 'Cc', form: 'Addresses', all: false },
  bcc: { name: 'Bcc', form: 'Addresses', all: false },
  replyTo: { name: 'Reply-To', form: 'Addresses', all: false },
  subject: { name: 'Subject', form: 'Text', all: false },
  sentAt: { name: 'Date', form: 'Date', all: false },
};

/** The value of `prop` if it is a header property (`headers`, `header:...`, a convenience
 *  one); `undefined` when it is not one; `null` ... as the RFC says for absent fields. Throws
 *  nothing: a malformed `header:` property is `undefined` too (validate with
 *  parseHeaderProperty first). */
export function headerValueOf(
  fields: readonly EmailHeader[],
  prop: string,
): FormValue | FormValue[] | EmailHeader[] | undefined {
  if (prop === 'headers') return fields.map((f) => ({ name: f.name, value: f.value }));
  const conv = CONVENIENCE[prop];
  if (conv) return headerProperty(fields, conv);
  const p = parseHeaderProperty(prop);
  return p ? headerProperty(fields, p) : undefined;
}
