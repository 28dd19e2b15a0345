// Binary data of JMAP (RFC 8620 §6): uploads and what downloads and Blob/copy read. The
// interface is what jmap/ uses; `FileBlobStore` keeps uploads under {state}/jmap-blobs/{account
// id}/ (files 0600, fsynced, then renamed into place and the directory fsynced), removed an
// hour after their last upload unless `keep` marked them referenced (§6.1: "the server MAY
// delete unreferenced blobs"). Later parts (Email, attachments) register resolvers so their
// blobs (a message file, a MIME part) open through the same `open` (download, Blob/copy).
// Blob ids are content-addressed ("B" + 32 base64url characters of SHA-256): uploading the same
// bytes twice gives the same blob.
// This file writes files from jmap/; it is meant to move under store/ when that seam grows a
// blob interface (docs/architecture.md §1 "jmap/").

import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';

export interface BlobContent {
  readonly size: number;
  /** The blob's bytes (a fresh stream on each call). */
  stream(): Readable;
}

/** Finds a blob another part of the server owns (an Email, an attachment); null if not its.
 *  `account` is the signed-in user's account (the store's name for it), when the caller knows it. */
export type BlobResolver = (accountId: string, blobId: string, account?: AccountId) => Promise<BlobContent | null>;

export interface BlobStore {
  /** Stores the bytes of `source` for `accountId`; 'too large' (and nothing kept) past
   *  `maxSize` bytes, 'over quota' past the account's room for unreferenced uploads. */
  put(accountId: string, source: AsyncIterable<Buffer>, maxSize: number): Promise<PutResult>;
  /** The blob, from the uploads or any resolver; null when unknown to this account. Resolvers
   *  of stored mail need `account` (the account `accountId` names). */
  open(accountId: string, blobId: string, account?: AccountId): Promise<BlobContent | null>;
  /** Marks an uploaded blob as referenced (it no longer expires); false if unknown. */
  keep(accountId: string, blobId: string): Promise<boolean>;
  addResolver(resolver: BlobResolver): void;
  /** Removes unreferenced uploads older than the expiry; returns how many. */
  sweep(now?: number): Promise<number>;
}

export type PutResult = { blobId: string; size: number } | 'too large' | 'over quota';

const BLOB_ID = /^B[A-Za-z0-9_-]{32}$/;
const ACCOUNT_ID = /^A[A-Za-z0-9_-]{1,64}$/;

export class FileBlobStore implements BlobStore {
  readonly #root: string;
  readonly #resolvers: BlobResolver[] = [];
  readonly #expiryMs: number;

  readonly #room: { bytes: number; files: number };

  constructor(
    stateDir: string,
    expiryMs: number = LIMITS.jmap.blobExpiryMs,
    room: { bytes: number; files: number } = {
      bytes: LIMITS.jmap.maxPendingUploadBytes,
      files: LIMITS.jmap.maxPendingUploads,
    },
  ) {
    this.#root = join(stateDir, 'jmap-blobs');
    this.#expiryMs = expiryMs;
    this.#room = room;
  }

  /** Bytes and files of the account's unreferenced uploads (temp files included). */
  async #pending(dir: string): Promise<{ bytes: number; files: number }> {
    let bytes = 0;
    let files = 0;
    for (const name of await readdir(dir).catch(() => [] as string[])) {
      if (name.endsWith('.keep')) continue;
      const st = await stat(join(dir, name)).catch(() => null);
      if (!st) continue;
      bytes += st.size;
      files++;
    }
    return { bytes, files };
  }

  #dir(accountId: string): string {
    if (!ACCOUNT_ID.test(accountId)) throw new Error('bad account id');
    return join(this.#root, accountId);
  }

  async put(accountId: string, source: AsyncIterable<Buffer>, maxSize: number): Promise<PutResult> {
    const dir = this.#dir(accountId);
    await mkdir(dir, { recursive: true, mode: 0o700 });
    const pending = await this.#pending(dir);
    if (pending.files >= this.#room.files) return 'over quota';
    const room = this.#room.bytes - pending.bytes;
    const tmp = join(dir, `tmp-${randomBytes(8).toString('hex')}`);
    const fh = await open(tmp, 'wx', 0o600);
    const hash = createHash('sha256');
    let size = 0;
    let done = false;
    try {
      for await (const chunk of source) {
        size += chunk.length;
        if (size > maxSize) return 'too large';
        if (size > room) return 'over quota';
        hash.update(chunk);
        await fh.write(chunk);
      }
      await fh.sync();
      done = true;
    } finally {
      await fh.close();
      if (!done) await rm(tmp, { force: true });
    }
    const blobId = `B${hash.digest('base64url').slice(0, 32)}`;
    const kept = join(dir, `${blobId}.keep`);
    if (await exists(kept)) {
      await rm(tmp, { force: true });
      return { blobId, size };
    }
    // A new upload of the same bytes starts the blob's hour again.
    await rename(tmp, join(dir, blobId));
    const d = await open(dir, 'r');
    try {
      await d.sync();
    } finally {
      await d.close();
    }
    return { blobId, size };
  }

  async open(accountId: string, blobId: string, account?: AccountId): Promise<BlobContent | null> {
    if (BLOB_ID.test(blobId) && ACCOUNT_ID.test(accountId)) {
      for (const name of [blobId, `${blobId}.keep`]) {
        const path = join(this.#dir(accountId), name);
        const st = await stat(path).catch(() => null);
        if (st?.isFile()) return { size: st.size, stream: () => createReadStream(path) };
      }
    }
    for (const r of this.#resolvers) {
      const found = await r(accountId, blobId, account);
      if (found) return found;
    }
    return null;
  }

  async keep(accountId: string, blobId: string): Promise<boolean> {
    if (!BLOB_ID.test(blobId)) return false;
    const dir = this.#dir(accountId);
    try {
      await rename(join(dir, blobId), join(dir, `${blobId}.keep`));
      return true;
    } catch {
      return exists(join(dir, `${blobId}.keep`));
    }
  }

  addResolver(resolver: BlobResolver): void {
    this.#resolvers.push(resolver);
  }

  async sweep(now = Date.now()): Promise<number> {
    let removed = 0;
    const accounts = await readdir(this.#root).catch(() => [] as string[]);
    for (const a of accounts) {
      if (!ACCOUNT_ID.test(a)) continue;
      const dir = join(this.#root, a);
      for (const name of await readdir(dir).catch(() => [] as string[])) {
        if (name.endsWith('.keep')) continue;
        const path = join(dir, name);
        const st = await stat(path).catch(() => null);
        if (st && now - st.mtimeMs > this.#expiryMs) {
          await rm(path, { force: true });
          removed++;
        }
      }
    }
    return removed;
  }

  /** For tests: makes a blob look `ageMs` old. */
  async age(accountId: string, blobId: string, ageMs: number): Promise<void> {
    const t = new Date(Date.now() - ageMs);
    await utimes(join(this.#dir(accountId), blobId), t, t);
  }
}

async function exists(path: string): Promise<boolean> {
  return (await stat(path).catch(() => null)) !== null;
}
