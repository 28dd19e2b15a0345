// Counting the message files that arrive in a Maildir new/ directory during one run, without
// emptying it first (the Postfix peer's mailbox holds other runs' and other people's mail): the
// names present at the start are remembered, inotify (fs.watch) reports each name created or
// renamed into the directory, and a readdir every 250 ms catches anything inotify dropped. The
// clock of a run stops when the N-th new name is seen.

import { type FSWatcher, watch } from 'node:fs';
import { readdir } from 'node:fs/promises';

export interface Arrivals {
  /** Resolves with the time (performance.now()) at which the count-th new file was seen. */
  waitFor(count: number, timeoutMs: number): Promise<number>;
  /** Names that arrived since start(), in order of arrival. */
  readonly names: readonly string[];
  close(): void;
}

export async function watchArrivals(dir: string): Promise<Arrivals> {
  const before = new Set(await readdir(dir));
  const seen = new Set<string>();
  const names: string[] = [];
  let wanted = Number.POSITIVE_INFINITY;
  let done: ((t: number) => void) | null = null;
  const note = (name: string) => {
    if (before.has(name) || seen.has(name) || name.startsWith('.')) return;
    seen.add(name);
    names.push(name);
    if (names.length >= wanted && done) {
      const d = done;
      done = null;
      d(performance.now());
    }
  };
  const watcher: FSWatcher = watch(dir, (_event, name) => {
    if (name) note(String(name));
  });
  let poll: NodeJS.Timeout | undefined;
  return {
    names,
    waitFor(count, timeoutMs) {
      wanted = count;
      return new Promise<number>((resolve, reject) => {
        if (names.length >= count) return resolve(performance.now());
        const timer = setTimeout(() => {
          clearInterval(poll);
          reject(new Error(`only ${names.length} of ${count} messages arrived in ${dir} within ${timeoutMs} ms`));
        }, timeoutMs);
        done = (t) => {
          clearTimeout(timer);
          clearInterval(poll);
          resolve(t);
        };
        poll = setInterval(() => {
          readdir(dir).then((list) => {
            for (const n of list) note(n);
          }, reject);
        }, 250);
      });
    },
    close() {
      clearInterval(poll);
      watcher.close();
    },
  };
}
