// A Maildir message file opened for reading, as a MessageBody (store/mailboxes.ts). The file
// handle stays valid whatever happens to the name afterwards (a flag rename, an expunge). And
// the parse cache's writes in flight (maildir/mailbox.ts cached/setCached).

import { type FileHandle, open } from 'node:fs/promises';
import { Readable } from 'node:stream';
import type { MailIndexBackend } from '../index/backend.ts';
import type { CacheField, MessageBody } from '../mailboxes.ts';

export function fileBody(fh: FileHandle, size: number): MessageBody {
  return {
    size,
    read: (buffer, offset, length, position) => fh.read(buffer, offset, length, position),
    stream: (start, end) =>
      end <= start
        ? Readable.from([])
        : fh.createReadStream({ start, end: end - 1, autoClose: false, emitClose: false }),
    close: () => fh.close().catch(() => {}),
  };
}

/** Opens the file `where()` names. Without the mailbox lock (readers must not queue behind a
 *  write waiting for the index): a rename by STORE or EXPUNGE between finding the name and
 *  opening it shows as ENOENT, and the name is looked up again; only then under the lock
 *  (`locked`), where names hold still. Null when the message is gone. */
export async function openRetrying(
  where: () => { path: string; size: number | null } | null,
  locked: <T>(fn: () => Promise<T>) => Promise<T>,
): Promise<MessageBody | null> {
  const attempt = async (): Promise<MessageBody | null | 'moved'> => {
    const w = where();
    if (!w) return null;
    try {
      const fh = await open(w.path, 'r');
      return fileBody(fh, w.size ?? (await fh.stat()).size);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return 'moved';
      throw err;
    }
  };
  for (let tries = 0; tries < 3; tries++) {
    const r = await attempt();
    if (r !== 'moved') return r;
  }
  return locked(async () => {
    const r = await attempt();
    return r === 'moved' ? null : r; // another program removed it
  });
}

/** Parse-cache entries being written ("uid field" -> value): until committed, reads answer
 *  from memory, so a caller need not wait for the index lock. */
export class CacheWrites {
  readonly #index: MailIndexBackend;
  readonly #pending = new Map<string, string>();

  constructor(index: MailIndexBackend) {
    this.#index = index;
  }

  async read(mailbox: number, uids: readonly number[], field: CacheField): Promise<Map<number, string>> {
    if (uids.length === 0) return new Map();
    const found = new Map(await this.#index.cachedMany(mailbox, uids, field));
    for (const uid of uids) {
      const pending = this.#pending.get(`${uid} ${field}`);
      if (pending !== undefined) found.set(uid, pending);
    }
    return found;
  }

  async write(mailbox: number, live: readonly (readonly [number, CacheField, string])[]): Promise<void> {
    if (live.length === 0) return;
    for (const [uid, field, value] of live) this.#pending.set(`${uid} ${field}`, value);
    try {
      await this.#index.setCachedMany(mailbox, live);
    } finally {
      for (const [uid, field, value] of live) {
        const key = `${uid} ${field}`;
        if (this.#pending.get(key) === value) this.#pending.delete(key);
      }
    }
  }
}
