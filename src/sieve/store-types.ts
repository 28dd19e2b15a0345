// The seam between Sieve scripts and everything that uses them (docs/architecture.md §2):
// ManageSieve (managesieve/), the CLI (`arcline sieve put|get|...`) and delivery see only these
// interfaces; the SQLite implementation is sieve/sqlite-store.ts, and the contract suite
// test/sieve/store-contract.ts is what any other implementation (PostgreSQL, issue #18) passes.
//
// - Scripts are stored byte for byte: clients (Roundcube's managesieve plugin, Thunderbird's
//   sieve add-on) rewrite blocks they marked and expect their exact bytes back (CRLF or LF,
//   non-ASCII, trailing spaces).
// - At most one script per account is active (RFC 5804 §2.8); the active one cannot be deleted
//   (§2.10, response code ACTIVE).
// - Quotas (RFC 5804 §1.3 QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE): scripts per account, bytes per
//   script, bytes in total; 0 means unlimited (Pigeonhole's sieve_quota_*).

import type { AccountId } from '../core/ids.ts';

export interface SieveScriptInfo {
  readonly name: string;
  readonly active: boolean;
  /** Octets. */
  readonly size: number;
}

export interface SieveQuota {
  /** Scripts per account; 0: unlimited. */
  readonly maxScripts: number;
  /** Octets of one script; 0: unlimited (never above LIMITS.sieve.maxScriptBytes). */
  readonly maxScriptBytes: number;
  /** Octets of all of an account's scripts; 0: unlimited. */
  readonly maxStorageBytes: number;
}

/** Why a script operation was refused; the codes are RFC 5804 §1.3's response codes, so
 *  ManageSieve maps them to the wire as they are. */
export type SieveStoreErrorCode =
  | 'NONEXISTENT'
  | 'ALREADYEXISTS'
  | 'ACTIVE'
  | 'QUOTA/MAXSCRIPTS'
  | 'QUOTA/MAXSIZE'
  | 'QUOTA'
  /** A name RFC 5804 §1.6 forbids (scriptNameError). */
  | 'BADNAME';

export class SieveStoreError extends Error {
  readonly code: SieveStoreErrorCode;
  constructor(code: SieveStoreErrorCode, message: string) {
    super(message);
    this.code = code;
    this.name = 'SieveStoreError';
  }
}

export function isSieveStoreError(e: unknown, code?: SieveStoreErrorCode): e is SieveStoreError {
  return e instanceof SieveStoreError && (code === undefined || e.code === code);
}

export interface SieveScripts {
  /** The account's scripts, by name (code point order). */
  list(account: AccountId): Promise<readonly SieveScriptInfo[]>;
  /** The script's exact bytes, or null. */
  get(account: AccountId, name: string): Promise<Buffer | null>;
  /** Adds or replaces a script (an active one stays active). Throws SieveStoreError BADNAME,
   *  QUOTA/MAXSCRIPTS, QUOTA/MAXSIZE or QUOTA. Validation of the Sieve is the caller's. */
  put(account: AccountId, name: string, bytes: Uint8Array): Promise<void>;
  /** RFC 5804 §2.3 HAVESPACE: would a script of `size` octets named `name` fit? null when it
   *  would, else the refusal (not thrown). */
  haveSpace(account: AccountId, name: string, size: number): Promise<SieveStoreError | null>;
  /** Throws NONEXISTENT, or ACTIVE for the active script (RFC 5804 §2.10). */
  delete(account: AccountId, name: string): Promise<void>;
  /** RFC 5804 §2.11.1: throws NONEXISTENT, ALREADYEXISTS or BADNAME; an active script stays
   *  active under its new name. */
  rename(account: AccountId, from: string, to: string): Promise<void>;
  /** Makes `name` the active script, or none with null (RFC 5804 §2.8). Throws NONEXISTENT. */
  setActive(account: AccountId, name: string | null): Promise<void>;
  /** The active script, for delivery. */
  active(account: AccountId): Promise<{ readonly name: string; readonly content: Buffer } | null>;
  /** Deletes every script and all Sieve state of the account (user deletion); how many scripts. */
  deleteAccount(account: AccountId): Promise<number>;
}

/** What delivery remembers between runs of a script (RFC 5230 vacation, RFC 7352 duplicate).
 *  Keys are stored hashed (SHA-256): no sender address or message id is kept in clear. Every
 *  time is the caller's `now`, so tests and delivery agree on the clock. */
export interface SieveState {
  /** RFC 5230 §4.2: true when a reply to `sender` under `handle` was recorded within
   *  `seconds` before `now`. */
  vacationRecent(account: AccountId, handle: string, sender: string, seconds: number, now: Date): Promise<boolean>;
  /** Records a reply sent now, remembered for `seconds`. */
  vacationRecord(account: AccountId, handle: string, sender: string, seconds: number, now: Date): Promise<void>;
  /** RFC 7352 §3: true when `id` was tracked under `handle` within `seconds` before `now`. */
  duplicateSeen(account: AccountId, handle: string, id: string, seconds: number, now: Date): Promise<boolean>;
  /** Tracks `id` (once the message was delivered), remembered for `seconds`. */
  duplicateTrack(account: AccountId, handle: string, id: string, seconds: number, now: Date): Promise<void>;
  /** Forgets entries whose period ended before `now`; how many. */
  sweep(now: Date): Promise<number>;
}

/** RFC 5804 §1.6: a script name is UTF-8 (we also want it in NFC), non-empty, without control
 *  characters (U+0000-U+001F, U+007F-U+009F) or the line and paragraph separators (U+2028,
 *  U+2029); bounded by `maxBytes`. The reason, or null when the name is fine. Linear. */
export function scriptNameProblem(name: string, maxBytes: number): string | null {
  if (name === '') return 'empty script name';
  if (Buffer.byteLength(name) > maxBytes) return `script name longer than ${maxBytes} octets`;
  if (!name.isWellFormed()) return 'script name is not valid UTF-8';
  for (let i = 0; i < name.length; i++) {
    const c = name.charCodeAt(i);
    if (c <= 0x1f || (c >= 0x7f && c <= 0x9f) || c === 0x2028 || c === 0x2029) {
      return 'script name contains a control character';
    }
  }
  if (name.normalize('NFC') !== name) return 'script name is not in Unicode NFC';
  return null;
}
