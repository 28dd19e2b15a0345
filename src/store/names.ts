// Mailbox names and flags as every store implementation and every protocol sees them
// (store-neutral; the Maildir layout maps them onto directories and file names).

import { LIMITS } from '../core/limits.ts';

/** The hierarchy separator of mailbox names (RFC 9051 §5.1; Maildir++ uses "."). */
export const HIERARCHY = '.';

/** Canonical name: INBOX in upper case (RFC 9051 §5.1: INBOX is case-insensitive), everything
 *  else as given. */
export function canonicalName(name: string): string {
  if (name.toUpperCase() === 'INBOX') return 'INBOX';
  if (name.toUpperCase().startsWith(`INBOX${HIERARCHY}`)) return `INBOX${name.slice(5)}`;
  return name;
}

/** Uses a stored mailbox can have (RFC 6154; \All and \Flagged are virtual views we do not offer). */
export const SETTABLE_USES: ReadonlySet<string> = new Set([
  '\\Archive',
  '\\Drafts',
  '\\Junk',
  '\\Sent',
  '\\Trash',
  '\\Important',
]);
const SETTABLE_USES_BY_LOWER = new Map([...SETTABLE_USES].map((u) => [u.toLowerCase(), u]));

/** The special use to store for CREATE ... (USE (...)) (RFC 6154 §3): null for none, undefined
 *  when the request cannot be honoured (unknown or virtual attribute, or more than one). */
export function specialUseFor(uses: readonly string[]): string | null | undefined {
  if (uses.length === 0) return null;
  if (uses.length > 1) return undefined;
  return SETTABLE_USES_BY_LOWER.get((uses[0] ?? '').toLowerCase());
}

/** System flags are case-insensitive (RFC 9051 §2.3.2): "\SEEN" is "\Seen". */
export function canonicalSystemFlag(f: string): string | null {
  if (!f.startsWith('\\')) return f.toLowerCase() === '$forwarded' ? '$Forwarded' : null;
  const lower = f.toLowerCase();
  for (const sys of ['\\Seen', '\\Answered', '\\Flagged', '\\Deleted', '\\Draft', '\\Recent']) {
    if (sys.toLowerCase() === lower) return sys;
  }
  return null;
}

/** RFC 3501 §9: flag-keyword = atom; ATOM-CHAR is any CHAR (0x01-0x7F) but atom-specials:
 *  "(" ")" "{" SP CTL "%" "*" DQUOTE "\\" "]". */
function isKeyword(k: string): boolean {
  if (k === '' || k.length > LIMITS.store.maxKeywordLength) return false;
  for (let i = 0; i < k.length; i++) {
    const c = k.charCodeAt(i);
    if (c <= 0x20 || c >= 0x7f || '(){%*"\\]'.includes(k[i] as string)) return false;
  }
  return true;
}

/** The flags a message may be delivered with (Sieve imap4flags, RFC 5232; fileinto :flags),
 *  canonical and without duplicates: the system flags but \Recent (RFC 3501 §2.3.2: a property
 *  of a session, never stored) and keywords that are IMAP atoms; anything else is dropped
 *  rather than failing the delivery, as is everything past LIMITS.store.maxDeliveryFlags. */
export function deliveryFlags(flags: readonly string[]): string[] {
  const out: string[] = [];
  const seen = new Set<string>();
  for (const f of flags) {
    if (out.length >= LIMITS.store.maxDeliveryFlags) break;
    const sys = canonicalSystemFlag(f);
    const flag = sys ?? (isKeyword(f) ? f : null);
    if (flag === null || flag === '\\Recent' || seen.has(flag.toLowerCase())) continue;
    seen.add(flag.toLowerCase());
    out.push(flag);
  }
  return out;
}
