// File modes and ownership of the data arcline keeps. Everything under the state directory and
// the Maildir root is private to the account the server runs as: files 0600, directories 0700,
// whatever the umask and the parent directory's mode (the database holds password hashes, the
// state directory private keys, the Maildir everyone's mail).
//
// Most files are created with an explicit mode (open(..., 0o600), mkdir(..., 0o700)), which the
// umask can only narrow. What cannot be given a mode is made private here: SQLite databases
// (node:sqlite creates them with 0666 & ~umask) and the roots an operator may have created.

import { chmodSync, closeSync, constants, lstatSync, mkdirSync, opendirSync, openSync, type Stats } from 'node:fs';
import { chmod, lstat, open, readdir, rename } from 'node:fs/promises';
import { dirname, join } from 'node:path';

export const PRIVATE_FILE_MODE = 0o600;
export const PRIVATE_DIR_MODE = 0o700;

/** Numeric owner of files (the account the server runs as). */
export interface Owner {
  readonly uid: number;
  readonly gid: number;
}

/** Creates `path` empty with mode 0600 if it is missing, and narrows it to 0600 if it exists
 *  with group or other bits. An existing file is never opened: closing any descriptor of a file
 *  drops every POSIX lock this process holds on it, and SQLite connections of this process
 *  (the server and the test harness's admin context) may hold some. */
export function ensurePrivateFileSync(path: string): void {
  try {
    closeSync(openSync(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL, PRIVATE_FILE_MODE));
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'EEXIST') throw e;
    tightenFileSync(path);
  }
}

/** Narrows an existing regular file to 0600 (nothing if it is missing); see above. */
export function tightenFileSync(path: string): void {
  const st = lstatOrNull(path);
  if (st?.isFile() && (st.mode & 0o077) !== 0) chmodSync(path, PRIVATE_FILE_MODE);
}

function lstatOrNull(path: string): Stats | null {
  try {
    return lstatSync(path);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw e;
  }
}

/** mkdir -p with 0700 for every level it creates, each given to `owner` when one is named (the
 *  process is root and about to become that account). Returns whether anything was created. */
export function makePrivateDirSync(dir: string, owner: Owner | null, chown: ChownSync | null = null): boolean {
  const first = mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  if (first === undefined) return false;
  if (owner && chown) {
    // mkdirSync returns the first directory it made; every level from there down to `dir` is new.
    const levels: string[] = [];
    for (let d = dir; ; d = dirname(d)) {
      levels.push(d);
      if (d === first || dirname(d) === d) break;
    }
    for (const d of levels) chown(d, owner.uid, owner.gid);
  }
  return true;
}

export type ChownSync = (path: string, uid: number, gid: number) => void;

/** The first of `paths` (that exists) not owned by `uid`, with its owner; null when all are. */
export function firstForeignOwner(paths: readonly string[], uid: number): { path: string; uid: number } | null {
  for (const p of paths) {
    const st = lstatOrNull(p);
    if (st && st.uid !== uid) return { path: p, uid: st.uid };
  }
  return null;
}

/** `dir` and its direct entries, at most `max` of them (a start-up check, not a full walk). */
export function dirAndEntries(dir: string, max: number): string[] {
  const out = [dir];
  if (!lstatOrNull(dir)?.isDirectory()) return out;
  const entries = opendirSync(dir);
  try {
    for (let e = entries.readSync(); e && out.length <= max; e = entries.readSync()) out.push(join(dir, e.name));
  } finally {
    entries.closeSync();
  }
  return out;
}

export interface FixReport {
  /** Entries looked at. */
  checked: number;
  /** Entries whose mode was narrowed. */
  chmodded: number;
}

/** The mode half of `arcline fix-permissions`: walks `root` and narrows files to 0600 and
 *  directories to 0700. Symbolic links are neither followed nor changed. Run it as the account
 *  that owns the tree, never as root (ownership is changed before, by chown(1), whose traversal
 *  is safe against a tree changing under it). Iterative: a deep tree cannot exhaust the stack. */
export async function narrowModes(root: string, report: FixReport): Promise<void> {
  const stack = [root];
  for (let path = stack.pop(); path !== undefined; path = stack.pop()) {
    let st: Awaited<ReturnType<typeof lstat>>;
    try {
      st = await lstat(path);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue; // removed meanwhile
      throw e;
    }
    report.checked++;
    if (!st.isDirectory() && !st.isFile()) continue; // links, sockets, fifos: left alone
    const want = st.isDirectory() ? PRIVATE_DIR_MODE : PRIVATE_FILE_MODE;
    if ((st.mode & 0o7777) !== want) {
      await chmod(path, want);
      report.chmodded++;
    }
    if (st.isDirectory()) for (const name of await readdir(path)) stack.push(join(path, name));
  }
}

/** Replaces `path` with `data` so that a crash leaves either the old or the new content, never a
 *  mix: a 0600 temp file beside it, fsynced, renamed over it, then the directory fsynced. */
export async function writePrivateFileAtomic(path: string, data: string | Buffer): Promise<void> {
  const tmp = `${path}.tmp`;
  const fh = await open(tmp, 'w', PRIVATE_FILE_MODE);
  try {
    await fh.writeFile(data);
    await fh.chmod(PRIVATE_FILE_MODE);
    await fh.sync();
  } finally {
    await fh.close();
  }
  await rename(tmp, path);
  const dir = await open(dirname(path), 'r');
  try {
    await dir.sync();
  } finally {
    await dir.close();
  }
}
