// Password hashes. New hashes are bcrypt (`$2b$`, cost from [auth] bcrypt_cost). Hashes
// imported from Dovecot are verified too: bcrypt `$2a$/$2b$/$2y$` (Dovecot `{BLF-CRYPT}`) and
// SHA-512-crypt `$6$` (Dovecot `{SHA512-CRYPT}`), the latter implemented here after Ulrich
// Drepper's specification "Unix crypt using SHA-256 and SHA-512" (akkadia.org/drepper/SHA-crypt.txt).
// Verification never throws on a malformed hash (it is simply not a match) and compares
// digests in constant time.

import { createHash, timingSafeEqual } from 'node:crypto';
import bcrypt from 'bcryptjs';

export async function hashPassword(plain: string, cost: number): Promise<string> {
  return bcrypt.hash(plain, cost);
}

/** Strips a Dovecot `{SCHEME}` prefix; returns the scheme (upper case) and the hash. */
function splitScheme(stored: string): { scheme: string | null; hash: string } {
  const m = /^\{([A-Za-z0-9.-]+)\}(.*)$/s.exec(stored);
  return m ? { scheme: (m[1] ?? '').toUpperCase(), hash: m[2] ?? '' } : { scheme: null, hash: stored };
}

export async function verifyPasswordHash(stored: string, plain: string): Promise<boolean> {
  const { scheme, hash } = splitScheme(stored);
  try {
    if (/^\$2[aby]\$\d\d\$[./A-Za-z0-9]{53}$/.test(hash) && (scheme === null || scheme === 'BLF-CRYPT')) {
      return await bcrypt.compare(plain, hash);
    }
    if (hash.startsWith('$6$') && (scheme === null || scheme === 'SHA512-CRYPT')) {
      const computed = sha512Crypt(plain, hash);
      return computed !== null && constantTimeEqual(computed, hash);
    }
  } catch {
    return false;
  }
  return false;
}

/** Time-constant comparison of two strings (length differences return false at once, which
 *  reveals only the length of a hash, not of a secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

let dummy: Promise<string> | null = null;

/** Spends the time of a bcrypt verification for a user that does not exist, so a login
 *  attempt cannot tell unknown users from wrong passwords by timing. */
export async function verifyDummy(plain: string, cost: number): Promise<false> {
  dummy ??= bcrypt.hash('arcline dummy password', cost);
  await bcrypt.compare(plain, await dummy);
  return false;
}

// ---- SHA-512-crypt (Drepper) ----

const ITOA64 = './0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz';
const ROUNDS_DEFAULT = 5000;
const ROUNDS_MIN = 1000;
const ROUNDS_MAX = 999_999_999;

/** Computes `$6$[rounds=N$]salt$hash` for `plain` with the parameters of `setting`; null when
 *  the setting is malformed. */
export function sha512Crypt(plain: string, setting: string): string | null {
  const m = /^\$6\$(?:rounds=(\d{1,10})\$)?([^$]*)/.exec(setting);
  if (!m) return null;
  const custom = m[1] !== undefined;
  const rounds = custom ? Math.min(ROUNDS_MAX, Math.max(ROUNDS_MIN, Number(m[1]))) : ROUNDS_DEFAULT;
  const salt = Buffer.from((m[2] ?? '').slice(0, 16));
  const p = Buffer.from(plain);
  const sha = () => createHash('sha512');

  const b = sha().update(p).update(salt).update(p).digest();
  const a = sha().update(p).update(salt);
  let i: number;
  for (i = p.length; i > 64; i -= 64) a.update(b);
  a.update(b.subarray(0, i));
  for (i = p.length; i > 0; i >>= 1) a.update(i & 1 ? b : p);
  let c = a.digest();

  const dp = sha();
  for (i = 0; i < p.length; i++) dp.update(p);
  const pSeq = stretch(dp.digest(), p.length);
  const ds = sha();
  for (i = 0; i < 16 + (c[0] ?? 0); i++) ds.update(salt);
  const sSeq = stretch(ds.digest(), salt.length);

  for (let r = 0; r < rounds; r++) {
    const h = sha();
    h.update(r & 1 ? pSeq : c);
    if (r % 3) h.update(sSeq);
    if (r % 7) h.update(pSeq);
    h.update(r & 1 ? c : pSeq);
    c = h.digest();
  }

  let out = '';
  const b64 = (b2: number, b1: number, b0: number, n: number) => {
    let w = (b2 << 16) | (b1 << 8) | b0;
    for (let k = 0; k < n; k++) {
      out += ITOA64[w & 0x3f];
      w >>= 6;
    }
  };
  for (let k = 0; k < 21; k++) {
    const t = [c[k] ?? 0, c[k + 21] ?? 0, c[k + 42] ?? 0];
    const rot = k % 3; // the spec's byte order: (k, k+21, k+42) rotated by k mod 3
    b64(t[rot % 3] as number, t[(rot + 1) % 3] as number, t[(rot + 2) % 3] as number, 4);
  }
  b64(0, 0, c[63] ?? 0, 2);
  return `$6$${custom ? `rounds=${rounds}$` : ''}${salt.toString()}$${out}`;
}

/** `digest` repeated to `length` bytes. */
function stretch(digest: Buffer, length: number): Buffer {
  const out = Buffer.alloc(length);
  for (let i = 0; i < length; i += 64) digest.copy(out, i, 0, Math.min(64, length - i));
  return out;
}
