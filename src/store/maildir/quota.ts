// Storage used by an account, for quotas (RFC 9208 STORAGE; enforced at SMTP delivery and IMAP
// APPEND/COPY). The Maildir is the truth: the sum of the sizes of every message file in new/
// and cur/ of INBOX and every folder, read from the `,S=` in the file names (Maildir++, as
// Dovecot does) or stat() for names without it. Expunged files waiting in tmp/ do not count.
// A scan is cached per account for a short while and adjusted by our own deliveries; other
// programs' changes are seen at the next scan.

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { AccountId } from '../../core/ids.ts';
import { accountDir } from './layout.ts';
import { sizeFromName } from './naming.ts';

const CACHE_MS = 10_000;

export class QuotaUsage {
  readonly #root: string;
  readonly #cache = new Map<AccountId, { bytes: number; at: number }>();

  constructor(root: string) {
    this.#root = root;
  }

  /** Bytes used by the account's messages. */
  async usage(account: AccountId): Promise<number> {
    const hit = this.#cache.get(account);
    if (hit && Date.now() - hit.at < CACHE_MS) return hit.bytes;
    const bytes = await this.#scan(account);
    this.#cache.set(account, { bytes, at: Date.now() });
    return bytes;
  }

  /** Our own change of `delta` bytes (a delivery); keeps a cached figure right. */
  adjust(account: AccountId, delta: number): void {
    const hit = this.#cache.get(account);
    if (hit) hit.bytes = Math.max(0, hit.bytes + delta);
  }

  /** Forget the figure (after APPEND, COPY, EXPUNGE by us). */
  invalidate(account: AccountId): void {
    this.#cache.delete(account);
  }

  async #scan(account: AccountId): Promise<number> {
    const acct = accountDir(this.#root, account);
    const dirs = [acct];
    for (const d of await readdir(acct, { withFileTypes: true }).catch(() => [])) {
      if (d.isDirectory() && d.name.startsWith('.') && d.name !== '.' && d.name !== '..') dirs.push(join(acct, d.name));
    }
    let total = 0;
    for (const dir of dirs) {
      for (const sub of ['new', 'cur']) {
        const path = join(dir, sub);
        for (const name of await readdir(path).catch(() => [] as string[])) {
          const size = sizeFromName(name);
          if (size !== null) total += size;
          else total += (await stat(join(path, name)).catch(() => null))?.size ?? 0;
        }
      }
    }
    return total;
  }
}
