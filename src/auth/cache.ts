// The verified-credential cache, like Dovecot's auth cache: after a password verified, the same
// account presenting the same secret within the TTL costs one HMAC instead of a hash.
//
// - Keyed by account; the entry holds an HMAC-SHA-256 of the secret under a key drawn at random
//   per process (never the secret itself, never a hash an attacker could grind offline) and the
//   stored hash it was verified against.
// - A hit needs the stored hash read NOW to equal the one in the entry: a password changed by the
//   CLI (another process) or a user deleted and re-created is never served from here; a deleted
//   user has no stored hash and never gets this far.
// - Only successes are cached: a wrong password is always verified in full.
// - Bounded: at most `size` entries (the least recently used go first), each `ttlMs` at most.

import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import type { AccountId } from '../core/ids.ts';
import { LruMap } from '../core/lru.ts';

interface Entry {
  readonly stored: string;
  readonly mac: Buffer;
  readonly expires: number;
}

export class CredentialCache {
  readonly #key = randomBytes(32);
  readonly #entries: LruMap<AccountId, Entry>;
  readonly #size: number;
  readonly #ttlMs: number;
  readonly #now: () => number;

  constructor(opts: { size: number; ttlMs: number; now?: () => number }) {
    this.#size = opts.size;
    this.#ttlMs = opts.ttlMs;
    this.#entries = new LruMap(Math.max(1, opts.size));
    this.#now = opts.now ?? Date.now;
  }

  get enabled(): boolean {
    return this.#size > 0 && this.#ttlMs > 0;
  }

  get size(): number {
    return this.#entries.size;
  }

  #mac(account: AccountId, secret: string): Buffer {
    return createHmac('sha256', this.#key).update(account).update('\0').update(secret).digest();
  }

  /** True when `secret` was verified for `account` against `stored` within the TTL. */
  hit(account: AccountId, stored: string, secret: string): boolean {
    const e = this.#entries.get(account);
    if (!e) return false;
    if (e.expires <= this.#now() || e.stored !== stored) {
      this.#entries.delete(account);
      return false;
    }
    return timingSafeEqual(e.mac, this.#mac(account, secret));
  }

  put(account: AccountId, stored: string, secret: string): void {
    if (!this.enabled) return;
    this.#entries.set(account, { stored, mac: this.#mac(account, secret), expires: this.#now() + this.#ttlMs });
  }

  /** Drops the account's entry (password changed or user deleted through this process). */
  forget(account: AccountId): void {
    this.#entries.delete(account);
  }
}
