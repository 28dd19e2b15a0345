// Listing a Maildir's new/ and cur/ for reconciliation (maildir/mailbox.ts), skipping a directory
// whose mtime shows it has not changed since the last complete listing of it.
//
// A listing is trusted for that only when the mtime it saw was at least MTIME_SLACK_MS older
// than the listing itself: changes within the same timestamp tick would otherwise go unseen
// (Dovecot's rule too). A watch event (maildir/watch.ts) forces the listing of its directory:
// the mtime may not have moved (the same tick, coarse file-system times, a clock set back).

import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { ArclineError } from '../../core/errors.ts';
import { mapSliced, sortSliced, TimeSlice } from '../../core/slice.ts';
import { splitName } from './flags.ts';

/** How old a directory mtime must be before a listing of it is trusted to be complete. */
export const MTIME_SLACK_MS = 2000;

export type Sub = 'new' | 'cur';

/** new/ and cur/ mtimes of the last complete listing of each that can be trusted, or null. */
export interface ScanState {
  new: number | null;
  cur: number | null;
}

export interface FileOnDisk {
  readonly inNew: boolean;
  readonly letters: string;
  /** The file name in its directory. */
  readonly name: string;
}

export interface Listing {
  /** Directories not listed: unchanged since a trusted listing, their files are as they were. */
  readonly skip: Readonly<Record<Sub, boolean>>;
  /** base -> file, for the directories listed. */
  readonly files: Map<string, FileOnDisk>;
  /** The state to keep after this listing. */
  readonly next: ScanState;
}

function gone(e: unknown): never {
  if ((e as NodeJS.ErrnoException).code === 'ENOENT') throw new ArclineError('NOT_FOUND', 'mailbox directory is gone');
  throw e;
}

/** Lists what changed; null when neither directory changed since `state`. A directory that is
 *  `watched` (fs.watch is on, has said nothing, and it was listed since: maildir/mailbox.ts) is
 *  not listed whatever its mtime says: our own renames move it too. */
export async function listMaildir(
  dir: string,
  state: ScanState,
  watched: Readonly<Record<Sub, boolean>> = { new: false, cur: false },
): Promise<Listing | null> {
  if (watched.new && watched.cur) return null;
  const started = Date.now();
  const [stNew, stCur] = await Promise.all([stat(join(dir, 'new')), stat(join(dir, 'cur'))]).catch(gone);
  // Each directory separately: a delivery changes new/ only, so a mailbox with 100,000 messages
  // in cur/ lists just new/ to see it (IDLE latency does not grow with the mailbox).
  const skip = {
    new: watched.new || state.new === stNew.mtimeMs,
    cur: watched.cur || state.cur === stCur.mtimeMs,
  };
  if (skip.new && skip.cur) return null;
  const files = new Map<string, FileOnDisk>();
  const slice = new TimeSlice();
  for (const sub of ['cur', 'new'] as const) {
    if (skip[sub]) continue;
    const names = await readdir(join(dir, sub)).catch(gone);
    for (const name of names) {
      if (slice.due()) await slice.pause();
      if (name.startsWith('.')) continue;
      const { base, letters } = splitName(name);
      files.set(base, { inNew: sub === 'new', letters: sub === 'new' ? '' : letters, name });
    }
  }
  // A directory skipped for its watch keeps its state: the mtime rule takes over from there.
  const next = (sub: Sub, mtime: number) =>
    watched[sub] ? state[sub] : skip[sub] || started - mtime > MTIME_SLACK_MS ? mtime : null;
  return { skip, files, next: { new: next('new', stNew.mtimeMs), cur: next('cur', stCur.mtimeMs) } };
}

const PARTS = /^(\d+)\.(?:M(\d+))?(?:P(\d+))?(?:Q(\d+))?/;

/** Sorts names by delivery time as compareNames (naming.ts) does, parsing each name once (the
 *  seconds and microseconds as one number) and giving way to the event loop while parsing. */
export async function sortByDelivery<T>(items: Iterable<T>, name: (t: T) => string): Promise<T[]> {
  const slice = new TimeSlice();
  const keyed: { t: T; n: string; k: number; q: number; p: number }[] = [];
  for (const t of items) {
    const n = name(t);
    const m = PARTS.exec(n);
    keyed[keyed.length] = m
      ? { t, n, k: Number(m[1]) * 1e6 + Number(m[2] ?? 0), q: Number(m[4] ?? 0), p: Number(m[3] ?? 0) }
      : { t, n, k: Number.NaN, q: 0, p: 0 };
    if (slice.due()) await slice.pause();
  }
  const sorted = await sortSliced(keyed, (a, b) => {
    if (!Number.isNaN(a.k) && !Number.isNaN(b.k)) {
      const d = a.k - b.k || a.q - b.q || a.p - b.p;
      if (d !== 0) return d;
    }
    return a.n < b.n ? -1 : a.n > b.n ? 1 : 0;
  });
  return mapSliced(sorted, (x) => x.t);
}

/** Stats files `limit` at a time; a file gone meanwhile gives null. */
export async function statAll(
  paths: readonly string[],
  limit = 64,
): Promise<({ size: number; mtimeMs: number } | null)[]> {
  const out: ({ size: number; mtimeMs: number } | null)[] = new Array(paths.length).fill(null);
  let next = 0;
  const worker = async () => {
    for (let i = next++; i < paths.length; i = next++) {
      out[i] = await stat(paths[i] as string).then(
        (s) => ({ size: s.size, mtimeMs: s.mtimeMs }),
        () => null,
      );
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, paths.length) }, worker));
  return out;
}
