// One Maildir mailbox as IMAP sees it, shared by every session of this process that has it open
// (store/maildir/account.ts keeps one per account and name).
//
// Invariants (the Mailbox contract, store/mailboxes.ts; docs/architecture.md §7):
// - All reconciliation and writes run one at a time under the mailbox lock.
// - `#entries` is the current state, sorted by UID; UIDs only grow. It changes only after the
//   index worker committed the change with its journal entries; then the change is broadcast
//   to the subscribers as a MailboxChange, in MODSEQ order.
// - \Recent and the files of expunged messages not yet acknowledged: see maildir/fanout.ts.
//   Expunged files wait in tmp/ (ignored by every Maildir reader); leftovers after a crash are
//   ordinary stale tmp/ files, cleaned by cleanTmp().

import { rename, stat, utimes } from 'node:fs/promises';
import { join } from 'node:path';
import { ArclineError } from '../../core/errors.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';
import { mapSliced } from '../../core/slice.ts';
import { emailId } from '../ids.ts';
import type { MailboxRow, MailIndexBackend } from '../index/backend.ts';
import type {
  CacheField,
  ChangeListener,
  JournalEntry,
  Mailbox,
  MailboxStatus,
  MessageBody,
  MessageMeta,
  SubscribeOptions,
} from '../mailboxes.ts';
import type { SpooledMessage } from '../types.ts';
import { CacheWrites, openRetrying } from './body.ts';
import { deliveredFiles } from './catch-up.ts';
import { type CopySource, placeCopies } from './copy.ts';
import type { DirSyncer } from './dirsync.ts';
import { writeDurably } from './durable.ts';
import {
  compareWithFiles,
  type Entry,
  entriesAfter,
  expungeEntries,
  flagsChanged,
  meta,
  newEntries,
  reconcileWrites,
} from './entry.ts';
import { applyFlags, flagsToLetters, lettersToFlags } from './flags.ts';
import { uniqueBase, withSize } from './naming.ts';
import { listMaildir, type ScanState } from './scan.ts';
import { spooledThreadHeaders } from './thread-headers.ts';
import { acrossNodes, MailboxView } from './view.ts';
import { DirWatch, type WatchedDir } from './watch.ts';

let ordinals = 0;

export class MaildirMailbox implements Mailbox {
  /** What the mailbox is now: its messages, counters, sessions (maildir/view.ts). */
  readonly #v: MailboxView;
  /** Shared index: when new/ and cur/ were last listed in full. */
  #rescanned = 0;
  /** new/ and cur/ mtimes of the last complete listing of each that can be trusted (see #reconcile). */
  #scanned: ScanState = { new: null, cur: null };
  /** Directories another program changed (fs.watch said so): listed at the next reconcile
   *  whatever their mtimes say. */
  #dirty = { new: false, cur: false };
  /** When each directory was last listed in full while watched, and under which watch epoch. */
  #listed = { new: { epoch: -1, at: 0 }, cur: { epoch: -1, at: 0 } };
  /** Watches new/ and cur/ while the mailbox has subscribers (store/maildir/watch.ts). */
  readonly #watch: DirWatch;
  readonly #cache: CacheWrites;
  #lock: Promise<unknown> = Promise.resolve();
  /** Orders the locks of two mailboxes a copy takes (see copyTo). */
  readonly #ordinal = ++ordinals;

  constructor(index: MailIndexBackend, row: MailboxRow, dir: string, syncer: DirSyncer, log?: Logger) {
    this.#v = new MailboxView(index, row, dir, syncer);
    this.#cache = new CacheWrites(index);
    this.#watch = new DirWatch(this, log, index.shared ? { pollOnlyMs: LIMITS.store.clusterPollMs } : {});
  }

  /** Told after each committed write (set by MaildirAccounts: watchAccount). */
  set onWrite(fn: () => void) {
    this.#v.onWrite = fn;
  }

  /** Shared index: another node renamed the mailbox (set by MaildirAccounts, which moves this
   *  object to the new name and calls renamed()). */
  set onRenamed(fn: (row: MailboxRow) => void) {
    this.#v.onRenamed = fn;
  }

