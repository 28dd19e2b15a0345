// Ordered output to one IMAP client with backpressure. A response is a list of parts: text,
// bytes, or a range of an open message file (streamed, so FETCH of a large message never holds
// it in memory). Parts are written in order; the socket's "drain" paces us. send() never
// rejects because the client went away (it just stops writing), so callers may fire and forget.
// Awaited responses never pile up (each waits for "drain"); fire-and-forget ones (IDLE updates)
// could, for a client that does not read: past `maxQueued` bytes waiting, `onOverflow` is
// called (the connection closes) and nothing more is queued.
// Consecutive text parts go out in one socket write: each write is a system call (and, without
// TCP_NODELAY, a second small segment would wait for the client's ACK). push() is the
// synchronous form for IDLE updates: one write, no promise, so a change reaching hundreds of
// idling sessions costs one write each and nothing else.

import type { Socket } from 'node:net';
import { constants, type DeflateRaw } from 'node:zlib';
import type { MessageBody } from '../store/mailboxes.ts';

export type Part = string | Buffer | { readonly file: MessageBody; readonly start: number; readonly length: number };

/** Bytes of a message file read and written at a time. */
const FILE_CHUNK = 256 * 1024;

/** `length` bytes of `file` from `start`; past its end (a file shorter than its index said)
 *  padded with spaces, so a literal's announced length is always honoured. */
async function readPadded(file: MessageBody, start: number, length: number): Promise<Buffer> {
  const buf = Buffer.alloc(length, 0x20);
  for (let pos = 0; pos < length; ) {
    const { bytesRead } = await file.read(buf, pos, length - pos, start + pos);
    if (bytesRead === 0) break;
    pos += bytesRead;
  }
  return buf;
}

export interface OutputBounds {
  /** Bytes queued (socket and compressor) beyond which the client is taken as not reading. */
  readonly maxQueued: number;
  readonly onOverflow: () => void;
}

export class Output {
  /** Bytes written (before compression): the access log's bytes out. */
  written = 0;
  #socket: Socket;
  /** RFC 4978: with COMPRESS=DEFLATE everything goes through here, flushed after each send. */
  #deflate: DeflateRaw | null = null;
  readonly #bounds: OutputBounds | null;
  #overflowed = false;

  constructor(socket: Socket, bounds: OutputBounds | null = null) {
    this.#socket = socket;
    this.#bounds = bounds;
  }

  /** After STARTTLS the TLS socket replaces the plain one. */
  replaceSocket(socket: Socket): void {
    this.#socket = socket;
  }

  /** From now on, output is compressed by `deflate` (which the caller pipes to the socket). */
  compress(deflate: DeflateRaw): void {
    this.#deflate = deflate;
  }

  /** Bytes written and not yet taken by the kernel (or the compressor). */
  get queued(): number {
    return (
      this.#socket.writableLength + (this.#deflate ? this.#deflate.writableLength + this.#deflate.readableLength : 0)
    );
  }

  /** False (and the connection told) once the client has left too much output unread. */
  #withinBounds(): boolean {
    const b = this.#bounds;
    if (this.#overflowed) return false;
    if (b && this.queued > b.maxQueued) {
      this.#overflowed = true;
      b.onOverflow();
      return false;
    }
    return true;
  }

  /** Writes `text` now, in one write, after everything sent before it (fire and forget). */
  push(text: string): void {
    if (!this.#withinBounds()) return;
    this.written += Buffer.byteLength(text);
    if (this.#deflate) {
      void this.send([text]); // the compressor needs its flush
      return;
    }
    if (!this.#ended) this.#socket.write(text);
  }

  async send(parts: readonly Part[]): Promise<void> {
    if (!this.#withinBounds()) return;
    await this.#send(parts);
    const d = this.#deflate;
    // A sync flush makes everything written so far decodable by the client now.
    if (d && !this.#ended) await new Promise<void>((r) => d.flush(constants.Z_SYNC_FLUSH, () => r()));
  }

  /** The connection is closed or ending (after BYE): nothing more is written. */
  get #ended(): boolean {
    return this.#socket.destroyed || this.#socket.writableEnded || this.#deflate?.writableEnded === true;
  }

  /** Writes to the deflate stream when compression is on, else to the socket. */
  #write(chunk: string | Buffer): boolean {
    this.written += typeof chunk === 'string' ? Buffer.byteLength(chunk) : chunk.length;
    return this.#deflate ? this.#deflate.write(chunk) : this.#socket.write(chunk);
  }

  async #send(parts: readonly Part[]): Promise<void> {
    for (let i = 0; i < parts.length; i++) {
      const p = parts[i] as Part;
      if (this.#ended) return;
      if (typeof p === 'string' || Buffer.isBuffer(p)) {
        // A run of text and bytes (untagged lines, FETCH responses with their literals, the
        // tagged reply): one write.
        const run: (string | Buffer)[] = [p];
        for (let q = parts[i + 1]; typeof q === 'string' || Buffer.isBuffer(q); q = parts[i + 1]) {
          run.push(q);
          i++;
        }
        const chunk = run.every((x) => typeof x === 'string')
          ? run.join('')
          : Buffer.concat(run.map((x) => (typeof x === 'string' ? Buffer.from(x) : x)));
        if (!this.#write(chunk)) await this.#drain();
        continue;
      }
      // Streamed in chunks: FETCH of a large message never holds it in memory.
      const end = p.start + p.length;
      for (let pos = p.start; pos < end && !this.#ended; pos += FILE_CHUNK) {
        if (!this.#write(await readPadded(p.file, pos, Math.min(FILE_CHUNK, end - pos)))) await this.#drain();
      }
    }
  }

  line(text: string): Promise<void> {
    return this.send([`${text}\r\n`]);
  }

  #drain(): Promise<void> {
    const target = this.#deflate ?? this.#socket;
    return new Promise((resolve) => {
      const done = () => {
        target.off('drain', done);
        this.#socket.off('close', done);
        resolve();
      };
      target.once('drain', done);
      this.#socket.once('close', done);
    });
  }
}

/** Collects the responses of a command that answers many messages (FETCH) and sends them in
 *  batches of about BATCH_BYTES: file ranges up to SMALL_FILE bytes are read into the batch at
 *  once (their file may close right after add()), larger ones go out on their own, streamed. */
export class OutputBatch {
  static readonly BATCH_BYTES = 64 * 1024;
  static readonly SMALL_FILE = 16 * 1024;
  readonly #send: (parts: readonly Part[]) => Promise<void>;
  #parts: Part[] = [];
  #bytes = 0;

  constructor(send: (parts: readonly Part[]) => Promise<void>) {
    this.#send = send;
  }

  async add(parts: readonly Part[]): Promise<void> {
    const large = parts.some((p) => typeof p === 'object' && !Buffer.isBuffer(p) && p.length > OutputBatch.SMALL_FILE);
    if (large) {
      await this.flush();
      return this.#send(parts);
    }
    for (const p of parts) {
      if (typeof p === 'string') {
        this.#parts.push(p);
        this.#bytes += p.length;
      } else if (Buffer.isBuffer(p)) {
        this.#parts.push(p);
        this.#bytes += p.length;
      } else {
        const buf = await readPadded(p.file, p.start, p.length);
        this.#parts.push(buf);
        this.#bytes += buf.length;
      }
    }
    if (this.#bytes >= OutputBatch.BATCH_BYTES) await this.flush();
  }

  async flush(): Promise<void> {
    if (this.#parts.length === 0) return;
    const parts = this.#parts;
    this.#parts = [];
    this.#bytes = 0;
    await this.#send(parts);
  }
}
