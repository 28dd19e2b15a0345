// Changes made in a Maildir by another program (Dovecot's LDA, procmail, mbsync, a user's `mv`)
// reach a subscribed mailbox without waiting for a client's next command (docs/architecture.md:
// the store emits MailboxChange events, IDLE pushes them at once).
//
// While a mailbox has subscribers, its new/ and cur/ are watched with fs.watch (inotify on
// Linux), one watcher per directory. An event marks that directory dirty (its next reconcile
// lists it whatever its mtime says) and schedules a refresh:
// - bursts are coalesced: the first event starts a LIMITS.store.watchDebounceMs timer, later
//   events until it fires join it (1,000 deliveries do not mean 1,000 reconciles, and a steady
//   stream cannot postpone the refresh for ever, as a trailing debounce would);
// - at most one refresh runs; events during it queue exactly one more.
// When a watcher cannot be created (ENOSPC: inotify watch limit reached, EMFILE, a file system
// without notifications) or fails later, the mailbox falls back to polling: a refresh every
// LIMITS.store.watchPollMs, which the directory-mtime logic of #reconcile makes cheap.
// Our own renames in new/ and cur/ (STORE, APPEND, EXPUNGE, claiming new/) are announced with
// expect() before they happen: their events are not changes from outside (the mailbox already
// updated its index and told its subscribers), so they neither force a listing nor schedule a
// refresh; a 100,000-message cur/ is not relisted after every STORE. The expected names are
// bounded (cleared past LIMITS.store.watchExpectMax); a missed one costs one extra listing.
// stop() closes watchers and clears every timer (last subscriber gone, store closed).

import { type FSWatcher, watch } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';

export type WatchedDir = 'new' | 'cur';

export interface DirWatchTarget {
  /** The mailbox directory (read at start: RENAME restarts the watch). */
  readonly dir: string;
  /** A directory changed behind the index: its next reconcile must list it. */
  markDirty(sub: WatchedDir): void;
  /** Reconciles with the files (changes go to the subscribers as events). */
  refresh(): Promise<void>;
  /** Polling without fs.watch by choice (pollOnlyMs): what each poll runs instead of refresh. */
  poll?(): Promise<void>;
}

export class DirWatch {
  readonly #target: DirWatchTarget;
  readonly #log: Logger | undefined;
  readonly #watchers: FSWatcher[] = [];
  #poll: NodeJS.Timeout | null = null;
  #debounce: NodeJS.Timeout | null = null;
  #running = false;
  #queued = false;
  #active = false;
  #epoch = 0;
  /** Names we are about to create, rename or remove, per directory, with a count. */
  readonly #expected = { new: new Map<string, number>(), cur: new Map<string, number>() };

  /** Set: never fs.watch, poll every this many ms (a shared index: maildir/mailbox.ts). */
  readonly #pollOnlyMs: number | null;

  constructor(target: DirWatchTarget, log?: Logger, opts: { pollOnlyMs?: number } = {}) {
    this.#target = target;
    this.#log = log;
    this.#pollOnlyMs = opts.pollOnlyMs ?? null;
  }

  get active(): boolean {
    return this.#active;
  }

  /** Changes whenever watching starts, stops or falls back to polling: what was listed under an
   *  earlier epoch is not covered by this watch's events. */
  get epoch(): number {
    return this.#epoch;
  }

  /** fs.watch is on for both directories (not polling): every outside change raises an event. */
  get watching(): boolean {
    return this.#active && this.#poll === null && this.#watchers.length === 2;
  }

  /** True when watching failed and the mailbox is polled instead. */
  get polling(): boolean {
    return this.#poll !== null;
  }

  start(): void {
    if (this.#active) return;
    this.#active = true;
    this.#epoch++;
    if (this.#pollOnlyMs !== null) {
      // A Maildir on a volume several nodes mount: inotify sees only this machine's changes,
      // and other nodes' come by NOTIFY (docs/cluster.md); the poll is the fallback.
      this.#poll = setInterval(() => this.#run(), this.#pollOnlyMs);
      return;
    }
    for (const sub of ['new', 'cur'] as const) {
      const path = join(this.#target.dir, sub);
      let w: FSWatcher;
      try {
        w = watch(path, { persistent: true }, (_event, name) => this.#event(sub, name));
      } catch (e) {
        this.#fallBack(path, e as NodeJS.ErrnoException);
        return;
      }
      w.on('error', (e: NodeJS.ErrnoException) => this.#fallBack(path, e));
      this.#watchers.push(w);
    }
  }

  stop(): void {
    this.#epoch++;
    this.#active = false;
    this.#queued = false;
    for (const w of this.#watchers.splice(0)) w.close();
    this.#expected.new.clear();
    this.#expected.cur.clear();
    if (this.#poll) clearInterval(this.#poll);
    this.#poll = null;
    if (this.#debounce) clearTimeout(this.#debounce);
    this.#debounce = null;
  }

  /** Watching is not possible (or broke): poll instead. Both directories together, as one poll
   *  covers both; events already counted stay valid. */
  #fallBack(path: string, e: NodeJS.ErrnoException): void {
    if (!this.#active || this.#poll) return;
    this.#epoch++;
    for (const w of this.#watchers.splice(0)) w.close();
    this.#log?.warn(
      { event: 'maildir_watch_fallback', dir: path, code: e.code ?? null, err: e.message },
      'maildir watch failed, polling instead',
    );
    // Not marked dirty: the mtimes of new/ and cur/ tell what changed (a poll that listed a
    // 100,000-message cur/ every second would cost more than the watch it replaces).
    this.#poll = setInterval(() => this.#run(), LIMITS.store.watchPollMs);
    // Whatever happened before the failure may have been missed.
    this.#changed('new');
    this.#changed('cur');
  }

  /** Our own change of `path` (a file in new/ or cur/) is about to happen: its event is ours. */
  expect(path: string): void {
    if (!this.#active || this.#poll) return;
    const sub = basename(dirname(path));
    if (sub !== 'new' && sub !== 'cur') return;
    const m = this.#expected[sub];
    if (m.size >= LIMITS.store.watchExpectMax) m.clear();
    const name = basename(path);
    m.set(name, (m.get(name) ?? 0) + 1);
  }

  #event(sub: WatchedDir, name: string | Buffer | null): void {
    if (typeof name === 'string') {
      const m = this.#expected[sub];
      const n = m.get(name);
      if (n !== undefined) {
        if (n <= 1) m.delete(name);
        else m.set(name, n - 1);
        return;
      }
    }
    this.#changed(sub);
  }

  #changed(sub: WatchedDir): void {
    if (!this.#active) return;
    this.#target.markDirty(sub);
    if (this.#debounce) return;
    this.#debounce = setTimeout(() => {
      this.#debounce = null;
      this.#run();
    }, LIMITS.store.watchDebounceMs);
  }

  #run(): void {
    if (!this.#active) return;
    if (this.#running) {
      this.#queued = true;
      return;
    }
    this.#running = true;
    const t = this.#target;
    (this.#pollOnlyMs !== null && t.poll ? t.poll() : t.refresh())
      .catch((e: Error) => {
        // A mailbox deleted or renamed meanwhile: its sessions learn it at their next command.
        this.#log?.debug({ event: 'maildir_watch_refresh_failed', dir: this.#target.dir, err: e.message });
      })
      .finally(() => {
        this.#running = false;
        if (this.#queued) {
          this.#queued = false;
          this.#run();
        }
      });
  }
}
