// The backup's manifest and the file operations backup and restore share (docs/backup.md).
//
// A backup directory holds `state/` (a copy of [storage] state), `maildir/` (of [storage]
// maildir) and `manifest.json`, written last and fsynced: a directory without it is an
// interrupted backup and restore refuses it. The manifest lists every directory and every file
// with its size and SHA-256, so a copy made anywhere (rsync, tar, an object store) can be
// checked before it is trusted.
// Paths in a manifest come from a file someone may have edited: restore accepts only relative
// paths under state/ or maildir/ made of plain components (no "", ".", "..", NUL, backslash).

import { createHash } from 'node:crypto';
import { constants } from 'node:fs';
import { type FileHandle, open } from 'node:fs/promises';
import { ArclineError } from '../core/errors.ts';

export const MANIFEST = 'manifest.json';
export const FORMAT = 'arcline-backup';
export const FORMAT_VERSION = 1;

export interface FileEntry {
  /** Relative to the backup directory: `state/...` or `maildir/...`. */
  readonly path: string;
  readonly size: number;
  readonly sha256: string;
}

export interface DatabaseEntry {
  readonly path: string;
  /** PRAGMA user_version of the copy. */
  readonly schema: number;
}

export interface Manifest {
  readonly format: typeof FORMAT;
  readonly version: typeof FORMAT_VERSION;
  /** The arcline version that took it. */
  readonly arcline: string;
  /** When the databases were copied: the moment the backup shows (docs/backup.md). */
  readonly created: string;
  readonly hostname: string;
  /** Where the data was ([storage] state and maildir). */
  readonly source: { readonly state: string; readonly maildir: string };
  readonly databases: readonly DatabaseEntry[];
  readonly totals: {
    readonly files: number;
    readonly bytes: number;
    readonly messages: number;
    /** Messages indexed at the snapshot but expunged before their file was copied. */
    readonly expunged: number;
    /** Queued messages delivered (or deleted) between the snapshot and the copy of their file. */
    readonly dequeued: number;
    readonly seconds: number;
  };
  /** Every directory, parents first (empty folders and tmp/ directories included). */
  readonly dirs: readonly string[];
  readonly files: readonly FileEntry[];
}

const ROOTS = new Set(['state', 'maildir']);

/** Throws unless `p` is a plain relative path under state/ or maildir/. */
export function checkPath(p: unknown): string {
  if (typeof p !== 'string' || p.length === 0 || p.length > 4096) throw invalid(`bad path ${JSON.stringify(p)}`);
  const parts = p.split('/');
  if (!ROOTS.has(parts[0] as string)) throw invalid(`path outside state/ and maildir/: ${JSON.stringify(p)}`);
  for (const c of parts) {
    if (c === '' || c === '.' || c === '..' || c.includes('\0') || c.includes('\\')) {
      throw invalid(`bad path ${JSON.stringify(p)}`);
    }
  }
  return p;
}

function invalid(what: string): ArclineError {
  return new ArclineError('INVALID', `backup manifest: ${what}`);
}

/** Parses and checks a manifest's text. */
export function parseManifest(text: string): Manifest {
  let m: Manifest;
  try {
    m = JSON.parse(text) as Manifest;
  } catch {
    throw invalid('not JSON');
  }
  if (m?.format !== FORMAT) throw invalid('not an arcline backup');
  if (m.version !== FORMAT_VERSION) throw invalid(`format version ${m.version}, this arcline reads ${FORMAT_VERSION}`);
  if (!Array.isArray(m.files) || !Array.isArray(m.dirs) || !Array.isArray(m.databases)) throw invalid('no file list');
  for (const d of m.dirs) checkPath(d);
  for (const f of m.files) {
    checkPath(f.path);
    if (!Number.isSafeInteger(f.size) || f.size < 0 || !/^[0-9a-f]{64}$/.test(String(f.sha256))) {
      throw invalid(`bad entry for ${f.path}`);
    }
  }
  return m;
}

/** Files up to this size are read whole (most messages): fewer calls than a read loop. */
const WHOLE = 1024 * 1024;

/** Copies `from` to `to` (created 0600, O_EXCL), fsyncs it, and returns its size and SHA-256.
 *  Null when `from` does not exist (a file renamed or removed meanwhile). */
export async function copyFileHashed(from: string, to: string): Promise<{ size: number; sha256: string } | null> {
  let src: FileHandle;
  try {
    src = await open(from, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
  try {
    const dst = await open(to, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, 0o600);
    try {
      let r: { size: number; sha256: string };
      if ((await src.stat()).size <= WHOLE) {
        const data = await src.readFile();
        await dst.write(data, 0, data.length);
        r = { size: data.length, sha256: createHash('sha256').update(data).digest('hex') };
      } else {
        r = await readHashed(src, (chunk) => dst.write(chunk), 0);
      }
      await dst.sync();
      return r;
    } finally {
      await dst.close();
    }
  } finally {
    await src.close();
  }
}

/** Size and SHA-256 of a file. */
export async function hashFile(path: string): Promise<{ size: number; sha256: string }> {
  const fh = await open(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  try {
    return await readHashed(fh, null, 0);
  } finally {
    await fh.close();
  }
}

/** Reads a file to its end, hashing it and handing each chunk to `sink`. */
async function readHashed(
  fh: FileHandle,
  sink: ((chunk: Buffer) => Promise<unknown>) | null,
  from: number,
): Promise<{ size: number; sha256: string }> {
  const hash = createHash('sha256');
  const buf = Buffer.allocUnsafe(256 * 1024);
  let size = 0;
  for (;;) {
    const { bytesRead } = await fh.read(buf, 0, buf.length, from + size);
    if (bytesRead === 0) break;
    const chunk = buf.subarray(0, bytesRead);
    hash.update(chunk);
    if (sink) await sink(chunk);
    size += bytesRead;
  }
  return { size, sha256: hash.digest('hex') };
}

/** fsync of a directory, so the entries made in it last. */
export async function syncDir(path: string): Promise<void> {
  const fh = await open(path, constants.O_RDONLY | constants.O_DIRECTORY);
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

/** Runs `fn` over `items` with at most `width` at a time. */
export async function eachLimited<T>(
  items: readonly T[],
  width: number,
  fn: (item: T) => Promise<void>,
): Promise<void> {
  let next = 0;
  const worker = async () => {
    while (next < items.length) await fn(items[next++] as T);
  };
  await Promise.all(Array.from({ length: Math.min(width, items.length) }, worker));
}
