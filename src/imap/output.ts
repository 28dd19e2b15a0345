// Ordered output to one IMAP client with backpressure. A response is a list of parts: text,
// bytes, or a range of an open message file (streamed, so FETCH of a large message never holds
// it in memory). Parts are written in order; the socket's "drain" paces us. send() never
// rejects because the client went away (it just stops writing), so callers may fire and forget.

import type { FileHandle } from 'node:fs/promises';
import type { Socket } from 'node:net';

export type Part = string | Buffer | { readonly file: FileHandle; readonly start: number; readonly length: number };

export class Output {
  #socket: Socket;

  constructor(socket: Socket) {
    this.#socket = socket;
  }

  /** After STARTTLS the TLS socket replaces the plain one. */
  replaceSocket(socket: Socket): void {
    this.#socket = socket;
  }

  async send(parts: readonly Part[]): Promise<void> {
    for (const p of parts) {
      if (this.#socket.destroyed) return;
      if (typeof p === 'string' || Buffer.isBuffer(p)) {
        if (!this.#socket.write(p)) await this.#drain();
        continue;
      }
      let pos = p.start;
      const end = p.start + p.length;
      const buf = Buffer.allocUnsafe(Math.min(256 * 1024, Math.max(p.length, 1)));
      while (pos < end && !this.#socket.destroyed) {
        const { bytesRead } = await p.file.read(buf, 0, Math.min(buf.length, end - pos), pos);
        if (bytesRead === 0) break; // the file is shorter than its index said: pad below
        pos += bytesRead;
        if (!this.#socket.write(Buffer.from(buf.subarray(0, bytesRead)))) await this.#drain();
      }
      // A literal's announced length must be honoured whatever happened to the file.
      if (pos < end && !this.#socket.destroyed) this.#socket.write(Buffer.alloc(end - pos, 0x20));
    }
  }

  line(text: string): Promise<void> {
    return this.send([`${text}\r\n`]);
  }

  #drain(): Promise<void> {
    return new Promise((resolve) => {
      const done = () => {
        this.#socket.off('drain', done);
        this.#socket.off('close', done);
        resolve();
      };
      this.#socket.once('drain', done);
      this.#socket.once('close', done);
    });
  }
}
