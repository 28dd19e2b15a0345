// Mail addresses (RFC 5321 §4.1.2, RFC 5322 §3.4.1, RFC 6531 for UTF-8 local parts).
//
// Invariants of a normalised Address:
// - domain is lower-case ASCII (IDNs converted to punycode, RFC 5890), no trailing dot;
// - local is NFC-normalised and lower-cased: we match local parts case-insensitively, as
//   Postfix and Dovecot do by default (RFC 5321 §2.4 allows a server to do so for its own mailboxes);
// - neither part contains control characters.
// A *mailbox name* (the local part of a user we create) is stricter still: it becomes a
// directory name on disk, so `/`, `..`, NUL and a leading dot can never appear in it.

import { domainToASCII } from 'node:url';
import type { DomainName } from './ids.ts';
import { LIMITS } from './limits.ts';

export interface Address {
  readonly local: string;
  readonly domain: DomainName;
}

export function formatAddress(a: Address): string {
  return `${a.local}@${a.domain}`;
}

const LABEL = /^(?!-)[a-z0-9-]{1,63}(?<!-)$/;

/** Lower-case punycode form of a domain name, or null if it is not a valid host name. */
export function normalizeDomain(text: string): DomainName | null {
  let d = text.trim();
  if (d.endsWith('.')) d = d.slice(0, -1);
  if (d === '' || d.length > LIMITS.directory.maxDomainLength) return null;
  // domainToASCII applies UTS #46 mapping (lower-casing, NFC) and returns '' when invalid.
  const ascii = /^[\x20-\x7e]*$/.test(d) ? d.toLowerCase() : domainToASCII(d);
  if (ascii === '' || ascii.length > LIMITS.directory.maxDomainLength) return null;
  const labels = ascii.split('.');
  if (labels.length < 2 && ascii !== 'localhost') return null;
  if (!labels.every((l) => LABEL.test(l))) return null;
  // The top-level label of a real domain is never all digits (RFC 3696 §2); this also keeps
  // dotted IPv4 addresses out of the domain table.
  if (/^\d+$/.test(labels[labels.length - 1] ?? '')) return null;
  return ascii as DomainName;
}

/** Unquotes an RFC 5321 Quoted-string local part; returns the input when it is not quoted. */
function unquoteLocal(local: string): string | null {
  if (!local.startsWith('"')) return local;
  if (local.length < 2 || !local.endsWith('"')) return null;
  return local.slice(1, -1).replace(/\\(.)/g, '$1');
}

/**
 * Parses an envelope address `local@domain` (no angle brackets), as the SMTP command parser
 * (smtp/wire/command.ts) hands it to us.
 * Returns null for anything that is not a deliverable address (domain literals included:
 * we host no mailboxes at IP literals).
 */
export function parseAddress(text: string): Address | null {
  const at = text.lastIndexOf('@');
  if (at <= 0 || at === text.length - 1) return null;
  const rawLocal = unquoteLocal(text.slice(0, at));
  if (rawLocal === null || rawLocal === '') return null;
  // biome-ignore lint/suspicious/noControlCharactersInRegex: rejecting control characters is the point
  if (/[\x00-\x1f\x7f]/.test(rawLocal)) return null;
  const local = rawLocal.normalize('NFC').toLowerCase();
  if (Buffer.byteLength(local) > LIMITS.directory.maxLocalPartLength) return null;
  const domain = normalizeDomain(text.slice(at + 1));
  if (domain === null) return null;
  return { local, domain };
}

// RFC 5322 §3.2.3 atext, minus "/" (a path separator) and "+" (our sub-address separator),
// plus any non-ASCII letter or digit (RFC 6531 UTF-8 local parts).
const MAILBOX_ATOM = /^[\p{L}\p{N}!#$%&'*=?^_`{|}~-]+$/u;

/**
 * Why a local part cannot name a mailbox on disk, or null when it can. Used when users and
 * aliases are created, so every name that reaches the Maildir layer is safe as a path component.
 */
export function mailboxNameProblem(local: string): string | null {
  if (local === '') return 'the local part is empty';
  if (Buffer.byteLength(local) > LIMITS.directory.maxLocalPartLength) {
    return `the local part is longer than ${LIMITS.directory.maxLocalPartLength} bytes`;
  }
  if (local.includes('+')) return 'the local part may not contain "+" (it separates sub-addresses)';
  const atoms = local.split('.');
  if (atoms.some((a) => a === '')) return 'the local part may not start or end with "." or contain ".."';
  if (!atoms.every((a) => MAILBOX_ATOM.test(a))) {
    return 'the local part may contain only letters, digits, "." and !#$%&\'*=?^_`{|}~-';
  }
  return null;
}

/** True when a string has any character outside US-ASCII (RFC 6531 needs SMTPUTF8 for it). */
export function hasNonAscii(s: string): boolean {
  for (let i = 0; i < s.length; i++) if (s.charCodeAt(i) > 0x7f) return true;
  return false;
}

/** `user+tag` -> { base: 'user', detail: 'tag' } (RFC 5233 sub-addressing). */
export function splitDetail(local: string): { base: string; detail: string | null } {
  const plus = local.indexOf('+');
  if (plus <= 0) return { base: local, detail: null };
  return { base: local.slice(0, plus), detail: local.slice(plus + 1) };
}
