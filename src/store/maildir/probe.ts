// Whether mail can be written under the Maildir root right now (the readiness check,
// web/health.ts): a file is created in {root}/.arcline-probe/ (0700; no domain name starts with a
// dot, so it can never be a domain's directory), written, fsynced and removed, as a delivery
// would (docs/architecture.md §4). A full disk, a read-only remount or lost permissions fail it.

import { constants } from 'node:fs';
import { mkdir, open, unlink } from 'node:fs/promises';
import { join } from 'node:path';

export const PROBE_DIR = '.arcline-probe';

let counter = 0;

export async function probeWritable(root: string): Promise<void> {
  const dir = join(root, PROBE_DIR);
  await mkdir(dir, { mode: 0o700 }).catch((e: NodeJS.ErrnoException) => {
    if (e.code !== 'EEXIST') throw e;
  });
  const file = join(dir, `${process.pid}.${++counter}`);
  const fh = await open(file, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_NOFOLLOW, 0o600);
  try {
    await fh.writeFile('probe\n');
    await fh.sync();
  } finally {
    await fh.close().catch(() => {});
    await unlink(file).catch(() => {});
  }
}
