// Placing a message file in another mailbox for COPY and MOVE (maildir/mailbox.ts copyTo),
// keeping its unique base as Dovecot's Maildir COPY does, so the copies are one Email for JMAP
// (docs/architecture.md §7): COPY makes a hard link, MOVE renames. Across file systems (EXDEV:
// a folder that is a mount point) the bytes are copied into the target's tmp/, fsynced, given
// the internal date and renamed into place under the same base. The caller fsyncs the
// directories and then commits the index (files first: a crash before the commit leaves a
// file that the next reconcile indexes, with its base and so its email id).

import { constants } from 'node:fs';
import { copyFile, link, open, rename, unlink, utimes } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { ArclineError } from '../../core/errors.ts';
import type { DirSyncer } from './dirsync.ts';
import type { Entry } from './entry.ts';
import { flagsToLetters, type KeywordTable, lettersToFlags } from './flags.ts';
import { uniqueBase, withSize } from './naming.ts';

/** How the file got to its new place: a move by rename leaves nothing at `from`. */
export type Placed = 'linked' | 'renamed' | 'copied';

/** Puts the file `from` at `to` by `how`; 'copy' (or EXDEV) writes a new file through tmpDir. */
export async function placeFile(
  from: string,
  to: string,
  how: 'link' | 'rename' | 'copy',
  tmpDir: string,
  internalDate: number,
): Promise<Placed> {
  if (how !== 'copy') {
    try {
      if (how === 'link') await link(from, to);
      else await rename(from, to);
      return how === 'link' ? 'linked' : 'renamed';
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== 'EXDEV') throw e;
    }
  }
  const tmp = join(tmpDir, `${basename(to)}.copy`);
  try {
    await copyFile(from, tmp, constants.COPYFILE_EXCL);
    const fh = await open(tmp, 'r+');
    try {
      await fh.sync();
    } finally {
      await fh.close();
    }
    const when = new Date(internalDate);
    await utimes(tmp, when, when);
    await rename(tmp, to);
  } catch (e) {
    await unlink(tmp).catch(() => {});
    throw e;
  }
  return 'copied';
}

/** Undoes a placement after a later step failed (best effort: the files stay the truth). */
export async function unplace(from: string, to: string, how: Placed): Promise<void> {
  if (how === 'renamed') await rename(to, from).catch(() => {});
  else await unlink(to).catch(() => {});
}

/** A message to copy: its entry and file; `expunged`: a message already expunged that a session
 *  still shows (its file is in tmp/ or, moved, in another mailbox: never renamed again). */
export interface CopySource {
  readonly entry: Entry;
  readonly path: string;
  readonly expunged: boolean;
}

export interface PlacedCopy {
  readonly source: Entry;
  readonly from: string;
  readonly to: string;
  readonly how: Placed;
  /** The target's new entry (UIDs and MODSEQs following the target's counters). */
  readonly added: Entry;
}

/** Places the files of `sources` in the target mailbox's cur/ (maildir/mailbox.ts copyTo, under
 *  both mailboxes' locks) and makes the placements durable (the target's cur/ fsynced, and for a
 *  rename the source's directories). A source whose base the target already `have`s is copied
 *  under a new base (a mailbox holds a base once). On failure the placements are undone. */
export async function placeCopies(
  sources: readonly CopySource[],
  o: {
    from: { dir: string; expect: (path: string) => void };
    to: { dir: string; keywords: KeywordTable; expect: (path: string) => void };
    have: Set<string>;
    first: { uid: number; modseq: number };
    move: boolean;
    syncer: DirSyncer;
  },
): Promise<PlacedCopy[]> {
  const keywords = await o.to.keywords.with([...new Set(sources.flatMap((s) => s.entry.flags))]);
  const placed: PlacedCopy[] = [];
  try {
    for (const { entry: source, path: from, expunged } of sources) {
      const letters = flagsToLetters(source.flags, keywords);
      if (letters === null) throw new ArclineError('INVALID', 'too many keywords in this mailbox (26 at most)');
      const base = o.have.has(source.base) ? withSize(uniqueBase(), source.size) : source.base;
      const to = join(o.to.dir, 'cur', `${base}:2,${letters}`);
      const how = base !== source.base ? 'copy' : o.move && !expunged ? 'rename' : 'link';
      o.to.expect(to);
      if (how === 'rename') o.from.expect(from);
      let done: Placed;
      try {
        done = await placeFile(from, to, how, join(o.to.dir, 'tmp'), source.internalDate);
      } catch (e) {
        // Gone meanwhile (another program removed it; a moved copy renamed in its new mailbox):
        // skipped, as a message no longer there.
        if ((e as NodeJS.ErrnoException).code === 'ENOENT') continue;
        throw e;
      }
      o.have.add(base);
      const n = placed.length;
      const added: Entry = {
        ...source,
        uid: o.first.uid + n,
        base,
        inNew: false,
        letters,
        flags: lettersToFlags(letters, keywords),
        modseq: o.first.modseq + n,
      };
      placed.push({ source, from, to, how: done, added });
    }
    if (placed.length > 0) await o.syncer.sync(join(o.to.dir, 'cur'));
    if (placed.some((p) => p.how === 'renamed')) {
      for (const sub of ['new', 'cur']) await o.syncer.sync(join(o.from.dir, sub));
    }
  } catch (err) {
    for (const p of placed.reverse()) await unplace(p.from, p.to, p.how);
    throw err;
  }
  return placed;
}
