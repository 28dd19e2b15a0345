// SMTP command lines -> typed commands (RFC 5321 §4.1.1, §4.1.2). Pure and bounded: one pass
// over a line already bounded by the framer (lines.ts), no regular expression on client input.
//
// - Verbs are case-insensitive (§2.4). Unknown verbs are { verb: 'UNKNOWN' }.
// - MAIL FROM:<reverse-path> / RCPT TO:<forward-path> [SP params]: a space after the colon is
//   tolerated (many clients send one; §4.1.2 does not allow it, Postfix accepts it too). The
//   path's source route ("@a,@b:", §4.1.2 and Appendix C) is accepted and ignored. The
//   mailbox is returned as written (quoted local part included) for core/address.ts to
//   normalise; here we only check its shape: one "@" outside quotes with something on each
//   side, no control characters or spaces outside a quoted string. UTF-8 is allowed (RFC 6531
//   §3.3); whether the session may use it is the session's decision (SMTPUTF8 on MAIL).
// - ESMTP parameters (§4.1.2 esmtp-param): keyword ["=" value], keyword ALPHA/DIGIT/"-",
//   value printable without "=" and SP (UTF-8 allowed, RFC 6531 §3.3). Names upper-cased.

export interface EsmtpParam {
  readonly name: string;
  readonly value: string | null;
}

export type Command =
  | { readonly verb: 'HELO' | 'EHLO'; readonly domain: string }
  | { readonly verb: 'MAIL'; readonly address: string; readonly params: readonly EsmtpParam[] }
  | { readonly verb: 'RCPT'; readonly address: string; readonly params: readonly EsmtpParam[] }
  | { readonly verb: 'DATA' | 'RSET' | 'QUIT' | 'STARTTLS' | 'NOOP' | 'HELP' }
  | { readonly verb: 'VRFY'; readonly arg: string }
  | { readonly verb: 'AUTH'; readonly mechanism: string; readonly initial: string | null }
  | { readonly verb: 'UNKNOWN'; readonly name: string }
  /** A command of RFC 5321 we do not offer (EXPN, §3.5.2 and §7.3): 502. */
  | { readonly verb: 'NOT-IMPLEMENTED'; readonly name: string }
  /** A known verb with arguments it cannot have: 501 with `hint`. */
  | { readonly verb: 'SYNTAX'; readonly hint: string };

const SP = 0x20;

function syntax(hint: string): Command {
  return { verb: 'SYNTAX', hint };
}

/** Control characters (and DEL) never belong in a command argument. */
function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}

/** Parses one command line (without its CRLF), decoded as UTF-8. */
export function parseCommand(line: string): Command {
  let sp = line.indexOf(' ');
  if (sp === -1) sp = line.length;
  const verb = line.slice(0, sp).toUpperCase();
  const rest = line.slice(sp + 1);
  const arg = sp < line.length ? rest : '';
  switch (verb) {
    case 'HELO':
    case 'EHLO': {
      const domain = arg.trim();
      // RFC 5321 §4.1.1.1: a domain or an address literal; we take any one token.
      if (domain === '' || domain.includes(' ') || hasControl(domain)) return syntax(`${verb} hostname`);
      return { verb, domain };
    }
    case 'MAIL':
      return pathCommand('MAIL', 'FROM:', arg);
    case 'RCPT':
      return pathCommand('RCPT', 'TO:', arg);
    case 'DATA':
    case 'RSET':
    case 'QUIT':
    case 'STARTTLS':
      // §4.1.1.4, §4.1.1.5, §4.1.1.10, RFC 3207 §4: no arguments.
      return arg.trim() === '' ? { verb } : syntax(verb);
    case 'NOOP': // §4.1.1.9: a parameter is allowed and ignored
    case 'HELP': // §4.1.1.8
      return { verb };
    case 'EXPN': // §3.5.2: optional; §7.3: sites may disable it (it gives lists away)
    case 'TURN': // §4.1.1 (RFC 2821 deprecated it): never offered
      return { verb: 'NOT-IMPLEMENTED', name: verb };
    case 'VRFY': {
      const a = arg.trim();
      return a === '' ? syntax('VRFY address') : { verb, arg: a };
    }
    case 'AUTH': {
      // RFC 4954 §4: AUTH mechanism [initial-response]
      const parts = arg.trim().split(' ');
      const mechanism = (parts[0] ?? '').toUpperCase();
      if (mechanism === '' || parts.length > 2 || hasControl(arg)) return syntax('AUTH mechanism [initial-response]');
      return { verb, mechanism, initial: parts[1] ?? null };
    }
    default:
      return { verb: 'UNKNOWN', name: verb.slice(0, 16) };
  }
}

