// The threading fields of a stored message (mime/thread-key.ts), read from as little of it as
// needed: its header block, 16 KiB at a time, at most LIMITS.store.threadHeaderBytes. The
// index worker reads files synchronously (it runs off the event loop: index/worker.ts); the
// insert paths that hold the bytes (APPEND, imports) parse them without reading the file.

import { closeSync, openSync, readSync } from 'node:fs';
import { open } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import { headerEnd, NO_THREAD_HEADERS, type ThreadHeaders, threadHeaders } from '../../mime/thread-key.ts';
import type { AsyncThreadHeaderSource, ThreadFileRef, ThreadHeaderSource } from '../index/threads.ts';
import type { SpooledMessage } from '../types.ts';
import { accountDir, folderDir } from './layout.ts';

const CHUNK = 16 * 1024;

/** The header block at the start of `buf` (all of it when there is no blank line). */
function headerOf(buf: Buffer): Buffer {
  const end = headerEnd(buf);
  return end < 0 ? buf : buf.subarray(0, end);
}

/** Whether `buf` (what was read so far, `done` at the file's end) holds the whole header. */
const complete = (buf: Buffer, done: boolean) =>
  done || buf.length >= LIMITS.store.threadHeaderBytes || headerEnd(buf) >= 0;

/** From a file, synchronously (index worker); NO_THREAD_HEADERS when it cannot be read. */
export function fileThreadHeadersSync(path: string): ThreadHeaders {
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch {
    return NO_THREAD_HEADERS;
  }
  try {
    const chunks: Buffer[] = [];
    let buf: Buffer = Buffer.alloc(0);
    for (;;) {
      const b = Buffer.allocUnsafe(CHUNK);
      const n = readSync(fd, b, 0, CHUNK, buf.length);
      chunks.push(b.subarray(0, n));
      buf = chunks.length === 1 ? (chunks[0] as Buffer) : Buffer.concat(chunks);
      if (complete(buf, n < CHUNK)) break;
    }
    return threadHeaders(headerOf(buf.subarray(0, LIMITS.store.threadHeaderBytes)));
  } catch {
    return NO_THREAD_HEADERS;
  } finally {
    closeSync(fd);
  }
}

/** From a file (imports). */
export async function fileThreadHeaders(path: string): Promise<ThreadHeaders> {
  const fh = await open(path, 'r').catch(() => null);
  if (!fh) return NO_THREAD_HEADERS;
  try {
    let buf: Buffer = Buffer.alloc(0);
    for (;;) {
      const b = Buffer.allocUnsafe(CHUNK);
      const { bytesRead } = await fh.read(b, 0, CHUNK, buf.length);
      buf = Buffer.concat([buf, b.subarray(0, bytesRead)]);
      if (complete(buf, bytesRead < CHUNK)) break;
    }
    return threadHeaders(headerOf(buf.subarray(0, LIMITS.store.threadHeaderBytes)));
  } finally {
    await fh.close();
  }
}

/** From a message about to be stored (APPEND, Email/import, Email/set create): its buffers
 *  when in memory, else the first bytes of its stream. */
export async function spooledThreadHeaders(msg: SpooledMessage): Promise<ThreadHeaders> {
  const held = msg.buffers?.();
  let buf: Buffer;
  if (held) {
    const total = held.reduce((n, b) => n + b.length, 0);
    buf = Buffer.concat(held as Buffer[], Math.min(total, LIMITS.store.threadHeaderBytes));
  } else buf = await firstBytes(msg.open());
  return threadHeaders(headerOf(buf.subarray(0, LIMITS.store.threadHeaderBytes)));
}

/** Reads `stream` until its header block is complete (or the bound), then destroys it. */
async function firstBytes(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let len = 0;
  try {
    for await (const c of stream) {
      chunks.push(c as Buffer);
      len += (c as Buffer).length;
      if (len >= LIMITS.store.threadHeaderBytes || headerEnd(c as Buffer) >= 0) break;
    }
  } finally {
    stream.destroy();
  }
  return Buffer.concat(chunks);
}

/** The file of a message under `root` from its account, mailbox name and file name parts
 *  (maildir/mailbox.ts #path); null for names that cannot be a mailbox. */
function messagePath(root: string, account: string, mailbox: string, m: ThreadFileRef): string | null {
  let dir: string;
  try {
    dir = folderDir(accountDir(root, account as AccountId), mailbox);
  } catch {
    return null;
  }
  return m.inNew ? join(dir, 'new', m.base) : join(dir, 'cur', `${m.base}:2,${m.letters}`);
}

/** The index's header source (index/threads.ts) for the Maildirs under `root`: synchronous,
 *  for the SQLite index's worker thread. */
export function maildirThreadSource(root: string): ThreadHeaderSource {
  return (account, mailbox, m) => {
    const path = messagePath(root, account, mailbox, m);
    return path === null ? NO_THREAD_HEADERS : fileThreadHeadersSync(path);
  };
}

/** The same, asynchronous: the PostgreSQL index runs on the main thread (index/postgres.ts). */
export function maildirThreadSourceAsync(root: string): AsyncThreadHeaderSource {
  return async (account, mailbox, m) => {
    const path = messagePath(root, account, mailbox, m);
    return path === null ? NO_THREAD_HEADERS : fileThreadHeaders(path).catch(() => NO_THREAD_HEADERS);
  };
}
