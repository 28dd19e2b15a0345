// Bounded password hashing. Verifications are native or in a worker (directory/password.ts), so
// they never run on the event loop; this queue bounds how many run at once (one per core by
// default: libuv's thread pool also serves the fsyncs of deliveries, which must not starve) and
// how many may wait. Past `maxPending` a login gets a temporary failure at once instead of a
// place in a queue that grows without end under a storm.

import { availableParallelism } from 'node:os';

export class HasherBusy extends Error {
  constructor() {
    super('too many password verifications waiting');
  }
}

export class HashQueue {
  readonly #concurrency: number;
  readonly #maxPending: number;
  readonly #waiting: (() => void)[] = [];
  #running = 0;

  constructor(opts: { concurrency: number; maxPending: number }) {
    this.#concurrency = opts.concurrency > 0 ? opts.concurrency : availableParallelism();
    this.#maxPending = opts.maxPending;
  }

  get running(): number {
    return this.#running;
  }

  get pending(): number {
    return this.#waiting.length;
  }

  /** Runs `job` when a slot is free; rejects with HasherBusy when too many already wait. */
  async run<T>(job: () => Promise<T>): Promise<T> {
    if (this.#running >= this.#concurrency) {
      if (this.#waiting.length >= this.#maxPending) throw new HasherBusy();
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      this.#running++;
    }
    try {
      return await job();
    } finally {
      const next = this.#waiting.shift();
      if (next)
        next(); // the slot passes on: #running stays the same
      else this.#running--;
    }
  }
}