function pathCommand(verb: 'MAIL' | 'RCPT', keyword: 'FROM:' | 'TO:', arg: string): Command {
  const hint = `${verb} ${keyword}<address>`;
  if (arg.slice(0, keyword.length).toUpperCase() !== keyword) return syntax(hint);
  let i = keyword.length;
  while (arg.charCodeAt(i) === SP) i++;
  const path = readPath(arg, i);
  if (path === null) return syntax(hint);
  const params = parseParams(arg, path.end);
  if (params === null) return syntax(hint);
  return { verb, address: path.address, params };
}

/**
 * `<[route:]mailbox>` or `<>` starting at `i`; a bare mailbox without brackets is accepted too
 * (Postfix's default, strict_rfc821_envelopes = no). Returns the mailbox and the index after it.
 */
export function readPath(s: string, i: number): { address: string; end: number } | null {
  const bracket = s.charCodeAt(i) === 0x3c; // "<"
  let j = bracket ? i + 1 : i;
  // §4.1.2 A-d-l: "@" domain *("," "@" domain) ":", accepted and ignored (Appendix C).
  if (bracket && s.charCodeAt(j) === 0x40) {
    const colon = s.indexOf(':', j);
    if (colon === -1) return null;
    for (let k = j; k < colon; k++) {
      const c = s.charCodeAt(k);
      if (c === 0x3e || c === SP || c === 0x22 || c < 0x20) return null; // no ">", SP, quote
    }
    j = colon + 1;
  }
  const start = j;
  let quoted = false;
  let at = -1;
  for (; j < s.length; j++) {
    const c = s.charCodeAt(j);
    if (c < 0x20 || c === 0x7f) return null;
    if (quoted) {
      if (c === 0x5c)
        j++; // quoted-pair
      else if (c === 0x22) quoted = false;
      continue;
    }
    if (c === 0x22) {
      if (j !== start) return null; // a quoted string is the whole local part
      quoted = true;
    } else if (c === 0x40) at = j;
    else if (c === 0x3e || c === SP || c === 0x3c) break;
  }
  if (quoted) return null;
  const address = s.slice(start, j);
  if (bracket) {
    if (s.charCodeAt(j) !== 0x3e) return null;
    j++;
  }
  if (address === '') return bracket ? { address: '', end: j } : null;
  // A mailbox has something on each side of its last "@"; RCPT may be a bare "Postmaster"
  // (§4.1.1.3), which the session resolves.
  if (at !== -1 && (at === start || at === j - (bracket ? 2 : 1))) return null;
  if (at === -1 && address.toLowerCase() !== 'postmaster') return null;
  return { address, end: j };
}

/** ESMTP parameters after the path: (SP param)*; null when malformed. */
export function parseParams(s: string, i: number): EsmtpParam[] | null {
  const out: EsmtpParam[] = [];
  while (i < s.length) {
    if (s.charCodeAt(i) !== SP) return null;
    while (s.charCodeAt(i) === SP) i++;
    if (i >= s.length) break; // trailing spaces
    let end = s.indexOf(' ', i);
    if (end === -1) end = s.length;
    const eq = s.indexOf('=', i);
    const nameEnd = eq !== -1 && eq < end ? eq : end;
    const name = s.slice(i, nameEnd);
    if (!isKeyword(name)) return null;
    let value: string | null = null;
    if (nameEnd < end) {
      value = s.slice(nameEnd + 1, end);
      if (value === '' || value.includes('=') || hasControl(value)) return null;
    }
    out.push({ name: name.toUpperCase(), value });
    i = end;
  }
  return out;
}

/** §4.1.2 esmtp-keyword = (ALPHA / DIGIT) *(ALPHA / DIGIT / "-") */
function isKeyword(s: string): boolean {
  if (s === '' || s.length > 64) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i) | 0x20;
    const alnum = (c >= 0x61 && c <= 0x7a) || (s.charCodeAt(i) >= 0x30 && s.charCodeAt(i) <= 0x39);
    if (!alnum && (i === 0 || s.charCodeAt(i) !== 0x2d)) return false;
  }
  return true;
}

/** 1 to `max` ASCII digits (an ESMTP number such as SIZE, RFC 1870). */
export function isDigits(s: string, max: number): boolean {
  if (s.length === 0 || s.length > max) return false;
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x30 || c > 0x39) return false;
  }
  return true;
}
