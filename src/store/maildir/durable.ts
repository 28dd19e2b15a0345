// Writing a message file durably: create with O_EXCL, write (batched writev, no per-chunk
// syscall for small messages), fsync, close. Used by SMTP delivery and by IMAP APPEND/COPY,
// so every path that makes a message visible follows the same order (design.md convention 5).

import { type FileHandle, open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import type { SpooledMessage } from '../types.ts';

const WRITE_BATCH = 256 * 1024;

/** Writes prefix + message to a new file, fsyncs and closes it; returns the size. */
export async function writeDurably(path: string, prefix: Buffer, msg: SpooledMessage): Promise<number> {
  const fh = await open(path, 'wx', 0o600);
  try {
    let pending: Buffer[] = prefix.length > 0 ? [prefix] : [];
    let pendingBytes = prefix.length;
    let total = 0;
    for await (const chunk of msg.open() as Readable & AsyncIterable<Buffer>) {
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes >= WRITE_BATCH) {
        total += await writeAll(fh, pending, pendingBytes);
        pending = [];
        pendingBytes = 0;
      }
    }
    total += await writeAll(fh, pending, pendingBytes);
    await fh.sync();
    return total;
  } finally {
    await fh.close();
  }
}

/** writev that finishes short writes. */
async function writeAll(fh: FileHandle, buffers: Buffer[], bytes: number): Promise<number> {
  if (bytes === 0) return 0;
  let { bytesWritten } = await fh.writev(buffers);
  if (bytesWritten < bytes) {
    const rest = Buffer.concat(buffers).subarray(bytesWritten);
    let off = 0;
    while (off < rest.length) off += (await fh.write(rest, off)).bytesWritten;
    bytesWritten = bytes;
  }
  return bytesWritten;
}
