// The bytes of one DATA, handed from the connection (which reads the socket and removes the
// dot-stuffing, wire/data.ts) to the DATA reader (accept/reader.ts), which iterates them with
// `for await`. No Node stream: a queue of chunks and one waiting consumer. The connection stops
// reading the socket while more than LIMITS.smtp.dataQueueBytes wait here (the consumer writes
// to the spool, which may be a file), and reads again once they are taken.
//
// Past the size limit (RFC 1870) nothing more is queued, only counted: the message is refused
// at its end (552 5.3.4) and the client's bytes are read and dropped until then.

export class MessageStream implements AsyncIterable<Buffer> {
  readonly #limit: number;
  readonly #onDrain: () => void;
  #queue: Buffer[] = [];
  #queued = 0;
  #ended = false;
  #error: Error | null = null;
  #wake: (() => void) | null = null;
  /** Message bytes received, those past the limit included. */
  byteLength = 0;
  sizeExceeded = false;

  /** `limit`: the largest message; `onDrain`: called when the consumer took every queued chunk. */
  constructor(limit: number, onDrain: () => void) {
    this.#limit = limit;
    this.#onDrain = onDrain;
  }

  /** Bytes queued and not yet taken by the consumer. */
  get queued(): number {
    return this.#queued;
  }

  push(chunk: Buffer): void {
    if (this.#ended) return;
    this.byteLength += chunk.length;
    if (this.sizeExceeded) return;
    if (this.byteLength > this.#limit) {
      this.sizeExceeded = true;
      return;
    }
    this.#queue.push(chunk);
    this.#queued += chunk.length;
    this.#signal();
  }

  end(): void {
    this.#ended = true;
    this.#signal();
  }

  /** The client went away: the consumer's loop throws. */
  abort(err: Error): void {
    if (this.#ended) return;
    this.#error = err;
    this.#ended = true;
    this.#signal();
  }

  #signal(): void {
    const w = this.#wake;
    this.#wake = null;
    w?.();
  }

  async *[Symbol.asyncIterator](): AsyncIterator<Buffer> {
    for (;;) {
      if (this.#error) throw this.#error;
      if (this.#queue.length > 0) {
        const batch = this.#queue;
        this.#queue = [];
        this.#queued = 0;
        this.#onDrain();
        for (const chunk of batch) yield chunk;
        continue;
      }
      if (this.#ended) return;
      await new Promise<void>((resolve) => {
        this.#wake = resolve;
      });
    }
  }
}
