// Group commit for directory fsyncs. After a rename into new/, the directory must be fsynced
// before the delivery is durable. Many deliveries finish at once under load; one fsync of the
// directory covers every rename done before it started. So:
// - no fsync of that directory running: start one, callers share it;
// - one running: the caller's rename may have happened after it began, so the caller waits for
//   the NEXT fsync, which starts when the running one ends and is shared by everyone waiting.
// Correctness does not depend on timing: a caller is only released by an fsync that began
// after its request.

import { open } from 'node:fs/promises';

type SyncFn = (dir: string) => Promise<void>;

async function fsyncDir(dir: string): Promise<void> {
  const fh = await open(dir, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

interface DirState {
  running: Promise<void> | null;
  next: Promise<void> | null;
}

export class DirSyncer {
  readonly #dirs = new Map<string, DirState>();
  readonly #sync: SyncFn;

  constructor(sync: SyncFn = fsyncDir) {
    this.#sync = sync;
  }

  sync(dir: string): Promise<void> {
    let st = this.#dirs.get(dir);
    if (!st) {
      st = { running: null, next: null };
      this.#dirs.set(dir, st);
    }
    if (!st.running) return this.#start(dir, st);
    if (!st.next) {
      const after = st.running.then(
        () => undefined,
        () => undefined,
      );
      st.next = after.then(() => {
        const s = st as DirState;
        s.next = null;
        return this.#start(dir, s);
      });
    }
    return st.next;
  }

  #start(dir: string, st: DirState): Promise<void> {
    const p = this.#sync(dir).finally(() => {
      st.running = null;
      if (!st.next) this.#dirs.delete(dir);
    });
    st.running = p;
    return p;
  }
}
