// The directory: domains, users, aliases, catch-alls and password hashes.
// SQLite implements it now (sqlite.ts); PostgreSQL will implement the same interface later, and
// both must pass the same contract tests (test/directory/contract.ts). Protocol code sees only
// `Directory`; operators (CLI, admin API, tests) use `DirectoryAdmin`.
//
// An AccountId is the user's canonical address `local@domain` (lower-case, punycode domain).
// The store maps it to `{maildir}/{domain}/{local}/`; both parts were validated as safe path
// components when the user was created (core/address.ts mailboxNameProblem, normalizeDomain).

import type { Address } from '../core/address.ts';
import type { AccountId, DomainName } from '../core/ids.ts';

export interface Principal {
  readonly accountId: AccountId;
  readonly address: Address;
}

/** The principal of a canonical account id (`local@domain`, as loginName returns it). */
export function principalOf(account: AccountId): Principal {
  const at = account.lastIndexOf('@');
  return { accountId: account, address: { local: account.slice(0, at), domain: account.slice(at + 1) as DomainName } };
}

export type RecipientResolution =
  /** Deliverable. `accounts` are local mailboxes (deduplicated); `remote` are addresses an alias
   *  or catch-all forwards to outside our domains (delivered by the outbound queue). */
  | { readonly kind: 'deliver'; readonly accounts: readonly AccountId[]; readonly remote: readonly Address[] }
  | { readonly kind: 'unknown-domain' }
  | { readonly kind: 'unknown-user' };

export interface Directory {
  isLocalDomain(domain: DomainName): Promise<boolean>;
  /** Applies, in order: sub-address stripping (`user+tag` -> `user`), aliases (recursively, an
   *  alias that names itself delivers to the mailbox of that name, loops end), the user table,
   *  and the domain's catch-all. */
  resolveRecipient(addr: Address): Promise<RecipientResolution>;
  /** The one canonical form of a login name: the account it names (`local@domain`, the
   *  normalisation of core/address.ts: trimmed, unquoted, NFC, lower case, punycode, no trailing
   *  dot), or null when it cannot name any account (refused before any lookup or hashing).
   *  Every spelling that can reach an account maps to that account here, so limiters, caches and
   *  log lines keyed on the result see one identity. Pure: no I/O. */
  loginName(username: string): AccountId | null;
  /** The stored password hash of an account, read now (another process, the CLI, may have
   *  changed it a moment ago); null when there is no such user. */
  passwordHash(account: AccountId): Promise<string | null>;
  /** The domain a bare "<Postmaster>" (RFC 5321 §4.1.1.3) belongs to: `preferred` when it is a
   *  local domain, else the oldest local domain; null without domains. */
  postmasterDomain(preferred: readonly string[]): Promise<DomainName | null>;
  /** True when `from` is the principal's own address or an alias that delivers to it. */
  maySendAs(who: Principal, from: Address): Promise<boolean>;
  /** The account's storage quota in bytes, or null for none (RFC 9208 STORAGE). */
  quota(account: AccountId): Promise<number | null>;
  /** True when the user allowlisted one of these sender addresses (or its domain): such mail
   *  skips Junk filing. */
  allowsSender(account: AccountId, senders: readonly string[]): Promise<boolean>;
  close(): void;
}

export interface DomainInfo {
  readonly name: DomainName;
  /** Catch-all target address, or null. */
  readonly catchAll: string | null;
  readonly users: number;
  readonly aliases: number;
}

export interface UserInfo {
  readonly accountId: AccountId;
  readonly address: string;
  /** Storage quota in bytes, null for unlimited (enforced at delivery and IMAP APPEND/COPY). */
  readonly quotaBytes: number | null;
  readonly createdAt: Date;
  /** False when disabled: no login (IMAP, submission, the HTTP API); mail is still accepted. */
  readonly enabled: boolean;
}

export interface AliasInfo {
  readonly source: string;
  readonly destinations: readonly string[];
}

/** Management operations; every mutation validates first and changes nothing on error
 *  (throws ArclineError with code INVALID, NOT_FOUND or EXISTS). */
export interface DirectoryAdmin {
  addDomain(name: string): Promise<DomainInfo>;
  /** Refuses (INVALID) while the domain still has users or aliases. */
  deleteDomain(name: string): Promise<void>;
  listDomains(): Promise<readonly DomainInfo[]>;
  /** Throws what addUser would for this address (INVALID, NOT_FOUND, EXISTS), changing nothing. */
  checkNewUser(address: string): Promise<void>;
  /** `password` is plaintext and is hashed here ([auth] password_scheme). The first user of a domain also
   *  gets the aliases postmaster@ (RFC 5321 §4.5.1 MUST) and abuse@ (RFC 2142) unless those
   *  addresses already exist; they are ordinary aliases the operator may change. */
  addUser(address: string, opts: { password: string; quotaBytes?: number | null }): Promise<UserInfo>;
  /** Imports an existing hash (bcrypt `$2a$/$2b$/$2y$` or `{BLF-CRYPT}`, Argon2 `$argon2id$`,
   *  `$argon2i$`, `{ARGON2ID}`, `{ARGON2I}`, SHA-512-crypt `$6$` or `{SHA512-CRYPT}`); refused
   *  (INVALID) when malformed or beyond the parameters verified (password.ts parseStoredHash). */
  addUserWithHash(address: string, opts: { passwordHash: string; quotaBytes?: number | null }): Promise<UserInfo>;
  deleteUser(address: string): Promise<UserInfo>;
  setPassword(address: string, password: string): Promise<void>;
  setQuota(address: string, quotaBytes: number | null): Promise<void>;
  /** A disabled user cannot log in; its mail is still accepted and delivered. */
  setEnabled(address: string, enabled: boolean): Promise<void>;
  getUser(address: string): Promise<UserInfo | null>;
  listUsers(domain?: string): Promise<readonly UserInfo[]>;
  /** Adds destinations to the alias `source` (created if missing). Source must be in a local
   *  domain; destinations are any valid addresses (local or remote). */
  addAlias(source: string, destinations: readonly string[]): Promise<AliasInfo>;
  /** Removes the listed destinations, or the whole alias when none are listed. */
  deleteAlias(source: string, destinations?: readonly string[]): Promise<void>;
  listAliases(domain?: string): Promise<readonly AliasInfo[]>;
  /** target null removes the catch-all. */
  setCatchAll(domain: string, target: string | null): Promise<void>;
  /** Adds an address or a domain ("example.org", "@example.org") to the user's allowlist;
   *  returns the normalised entry. */
  addAllowedSender(user: string, pattern: string): Promise<string>;
  /** NOT_FOUND when the entry is not there. */
  deleteAllowedSender(user: string, pattern: string): Promise<void>;
  listAllowedSenders(user: string): Promise<readonly string[]>;
}
