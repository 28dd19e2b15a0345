// Password hashes. New hashes are Argon2id (RFC 9106; `$argon2id$v=19$m=...`) or bcrypt (`$2b$`),
// as [auth] password_scheme says. Stored hashes of every supported scheme verify, including those
// imported from Dovecot: bcrypt `$2a$/$2b$/$2y$` (`{BLF-CRYPT}`), Argon2 `$argon2id$`/`$argon2i$`
// (`{ARGON2ID}`, `{ARGON2I}`) and SHA-512-crypt `$6$` (`{SHA512-CRYPT}`).
//
// Nothing here runs a hash on the event loop: bcrypt and Argon2 are native (@node-rs/bcrypt,
// @node-rs/argon2: prebuilt N-API, they run on libuv's thread pool), SHA-512-crypt runs in a
// worker thread (crypt-worker.ts). How many run at once is bounded by the caller (auth/hasher.ts).
// Verification never throws on a malformed hash (it is simply not a match), refuses stored
// parameters beyond LIMITS.auth (an imported `$2b$31$` would take days) and compares digests in
// constant time.

import { timingSafeEqual } from 'node:crypto';
import { availableParallelism } from 'node:os';
import { Worker } from 'node:worker_threads';
import { hash as argon2Hash, verify as argon2Verify } from '@node-rs/argon2';
import { hash as bcryptHash, verify as bcryptVerify } from '@node-rs/bcrypt';
import { LIMITS } from '../core/limits.ts';

export { sha512Crypt } from './sha512-crypt.ts';

/** @node-rs/argon2's Algorithm.Argon2id (a const enum, which isolated modules cannot read). */
const ARGON2ID = 2;

export type PasswordScheme = 'argon2id' | 'bcrypt';

export interface HashOptions {
  readonly scheme: PasswordScheme;
  /** bcrypt cost (2^cost rounds) when scheme is bcrypt. */
  readonly bcryptCost: number;
}

/** A new hash of `plain`; a number is a bcrypt cost (the scheme before Argon2id). */
export async function hashPassword(plain: string, opts: HashOptions | number): Promise<string> {
  const o = typeof opts === 'number' ? { scheme: 'bcrypt' as const, bcryptCost: opts } : opts;
  if (o.scheme === 'bcrypt') return bcryptHash(plain, o.bcryptCost);
  // RFC 9106 §4: Argon2id, 16-byte salt (the library's), 32-byte tag.
  return argon2Hash(plain, { algorithm: ARGON2ID, outputLen: 32, ...LIMITS.auth.argon2 });
}

type StoredKind = 'bcrypt' | 'argon2' | 'sha512';

/** Strips a Dovecot `{SCHEME}` prefix; returns the scheme (upper case) and the hash. */
function splitScheme(stored: string): { scheme: string | null; hash: string } {
  if (!stored.startsWith('{')) return { scheme: null, hash: stored };
  const end = stored.indexOf('}');
  if (end < 2 || end > 32) return { scheme: '', hash: stored };
  return { scheme: stored.slice(1, end).toUpperCase(), hash: stored.slice(end + 1) };
}

const PREFIX_SCHEMES: Record<StoredKind, readonly string[]> = {
  bcrypt: ['BLF-CRYPT'],
  argon2: ['ARGON2ID', 'ARGON2I'],
  sha512: ['SHA512-CRYPT'],
};

/** The kind of a stored hash and the hash without its prefix, or a reason it cannot be used
 *  (unknown scheme, malformed, or parameters beyond LIMITS.auth). */
export function parseStoredHash(stored: string): { kind: StoredKind; hash: string } | { problem: string } {
  if (stored.length > 512) return { problem: 'the hash is too long' };
  const { scheme, hash } = splitScheme(stored);
  let kind: StoredKind;
  const bcrypt = /^\$2[aby]\$(\d\d)\$[./A-Za-z0-9]{53}$/.exec(hash);
  if (bcrypt) {
    kind = 'bcrypt';
    const cost = Number(bcrypt[1]);
    if (cost < 4 || cost > LIMITS.auth.maxBcryptCost) {
      return { problem: `bcrypt cost ${cost} is outside 4..${LIMITS.auth.maxBcryptCost}` };
    }
  } else if (hash.startsWith('$6$')) {
    kind = 'sha512';
    const r = /^\$6\$(?:rounds=(\d{1,10})\$)?[^$]{0,16}\$[./A-Za-z0-9]{86}$/.exec(hash);
    if (!r) return { problem: 'malformed SHA-512-crypt hash' };
    if (Number(r[1] ?? 5000) > LIMITS.auth.maxSha512Rounds) {
      return { problem: `SHA-512-crypt rounds above ${LIMITS.auth.maxSha512Rounds}` };
    }
  } else if (hash.startsWith('$argon2')) {
    kind = 'argon2';
    // PHC string format: $argon2id$v=19$m=65536,t=3,p=4$salt$tag (RFC 9106 §5 parameters).
    const a =
      /^\$argon2(id|i)\$v=19\$m=(\d{1,10}),t=(\d{1,10}),p=(\d{1,3})\$[A-Za-z0-9+/]{11,64}\$[A-Za-z0-9+/]{16,128}$/.exec(
        hash,
      );
    if (!a) return { problem: 'malformed Argon2 hash (argon2id or argon2i, version 19)' };
    const [m, t, p] = [Number(a[2]), Number(a[3]), Number(a[4])];
    if (m > LIMITS.auth.maxArgon2MemoryKib || t > LIMITS.auth.maxArgon2Time || p > LIMITS.auth.maxArgon2Parallelism) {
      return {
        problem: `Argon2 parameters above m=${LIMITS.auth.maxArgon2MemoryKib},t=${LIMITS.auth.maxArgon2Time},p=${LIMITS.auth.maxArgon2Parallelism}`,
      };
    }
    if (scheme === 'ARGON2ID' && a[1] !== 'id') return { problem: 'the {ARGON2ID} prefix names another variant' };
    if (scheme === 'ARGON2I' && a[1] !== 'i') return { problem: 'the {ARGON2I} prefix names another variant' };
  } else {
    return { problem: 'unsupported hash (bcrypt, Argon2id/Argon2i or SHA-512-crypt)' };
  }
  if (scheme !== null && !PREFIX_SCHEMES[kind].includes(scheme)) {
    return { problem: `the {${scheme}} prefix does not match the hash` };
  }
  return { kind, hash };
}

