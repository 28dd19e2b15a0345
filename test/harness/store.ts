// A Maildir store in a fresh temp directory for store-level tests.

import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { silentLogger } from '../../src/core/log.ts';
import { createMaildirStore, type MaildirStore } from '../../src/store/maildir/index.ts';
import type { SpooledMessage } from '../../src/store/types.ts';

export async function tempStore(
  prefix: string,
): Promise<{ dir: string; store: MaildirStore; reopen: () => MaildirStore }> {
  const dir = await mkdtemp(join(tmpdir(), prefix));
  const reopen = () =>
    createMaildirStore({
      root: join(dir, 'mail'),
      spoolDir: join(dir, 'spool'),
      indexPath: join(dir, 'index.db'),
      search: { path: join(dir, 'search.db') },
      log: silentLogger(),
    });
  return { dir, store: reopen(), reopen };
}

/** A spooled message made of the given parts. */
export async function spoolOf(store: MaildirStore, ...parts: (string | Buffer)[]): Promise<SpooledMessage> {
  const w = store.createSpool();
  for (const p of parts) await w.write(typeof p === 'string' ? Buffer.from(p) : p);
  return w.finish();
}
