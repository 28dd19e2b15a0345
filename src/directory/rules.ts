// The rules every directory backend applies the same way (SQLite, sqlite.ts; PostgreSQL,
// postgres.ts): what a valid domain, quota, allowlist entry or new address is, and how an
// allowlist matches. Pure: the backends check existence themselves.

import { type Address, formatAddress, mailboxNameProblem, normalizeDomain, parseAddress } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import type { AccountId, DomainName } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { type HashOptions, hashPassword } from './password.ts';
import type { AliasInfo, UserInfo } from './types.ts';

/** Role addresses every domain should answer (RFC 5321 §4.5.1, RFC 2142). */
export const ROLE_ADDRESSES = ['postmaster', 'abuse'] as const;

/** An allowlist entry: a whole address, or a domain ("example.org" or "@example.org"). */
export function senderPattern(text: string): string {
  const t = text.trim();
  if (t.includes('@') && !t.startsWith('@')) {
    const a = parseAddress(t);
    if (!a) throw new ArclineError('INVALID', `invalid address: ${JSON.stringify(text)}`);
    return formatAddress(a);
  }
  return domainOrThrow(t.replace(/^@/, ''));
}

/** True when one of the senders is an allowlisted address, or in an allowlisted domain (or a
 *  subdomain of one). */
export function senderAllowed(patterns: readonly string[], senders: readonly string[]): boolean {
  if (patterns.length === 0) return false;
  for (const s of senders) {
    const a = parseAddress(s);
    if (!a) continue;
    const address = formatAddress(a);
    for (const p of patterns) {
      if (p.includes('@') ? p === address : a.domain === p || a.domain.endsWith(`.${p}`)) return true;
    }
  }
  return false;
}

export function domainOrThrow(name: string): DomainName {
  const d = normalizeDomain(name);
  if (!d) throw new ArclineError('INVALID', `invalid domain name: ${JSON.stringify(name)}`);
  return d;
}

export function quotaOrThrow(q: number | null): number | null {
  if (q !== null && (!Number.isSafeInteger(q) || q <= 0)) {
    throw new ArclineError('INVALID', `invalid quota: ${q} (a positive size, or none)`);
  }
  return q;
}

/** A valid address whose local part is a safe mailbox name (the domain's existence is the
 *  caller's to check, with noDomain's error). */
export function localAddressOrThrow(address: string, what: string): Address {
  const a = parseAddress(address);
  if (!a) throw new ArclineError('INVALID', `invalid ${what} address: ${JSON.stringify(address)}`);
  const problem = mailboxNameProblem(a.local);
  if (problem) throw new ArclineError('INVALID', `invalid ${what} address ${JSON.stringify(address)}: ${problem}`);
  return a;
}

export function noDomain(domain: string): ArclineError {
  return new ArclineError('NOT_FOUND', `no domain ${domain}; add it first with: arcline domain add ${domain}`);
}

/** The destinations of an alias, normalised; INVALID for an empty list or a bad address. */
export function aliasDestinations(destinations: readonly string[]): string[] {
  if (destinations.length === 0) throw new ArclineError('INVALID', 'an alias needs at least one destination');
  return destinations.map((d) => {
    const a = parseAddress(d);
    if (!a) throw new ArclineError('INVALID', `invalid destination address: ${JSON.stringify(d)}`);
    return formatAddress(a);
  });
}

/** The destinations to remove from an alias (all when none are given); NOT_FOUND for one the
 *  alias does not have. */
export function aliasRemovals(id: string, existing: ReadonlySet<string>, destinations?: readonly string[]): string[] {
  if (existing.size === 0) throw new ArclineError('NOT_FOUND', `no alias ${id}`);
  return (destinations ?? []).map((d) => {
    const a = parseAddress(d);
    const key = a ? formatAddress(a) : d;
    if (!existing.has(key)) throw new ArclineError('NOT_FOUND', `alias ${id} has no destination ${d}`);
    return key;
  });
}

/** A catch-all target, normalised (null removes it). */
export function catchAllTarget(target: string | null): string | null {
  if (target === null) return null;
  const a = parseAddress(target);
  if (!a) throw new ArclineError('INVALID', `invalid catch-all address: ${JSON.stringify(target)}`);
  return formatAddress(a);
}

/** A user row (address, quota_bytes, created_at in ms, disabled as 0/1 or a boolean). */
export function userInfo(r: Record<string, unknown>): UserInfo {
  return {
    accountId: String(r.address) as AccountId,
    address: String(r.address),
    quotaBytes: r.quota_bytes === null || r.quota_bytes === undefined ? null : Number(r.quota_bytes),
    createdAt: new Date(Number(r.created_at)),
    enabled: !r.disabled,
  };
}

/** Directory.loginName (types.ts): the canonical account a login name spells, or null. Pure. */
export function canonicalLogin(username: string): AccountId | null {
  if (Buffer.byteLength(username) > LIMITS.auth.maxUsernameBytes) return null;
  const addr = parseAddress(username.trim());
  return addr ? (formatAddress(addr) as AccountId) : null;
}

/** Alias rows (source, destination), ordered by source, as AliasInfo. */
export function groupAliases(rows: readonly Record<string, unknown>[]): AliasInfo[] {
  const map = new Map<string, string[]>();
  for (const r of rows) {
    const list = map.get(String(r.source)) ?? [];
    list.push(String(r.destination));
    map.set(String(r.source), list);
  }
  return [...map].map(([source, destinations]) => ({ source, destinations }));
}

/** The hash of a new user's password ([auth] password_scheme); INVALID when empty. */
export async function newPasswordHash(password: string, hashing: HashOptions): Promise<string> {
  if (password === '') throw new ArclineError('INVALID', 'the password is empty');
  return hashPassword(password, hashing);
}
