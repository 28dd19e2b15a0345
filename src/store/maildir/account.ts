// The mailboxes of one account (Maildir++): INBOX is the account directory, every other mailbox a
// `.Name` directory whose name is the IMAP name in modified UTF-7 (RFC 3501 §5.1.3), "." the
// hierarchy separator, as Dovecot's Maildir++ layout stores them. One MaildirMailbox per account
// and name is shared by every session of this process. Names are validated by layout.ts, and
// names containing "/" are refused (Maildir++ cannot store them). CREATE, DELETE and RENAME of
// one account run one at a time, and CREATE and RENAME are all or nothing: a failure undoes what
// the command already did.

import { lstat, mkdir, readdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ArclineError, isArclineError } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';
import { decodeMutf7 } from '../../core/mutf7.ts';
import type { MailboxRow, MailIndexBackend, MessageQuery } from '../index/backend.ts';
import type {
  AccountChange,
  LocatedEmail,
  Mailboxes,
  MailboxListEntry,
  TextCondition,
  TextSearchResult,
} from '../mailboxes.ts';
import { canonicalName, HIERARCHY, specialUseFor } from '../names.ts';
import type { SearchService } from '../search/service.ts';
import { AccountWatch } from './account-watch.ts';
import { type ChangeFeed, type DeliveredFile, DeliveryBatches, FeedSubscriptions } from './cluster-feed.ts';
import type { DirSyncer } from './dirsync.ts';
import { KeywordTable, lettersToFlags } from './flags.ts';
import { ID_FILE, inBatches, isSortOrder, keepFile, keptInFolder, SORT_ORDER_FILE, UIDVALIDITY_FILE } from './kept.ts';
import { accountDir, checkNewMailboxName, folderDir, NameLimitError } from './layout.ts';
import { chosenUses, listEntries, SPECIAL_USE_FILE } from './list.ts';
import { MaildirMailbox } from './mailbox.ts';

/** How long a mailbox no session uses stays loaded, and how many such mailboxes are kept. */
const IDLE_MAILBOX_MS = 60_000;
const MAX_IDLE_MAILBOXES = 32;
/** ... and at most this many messages held by them in all (about 300 bytes each in memory). */
const MAX_IDLE_MESSAGES = 250_000;

export class MaildirAccounts implements Mailboxes {
  readonly #root: string;
  readonly #index: MailIndexBackend;
  readonly #syncer: DirSyncer;
  /** Shared index: other nodes' changes, per account (maildir/cluster-feed.ts); the hold of
   *  each loaded mailbox's account, by key. */
  readonly #feed: FeedSubscriptions | null;
  readonly #holds = new Map<string, () => void>();
  /** Shared index: deliveries of this node waiting to be indexed (see notifyDelivered). */
  readonly #deliveries = new DeliveryBatches((account, name, files) => this.#indexDelivered(account, name, files));
  readonly #open = new Map<string, MaildirMailbox>();
  /** Mailboxes no session uses, kept a while (a client re-selecting a big mailbox must not pay
   *  for reloading its index and rescanning its files): key -> eviction timer, oldest first. */
  readonly #idle = new Map<string, NodeJS.Timeout>();
  readonly #opening = new Map<string, Promise<MaildirMailbox>>();
  /** The last pending CREATE/DELETE/RENAME per account (see #serial). */
  readonly #changing = new Map<AccountId, Promise<void>>();

  readonly #log: Logger | undefined;
  /** watchAccount() listeners, deliveries not indexed yet (maildir/account-watch.ts). */
  readonly #watch: AccountWatch;
  /** Per account, the indexing of deliveries started by notifyDelivered and not done yet:
   *  indexDeliveries waits for them (a client asking right after the 250 sees the message). */
  readonly #indexing = new Map<AccountId, Set<Promise<unknown>>>();
  #search: SearchService | null = null;