/** True when `plain` matches `stored`. Runs off the event loop; never throws. */
export async function verifyPasswordHash(stored: string, plain: string): Promise<boolean> {
  const parsed = parseStoredHash(stored);
  if ('problem' in parsed) return false;
  if (Buffer.byteLength(plain) > LIMITS.auth.maxPasswordBytes) return false;
  try {
    switch (parsed.kind) {
      case 'bcrypt':
        return await bcryptVerify(plain, parsed.hash);
      case 'argon2':
        return await argon2Verify(parsed.hash, plain);
      case 'sha512': {
        const computed = await cryptWorkers.sha512(plain, parsed.hash);
        return computed !== null && constantTimeEqual(computed, parsed.hash);
      }
    }
  } catch {
    return false;
  }
}

/** Time-constant comparison of two strings (length differences return false at once, which
 *  reveals only the length of a hash, not of a secret). */
export function constantTimeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

const dummies = new Map<string, Promise<string>>();

/** Spends the time of a verification of the configured scheme for a user that does not exist,
 *  so a login attempt cannot tell unknown users from wrong passwords by timing. */
export async function verifyDummy(plain: string, opts: HashOptions | number): Promise<false> {
  const o = typeof opts === 'number' ? { scheme: 'bcrypt' as const, bcryptCost: opts } : opts;
  const key = `${o.scheme}:${o.bcryptCost}`;
  let dummy = dummies.get(key);
  if (!dummy) {
    dummy = hashPassword('arcline dummy password', o);
    dummies.set(key, dummy);
  }
  await verifyPasswordHash(await dummy, plain.slice(0, LIMITS.auth.maxPasswordBytes));
  return false;
}

/** Worker threads for SHA-512-crypt, started on first use, one per CPU core at most; idle ones
 *  do not keep the process alive. */
class CryptWorkers {
  readonly #slots: Slot[] = [];
  #next = 0;

  sha512(plain: string, setting: string): Promise<string | null> {
    const slot = this.#pick();
    const id = this.#next++;
    return new Promise((resolve) => {
      slot.pending.set(id, resolve);
      if (slot.pending.size === 1) slot.worker.ref();
      slot.worker.postMessage({ id, plain, setting });
    });
  }

  #pick(): Slot {
    const idle = this.#slots.find((w) => w.pending.size === 0);
    if (idle) return idle;
    if (this.#slots.length < availableParallelism()) return this.#start();
    return this.#slots.reduce((a, b) => (b.pending.size < a.pending.size ? b : a));
  }

  #start(): Slot {
    const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
    const worker = new Worker(new URL(`./crypt-worker.${ext}`, import.meta.url));
    worker.unref();
    const slot: Slot = { worker, pending: new Map() };
    const settle = (id: number, hash: string | null) => {
      const done = slot.pending.get(id);
      slot.pending.delete(id);
      if (slot.pending.size === 0) worker.unref();
      done?.(hash);
    };
    worker.on('message', (m: { id: number; hash: string | null }) => settle(m.id, m.hash));
    // A worker that dies answers "no match" for what it held and is replaced on next use.
    const gone = () => {
      const i = this.#slots.indexOf(slot);
      if (i >= 0) this.#slots.splice(i, 1);
      for (const id of [...slot.pending.keys()]) settle(id, null);
    };
    worker.on('error', gone);
    worker.on('exit', gone);
    this.#slots.push(slot);
    return slot;
  }
}

interface Slot {
  readonly worker: Worker;
  readonly pending: Map<number, (hash: string | null) => void>;
}

const cryptWorkers = new CryptWorkers();
