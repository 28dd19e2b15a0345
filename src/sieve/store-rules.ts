// What every SieveScripts/SieveState implementation (sqlite-store.ts, postgres-store.ts) decides
// the same way: the quota refusal and the hashed state key. Pure.

import { createHash } from 'node:crypto';
import { LIMITS } from '../core/limits.ts';
import { type SieveQuota, SieveStoreError } from './store-types.ts';

export const DEFAULT_SIEVE_QUOTA: SieveQuota = {
  maxScripts: LIMITS.sieve.defaultMaxScripts,
  maxScriptBytes: LIMITS.sieve.maxScriptBytes,
  maxStorageBytes: LIMITS.sieve.defaultMaxStorageBytes,
};

export type SieveStateKind = 'vacation' | 'duplicate';

/** SHA-256 of the parts (NUL-separated: no two tuples share a key). */
export function stateKey(handle: string, value: string): Buffer {
  return createHash('sha256').update(handle).update('\0').update(value).digest();
}

/** The value a state kind is keyed by: vacation senders without case (RFC 5230 §4.1 uses the
 *  envelope sender as given; a differently cased retry is the same correspondent). */
export function stateValue(kind: SieveStateKind, value: string): string {
  return kind === 'vacation' ? value.toLowerCase() : value;
}

/** The refusal of `size` octets under a name (`replacing`: a script of that name exists), given
 *  the account's other scripts (`others`: count, octets), or null (RFC 5804 §1.3 QUOTA codes). */
export function quotaRefusal(
  quota: SieveQuota,
  size: number,
  others: { readonly n: number; readonly bytes: number },
  replacing: boolean,
): SieveStoreError | null {
  const maxSize = Math.min(quota.maxScriptBytes || Number.POSITIVE_INFINITY, LIMITS.sieve.maxScriptBytes);
  if (size > maxSize) return new SieveStoreError('QUOTA/MAXSIZE', `Script over ${maxSize} octets`);
  if (!replacing && quota.maxScripts > 0 && others.n >= quota.maxScripts) {
    return new SieveStoreError('QUOTA/MAXSCRIPTS', `At most ${quota.maxScripts} scripts`);
  }
  if (quota.maxStorageBytes > 0 && others.bytes + size > quota.maxStorageBytes) {
    return new SieveStoreError('QUOTA', `Scripts over ${quota.maxStorageBytes} octets in total`);
  }
  return null;
}
