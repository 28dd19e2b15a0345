// What one mailbox is now, as this process sees it (maildir/mailbox.ts holds one per open
// mailbox): its messages in UID order, its index entry (counters), its sessions (maildir/
// fanout.ts), and the steps every operation shares: loading from the index, committing a write,
// and, on a shared index (a cluster, docs/cluster.md "Mailboxes across nodes"), catching up with
// what other nodes committed. The mailbox's lock (maildir/mailbox.ts) is held by every caller.

import { rename } from 'node:fs/promises';
import { join } from 'node:path';
import { ArclineError, isArclineError } from '../../core/errors.ts';
import { mapSliced } from '../../core/slice.ts';
import type { IndexWrite, MailboxLock, MailboxRow, MailIndexBackend } from '../index/backend.ts';
import { applyCatchUp } from './catch-up.ts';
import type { DirSyncer } from './dirsync.ts';
import { appended, type Entry, entriesOf, meta, row } from './entry.ts';
import { Fanout } from './fanout.ts';
import { KeywordTable } from './flags.ts';

export class MailboxView {
  readonly index: MailIndexBackend;
  /** The index is shared with other nodes: the view catches up with the journal, and writes
   *  under the mailbox's lock across nodes (maildir/mailbox.ts #acrossNodes). */
  readonly shared: boolean;
  readonly syncer: DirSyncer;
  row: MailboxRow;
  dir: string;
  /** The messages, sorted by UID; UIDs only grow. */
  entries: Entry[] = [];
  loaded = false;
  /** Shared index: this process holds the mailbox's lock across nodes now (acrossNodes). */
  held = false;
  /** Shared index: another node deleted the mailbox (its entry is gone from the index). */
  gone = false;
  /** Shared index: another node may have committed since the last catch-up (a notification or
   *  the poll said so; true until the first). A NOOP or IDLE refresh of a view that is not stale
   *  reads nothing; writes catch up under the lock whatever this says. */
  stale = true;
  readonly keywords: KeywordTable;
  /** Subscribers, \Recent and expunged files awaiting acknowledgement (maildir/fanout.ts). */
  readonly fan = new Fanout();
  /** Told after each committed write (set by MaildirAccounts: watchAccount). */
  onWrite: () => void = () => {};
  /** Shared index: another node renamed the mailbox (see MaildirMailbox.onRenamed). */
  onRenamed: (row: MailboxRow) => void = () => {};

  constructor(index: MailIndexBackend, row: MailboxRow, dir: string, syncer: DirSyncer) {
    this.index = index;
    this.shared = index.shared;
    this.syncer = syncer;
    this.row = row;
    this.dir = dir;
    this.keywords = new KeywordTable(dir);
  }

  /** Shared index: applies what other nodes committed since this view's HIGHESTMODSEQ and tells
   *  the subscribers, in MODSEQ order as for our own changes (maildir/catch-up.ts). Messages
   *  expunged elsewhere stay readable from their tmp/ name until the expunging node removes
   *  them. Under the mailbox lock. NOT_FOUND when another node deleted the mailbox. */
  async catchUp(origin: object | null): Promise<void> {
    // Cleared before reading: a notification arriving meanwhile makes it stale again.
    this.stale = false;
    const keywords = await this.keywords.load();
    if (!this.loaded) await this.load(keywords);
    const id = this.row.id;
    let c = await this.index.catchUp(id, this.row.highestmodseq);
    if (c === null) {
      // The journal no longer reaches back to this view: every row is compared instead.
      const head = await this.index.catchUp(id, Number.MAX_SAFE_INTEGER);
      const all = await this.index.messageColumns(id);
      const present = new Set(all.uids);
      c = {
        row: head?.row ?? null,
        changed: all,
        expunged: this.entries.filter((e) => !present.has(e.uid)).map((e) => e.uid),
      };
    }
    if (!c.row) {
      // Deleted on another node: this object is dropped at the next open (a new mailbox of the
      // same name is another entry, with another UIDVALIDITY).
      this.gone = true;
      throw new ArclineError('NOT_FOUND', 'Mailbox does not exist');
    }
    const renamed = c.row.name !== this.row.name;
    this.row = c.row;
    if (renamed) this.onRenamed(c.row);
    if (c.changed.count === 0 && c.expunged.length === 0) return;
    const a = await applyCatchUp(this.entries, c, keywords);
    this.entries = a.entries;
    for (const e of a.gone) {
      const grave = join(this.dir, 'tmp', `${e.base}.${this.row.uidvalidity}-${e.uid}.expunged`);
      this.fan.bury(e, grave, true); // the node that expunged it removes the file
    }
    if (a.changed.length > 0) this.fan.emit({ kind: 'flags', messages: a.changed.map(meta) }, origin);
    if (a.added.length > 0) this.fan.emitExists(await mapSliced(a.added, meta), origin);
    if (a.gone.length > 0) {
      this.fan.emit({ kind: 'expunge', uids: a.gone.map((e) => e.uid), modseq: this.row.highestmodseq }, origin);
    }
  }

