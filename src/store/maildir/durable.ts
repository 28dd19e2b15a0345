// Writing a message file durably: create with O_EXCL, write, make it durable, close. Used by
// SMTP delivery, the queue and IMAP APPEND/COPY, so every path that makes a message visible
// follows the same order (docs/architecture.md §4).
//
// Cost per file matters (one per local copy of every message): each call below is one trip
// through libuv's thread pool and back. A message held in memory (`SpooledMessage.buffers`,
// every message under the spool's memory limit) is written with one writev of prefix + chunks
// on a file opened O_SYNC: open(2): "as though each write(2) was followed by a call to
// fsync(2)" (synchronized I/O *file* integrity completion, POSIX; not O_DSYNC), so the file is
// as durable when writev returns as after write + fsync, with one trip less:
// open, writev, close (3) instead of open, writev, fsync, close (4). A spooled file is streamed
// in 256 KiB writev batches, then fsynced (O_SYNC would sync every batch). Raw descriptors and
// the callback API: no FileHandle object, no async iterator for the in-memory case.

import { close, constants, fsync, open, write, writev } from 'node:fs';
import type { Readable } from 'node:stream';
import type { SpooledMessage } from '../types.ts';

const WRITE_BATCH = 256 * 1024;
const { O_WRONLY, O_CREAT, O_EXCL, O_SYNC } = constants;

/** Writes prefix + message to a new file, makes it durable and closes it; returns the size. */
export async function writeDurably(path: string, prefix: Buffer, msg: SpooledMessage): Promise<number> {
  const inMemory = msg.buffers?.() ?? null;
  const fd = await openFile(path, O_WRONLY | O_CREAT | O_EXCL | (inMemory ? O_SYNC : 0));
  let ok = false;
  try {
    let total: number;
    if (inMemory) {
      const all = prefix.length > 0 ? [prefix, ...inMemory] : [...inMemory];
      let bytes = 0;
      for (const b of all) bytes += b.length;
      total = await writeAll(fd, all, bytes);
    } else {
      total = await streamTo(fd, prefix, msg.open() as Readable & AsyncIterable<Buffer>);
      await new Promise<void>((resolve, reject) => fsync(fd, (e) => (e ? reject(e) : resolve())));
    }
    ok = true;
    return total;
  } finally {
    // close(2) after a failed write may itself report the error; the first error is the one thrown.
    await new Promise<void>((resolve, reject) => close(fd, (e) => (e && ok ? reject(e) : resolve())));
  }
}

function openFile(path: string, flags: number): Promise<number> {
  return new Promise((resolve, reject) => open(path, flags, 0o600, (e, fd) => (e ? reject(e) : resolve(fd))));
}

async function streamTo(fd: number, prefix: Buffer, chunks: AsyncIterable<Buffer>): Promise<number> {
  let pending: Buffer[] = prefix.length > 0 ? [prefix] : [];
  let pendingBytes = prefix.length;
  let total = 0;
  for await (const chunk of chunks) {
    pending.push(chunk);
    pendingBytes += chunk.length;
    if (pendingBytes >= WRITE_BATCH) {
      total += await writeAll(fd, pending, pendingBytes);
      pending = [];
      pendingBytes = 0;
    }
  }
  return total + (await writeAll(fd, pending, pendingBytes));
}

/** writev that finishes short writes. */
async function writeAll(fd: number, buffers: Buffer[], bytes: number): Promise<number> {
  if (bytes === 0) return 0;
  const written = await new Promise<number>((resolve, reject) =>
    writev(fd, buffers, (e, n) => (e ? reject(e) : resolve(n))),
  );
  if (written < bytes) {
    const rest = Buffer.concat(buffers).subarray(written);
    let off = 0;
    while (off < rest.length) {
      off += await new Promise<number>((resolve, reject) =>
        write(fd, rest, off, rest.length - off, null, (e, n) => (e ? reject(e) : resolve(n))),
      );
    }
  }
  return bytes;
}