  constructor(root: string, index: MailIndexBackend, syncer: DirSyncer, log?: Logger, feed?: ChangeFeed) {
    this.#root = root;
    this.#index = index;
    this.#syncer = syncer;
    this.#log = log;
    this.#watch = new AccountWatch(log);
    this.#feed = index.shared && feed ? new FeedSubscriptions(feed, (a) => this.#changedElsewhere(a)) : null;
  }

  /** Shared index: a commit (of any node) moved the account's journal: its open mailboxes with
   *  sessions catch up (IDLE hears of it), and its watchers (JMAP push, the search indexer) are
   *  told. A refresh of a mailbox that did not change reads no rows. */
  #changedElsewhere(account: AccountId): void {
    for (const [key, mbox] of this.#open) {
      if (!key.startsWith(`${account}\0`)) continue;
      mbox.markStale();
      if (mbox.subscribers === 0) continue;
      mbox.refresh().catch((e: unknown) => this.#log?.debug({ err: String(e), account }, 'store: catch-up failed'));
    }
    this.#watch.changed(account);
  }

  /** Another node renamed a loaded mailbox: the object moves to its new name (sessions that have
   *  it selected keep it, as after a RENAME here). */
  #renamedElsewhere(account: AccountId, mbox: MaildirMailbox, row: MailboxRow): void {
    for (const [key, m] of this.#open) {
      if (m !== mbox) continue;
      this.#open.delete(key);
      const timer = this.#idle.get(key);
      if (timer) clearTimeout(timer);
      this.#idle.delete(key);
      const hold = this.#holds.get(key);
      this.#holds.delete(key);
      if (hold) this.#holds.set(`${account}\0${row.name}`, hold);
    }
    mbox.renamed(row, this.#dir(account, row.name));
    this.#open.set(`${account}\0${row.name}`, mbox);
  }

