// Every entry below a directory with its type, mode and owner, for assertions on file modes and
// ownership (symbolic links are listed, not followed).

import { lstat, readdir } from 'node:fs/promises';
import { join } from 'node:path';

export interface Entry {
  readonly path: string;
  readonly dir: boolean;
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
}

export async function walk(root: string): Promise<Entry[]> {
  const out: Entry[] = [];
  const stack = [root];
  for (let p = stack.pop(); p !== undefined; p = stack.pop()) {
    const st = await lstat(p).catch(() => null); // a file removed meanwhile (WAL checkpoint)
    if (!st) continue;
    out.push({ path: p, dir: st.isDirectory(), mode: st.mode & 0o7777, uid: st.uid, gid: st.gid });
    if (st.isDirectory()) for (const n of await readdir(p)) stack.push(join(p, n));
  }
  return out;
}

/** Entries whose mode is not 0700 (directories) / 0600 (files), as "0644 path" lines. */
export function notPrivate(entries: readonly Entry[]): string[] {
  return entries
    .filter((e) => e.mode !== (e.dir ? 0o700 : 0o600))
    .map((e) => `${e.mode.toString(8).padStart(4, '0')} ${e.path}`);
}

/** Entries not owned by uid:gid, as "uid:gid path" lines. */
export function notOwnedBy(entries: readonly Entry[], uid: number, gid: number): string[] {
  return entries.filter((e) => e.uid !== uid || e.gid !== gid).map((e) => `${e.uid}:${e.gid} ${e.path}`);
}