  get name(): string {
    return this.#v.row.name;
  }

  /** Shared index: another node deleted this mailbox (MaildirAccounts opens a new object). */
  get gone(): boolean {
    return this.#v.gone;
  }

  get dir(): string {
    return this.#v.dir;
  }

  /** Runs `fn` under the mailbox lock. */
  #locked<T>(fn: () => Promise<T>): Promise<T> {
    const run = this.#lock.then(fn, fn);
    this.#lock = run.catch(() => {});
    return run;
  }

  /** Shared index: resolves once this node's deliveries to the mailbox so far are indexed (set
   *  by MaildirAccounts): a SELECT or NOOP waits for them, so a session sees what this node
   *  delivered before it answered 250, as it would on one machine. Awaited outside the lock
   *  (indexing takes it). */
  deliveries: () => Promise<void> = () => Promise.resolve();

  /** Runs `fn` under the mailbox lock and, on a shared index, under its lock across nodes with
   *  the view caught up first (a write then counts from the index's own counters). */
  #exclusive<T>(fn: () => Promise<T>): Promise<T> {
    return this.#locked(() => this.#acrossNodes([this], fn));
  }

  /** `fn` holding the locks across nodes of `boxes` (maildir/view.ts acrossNodes); their
   *  in-process locks are the caller's. */
  #acrossNodes<T>(boxes: readonly MaildirMailbox[], fn: () => Promise<T>): Promise<T> {
    return acrossNodes(
      boxes.map((b) => b.#v),
      fn,
    );
  }

  /** Shared index: indexes the files a delivery of this node just made (names in new/ or
   *  cur/) under the lock across nodes, without listing the directories, so the other nodes
   *  hear of them at once; null: new/ is listed (a delivery whose names are not known here).
   *  Files already indexed (another node came first) are left as they are. */
  indexDelivered(files: readonly { sub: 'new' | 'cur'; name: string }[] | null): Promise<void> {
    return this.#exclusive(async () => {
      const found = await deliveredFiles(this.#v.dir, files);
      for (const e of this.#v.entries) found.delete(e.base);
      if (found.size === 0) return;
      const keywords = await this.#v.keywords.load();
      const first = { uid: this.#v.row.uidnext, modseq: this.#v.row.highestmodseq + 1 };
      const added = await this.#v.intoCur(await newEntries(this.#v.dir, found, keywords, first));
      if (added.length > 0) await this.#v.add(added, null);
    });
  }

  subscribe(listener: ChangeListener, opts: SubscribeOptions = {}): () => void {
    this.#v.fan.add(listener, opts);
    this.#watch.start(); // no-op when already watching
    return () => this.unsubscribe(listener);
  }

  unsubscribe(listener: ChangeListener): void {
    if (!this.#v.fan.remove(listener)) return;
    if (this.#v.fan.size === 0) this.#watch.stop();
  }

  get subscribers(): number {
    return this.#v.fan.size;
  }

  /** Whether new/ and cur/ are watched (or polled) for outside changes now. */
  get watching(): boolean {
    return this.#watch.active;
  }

  /** Another program changed new/ or cur/: the next reconcile lists it, whatever its mtime. */
  markDirty(sub: WatchedDir): void {
    this.#dirty[sub] = true;
  }

  /** The store is closing: no more watching or polling, whoever is still subscribed. */
  close(): Promise<void> {
    this.#watch.stop();
    return this.#lock.then(() => {}); // the reconcile or write under way finishes first
  }

  /** Messages held in memory (for the idle-mailbox budget of MaildirAccounts). */
  get loadedMessages(): number {
    return this.#v.entries.length;
  }

  /** Reconciles the index with the files. With `claimRecent` (SELECT) the caller takes every
   *  \Recent message no session has yet, and new/ messages move to cur/; without it (EXAMINE)
   *  `recent` lists them all the same, untaken (RFC 3501 §6.3.2). With `subscribe`, the
   *  listener is subscribed in the same step, so it misses no change after this status. */
  sync(
    opts: {
      claimRecent?: boolean;
      origin?: object;
      subscribe?: { readonly listener: ChangeListener } & SubscribeOptions;
    } = {},
  ): Promise<MailboxStatus & { recent: readonly number[] }> {
    if (this.#v.shared) return this.deliveries().then(() => this.#sync(opts));
    return this.#sync(opts);
  }

  #sync(opts: {
    claimRecent?: boolean;
    origin?: object;
    subscribe?: { readonly listener: ChangeListener } & SubscribeOptions;
  }): Promise<MailboxStatus & { recent: readonly number[] }> {
    return this.#locked(async () => {
      // A new subscriber's watch starts before the listing, so it covers every change after it.
      if (opts.subscribe) this.#watch.start();
      try {
        await this.#reconcile(opts.origin ?? null);
      } catch (e) {
        if (this.#v.fan.size === 0) this.#watch.stop();
        throw e;
      }
      const recent = opts.claimRecent ? await this.#claimNew() : [...this.#v.fan.recent].sort((a, b) => a - b);
      if (opts.subscribe) this.subscribe(opts.subscribe.listener, opts.subscribe);
      return { ...(await this.#status()), recent };
    });
  }

  /** Reconciles with the files without building a status (deliveries, NOOP, IDLE): changes
   *  reach the sessions as events. */
  refresh(opts: { origin?: object } = {}): Promise<void> {
    if (this.#v.shared) return this.deliveries().then(() => this.#refresh(opts));
    return this.#refresh(opts);
  }

  #refresh(opts: { origin?: object }): Promise<void> {
    // Nothing to look at when the watch vouches for both directories and no reconcile is under
    // way (a delivery's): a NOOP or an IDLE does not queue behind another session's write (its
    // changes arrive as events anyway).
    const covered =
      this.#v.loaded && (this.#v.shared ? this.#journalCovers() : this.#watchCovers('new') && this.#watchCovers('cur'));
    if (covered && this.#reconciles === 0) return Promise.resolve();
    // Only a refresh that has something to look at holds later ones (a NOOP behind another
    // NOOP, or behind a SELECT, need not wait).
    const run = this.#locked(() => this.#reconcile(opts.origin ?? null));
    if (covered) return run;
    this.#reconciles++;
    return run.finally(() => this.#reconciles--);
  }

  /** Refreshes queued or running that found something to look at (see refresh()). */
  #reconciles = 0;

  /** Shared index: whether the view holds what the journal says, as far as this node can know
   *  (no notification or poll since its last catch-up) and no file listing is due. */
  #journalCovers(): boolean {
    return (
      !this.#v.stale &&
      !this.#dirty.new &&
      !this.#dirty.cur &&
      Date.now() - this.#rescanned < LIMITS.store.clusterRescanMs
    );
  }

  /** Shared index: another node committed a change of this account (a notification): the next
   *  refresh catches up. */
  markStale(): void {
    this.#v.stale = true;
  }

  /** Shared index: the poll of a subscribed mailbox, the fallback for a lost notification. */
  poll(): Promise<void> {
    this.#v.stale = true;
    return this.refresh();
  }

  async #status(): Promise<MailboxStatus> {
    return {
      uidValidity: this.#v.row.uidvalidity,
      uidNext: this.#v.row.uidnext,
      highestModseq: this.#v.row.highestmodseq,
      messages: await mapSliced(this.#v.entries, meta),
      keywords: [...this.#v.keywords.cached],
    };
  }

  /** Whether the watch vouches that `sub` holds what the index says: fs.watch is on, has
   *  reported no outside change, and the directory was listed under this watch less than
   *  LIMITS.store.watchTrustMs ago (a safety net for events the kernel may drop on overflow). */
  #watchCovers(sub: 'new' | 'cur'): boolean {
    const l = this.#listed[sub];
    return (
      !this.#dirty[sub] &&
      this.#watch.watching &&
      l.epoch === this.#watch.epoch &&
      Date.now() - l.at < LIMITS.store.watchTrustMs
    );
  }

  /** Brings the view up to date: with the files (SQLite index); on a shared index with the
   *  journal, and with the files only when a full listing is due (docs/cluster.md). */
  async #reconcile(origin: object | null): Promise<void> {
    if (!this.#v.shared) return this.#reconcileFiles(origin);
    // Under the lock across nodes (APPEND, COPY) the view caught up when the lock was taken,
    // and no other node can commit to the mailbox since: a second read would find nothing.
    if (!this.#v.held) await this.#v.catchUp(origin);
    const due = this.#dirty.new || this.#dirty.cur || Date.now() - this.#rescanned >= LIMITS.store.clusterRescanMs;
    if (!due) return;
    // Both directories listed in full, under the lock across nodes: a message missing from a
    // listing is taken for expunged, so a partial listing (one directory trusted by its mtime,
    // which another node's rename may not have moved on an NFS client yet) must not decide it.
    const rescan = async () => {
      this.#scanned = { new: null, cur: null };
      this.#dirty = { new: false, cur: false };
      const started = Date.now();
      await this.#reconcileFiles(origin);
      this.#rescanned = started;
    };
    if (this.#v.held) await rescan();
    else await this.#acrossNodes([this], rescan);
  }

  /** Brings the index up to date with the files (maildir/scan.ts decides what to list). */
  async #reconcileFiles(origin: object | null): Promise<void> {
    const keywords = await this.#v.keywords.load();
    if (!this.#v.loaded) await this.#v.load(keywords);
    for (const sub of ['new', 'cur'] as const) if (this.#dirty[sub]) this.#scanned[sub] = null;
    const watched = { new: this.#watchCovers('new'), cur: this.#watchCovers('cur') };
    this.#dirty = { new: false, cur: false };
    const epoch = this.#watch.epoch;
    const listing = await listMaildir(this.#v.dir, this.#scanned, watched);
    if (!listing) return;
    const { skip, files } = listing;
    if (this.#watch.watching && this.#watch.epoch === epoch) {
      for (const sub of ['new', 'cur'] as const) if (!skip[sub]) this.#listed[sub] = { epoch, at: Date.now() };
    }
    let modseq = this.#v.row.highestmodseq;
    const diff = compareWithFiles(
      this.#v.entries,
      listing,
      keywords,
      modseq,
      (uid) => this.#v.fan.grave(uid) !== undefined,
    );
    const { expunged, changed, moved } = diff;
    modseq = diff.modseq;
    let added = await newEntries(this.#v.dir, files, keywords, { uid: this.#v.row.uidnext, modseq: modseq + 1 });
    if (this.#v.shared) added = await this.#v.intoCur(added);
    // The UIDs and MODSEQs given (a file gone meanwhile leaves a gap, never seen by a client).
    const uidnext = added.length > 0 ? (added.at(-1) as Entry).uid + 1 : this.#v.row.uidnext;
    if (added.length > 0) modseq = (added.at(-1) as Entry).modseq;
    this.#scanned = listing.next;
    if (expunged.length === 0 && moved.length === 0 && added.length === 0) return;
    const expModseq = expunged.length > 0 ? ++modseq : modseq;
    const counters = { uidnext, highestmodseq: modseq };
    for (const w of reconcileWrites({ expunged, moved, changed, added, expModseq, counters })) await this.#v.write(w);
    this.#v.entries = entriesAfter(this.#v.entries, { expunged, moved, added });
    for (const uid of expunged) this.#v.fan.recent.delete(uid);
    if (changed.length > 0) this.#v.fan.emit({ kind: 'flags', messages: changed.map(meta) }, origin);
    const given = added.length > 0 && this.#v.fan.emitExists(await mapSliced(added, meta), origin);
    if (expunged.length > 0) this.#v.fan.emit({ kind: 'expunge', uids: expunged, modseq: expModseq }, origin);
    if (given) await this.#toCur(added); // \Recent for a session now: not again after a reload
  }

  /** Takes every untaken \Recent message (returns their UIDs) and moves new/ messages to cur/. */
  async #claimNew(): Promise<number[]> {
    const claimed = [...this.#v.fan.recent].sort((a, b) => a - b);
    this.#v.fan.recent.clear();
    await this.#toCur(this.#v.entries);
    return claimed;
  }

  /** Moves those of `entries` still in new/ to cur/: #load takes a message in new/ for one no
   *  session has had as \Recent (RFC 3501 §2.3.2), so one given to a session leaves new/. */
  async #toCur(entries: readonly Entry[]): Promise<void> {
    // Shared index: indexed messages are never in new/ (see #intoCur), but a row written back
    // without the lock across nodes could undo another node's flags.
    if (this.#v.shared && !this.#v.held) return;
    const moved: Entry[] = [];
    for (const e of entries) {
      if (!e.inNew) continue;
      try {
        const [from, to] = [join(this.#v.dir, 'new', e.base), join(this.#v.dir, 'cur', `${e.base}:2,`)];
        this.#watch.expect(from);
        this.#watch.expect(to);
        await rename(from, to);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue; // another reader moved it
        throw err;
      }
      e.inNew = false;
      moved.push(e);
    }
    // Where a file is is not a change a client sees: no journal entry, no new MODSEQ.
    if (moved.length > 0) await this.#v.write({ update: moved });
  }

  /** Opens a message for reading; works for expunged messages not yet acknowledged. The file
   *  handle stays valid whatever happens to the name afterwards. */
  openMessage(uid: number): Promise<MessageBody | null> {
    // Shared index: a name that another node changed (flags) is found again after catching up.
    const retry = this.#v.shared
      ? <T>(fn: () => Promise<T>) => this.#locked(() => this.#v.catchUp(null).then(fn))
      : this.#locked.bind(this);
    return openRetrying(() => {
      const e = this.#v.find(uid);
      const path = e ? this.#v.path(e) : this.#v.fan.grave(uid);
      return path ? { path, size: e?.size ?? null } : null;
    }, retry);
  }

  /** Changes flags (RFC 9051 §6.4.6). Returns the messages whose flags changed, and the UIDs
   *  refused by UNCHANGEDSINCE (RFC 7162 §3.1.3). */
  storeFlags(
    uids: readonly number[],
    mode: 'set' | 'add' | 'remove',
    flags: readonly string[],
    opts: { unchangedSince?: number | null; origin?: object } = {},
  ): Promise<{ changed: MessageMeta[]; modifiedRefused: number[] }> {
    return this.#exclusive(async () => {
      const keywords = await this.#v.keywords.with(mode === 'remove' ? [] : flags);
      const changed: Entry[] = [];
      const refused: number[] = [];
      let modseq = this.#v.row.highestmodseq;
      for (const uid of uids) {
        const e = this.#v.find(uid);
        if (!e) continue;
        if (opts.unchangedSince != null && e.modseq > opts.unchangedSince) {
          refused.push(uid);
          continue;
        }
        const letters = flagsToLetters(applyFlags(e.flags, mode, flags), keywords);
        if (letters === null) throw new ArclineError('INVALID', 'too many keywords in this mailbox (26 at most)');
        if (letters === e.letters) continue;
        const from = this.#v.path(e);
        const updated: Entry = {
          ...e,
          inNew: false,
          letters,
          flags: lettersToFlags(letters, keywords),
          modseq: ++modseq,
        };
        this.#watch.expect(from);
        this.#watch.expect(this.#v.path(updated));
        await rename(from, this.#v.path(updated));
        changed.push(updated);
        Object.assign(e, updated);
      }
      if (changed.length > 0) {
        await this.#v.write({
          update: changed,
          journal: changed.map(flagsChanged),
          counters: { uidnext: this.#v.row.uidnext, highestmodseq: modseq },
        });
        this.#v.fan.emit({ kind: 'flags', messages: changed.map(meta) }, opts.origin ?? null);
      }
      return { changed: changed.map(meta), modifiedRefused: refused };
    });
  }

  /** Removes the given messages; with `onlyDeleted` (EXPUNGE, CLOSE) only those that have
   *  \Deleted now, whatever the caller's view of them says (RFC 9051 §6.4.3). */
  expunge(uids: readonly number[], origin: object | null = null, onlyDeleted = false): Promise<number[]> {
    return this.#exclusive(() => this.#expunge(uids, origin, onlyDeleted));
  }

  /** expunge() under the lock; `moved`: messages whose file a MOVE renamed away (to there). */
  async #expunge(
    uids: readonly number[],
    origin: object | null,
    onlyDeleted: boolean,
    moved: ReadonlyMap<number, string> = new Map(),
  ): Promise<number[]> {
    const gone: number[] = [];
    let modseq = this.#v.row.highestmodseq;
    for (const uid of uids) {
      const e = this.#v.find(uid);
      if (!e) continue;
      if (onlyDeleted && !e.flags.includes('\\Deleted')) continue;
      const movedTo = moved.get(uid);
      // The UID in the name: a re-copied expunged message is another link to the same file, and
      // rename(2) between two links of one file does nothing (POSIX).
      const grave = movedTo ?? join(this.#v.dir, 'tmp', `${e.base}.${this.#v.row.uidvalidity}-${uid}.expunged`);
      try {
        this.#watch.expect(this.#v.path(e));
        if (!movedTo) await rename(this.#v.path(e), grave);
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ENOENT') throw err;
      }
      // A moved message is read from its new place until acknowledged, and stays there.
      this.#v.fan.bury(e, grave, movedTo !== undefined);
      gone.push(uid);
    }
    if (gone.length === 0) return gone;
    const set = new Set(gone);
    this.#v.entries = this.#v.entries.filter((e) => !set.has(e.uid));
    modseq++;
    await this.#v.write({
      expunge: gone,
      journal: expungeEntries(gone, modseq),
      counters: { uidnext: this.#v.row.uidnext, highestmodseq: modseq },
    });
    this.#v.fan.emit({ kind: 'expunge', uids: gone, modseq }, origin);
    for (const uid of gone) await this.#v.fan.unlinkIfDone(uid);
    return gone;
  }

  /** A subscriber has told its client about these expunges (or no longer needs them). */
  acknowledgeExpunges(listener: ChangeListener, uids: readonly number[]): void {
    this.#v.fan.acknowledge(listener, uids);
  }

  /** Adds a message (APPEND, COPY, MOVE): written durably into cur/ with its flags, then indexed.
   *  Returns the new UID (UIDPLUS, RFC 4315). */
  append(
    msg: SpooledMessage,
    flags: readonly string[],
    date: Date | null,
    origin: object | null = null,
  ): Promise<number> {
    return this.#exclusive(async () => {
      await this.#reconcile(origin);
      const keywords = await this.#v.keywords.with(flags);
      const letters = flagsToLetters(flags, keywords);
      if (letters === null) throw new ArclineError('INVALID', 'too many keywords in this mailbox (26 at most)');
      const base = withSize(uniqueBase(), msg.size);
      const tmp = join(this.#v.dir, 'tmp', base);
      const final = join(this.#v.dir, 'cur', `${base}:2,${letters}`);
      await writeDurably(tmp, Buffer.alloc(0), msg);
      if (date) await utimes(tmp, date, date);
      this.#watch.expect(final);
      await rename(tmp, final);
      await this.#v.syncer.sync(join(this.#v.dir, 'cur'));
      const when = date ?? (await stat(final)).mtime;
      const entry: Entry = {
        uid: this.#v.row.uidnext,
        base,
        inNew: false,
        letters,
        flags: lettersToFlags(letters, keywords),
        modseq: this.#v.row.highestmodseq + 1,
        size: msg.size,
        internalDate: when.getTime(),
        thread: await spooledThreadHeaders(msg), // from the bytes at hand, not the file
      };
      await this.#v.add([entry], origin);
      delete entry.thread; // kept in memory: no longer needed
      return entry.uid;
    });
  }

  /** COPY and MOVE (RFC 9051 §6.4.7, RFC 6851 §3.3) keeping each file's base, so the copies are
   *  one Email (docs/architecture.md §7): a hard link into the target's cur/ (MOVE: a rename),
   *  a byte copy across file systems, or, for a target that already has that base (the same
   *  mailbox, a second copy), a byte copy under a new base. Durable as append: files, then the
   *  directories fsynced, then the target's index, then (MOVE) the source's expunge. Returns
   *  [source UID, target UID] pairs (RFC 4315 COPYUID); UIDs no longer here are skipped. */
  copyTo(
    uids: readonly number[],
    target: Mailbox,
    opts: { move?: boolean; origin?: object | null } = {},
  ): Promise<[number, number][]> {
    if (!(target instanceof MaildirMailbox)) throw new ArclineError('INVALID', 'copy to a mailbox of another store');
    const run = () =>
      this.#acrossNodes([this, target], () => this.#copy(uids, target, opts.move === true, opts.origin ?? null));
    if (target === this) return this.#locked(run);
    // Both locks, always in the same order (by creation), so two opposite copies cannot deadlock.
    const [a, b] = this.#ordinal < target.#ordinal ? [this, target] : [target, this];
    return a.#locked(() => b.#locked(run));
  }

  async #copy(uids: readonly number[], to: MaildirMailbox, move: boolean, origin: object | null) {
    await this.#reconcile(origin);
    if (to !== this) await to.#reconcile(null);
    const sources: CopySource[] = [];
    for (const uid of uids) {
      const e = this.#v.find(uid);
      const b = e ? undefined : this.#v.fan.buried(uid);
      if (e) sources.push({ entry: e, path: this.#v.path(e), expunged: false });
      else if (b) sources.push({ entry: b.entry, path: b.path, expunged: true });
    }
    const placed = await placeCopies(sources, {
      from: { dir: this.#v.dir, expect: (p) => this.#watch.expect(p) },
      to: { dir: to.#v.dir, keywords: to.#v.keywords, expect: (p) => to.#watch.expect(p) },
      have: new Set(to.#v.entries.map((e) => e.base)),
      first: { uid: to.#v.row.uidnext, modseq: to.#v.row.highestmodseq + 1 },
      move,
      syncer: this.#v.syncer,
    });
    if (placed.length === 0) return [];
    // From here the files are in place: a crash before a commit leaves them for reconciliation.
    await to.#v.add(
      placed.map((p) => p.added),
      to === this ? origin : null,
    );
    const renamed = new Map(placed.filter((p) => p.how === 'renamed').map((p) => [p.source.uid, p.to]));
    if (move)
      await this.#expunge(
        placed.map((p) => p.source.uid),
        origin,
        false,
        renamed,
      );
    return placed.map((p) => [p.source.uid, p.added.uid] as [number, number]);
  }

  /** \Recent messages no session has taken yet (STATUS RECENT, RFC 3501 §6.3.10). */
  get unclaimed(): number {
    return this.#v.fan.recent.size;
  }

  /** Metadata of one message (for COPY/MOVE and FETCH). */
  meta(uid: number): MessageMeta | null {
    const e = this.#v.find(uid);
    return e ? meta(e) : null;
  }

  emailIds(uids: readonly number[]): Map<number, string> {
    const out = new Map<number, string>();
    for (const uid of uids) {
      const e = this.#v.find(uid);
      if (e) out.set(uid, emailId(e.base));
    }
    return out;
  }

  /** Parsed data cached in the index (see index/db.ts `cache`) for the messages still here. */
  cached(uids: readonly number[], field: CacheField): Promise<Map<number, string>> {
    return this.#cache.read(
      this.#v.row.id,
      uids.filter((uid) => this.#v.find(uid)),
      field,
    );
  }

  /** Stores parsed data for several messages in one transaction (one FETCH command's worth),
   *  only for messages still indexed: an expunged one has no row to hang the cache on. */
  setCached(entries: readonly (readonly [uid: number, field: CacheField, value: string])[]): Promise<void> {
    return this.#cache.write(
      this.#v.row.id,
      entries.filter(([uid]) => this.#v.find(uid)),
    );
  }

  vanishedSince(modseq: number): Promise<number[]> {
    return this.#v.index.vanishedSince(this.#v.row.id, modseq);
  }

  changesSince(modseq: number): Promise<JournalEntry[] | null> {
    return this.#v.index.changesSince(this.#v.row.id, modseq);
  }

  /** After RENAME of this mailbox. */
  renamed(row: MailboxRow, dir: string): void {
    this.#v.row = row;
    this.#v.dir = dir;
    this.#v.keywords.dir = dir;
    if (this.#watch.active) {
      this.#watch.stop();
      this.#watch.start();
    }
  }
}
