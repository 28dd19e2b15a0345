// Long loops on the event loop give way to other work every SLICE_MS: a command or a store
// operation over 100,000 messages (a SELECT, an index rebuild, FETCH 1:*) must not hold every
// other client up while it runs (docs/architecture.md §5, §7). Usage, in an async loop:
//   const slice = new TimeSlice();
//   for (...) { ...; if (slice.due()) await slice.pause(); }

import { LIMITS } from './limits.ts';

export class TimeSlice {
  #since = performance.now();
  #n = 0;
  readonly #ms: number;

  constructor(ms: number = LIMITS.imap.commandSliceMs) {
    this.#ms = ms;
  }

  /** True when the current slice has run for its time (the clock is read every 64th call). */
  due(): boolean {
    if ((++this.#n & 63) !== 0) return false;
    return performance.now() - this.#since >= this.#ms;
  }

  /** Lets the event loop run (timers, I/O of other clients), then starts a new slice. */
  async pause(): Promise<void> {
    await new Promise<void>((resolve) => setImmediate(resolve));
    this.#since = performance.now();
  }
}

/** `items.map(fn)`, giving way to the event loop every slice. */
export async function mapSliced<T, U>(items: readonly T[], fn: (item: T, index: number) => U): Promise<U[]> {
  const out: U[] = new Array(items.length);
  const slice = new TimeSlice();
  for (let i = 0; i < items.length; i++) {
    out[i] = fn(items[i] as T, i);
    if (slice.due()) await slice.pause();
  }
  return out;
}

/** A stable sort of `items` that gives way to the event loop: runs of RUN items are sorted
 *  natively (about a millisecond each), then merged pairwise, a slice at a time (a native sort
 *  of 100,000 items holds the event loop for over 100 ms). */
export async function sortSliced<T>(items: readonly T[], compare: (a: T, b: T) => number): Promise<T[]> {
  const RUN = 2048;
  const slice = new TimeSlice();
  let a: T[] = [];
  for (let i = 0; i < items.length; i += RUN) {
    for (const x of items.slice(i, i + RUN).sort(compare)) a.push(x);
    if (slice.due()) await slice.pause();
  }
  let b: T[] = new Array(a.length);
  for (let width = RUN; width < a.length; width *= 2) {
    for (let lo = 0; lo < a.length; lo += 2 * width) {
      const mid = Math.min(lo + width, a.length);
      const hi = Math.min(lo + 2 * width, a.length);
      let i = lo;
      let j = mid;
      let k = lo;
      while (i < mid && j < hi) {
        b[k++] = compare(a[j] as T, a[i] as T) < 0 ? (a[j++] as T) : (a[i++] as T);
        if (slice.due()) await slice.pause();
      }
      while (i < mid) b[k++] = a[i++] as T;
      while (j < hi) b[k++] = a[j++] as T;
    }
    [a, b] = [b, a];
  }
  return a;
}
