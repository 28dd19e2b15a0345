// The body of an Outlook autodiscover POST ([MS-OXDSCLI] §2.2.3: <Autodiscover><Request>
// <EMailAddress>…</EMailAddress><AcceptableResponseSchema>…</…></Request></Autodiscover>), read
// for the one thing we need: the address. Pure and bounded: one left-to-right pass over at most
// LIMITS.http.maxBodyBytes, indexOf and character tests only (no regular expression, no
// backtracking), no XML library: no document type, no entity, nothing fetched.
// XXE (external entities) and entity expansion ("billion laughs") need a DTD; any markup
// declaration (`<!DOCTYPE`, `<!ENTITY`, `<![CDATA[`) is refused outright, comments (`<!--`) are
// skipped. Entity references other than XML's five predefined ones and character references are
// refused too (XML 1.0 §4.6: without a DTD no other entity can be declared).

export type AutodiscoverRequest =
  | { readonly kind: 'ok'; readonly emailAddress: string }
  | { readonly kind: 'invalid'; readonly reason: string };

const PREDEFINED: Readonly<Record<string, string>> = { lt: '<', gt: '>', amp: '&', quot: '"', apos: "'" };

/** Names end at white space, '>' or '/' (XML 1.0 §2.3 names never contain those). */
function nameEnd(s: string, from: number): number {
  let i = from;
  while (i < s.length) {
    const c = s.charCodeAt(i);
    if (c === 0x3e || c === 0x2f || c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d) break;
    i++;
  }
  return i;
}

const localName = (qname: string) => qname.slice(qname.indexOf(':') + 1);

/** Character data with its references resolved (XML 1.0 §4.1, §4.6); null if one is unknown. */
export function decodeText(raw: string): string | null {
  let out = '';
  let i = 0;
  while (i < raw.length) {
    const amp = raw.indexOf('&', i);
    if (amp < 0) return out + raw.slice(i);
    out += raw.slice(i, amp);
    const semi = raw.indexOf(';', amp);
    if (semi < 0 || semi - amp > 10) return null;
    const ref = raw.slice(amp + 1, semi);
    let ch: string | undefined;
    if (ref.startsWith('#x')) ch = codePoint(Number.parseInt(ref.slice(2), 16), ref.slice(2), 16);
    else if (ref.startsWith('#')) ch = codePoint(Number.parseInt(ref.slice(1), 10), ref.slice(1), 10);
    else ch = PREDEFINED[ref];
    if (ch === undefined) return null;
    out += ch;
    i = semi + 1;
  }
  return out;
}

function codePoint(n: number, digits: string, radix: number): string | undefined {
  if (digits === '' || n.toString(radix) !== digits.toLowerCase().replace(/^0+(?=.)/, '')) return undefined;
  return n > 0 && n <= 0x10ffff && (n < 0xd800 || n > 0xdfff) ? String.fromCodePoint(n) : undefined;
}

export function parseAutodiscoverRequest(body: Buffer): AutodiscoverRequest {
  let s = body.toString('utf8');
  if (s.charCodeAt(0) === 0xfeff) s = s.slice(1);
  let root: string | null = null;
  let i = 0;
  for (;;) {
    const lt = s.indexOf('<', i);
    if (lt < 0) break;
    const next = s.charCodeAt(lt + 1);
    if (next === 0x3f /* ? */) {
      const end = s.indexOf('?>', lt + 2);
      if (end < 0) return { kind: 'invalid', reason: 'unterminated processing instruction' };
      i = end + 2;
      continue;
    }
    if (next === 0x21 /* ! */) {
      if (!s.startsWith('<!--', lt)) {
        return { kind: 'invalid', reason: 'document type and entity declarations are not accepted' };
      }
      const end = s.indexOf('-->', lt + 4);
      if (end < 0) return { kind: 'invalid', reason: 'unterminated comment' };
      i = end + 3;
      continue;
    }
    const gt = s.indexOf('>', lt + 1);
    if (gt < 0) return { kind: 'invalid', reason: 'unterminated tag' };
    i = gt + 1;
    if (next === 0x2f /* / */) continue;
    const name = localName(s.slice(lt + 1, nameEnd(s, lt + 1)));
    if (root === null) {
      root = name;
      if (root !== 'Autodiscover') return { kind: 'invalid', reason: 'not an Autodiscover request' };
      continue;
    }
    if (name !== 'EMailAddress' || s.charCodeAt(gt - 1) === 0x2f) continue;
    const close = s.indexOf('<', i);
    if (close < 0) return { kind: 'invalid', reason: 'unterminated EMailAddress' };
    const text = decodeText(s.slice(i, close));
    if (text === null) return { kind: 'invalid', reason: 'unknown entity reference' };
    // Everything after must still be free of declarations: keep scanning for them.
    const rest = s.indexOf('<!', close);
    if (rest >= 0 && !s.startsWith('<!--', rest)) {
      return { kind: 'invalid', reason: 'document type and entity declarations are not accepted' };
    }
    return { kind: 'ok', emailAddress: text.trim() };
  }
  return { kind: 'invalid', reason: root === null ? 'no XML element' : 'no EMailAddress' };
}
