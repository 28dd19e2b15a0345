// `arcline restore DIR`: a backup (backup/take.ts) brought back into the configured state and
// Maildir directories (docs/backup.md). The caller (cli/backup.ts) has checked that no server
// runs on them, that they are empty, and has become the account the server runs as, so what is
// written here belongs to that account: directories 0700, files 0600.
// Nothing is written before every file of the backup has been read and matched against the
// manifest's size and SHA-256; a damaged or incomplete backup changes nothing. Each file is
// hashed again as it is copied (a backup changed in between is caught too).

import { mkdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArclineError } from '../core/errors.ts';
import {
  copyFileHashed,
  eachLimited,
  type FileEntry,
  hashFile,
  MANIFEST,
  type Manifest,
  parseManifest,
  syncDir,
} from './manifest.ts';

const WIDTH = 16;
/** Problems listed in the error before "and N more". */
const SHOWN = 5;

/** Reads DIR's manifest and checks every file against it; throws INVALID naming what is wrong. */
export async function verifyBackup(dir: string): Promise<Manifest> {
  let text: string;
  try {
    text = await readFile(join(dir, MANIFEST), 'utf8');
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code !== 'ENOENT') throw e;
    throw new ArclineError('INVALID', `${dir} has no ${MANIFEST}: not a backup, or one that did not finish`);
  }
  const manifest = parseManifest(text);
  const problems: string[] = [];
  await eachLimited(manifest.files, WIDTH, async (f) => {
    const found = await hashFile(join(dir, f.path)).catch((e: NodeJS.ErrnoException) => {
      if (e.code === 'ENOENT') return null;
      throw e;
    });
    const why = mismatch(f, found);
    if (why) problems.push(`${f.path}: ${why}`);
  });
  if (problems.length > 0) {
    problems.sort();
    const more = problems.length > SHOWN ? `, and ${problems.length - SHOWN} more` : '';
    throw new ArclineError(
      'INVALID',
      `backup ${dir} is damaged (${problems.length} file(s)): ${problems.slice(0, SHOWN).join('; ')}${more}`,
    );
  }
  return manifest;
}

function mismatch(f: FileEntry, found: { size: number; sha256: string } | null): string | null {
  if (!found) return 'missing';
  if (found.size !== f.size) return `size ${found.size}, the manifest says ${f.size}`;
  if (found.sha256 !== f.sha256) return 'checksum does not match the manifest';
  return null;
}

export interface RestoreTargets {
  readonly state: string;
  readonly maildir: string;
}

/** Verifies DIR, then copies it into the (empty, existing) targets. */
export async function restoreBackup(dir: string, to: RestoreTargets): Promise<Manifest> {
  const manifest = await verifyBackup(dir);
  const target = (rel: string) => {
    const [root, ...rest] = rel.split('/');
    return join(root === 'state' ? to.state : to.maildir, ...rest);
  };
  for (const d of manifest.dirs) {
    if (d === 'state' || d === 'maildir') continue; // the targets themselves
    await mkdir(target(d), { mode: 0o700 });
  }
  await eachLimited(manifest.files, WIDTH, async (f) => {
    const r = await copyFileHashed(join(dir, f.path), target(f.path));
    const why = mismatch(f, r);
    if (why) throw new ArclineError('INVALID', `backup ${dir}: ${f.path} changed while it was restored: ${why}`);
  });
  for (const d of [...manifest.dirs].reverse()) await syncDir(target(d));
  return manifest;
}
