// Authentication helpers for IMAP and submission: SASL PLAIN decoding (RFC 4616) and a
// limiter for failed logins per client address and per user name. Failures make the next
// attempt wait longer (1 s doubling up to 8 s); past `maxFailures` within `windowMs` the key is
// refused outright until the window passes. Memory is bounded: entries expire and the map is
// capped.

export function decodePlain(b64: string): { user: string; password: string } | null {
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || b64.length > 4096) return null;
  const parts = Buffer.from(b64, 'base64').toString('utf8').split('\0');
  if (parts.length !== 3) return null;
  const [authz, user, password] = parts as [string, string, string];
  // We do not support acting as another user (authorization identity).
  if (authz !== '' && authz !== user) return null;
  if (user === '' || password === '') return null;
  return { user, password };
}

interface Entry {
  failures: number;
  first: number;
}

export class AuthLimiter {
  readonly #entries = new Map<string, Entry>();
  readonly #maxFailures: number;
  readonly #windowMs: number;

  constructor(opts: { maxFailures?: number; windowMs?: number } = {}) {
    this.#maxFailures = opts.maxFailures ?? 10;
    this.#windowMs = opts.windowMs ?? 15 * 60_000;
  }

  #get(key: string): Entry | undefined {
    const e = this.#entries.get(key);
    if (e && Date.now() - e.first > this.#windowMs) {
      this.#entries.delete(key);
      return undefined;
    }
    return e;
  }

  /** 'blocked', or the delay (ms) to add to a failure answer. */
  check(ip: string, user: string): number | 'blocked' {
    const worst = Math.max(
      this.#get(`ip:${ip}`)?.failures ?? 0,
      this.#get(`user:${user.toLowerCase()}`)?.failures ?? 0,
    );
    if (worst >= this.#maxFailures) return 'blocked';
    return Math.min(8000, 1000 * 2 ** Math.max(0, worst - 1));
  }

  failed(ip: string, user: string): void {
    for (const key of [`ip:${ip}`, `user:${user.toLowerCase()}`]) {
      const e = this.#get(key) ?? { failures: 0, first: Date.now() };
      e.failures++;
      this.#entries.set(key, e);
    }
    if (this.#entries.size > 100_000) {
      const oldest = this.#entries.keys().next().value;
      if (oldest !== undefined) this.#entries.delete(oldest);
    }
  }

  /** A successful login clears the user's count, not the address's: one valid account must
   *  not wash an attacking address clean. */
  succeeded(_ip: string, user: string): void {
    this.#entries.delete(`user:${user.toLowerCase()}`);
  }
}
