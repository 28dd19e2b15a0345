// What a folder keeps beside its Maildir files so that an index rebuilt from the files (the
// index lost) gives each mailbox what it had (maildir/account.ts #newIndexEntry): the last
// UIDVALIDITY (a new one must exceed it, RFC 9051 §2.3.1.1), the stable id (store/ids.ts) and the
// JMAP sortOrder (RFC 8621 §2). Each is a small text file, replaced whole (write + rename).

import { readFile, rename, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

/** Last UIDVALIDITY of a mailbox, kept beside its files. */
export const UIDVALIDITY_FILE = 'arcline-uidvalidity';
/** The mailbox's stable id (store/ids.ts), kept beside its files: an index rebuilt from the
 *  files gives the mailbox the same id (INBOX's is in the account directory). */
export const ID_FILE = 'arcline-id';
/** The mailbox's sortOrder when not 0 (RFC 8621 §2; absent: 0). */
export const SORT_ORDER_FILE = 'arcline-sort-order';

export interface Kept {
  readonly minValidity: number;
  readonly oid: string;
  readonly sortOrder: number;
}

/** The UIDVALIDITY floor, the id and the sortOrder a folder keeps in its files. */
export async function keptInFolder(dir: string): Promise<Kept> {
  const read = (f: string) => readFile(join(dir, f), 'utf8').catch(() => '');
  const previous = Number.parseInt(await read(UIDVALIDITY_FILE), 10) || 0;
  const oid = (await read(ID_FILE)).trim();
  const order = Number((await read(SORT_ORDER_FILE)).trim() || '0');
  return { minValidity: previous + 1, oid, sortOrder: isSortOrder(order) ? order : 0 };
}

/** RFC 8621 §2 sortOrder: an UnsignedInt (RFC 8620 §1.3: 0 to 2^53-1). */
export function isSortOrder(n: unknown): n is number {
  return typeof n === 'number' && Number.isSafeInteger(n) && n >= 0;
}

/** Replaces `file` of the folder with `text` (write + rename: never half written). */
export async function keepFile(dir: string, file: string, text: string): Promise<void> {
  const path = join(dir, file);
  await writeFile(`${path}.tmp`, text, { mode: 0o600 });
  await rename(`${path}.tmp`, path);
}

/** fn over every item, 64 at a time (an account may have thousands of folders). */
export async function inBatches<T, R>(items: readonly T[], fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += 64) {
    out.push(...(await Promise.all(items.slice(i, i + 64).map((x, k) => fn(x, i + k)))));
  }
  return out;
}