  /** The loaded mailbox `key` is dropped (its feed hold goes with it). */
  #forget(key: string): void {
    this.#open.delete(key);
    this.#holds.get(key)?.();
    this.#holds.delete(key);
  }

  /** The store is closing: every mailbox stops watching its files, idle timers are cleared. */
  async close(): Promise<void> {
    for (const t of this.#idle.values()) clearTimeout(t);
    this.#idle.clear();
    this.#feed?.close();
    await Promise.all([...this.#open.values()].map((m) => m.close()));
  }

  #dir(account: AccountId, name: string): string {
    const acct = accountDir(this.#root, account);
    try {
      return folderDir(acct, name);
    } catch (e) {
      // RFC 5530 §3: LIMIT for a name over a size limit, CANNOT for one that cannot be stored.
      throw new ArclineError(e instanceof NameLimitError ? 'LIMIT' : 'INVALID', (e as Error).message);
    }
  }

  #reachable(account: AccountId, name: string): boolean {
    try {
      this.#dir(account, name);
      return true;
    } catch {
      return false;
    }
  }

  /** Runs `fn` after every earlier CREATE/DELETE/RENAME of the account has finished. */
  #serial<T>(account: AccountId, fn: () => Promise<T>): Promise<T> {
    const prev = this.#changing.get(account) ?? Promise.resolve();
    const run = prev.then(fn, fn).finally(() => this.#watch.changed(account));
    const tail = run.then(
      () => {},
      () => {},
    );
    this.#changing.set(account, tail);
    tail.then(() => {
      if (this.#changing.get(account) === tail) this.#changing.delete(account);
    });
    return run;
  }

  /** Folders of the account on disk (every ".Name" directory), for the per-account limit. */
  async #folderCount(account: AccountId): Promise<number> {
    let n = 0;
    for (const d of await readdir(accountDir(this.#root, account), { withFileTypes: true })) {
      if (d.isDirectory() && d.name.startsWith('.') && d.name !== '.' && d.name !== '..') n++;
    }
    return n;
  }

  /** Every mailbox of the account, INBOX first, with RFC 3501/6154/5258 attributes; with `ids`,
   *  each with its id (folders without an index entry get one first, in one transaction). */
  async list(account: AccountId, opts: { ids?: boolean } = {}): Promise<MailboxListEntry[]> {
    const acct = accountDir(this.#root, account);
    const names = new Set<string>(['INBOX']);
    for (const d of await readdir(acct, { withFileTypes: true })) {
      if (!d.isDirectory() || !d.name.startsWith('.') || d.name === '.' || d.name === '..') continue;
      const decoded = decodeMutf7(d.name.slice(1));
      // A folder another program made under a name no command could reach is left out.
      if (decoded !== null && this.#reachable(account, decoded)) names.add(decoded);
    }
    let rows = await this.#index.mailboxes(account);
    if (opts.ids) {
      const known = new Set(rows.map((r) => r.name));
      const missing = [...names].filter((n) => !known.has(n));
      if (missing.length > 0) {
        await this.#newIndexEntries(account, missing);
        rows = await this.#index.mailboxes(account);
      }
    }
    // RFC 6154 §3: a use given at CREATE is kept in the folder (so it survives a lost index and
    // moves with RENAME); otherwise the use follows the folder's well-known name.
    const chosen = await chosenUses(
      [...names].filter((n) => n !== 'INBOX'),
      (n) => this.#dir(account, n),
    );
    return listEntries(names, rows, chosen);
  }

  async exists(account: AccountId, name: string): Promise<boolean> {
    try {
      return (await stat(join(this.#dir(account, name), 'cur'))).isDirectory();
    } catch (e) {
      if (e instanceof ArclineError) throw e;
      return false;
    }
  }

  /** The shared mailbox object; NOT_FOUND when the mailbox does not exist. Concurrent opens
   *  of one mailbox share one pending open (else each would create its index entry). */
  open(account: AccountId, name: string): Promise<MaildirMailbox> {
    const canonical = canonicalName(name);
    const key = `${account}\0${canonical}`;
    let cached = this.#open.get(key);
    if (cached?.gone) {
      // Deleted on another node (and maybe made again there): its sessions keep the old object
      // and its NOT_FOUND; this open gets the entry the index has now.
      clearTimeout(this.#idle.get(key));
      this.#idle.delete(key);
      this.#forget(key);
      cached = undefined;
    }
    if (cached) {
      const timer = this.#idle.get(key);
      if (timer) {
        clearTimeout(timer);
        this.#idle.delete(key);
      }
      return Promise.resolve(cached);
    }
    let pending = this.#opening.get(key);
    if (!pending) {
      pending = this.#load(account, canonical, key).finally(() => this.#opening.delete(key));
      this.#opening.set(key, pending);
    }
    return pending;
  }

  async #load(account: AccountId, canonical: string, key: string): Promise<MaildirMailbox> {
    if (!(await this.exists(account, canonical))) throw new ArclineError('NOT_FOUND', 'Mailbox does not exist');
    const dir = this.#dir(account, canonical);
    const row = (await this.#index.mailbox(account, canonical)) ?? (await this.#newIndexEntry(account, canonical, dir));
    await this.#keepId(dir, row.oid);
    const mbox = new MaildirMailbox(this.#index, row, dir, this.#syncer, this.#log);
    mbox.onWrite = () => this.#watch.changed(account);
    mbox.onRenamed = (r) => this.#renamedElsewhere(account, mbox, r);
    if (this.#index.shared) mbox.deliveries = () => this.#deliveries.settled(account, mbox.name);
    this.#open.set(key, mbox);
    if (this.#feed) this.#holds.set(key, this.#feed.hold(account));
    return mbox;
  }

  /** Index entry for a mailbox the index does not know (new, or the index was lost). Its
   *  UIDVALIDITY must exceed every earlier one of that mailbox, so the last one is also kept in
   *  a file in the mailbox directory, which survives the loss of the index; so is its id. */
  async #newIndexEntry(account: AccountId, name: string, dir: string, subscribed = true) {
    const kept = await keptInFolder(dir);
    const row = await this.#index.createMailbox(account, name, subscribed, kept.minValidity, kept.oid, kept.sortOrder);
    await this.#keepInFolder(dir, row);
    return row;
  }

  /** Index entries for many folders without one (LIST with ids): one index transaction. */
  async #newIndexEntries(account: AccountId, names: readonly string[]): Promise<void> {
    const dirs = names.map((n) => this.#dir(account, n));
    const kept = await inBatches(dirs, keptInFolder);
    const rows = await this.#index.createMailboxes(
      account,
      names.map((name, i) => ({ name, ...(kept[i] as Awaited<ReturnType<typeof keptInFolder>>) })),
    );
    await inBatches(rows, (row, i) => this.#keepInFolder(dirs[i] as string, row));
  }

  async #keepInFolder(dir: string, row: MailboxRow): Promise<void> {
    await keepFile(dir, UIDVALIDITY_FILE, `${row.uidvalidity}\n`);
    await this.#keepId(dir, row.oid);
  }

  /** Folders whose `arcline-id` file is known to hold their id (dir -> id). */
  readonly #idFiles = new Map<string, string>();

  /** Makes the folder's `arcline-id` file hold `oid` (mailboxes from before ids, imported ones,
   *  a folder copied by hand that got a new id). Once per folder and process. */
  async #keepId(dir: string, oid: string): Promise<void> {
    if (this.#idFiles.get(dir) === oid) return;
    if ((await readFile(join(dir, ID_FILE), 'utf8').catch(() => '')).trim() !== oid)
      await keepFile(dir, ID_FILE, `${oid}\n`);
    this.#idFiles.set(dir, oid);
  }

  /** When no session uses the mailbox any more, it stays loaded for IDLE_MAILBOX_MS (at most
   *  MAX_IDLE_MAILBOXES of them holding MAX_IDLE_MESSAGES messages in all, the oldest dropped
   *  first), then the object is dropped. */
  release(account: AccountId, mbox: MaildirMailbox): void {
    if (mbox.subscribers > 0) return;
    const key = `${account}\0${mbox.name}`;
    if (this.#open.get(key) !== mbox) return;
    const old = this.#idle.get(key);
    if (old) clearTimeout(old);
    this.#idle.delete(key);
    const timer = setTimeout(() => this.#evict(key), IDLE_MAILBOX_MS);
    timer.unref();
    this.#idle.set(key, timer);
    let held = 0;
    for (const k of this.#idle.keys()) held += this.#open.get(k)?.loadedMessages ?? 0;
    while (this.#idle.size > 0 && (this.#idle.size > MAX_IDLE_MAILBOXES || held > MAX_IDLE_MESSAGES)) {
      const oldest = this.#idle.keys().next().value;
      if (oldest === undefined) break;
      held -= this.#open.get(oldest)?.loadedMessages ?? 0;
      this.#evict(oldest);
    }
  }

  /** Forgets a purged account (its files are gone): its loaded mailboxes without sessions and
   *  its index entries. The account's UIDVALIDITY sequence stays, so a user made again under the
   *  same address gets higher UIDVALIDITYs: no client mixes old UIDs with new messages
   *  (RFC 9051 §2.3.1.1). */
  async forgetAccount(account: AccountId): Promise<void> {
    for (const key of [...this.#open.keys()]) if (key.startsWith(`${account}\0`)) this.#evict(key);
    for (const m of await this.#index.mailboxes(account)) await this.#index.deleteMailbox(m.id);
  }

  #evict(key: string): void {
    const timer = this.#idle.get(key);
    if (timer) clearTimeout(timer);
    this.#idle.delete(key);
    const mbox = this.#open.get(key);
    if (mbox && mbox.subscribers === 0) this.#forget(key);
  }

  /** Creates a mailbox, and its missing superiors (RFC 9051 §6.3.4 SHOULD), all or nothing:
   *  names and limits are checked first, and when making a folder fails, the folders this
   *  command made are removed again, so no partial hierarchy stays behind. */
  create(account: AccountId, name: string, specialUse: readonly string[] = []): Promise<void> {
    return this.#serial(account, () => this.#create(account, name, specialUse));
  }

  async #create(account: AccountId, name: string, specialUse: readonly string[]): Promise<void> {
    const canonical = canonicalName(name);
    // RFC 6154 §3 CREATE-SPECIAL-USE: one use per mailbox, of those a real folder can have.
    const use = specialUseFor(specialUse);
    if (use === undefined) throw new ArclineError('INVALID', 'unsupported special-use attribute');
    this.#checkNew(account, canonical);
    if (canonical === 'INBOX' || (await this.exists(account, canonical))) {
      throw new ArclineError('EXISTS', 'Mailbox already exists');
    }
    const missing: string[] = [];
    const parts = canonical.split(HIERARCHY);
    for (let i = 1; i < parts.length; i++) {
      const parent = parts.slice(0, i).join(HIERARCHY);
      if (parent !== 'INBOX' && !(await this.exists(account, parent))) missing.push(parent);
    }
    missing.push(canonical);
    if ((await this.#folderCount(account)) + missing.length > LIMITS.mailboxes.maxPerAccount) {
      throw new ArclineError('LIMIT', `Too many mailboxes (at most ${LIMITS.mailboxes.maxPerAccount})`);
    }
    const made: string[] = [];
    try {
      for (const m of missing) {
        const dir = this.#dir(account, m);
        // A directory that was there before (a stray folder without cur/) is not ours to remove.
        if (
          !(await lstat(dir).then(
            () => true,
            () => false,
          ))
        )
          made.push(m);
        await this.#make(account, m);
      }
      if (use) await writeFile(join(this.#dir(account, canonical), SPECIAL_USE_FILE), `${use}\n`, { mode: 0o600 });
    } catch (e) {
      await this.#unmake(account, made);
      throw cannotStore(e);
    }
  }

  /** Limits of a name about to exist: its length on disk, characters, depth. */
  #checkNew(account: AccountId, canonical: string): void {
    this.#dir(account, canonical);
    try {
      checkNewMailboxName(canonical);
    } catch (e) {
      throw new ArclineError('LIMIT', (e as Error).message);
    }
  }

  /** Undoes #make for the folders of a failed CREATE, newest first. */
  async #unmake(account: AccountId, made: readonly string[]): Promise<void> {
    for (const m of [...made].reverse()) {
      await rm(this.#dir(account, m), { recursive: true, force: true }).catch(() => {});
      const row = await this.#index.mailbox(account, m);
      if (row) await this.#index.deleteMailbox(row.id);
    }
    if (made.length > 0) await this.#syncer.sync(accountDir(this.#root, account)).catch(() => {});
  }

  async #make(account: AccountId, canonical: string): Promise<void> {
    const dir = this.#dir(account, canonical);
    for (const sub of ['tmp', 'new', 'cur']) await mkdir(join(dir, sub), { recursive: true, mode: 0o700 });
    await writeFile(join(dir, 'maildirfolder'), '', { mode: 0o600, flag: 'a' });
    await this.#syncer.sync(accountDir(this.#root, account));
    const old = await this.#index.mailbox(account, canonical);
    if (old) await this.#index.deleteMailbox(old.id); // a new mailbox gets a new UIDVALIDITY
    // RFC 9051 §6.3.4: CREATE does not subscribe; a subscription made before (to the name while
    // it did not exist) stays. A folder found without an index entry (another program made it,
    // or the index was lost) is subscribed in #load, so it stays visible to LSUB clients.
    await this.#newIndexEntry(account, canonical, dir, old?.subscribed ?? false);
  }

  /** RFC 9051 §6.3.4: INBOX cannot be deleted; a mailbox with children keeps them (its name
   *  becomes a \Noselect parent). */
  delete(account: AccountId, name: string): Promise<void> {
    return this.#serial(account, () => this.#delete(account, name));
  }

  async #delete(account: AccountId, name: string): Promise<void> {
    const canonical = canonicalName(name);
    if (canonical === 'INBOX') throw new ArclineError('INVALID', 'INBOX cannot be deleted');
    if (!(await this.exists(account, canonical))) throw new ArclineError('NOT_FOUND', 'Mailbox does not exist');
    await rm(this.#dir(account, canonical), { recursive: true, force: true });
    const row = await this.#index.mailbox(account, canonical);
    if (row) await this.#index.deleteMailbox(row.id);
    // RFC 9051 §6.3.7: the server MUST NOT drop a name from the subscriptions because the
    // mailbox went away; the name keeps a row of its own (as SUBSCRIBE to a new name makes).
    if (row?.subscribed) await this.#index.createMailbox(account, canonical, true);
    this.#evict(`${account}\0${canonical}`);
    this.#forget(`${account}\0${canonical}`);
  }

  /** RFC 9051 §6.3.6: renames the mailbox and its children. RENAME of INBOX (moving its
   *  messages to a new mailbox, leaving INBOX empty) is done by the session with COPY semantics.
   *  All or nothing: every target name is checked (limits, nothing in the way) before the first
   *  move, and if a move still fails, the moves already made are undone. */
  rename(account: AccountId, from: string, to: string): Promise<void> {
    return this.#serial(account, () => this.#rename(account, from, to));
  }

  async #rename(account: AccountId, from: string, to: string): Promise<void> {
    const src = canonicalName(from);
    const dst = canonicalName(to);
    if (src === 'INBOX') throw new ArclineError('INVALID', 'RENAME of INBOX is handled by the session');
    if (!(await this.exists(account, src))) throw new ArclineError('NOT_FOUND', 'Mailbox does not exist');
    this.#checkNew(account, dst);
    if (dst === 'INBOX' || (await this.exists(account, dst))) throw new ArclineError('EXISTS', 'Target mailbox exists');
    const children = (await this.list(account)).filter((m) => m.name.startsWith(`${src}${HIERARCHY}`));
    const moves = [src, ...children.filter((c) => !c.noselect).map((c) => c.name)].map((n) => ({
      from: n,
      to: dst + n.slice(src.length),
    }));
    for (const m of moves) {
      this.#checkNew(account, m.to);
      // Nothing may be in the way of any target (a folder, or a file where one would go).
      if (
        await lstat(this.#dir(account, m.to)).then(
          () => true,
          () => false,
        )
      )
        throw new ArclineError('EXISTS', 'Target mailbox exists');
    }
    const done: { from: string; to: string }[] = [];
    try {
      for (const m of moves) {
        await rename(this.#dir(account, m.from), this.#dir(account, m.to));
        done.push(m);
      }
    } catch (e) {
      for (const m of done.reverse()) {
        await rename(this.#dir(account, m.to), this.#dir(account, m.from)).catch(() => {});
      }
      throw cannotStore(e);
    }
    for (const m of moves) {
      const row = await this.#index.mailbox(account, m.from);
      // A row left under the target name (a subscription to a name that did not exist) would
      // collide with the renamed one: the folder is what counts.
      const stale = await this.#index.mailbox(account, m.to);
      if (stale && stale.id !== row?.id) await this.#index.deleteMailbox(stale.id);
      if (row) await this.#index.renameMailbox(row.id, m.to);
      const key = `${account}\0${m.from}`;
      const openBox = this.#open.get(key);
      this.#evict(key);
      this.#forget(key);
      if (openBox && row) {
        openBox.renamed({ ...row, name: m.to }, this.#dir(account, m.to));
        // Sessions that have it selected keep this object: it stays the one mailbox of the new
        // name (a second object for the same folder would hand out the same UIDs and MODSEQs).
        this.#open.set(`${account}\0${m.to}`, openBox);
        if (this.#feed) this.#holds.set(`${account}\0${m.to}`, this.#feed.hold(account));
        this.release(account, openBox);
      }
    }
  }

  /** After a delivery into new/ (or cur/, a copy delivered with flags): an open mailbox lists
   *  that directory at its next reconcile (its watch may not have reported the file yet), and
   *  one with sessions re-syncs at once, so they see EXISTS without waiting for the watch. */
  notifyDelivered(account: AccountId, name: string, sub: 'new' | 'cur' = 'new', file?: string): void {
    const canonical = canonicalName(name);
    if (this.#index.shared) {
      this.#deliveries.add(account, canonical, file === undefined ? null : { sub, name: file });
      return;
    }
    const m = this.#open.get(`${account}\0${canonical}`);
    const watched = this.#watch.watched(account);
    m?.markDirty(sub);
    if (m && (m.subscribers > 0 || watched)) this.#pending(account, m.refresh());
    // Someone watches the account (JMAP push): the delivery is indexed now, so its journal
    // entry (and the watchers' notification) comes at once, not when a session opens INBOX.
    else if (watched) this.#pending(account, this.#index1(account, canonical));
    else this.#watch.delivered(account, canonical);
  }

  /** Keeps `p` among the account's indexing under way until it settles (errors ignored, as before). */
  #pending(account: AccountId, p: Promise<unknown>): void {
    const quiet = p.catch(() => {});
    let set = this.#indexing.get(account);
    if (!set) {
      set = new Set();
      this.#indexing.set(account, set);
    }
    set.add(quiet);
    void quiet.then(() => {
      set.delete(quiet);
      if (set.size === 0 && this.#indexing.get(account) === set) this.#indexing.delete(account);
    });
  }

  /** Shared index: indexes a batch of this node's deliveries to one mailbox (DeliveryBatches). */
  async #indexDelivered(account: AccountId, name: string, files: DeliveredFile[] | null): Promise<void> {
    try {
      const mbox = await this.open(account, name);
      try {
        await mbox.indexDelivered(files);
      } finally {
        this.release(account, mbox);
      }
    } catch (e) {
      // The files are durable: a later listing (an open, the periodic rescan) indexes them.
      if (!isArclineError(e, 'NOT_FOUND'))
        this.#log?.warn({ err: String(e), account }, 'store: indexing a delivery failed');
    }
  }

  async #index1(account: AccountId, name: string): Promise<void> {
    const mbox = await this.open(account, name);
    try {
      await mbox.refresh();
    } finally {
      this.release(account, mbox);
    }
  }

  /** The full-text search (store/search/service.ts), told of every account's changes. */
  attachSearch(search: SearchService): void {
    this.#search = search;
    this.#watch.onAny = (account) => search.indexer.changed(account);
  }

  searchEmails(account: AccountId, conditions: readonly TextCondition[]): Promise<TextSearchResult | null> {
    return this.#search ? this.#search.search(account, conditions) : Promise.resolve(null);
  }

  watchAccount(account: AccountId, listener: () => void): () => void {
    const stop = this.#watch.watch(account, listener);
    const release = this.#feed?.hold(account);
    return () => {
      stop();
      release?.();
    };
  }

  /** Indexes the deliveries into mailboxes of the account no session had open, so that
   *  accountState and the journal include them (JMAP reads states after this). */
  async indexDeliveries(account: AccountId): Promise<void> {
    // Shared index: this node's deliveries are indexed as they come; wait for those under way.
    await this.#deliveries.settledAccount(account);
    // Local deliveries being indexed (an open or watched mailbox): done before the journal is read.
    await Promise.all(this.#indexing.get(account) ?? []);
    for (const name of this.#watch.takeDelivered(account)) {
      await this.#index1(account, name).catch((e: unknown) => {
        if (!isArclineError(e, 'NOT_FOUND')) throw e;
      });
    }
  }

  accountState(account: AccountId): Promise<number> {
    return this.#index.accountState(account);
  }

  accountChangesSince(account: AccountId, aseq: number, max: number): Promise<AccountChange[] | null> {
    return this.#index.accountChangesSince(account, aseq, max);
  }

  accountMessages(account: AccountId, q: MessageQuery): Promise<{ ids: string[]; total: number }> {
    return this.#index.accountMessages(account, q);
  }

  threads(account: AccountId, ids: readonly string[]): Promise<{ threadId: string; emailIds: string[] }[]> {
    return this.#index.threads(account, ids);
  }

  mailboxThreads(account: AccountId, mailboxId: string): Promise<{ total: number; unread: number }> {
    return this.#index.mailboxThreads(account, mailboxId);
  }

  /** The index says where the copies are and their flag letters; each mailbox's keyword table
   *  (maildir/flags.ts) turns the letters into flags. */
  async locate(account: AccountId, emailIds: readonly string[]): Promise<LocatedEmail[]> {
    const rows = await this.#index.locate(account, emailIds);
    const tables = new Map<string, Promise<readonly string[]>>();
    const keywords = (name: string) => {
      let t = tables.get(name);
      if (!t) {
        t = new KeywordTable(this.#dir(account, name)).load().catch(() => []);
        tables.set(name, t);
      }
      return t;
    };
    const out: LocatedEmail[] = [];
    for (const r of rows) {
      const copies = [];
      for (const c of r.copies) {
        const flags = lettersToFlags(c.letters, await keywords(c.name));
        copies.push({ mailboxId: c.mailboxId, mailbox: c.name, uid: c.uid, flags });
      }
      out.push({ ...r, internalDate: new Date(r.internalDate), copies });
    }
    return out;
  }

  /** RFC 9051 §6.3.7: a name may be subscribed before it exists; it keeps an index row, so
   *  such names are bounded like folders (storable names, at most twice the folder limit). */
  async setSubscribed(account: AccountId, name: string, on: boolean): Promise<void> {
    const canonical = canonicalName(name);
    let row = await this.#index.mailbox(account, canonical);
    if (!row && (await this.exists(account, canonical))) {
      // A folder with no index entry yet (a default folder never opened): it gets its entry the
      // way opening it does, so that UNSUBSCRIBE has a row to record itself in.
      this.release(account, await this.open(account, canonical));
      row = await this.#index.mailbox(account, canonical);
    }
    if (!row && on) {
      this.#dir(account, canonical);
      if ((await this.#index.mailboxes(account)).length >= 2 * LIMITS.mailboxes.maxPerAccount) {
        throw new ArclineError('LIMIT', 'Too many subscriptions');
      }
      row = await this.#index.createMailbox(account, canonical, on);
    }
    if (row) await this.#index.setSubscribed(row.id, on);
    this.#watch.changed(account);
  }

  /** JMAP sortOrder (RFC 8621 §2): in the index (journaled) and, when not 0, in the folder's
   *  file, so an index rebuild keeps it. NOT_FOUND for no mailbox, INVALID for no UnsignedInt. */
  async setSortOrder(account: AccountId, name: string, sortOrder: number): Promise<void> {
    if (!isSortOrder(sortOrder)) throw new ArclineError('INVALID', 'sortOrder is an unsigned integer');
    const canonical = canonicalName(name);
    const mbox = await this.open(account, canonical); // NOT_FOUND, and the index entry made
    this.release(account, mbox);
    const row = await this.#index.mailbox(account, canonical);
    if (!row) throw new ArclineError('NOT_FOUND', 'Mailbox does not exist');
    if (row.sortOrder === sortOrder) return;
    const dir = this.#dir(account, canonical);
    if (sortOrder === 0) await rm(join(dir, SORT_ORDER_FILE), { force: true });
    else await keepFile(dir, SORT_ORDER_FILE, `${sortOrder}\n`);
    await this.#index.setSortOrder(row.id, sortOrder);
    this.#watch.changed(account);
  }
}

/** A file-system refusal to store a name (something in the way, name too long for the file
 *  system) as CANNOT (RFC 5530); other failures as they are. */
function cannotStore(e: unknown): unknown {
  const code = (e as NodeJS.ErrnoException | null)?.code;
  if (code === 'ENOTDIR' || code === 'EEXIST' || code === 'ENAMETOOLONG' || code === 'EISDIR' || code === 'ENOTEMPTY') {
    return new ArclineError('INVALID', 'Mailbox cannot be stored under this name', { cause: e });
  }
  return e;
}
