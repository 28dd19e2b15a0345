// The message files of a queue: {dir}/ID.eml, one per queued message, in the order of the
// durability contract (types.ts): ID.tmp written and fsynced, renamed to ID.eml, the directory
// fsynced (grouped: dirsync.ts); only then may the caller commit the rows. Renames within one
// directory only, so the same code serves a shared (NFS-like) volume (postgres.ts).

import { createReadStream } from 'node:fs';
import { access, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { DirSyncer } from '../store/maildir/dirsync.ts';
import { writeDurably } from '../store/maildir/durable.ts';
import { borrowedFileMessage } from '../store/spool.ts';
import type { SpooledMessage } from '../store/types.ts';
import type { QueueId } from './types.ts';

export class SpoolFiles {
  readonly dir: string;
  readonly #dirSync = new DirSyncer();

  constructor(dir: string) {
    this.dir = dir;
  }

  path(id: QueueId): string {
    return join(this.dir, `${id}.eml`);
  }

  /** The file of a message as a spooled message that stays the queue's (disposing leaves it). */
  message(id: QueueId, size: number): SpooledMessage {
    return borrowedFileMessage(this.path(id), size);
  }

  /** Writes prefix + message durably as ID.eml; returns its size. Nothing is left on failure. */
  async write(id: QueueId, prefix: Buffer, message: SpooledMessage): Promise<number> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const tmp = join(this.dir, `${id}.tmp`);
    const path = this.path(id);
    try {
      const size = await writeDurably(tmp, prefix, message);
      await rename(tmp, path);
      await this.#dirSync.sync(this.dir);
      return size;
    } catch (e) {
      await rm(tmp, { force: true });
      await rm(path, { force: true });
      throw e;
    }
  }

  /** Start-up: removes the files without a row among `ids` that `removable` allows (names
   *  ID.eml and ID.tmp); returns how many, and the ids whose file is missing. */
  async sweep(
    ids: ReadonlySet<string>,
    removable: (name: string) => Promise<boolean>,
  ): Promise<{ orphanFiles: number; missingFiles: string[] }> {
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    let orphanFiles = 0;
    const present = new Set<string>();
    for (const f of await readdir(this.dir)) {
      const id = f.endsWith('.eml') ? f.slice(0, -4) : null;
      if (id !== null && ids.has(id)) {
        present.add(id);
        continue;
      }
      if (!(await removable(f))) continue;
      orphanFiles++;
      await rm(join(this.dir, f), { force: true });
    }
    return { orphanFiles, missingFiles: [...ids].filter((id) => !present.has(id)) };
  }

  /** Runs the commit of ID's rows; if it fails the file goes (it was never acknowledged). */
  async commitOrRemove(id: QueueId, commit: () => Promise<void>): Promise<void> {
    try {
      await commit();
    } catch (e) {
      await this.remove(id);
      throw e;
    }
  }

  async remove(id: QueueId): Promise<void> {
    await rm(this.path(id), { force: true });
  }

  /** False when the file is gone (damaged storage). */
  async has(id: QueueId): Promise<boolean> {
    return access(this.path(id)).then(
      () => true,
      () => false,
    );
  }

  open(id: QueueId): Readable {
    return createReadStream(this.path(id), { highWaterMark: 256 * 1024 });
  }
}
