// What a folder keeps beside its Maildir files so that an index rebuilt from the files (the
// index lost) gives each mailbox what it had (maildir/account.ts #newIndexEntry): the last
// UIDVALIDITY (a new one must exceed it, RFC 9051 §2.3.1.1), the stable id (store/ids.ts) and the
// JMAP sortOrder (RFC 8621 §2). Each is a small text file, replaced whole (write + rename).

import { randomBytes } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
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

/** Replaces `file` of the folder with `text` (write + rename: never half written). The
 *  temporary name is unique: two writers of one folder (a delivery being indexed and a LIST
 *  with ids, or two nodes on a shared volume) each rename their own, and the last one stays
 *  (both write what the index gave the mailbox). */
export async function keepFile(dir: string, file: string, text: string): Promise<void> {
  const path = join(dir, file);
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, text, { mode: 0o600 });
    await rename(tmp, path);
  } catch (e) {
    await rm(tmp, { force: true });
    throw e;
  }
}

/** fn over every item, 64 at a time (an account may have thousands of folders). */
export async function inBatches<T, R>(items: readonly T[], fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out: R[] = [];
  for (let i = 0; i < items.length; i += 64) {
    out.push(...(await Promise.all(items.slice(i, i + 64).map((x, k) => fn(x, i + k)))));
  }
  return out;
}