  /** Shared index: moves new files of `added` from new/ to cur/ before they are indexed, so no
   *  indexed message is ever in new/ (a node must not need a listing to find a file another
   *  node moved; \Recent is kept in memory per node instead). A file gone meanwhile is left out. */
  async intoCur(added: Entry[]): Promise<Entry[]> {
    const kept: Entry[] = [];
    let moved = false;
    for (const e of added) {
      if (e.inNew) {
        try {
          await rename(join(this.dir, 'new', e.base), join(this.dir, 'cur', `${e.base}:2,${e.letters}`));
        } catch (err) {
          if ((err as NodeJS.ErrnoException).code === 'ENOENT') continue;
          throw err;
        }
        e.inNew = false;
        moved = true;
      }
      kept.push(e);
    }
    if (moved) await this.syncer.sync(join(this.dir, 'cur'));
    return kept;
  }

  async load(keywords: readonly string[]): Promise<void> {
    this.entries = await entriesOf(await this.index.messageColumns(this.row.id), keywords);
    // Maildir: a message still in new/ has been seen by no mail reader (Maildir spec).
    for (const e of this.entries) if (e.inNew) this.fan.recent.add(e.uid);
    this.loaded = true;
  }

  /** Commits one change with its journal entries (index/client.ts: off the event loop); on a
   *  shared index only if the mailbox's counters are still those this view had. */
  async write(w: IndexWrite): Promise<void> {
    const { uidnext, highestmodseq } = this.row;
    await this.index.write(this.row.id, w, this.shared ? { uidnext, highestmodseq } : undefined);
    if (w.counters) this.row = { ...this.row, ...w.counters };
    this.onWrite();
  }

  /** Commits new messages (UIDs and MODSEQs following the mailbox's) and announces them. */
  async add(added: Entry[], origin: object | null): Promise<void> {
    const last = added.at(-1) as Entry;
    const counters = { uidnext: last.uid + 1, highestmodseq: last.modseq };
    await this.write({ insert: added.map(row), journal: added.map(appended), counters });
    for (const e of added) this.entries.push(e);
    this.fan.emitExists(await mapSliced(added, meta), origin);
  }

  path(e: Entry): string {
    return e.inNew ? join(this.dir, 'new', e.base) : join(this.dir, 'cur', `${e.base}:2,${e.letters}`);
  }

  find(uid: number): Entry | undefined {
    // Binary search: entries are sorted by UID.
    let lo = 0;
    let hi = this.entries.length - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const e = this.entries[mid] as Entry;
      if (e.uid === uid) return e;
      if (e.uid < uid) lo = mid + 1;
      else hi = mid - 1;
    }
    return undefined;
  }
}

/** On a shared index: `fn` holding the cross-node locks of `views` (taken in mailbox id order on
 *  every node, so two copies in opposite directions cannot deadlock), each view caught up first;
 *  the caller holds their in-process locks. Without a shared index: `fn`. */
export async function acrossNodes<T>(views: readonly MailboxView[], fn: () => Promise<T>): Promise<T> {
  const take = [...new Set(views)].filter((v) => v.shared && !v.held).sort((a, b) => a.row.id - b.row.id);
  const locks: MailboxLock[] = [];
  try {
    for (const v of take) {
      locks.push(await v.index.lockMailbox(v.row.id));
      v.held = true;
    }
    for (const v of take) await v.catchUp(null);
    return await fn();
  } catch (e) {
    // Counters that moved under a held lock mean the lock was lost (its connection died):
    // nothing was written, but the view may hold changes it made before writing them, so it is
    // reloaded from the index at its next use.
    if (!isArclineError(e, 'CONFLICT')) throw e;
    for (const v of take) v.loaded = false;
    throw new ArclineError('TEMPORARY', 'the mailbox changed on another node; try again', { cause: e });
  } finally {
    for (const v of take) v.held = false;
    for (const l of locks.reverse()) await l.release().catch(() => {});
  }
}
