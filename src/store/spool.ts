// Holds a message while it is received, until it is delivered. Small messages stay in memory
// (a list of the received chunks, no copying); once a message passes `memoryLimit` bytes every
// chunk so far goes to a file in the spool directory and the rest is appended there, so memory
// per message stays bounded whatever its size. The spool is not durable state: nothing is
// acknowledged from it, so it is never fsynced, and leftovers are removed at start.

import { createReadStream } from 'node:fs';
import { type FileHandle, mkdir, open, readdir, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { threadId } from 'node:worker_threads';
import type { SpooledMessage, SpoolWriter } from './types.ts';

let counter = 0;

export class Spool {
  readonly #dir: string;
  readonly #memoryLimit: number;
  #ready: Promise<void> | null = null;

  constructor(dir: string, memoryLimit: number) {
    this.#dir = dir;
    this.#memoryLimit = memoryLimit;
  }

  /** Removes leftovers of an earlier process (a previous spool is never resumed). */
  async clean(): Promise<void> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    for (const f of await readdir(this.#dir)) await rm(join(this.#dir, f), { force: true, recursive: true });
  }

  #ensureDir(): Promise<void> {
    this.#ready ??= mkdir(this.#dir, { recursive: true, mode: 0o700 }).then(() => undefined);
    return this.#ready;
  }

  create(): SpoolWriter {
    const chunks: Buffer[] = [];
    let size = 0;
    let file: { path: string; fh: FileHandle } | null = null;
    let done = false;
    const spill = async () => {
      await this.#ensureDir();
      counter += 1;
      const path = join(this.#dir, `${process.pid}-${threadId}-${Date.now()}-${counter}.eml`);
      const fh = await open(path, 'wx', 0o600);
      file = { path, fh };
      for (const c of chunks) await fh.write(c);
      chunks.length = 0;
    };
    return {
      write: async (chunk) => {
        if (done) throw new Error('spool already finished');
        size += chunk.length;
        if (file) {
          await file.fh.write(chunk);
          return;
        }
        chunks.push(chunk);
        if (size > this.#memoryLimit) await spill();
      },
      finish: async () => {
        done = true;
        if (!file) return memoryMessage(chunks, size);
        const f = file as { path: string; fh: FileHandle };
        await f.fh.close();
        return fileMessage(f.path, size);
      },
      abort: async () => {
        done = true;
        chunks.length = 0;
        if (file) {
          const f = file as { path: string; fh: FileHandle };
          file = null;
          await f.fh.close().catch(() => {});
          await unlink(f.path).catch(() => {});
        }
      },
    };
  }
}

/** The message with its first `skip` bytes replaced by `head` (a rewritten header block).
 *  Streams; the original is left as it is and disposed with the view. */
export function withHead(msg: SpooledMessage, head: Buffer, skip: number): SpooledMessage {
  async function* bytes(): AsyncGenerator<Buffer> {
    yield head;
    yield* bytesAfter(msg, skip);
  }
  return {
    size: msg.size - skip + head.length,
    open: () => Readable.from(bytes(), { objectMode: false }),
    buffers: () => {
      const inner = msg.buffers?.();
      if (!inner) return null;
      const out = [head];
      let left = skip;
      for (const chunk of inner) {
        if (left >= chunk.length) {
          left -= chunk.length;
          continue;
        }
        out.push(left > 0 ? chunk.subarray(left) : chunk);
        left = 0;
      }
      return out;
    },
    dispose: () => msg.dispose(),
  };
}

/** The bytes of `msg` after its first `skip`, streamed. */
export async function* bytesAfter(msg: SpooledMessage, skip: number): AsyncGenerator<Buffer> {
  let left = skip;
  for await (const chunk of msg.open() as AsyncIterable<Buffer>) {
    if (left >= chunk.length) {
      left -= chunk.length;
      continue;
    }
    yield left > 0 ? chunk.subarray(left) : chunk;
    left = 0;
  }
}

/** A message built in memory (bounces, tests). */
export function bufferMessage(buf: Buffer): SpooledMessage {
  return memoryMessage([buf], buf.length);
}

function memoryMessage(chunks: Buffer[], size: number): SpooledMessage {
  return {
    size,
    open: () => Readable.from(chunks, { objectMode: false }),
    buffers: () => chunks,
    dispose: async () => {
      chunks.length = 0;
    },
  };
}

/** A message in a file someone else owns: read, never removed (dispose does nothing). */
export function borrowedFileMessage(path: string, size: number): SpooledMessage {
  return { size, open: () => createReadStream(path, { highWaterMark: 256 * 1024 }), dispose: async () => {} };
}

function fileMessage(path: string, size: number): SpooledMessage {
  let disposed = false;
  return {
    size,
    open: () => createReadStream(path, { highWaterMark: 256 * 1024 }),
    dispose: async () => {
      if (disposed) return;
      disposed = true;
      await unlink(path).catch(() => {});
    },
  };
}
