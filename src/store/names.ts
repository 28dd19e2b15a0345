// Mailbox names and flags as every store implementation and every protocol sees them
// (store-neutral; the Maildir layout maps them onto directories and file names).

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
