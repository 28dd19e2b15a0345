// The mail index: what IMAP needs that Maildir files do not say by themselves. One SQLite
// database in the state directory ({state}/mailindex.db), next to the directory database.
//   mailboxes: per account and name: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, subscription, the
//              stable id (`oid`, JMAP)
//   messages:  per mailbox and UID: the file's unique base, where it is (new/ or cur/), its flag
//              letters (a cache of the file name), MODSEQ, size, internal date
//   changes:   the change journal: every append, flag change and expunge with its MODSEQ, written
//              in the transaction of the change (QRESYNC VANISHED, RFC 7162 §3.2.10; JMAP states)
//   cache:     parsed ENVELOPE and MIME structure per message, filled on first FETCH
//   account_changes, account_seq: the account journal (JMAP states and /changes)
//   emails:    one row per email (file base) of an account, with its copies: JMAP Email/query
// Schema: index/schema.ts; statements: index/queries.ts.
// The files are the truth for which messages exist and their flags; the index is reconciled
// with them on every sync (maildir/mailbox.ts) and can be rebuilt from them, at the price of a
// new UIDVALIDITY. Why SQLite in the state dir rather than files beside the Maildir as Dovecot
// does: one transactional store for all mailboxes, one thing to back up, and the same schema can
// move to PostgreSQL with the directory (roadmap: several nodes over PostgreSQL).
// This class is synchronous: the server uses it only inside the index worker thread
// (index/worker.ts, through index/client.ts), so no query ever runs on the event loop.

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { ArclineError } from '../../core/errors.ts';
import { openDatabase, transaction } from '../../core/sqlite.ts';
import type { ThreadHeaders } from '../../mime/thread-key.ts';
import { emailId, isMailboxId, newMailboxId } from '../ids.ts';
import type { MailboxCatchUp, WriteExpect } from './backend.ts';
import {
  ACCOUNT_KIND,
  type AccountChangeRow,
  accountChangeRow,
  JOURNAL_KEEP,
  type JournalRow,
  journalFrom,
  journalRow,
  KIND_CODE,
  type MailboxEvent,
  type MessageColumns,
  mailboxRow,
  PRUNE_EVERY,
  toColumns,
} from './journal.ts';
import { emailPage } from './pages.ts';
import { prepare } from './queries.ts';
import { MIGRATIONS } from './schema.ts';
import { mailboxThreads, type ThreadHeaderSource, ThreadIndex } from './threads.ts';

/** How accountMessages() orders (JMAP Email/query sorts the store answers with an index). */
export interface MessageQuery {
  readonly sort: 'receivedAt' | 'size';
  readonly descending: boolean;
  /** Only the messages of this mailbox (its stable id). */
  readonly mailboxId?: string;
  /** One email per thread: the first in this order (JMAP collapseThreads); total counts threads. */
  readonly collapseThreads?: boolean;
  readonly position: number;
  readonly limit: number;
}

/** Where an email is (locate()): its copies, with the flag letters of each. */
export interface LocatedRow {
  readonly emailId: string;
  readonly threadId: string;
  readonly size: number;
  readonly internalDate: number;
  readonly copies: readonly { mailboxId: string; name: string; uid: number; letters: string }[];
}

/** One change of a mailbox, applied in one transaction with its journal entries. */
export interface IndexWrite {
  readonly insert?: readonly MessageRow[];
  readonly update?: readonly { uid: number; inNew: boolean; letters: string; modseq: number }[];
  readonly expunge?: readonly number[];
  readonly counters?: { readonly uidnext: number; readonly highestmodseq: number };
  readonly journal?: readonly JournalRow[];
}

export type CacheField = 'envelope' | 'structure' | 'search';

export interface MailboxRow {
  readonly id: number;
  /** The mailbox's stable id (store/ids.ts). */
  readonly oid: string;
  readonly name: string;
  readonly uidvalidity: number;
  readonly uidnext: number;
  readonly highestmodseq: number;
  readonly subscribed: boolean;
  /** JMAP sortOrder (RFC 8621 §2). */
  readonly sortOrder: number;
}

export interface MessageRow {
  readonly uid: number;
  readonly base: string;
  readonly inNew: boolean;
  readonly letters: string;
  readonly modseq: number;
  readonly size: number;
  readonly internalDate: number;
  /** Inserts: the threading fields when the caller has the bytes (else read from the file). */
  readonly thread?: ThreadHeaders;
}

type Row = Record<string, unknown>;

export type { AccountChangeRow, JournalRow, MessageColumns };

export class MailIndex {
  readonly #db: DatabaseSync;
  readonly #q: ReturnType<typeof prepare>;
  readonly #threads: ThreadIndex;

  /** `threadHeaders`: reads a message's threading fields (index/worker.ts: from its file). */
  constructor(path: string, threadHeaders: ThreadHeaderSource | null = null) {
    // synchronous=NORMAL in WAL mode: a crash may lose the last index commits, never corrupt
    // the index; the files stay the truth and the next sync re-reads them.
    // busy_timeout 30 s: only the index worker threads wait for a lock another process (the CLI,
    // a backup) holds, never the event loop, so a long wait costs one command's latency rather
    // than a failed APPEND or index rebuild.
    this.#db = openDatabase(path, {
      migrations: MIGRATIONS,
      pragmas: ['synchronous = NORMAL', 'busy_timeout = 30000'],
    });
    this.#q = prepare(this.#db);
    this.#threads = new ThreadIndex(this.#db, threadHeaders);
    this.#fillEmailIds();
    this.#threads.backfill((fn) => this.tx(fn));
  }

  /** Gives the emails rows the migration made their ids, 5000 per transaction. */
  #fillEmailIds(): void {
    for (;;) {
      const rows = this.#q.emailsWithoutId.all() as Row[];
      if (rows.length === 0) return;
      this.tx(() => {
        for (const r of rows) this.#q.setEmailId.run(emailId(String(r.base)), String(r.account), String(r.base));
      });
    }
  }

  /** fn in one transaction (the caller's, when already in one). */
  tx<T>(fn: () => T): T {
    return this.#db.isTransaction ? fn() : transaction(this.#db, fn);
  }

  /** fn in one read transaction (BEGIN DEFERRED: one WAL snapshot, no write lock taken). */
  #snapshot<T>(fn: () => T): T {
    if (this.#db.isTransaction) return fn();
    this.#db.exec('BEGIN');
    try {
      return fn();
    } finally {
      this.#db.exec('COMMIT');
    }
  }

  /** The account journal's counter, for entries about to be written (in the caller's
   *  transaction): `next()` numbers one, `done()` stores the last. A new counter (a new account,
   *  an index rebuilt, an account from before the journal) starts at the time in microseconds,
   *  so no state a client kept from before is taken for a later one (it is below `start`). */
  #accountSeq(account: string): { next(): number; done(): void } {
    const r = this.#q.aseqGet.get(account) as Row | undefined;
    let last = Number(r?.last ?? 0);
    if (!r) {
      last = Date.now() * 1000;
      this.#q.aseqInsert.run(account, last, 0, last);
    }
    const first = last;
    return {
      next: () => ++last,
      done: () => {
        if (last !== first) this.#q.aseqSet.run(last, account);
      },
    };
  }

  /** A mailbox event in the account journal (in the caller's transaction). */
  #mailboxEvent(account: string, oid: string, kind: MailboxEvent): number {
    const seq = this.#accountSeq(account);
    const aseq = seq.next();
    this.#q.accountJournal.run(account, aseq, ACCOUNT_KIND[kind], oid, 0, '', '');
    seq.done();
    return aseq;
  }

  /** Every account with a mailbox entry (the search indexer's round at start). */
  accounts(): string[] {
    return (this.#q.accounts.all() as Row[]).map((r) => String(r.account));
  }

  /** The account's last journal number (JMAP state), 0 before its first change. */
  accountState(account: string): number {
    return Number((this.#q.aseqGet.get(account) as Row | undefined)?.last ?? 0);
  }

  /** At most `max` account journal entries after `aseq`, in order; null when the journal does
   *  not reach back that far (pruned, or a state from before an index rebuild) or `aseq` is
   *  beyond it: the caller resynchronises from the full state (JMAP cannotCalculateChanges). */
  accountChangesSince(account: string, aseq: number, max: number): AccountChangeRow[] | null {
    const from = journalFrom(this.#q.aseqGet.get(account) as Row | undefined, aseq);
    if (from === null || from === 'none') return from === 'none' ? [] : null;
    return (this.#q.accountChanges.all(account, from, Math.max(0, Math.floor(max))) as Row[]).map(accountChangeRow);
  }

  mailbox(account: string, name: string): MailboxRow | null {
    const r = this.#q.mailbox.get(account, name) as Row | undefined;
    return r ? mailboxRow(r) : null;
  }

  mailboxes(account: string): MailboxRow[] {
    return (this.#q.mailboxes.all(account) as Row[]).map(mailboxRow);
  }

  /** Creates the index entry of a mailbox with a fresh UIDVALIDITY (strictly increasing per
   *  account, so a re-created name never reuses one: RFC 9051 §2.3.1.1) and the id `oid` (the
   *  one its folder keeps, after a rebuild) unless another mailbox has it (a folder copied or
   *  renamed by hand): then, and without one, a new id. */
  createMailbox(
    account: string,
    name: string,
    subscribed: boolean,
    minValidity = 0,
    oid = '',
    sortOrder = 0,
  ): MailboxRow {
    return this.tx(() => {
      // Another caller made it meanwhile (a LIST with ids and an open of the same folder).
      const had = this.mailbox(account, name);
      if (had) return had;
      const last = Number((this.#q.lastValidity.get(account) as Row | undefined)?.last ?? 0);
      const validity = Math.max(last + 1, minValidity, Math.floor(Date.now() / 1000));
      this.#q.setValidity.run(account, validity);
      const id = isMailboxId(oid) && !this.#q.oidTaken.get(oid) ? oid : newMailboxId();
      this.#q.insertMailbox.run(account, name, validity, subscribed ? 1 : 0, id, sortOrder);
      this.#mailboxEvent(account, id, 'mailbox-create');
      return this.mailbox(account, name) as MailboxRow;
    });
  }

  /** createMailbox for many folders in one transaction (subscribed, as a folder found without an
   *  index entry is: maildir/account.ts). */
  createMailboxes(
    account: string,
    wanted: readonly { name: string; minValidity: number; oid: string; sortOrder?: number }[],
  ): MailboxRow[] {
    return this.tx(() =>
      wanted.map((w) => this.createMailbox(account, w.name, true, w.minValidity, w.oid, w.sortOrder ?? 0)),
    );
  }

  /** Creates a mailbox with the UIDVALIDITY, UIDNEXT and message UIDs another server gave it
   *  (`arcline import dovecot`), in one transaction. Refused when the index's entry for the name
   *  is not the one the caller saw (`expect`: its id, or null for none); the one it saw is
   *  replaced (the caller checked that the mailbox has no message files: the files are the
   *  truth, rows of files that are gone are stale). Every message gets MODSEQ 1 and the journal
   *  starts above the import (journal_floor 1: changes since MODSEQ 0 are a full resync). The
   *  account's UIDVALIDITY sequence moves up to the imported value, so a mailbox created later
   *  gets a greater one (RFC 9051 §2.3.1.1). */
  importMailbox(
    account: string,
    name: string,
    head: { uidvalidity: number; uidnext: number; subscribed: boolean; expect: number | null },
    rows: readonly MessageRow[],
  ): MailboxRow {
    return this.tx(() => {
      const old = this.mailbox(account, name);
      if ((old?.id ?? null) !== head.expect) throw new Error(`mailbox ${name} changed during the import`);
      if (old) this.#q.deleteMailbox.run(old.id);
      const last = Number((this.#q.lastValidity.get(account) as Row | undefined)?.last ?? 0);
      this.#q.setValidity.run(account, Math.max(last, head.uidvalidity));
      this.#q.importMailbox.run(account, name, head.uidvalidity, head.uidnext, head.subscribed ? 1 : 0, newMailboxId());
      const row = this.mailbox(account, name) as MailboxRow;
      for (const m of rows) this.insertMessage(row.id, m, account, name);
      // The imported messages are not journaled one by one: the account's history starts after
      // them (a JMAP client resynchronises).
      const aseq = this.#mailboxEvent(account, row.oid, 'mailbox-create');
      this.#q.aseqFloor.run(aseq, account);
      return row;
    });
  }

  /** Deletes a mailbox's entry; its messages go as expunges in the account journal. */
  deleteMailbox(id: number): void {
    this.tx(() => {
      const mb = this.#owner(id);
      if (mb) {
        const seq = this.#accountSeq(mb.account);
        for (const m of this.#q.messageBases.all(id) as Row[]) {
          const base = String(m.base);
          const thread = this.#threads.threadOf(mb.account, base) ?? '';
          this.#q.accountJournal.run(mb.account, seq.next(), KIND_CODE.expunge, mb.oid, Number(m.uid), base, thread);
          this.#emailGone(mb.account, base);
        }
        this.#q.accountJournal.run(mb.account, seq.next(), ACCOUNT_KIND['mailbox-delete'], mb.oid, 0, '', '');
        seq.done();
      }
      this.#q.deleteMailbox.run(id);
    });
  }

  renameMailbox(id: number, name: string): void {
    this.tx(() => {
      this.#q.renameMailbox.run(name, id);
      const mb = this.#owner(id);
      if (mb) this.#mailboxEvent(mb.account, mb.oid, 'mailbox-rename');
    });
  }

  setSubscribed(id: number, on: boolean): void {
    this.tx(() => {
      this.#q.subscribe.run(on ? 1 : 0, id);
      const mb = this.#owner(id);
      if (mb) this.#mailboxEvent(mb.account, mb.oid, 'mailbox-subscribe');
    });
  }

  /** JMAP sortOrder (RFC 8621 §2), journaled as a mailbox event. */
  setSortOrder(id: number, sortOrder: number): void {
    this.tx(() => {
      this.#q.setSortOrder.run(sortOrder, id);
      const mb = this.#owner(id);
      if (mb) this.#mailboxEvent(mb.account, mb.oid, 'mailbox-sort-order');
    });
  }

  messages(mailbox: number): MessageRow[] {
    return (this.#q.messages.all(mailbox) as Row[]).map(messageRow);
  }

  /** A message row, and its email's (a first copy, with its thread, or one more) in mailbox
   *  `name` of `account`. */
  insertMessage(mailbox: number, m: MessageRow, account: string, name: string): void {
    this.#q.insertMessage.run(mailbox, m.uid, m.base, m.inNew ? 1 : 0, m.letters, m.modseq, m.size, m.internalDate);
    const id = emailId(m.base);
    this.#q.emailAdd.run(account, m.base, id, m.internalDate, m.size);
    this.#threads.added(account, name, m, id, m.thread);
  }

  /** One copy of the email `base` is gone; its row goes with the last (its thread's keys with
   *  the thread's last email). */
  #emailGone(account: string, base: string): void {
    const thread = this.#threads.threadOf(account, base);
    this.#q.emailDrop.run(account, base);
    this.#q.emailDelete.run(account, base);
    this.#threads.emailGone(account, thread);
  }

  /** Mailbox `oid`'s threads, and its unread ones (threads.ts mailboxThreads). */
  mailboxThreads(account: string, oid: string): { total: number; unread: number } {
    const mb = this.#q.mailboxByOid.get(account, oid) as Row | undefined;
    return mb ? mailboxThreads(this.#stmt.bind(this), Number(mb.id)) : { total: 0, unread: 0 };
  }

  /** The emails of each thread, oldest first; unknown threads are left out. */
  threads(account: string, ids: readonly string[]): { threadId: string; emailIds: string[] }[] {
    return this.#threads.threads(account, ids);
  }

  /** The account's emails (one per base, whatever the copies) or a mailbox's messages, in the
   *  order asked (ties by base), from `position`: the ids of at most `limit`, and the total. */
  accountMessages(account: string, q: MessageQuery): { ids: string[]; total: number } {
    return emailPage(this.#stmt.bind(this), account, q);
  }

  readonly #stmts = new Map<string, StatementSync>();

  /** A prepared statement of the few accountMessages() (index/pages.ts) and mailboxThreads()
   *  make (from fixed parts only). */
  #stmt(sql: string): StatementSync {
    let st = this.#stmts.get(sql);
    if (!st) {
      st = this.#db.prepare(sql);
      this.#stmts.set(sql, st);
    }
    return st;
  }

  /** Where each of these emails is; unknown ids are left out. */
  locate(account: string, ids: readonly string[]): LocatedRow[] {
    const out: LocatedRow[] = [];
    for (const id of ids) {
      const e = this.#q.emailById.get(account, id) as Row | undefined;
      const threadId = String(e?.thread ?? `T${id.slice(1)}`);
      if (!e) continue;
      const copies = (this.#q.copiesOf.all(String(e.base), account) as Row[]).map((c) => ({
        mailboxId: String(c.oid),
        name: String(c.name),
        uid: Number(c.uid),
        letters: String(c.letters),
      }));
      out.push({ emailId: id, threadId, size: Number(e.size), internalDate: Number(e.internaldate), copies });
    }
    return out;
  }

  updateMessage(mailbox: number, uid: number, fields: { inNew: boolean; letters: string; modseq: number }): void {
    this.#q.updateMessage.run(fields.inNew ? 1 : 0, fields.letters, fields.modseq, mailbox, uid);
  }

  /** One change, with its journal entries, in one transaction. With `expect` (the counters the
   *  change was computed from), CONFLICT and nothing written when the mailbox moved on. */
  write(mailbox: number, w: IndexWrite, expect?: WriteExpect): void {
    this.tx(() => {
      if (expect) {
        const r = this.#q.mailboxRowById.get(mailbox) as Row | undefined;
        if (!r || Number(r.uidnext) !== expect.uidnext || Number(r.highestmodseq) !== expect.highestmodseq)
          throw new ArclineError('CONFLICT', 'the mailbox changed since its counters were read');
      }
      const journal = w.journal ?? [];
      const mb = journal.length > 0 || w.insert?.length || w.expunge?.length ? this.#owner(mailbox) : null;
      // The bases and threads of expunged messages, read before their rows go (emails, account
      // journal).
      const gone = new Map<number, { base: string; thread: string }>();
      for (const uid of mb ? (w.expunge ?? []) : []) {
        const base = this.#baseOf(mailbox, uid);
        gone.set(uid, { base, thread: this.#threads.threadOf((mb as { account: string }).account, base) ?? '' });
      }
      for (const uid of w.expunge ?? []) this.#q.deleteMessage.run(mailbox, uid);
      if (mb) for (const g of gone.values()) this.#emailGone(mb.account, g.base);
      for (const u of w.update ?? []) this.updateMessage(mailbox, u.uid, u);
      if (mb) for (const m of w.insert ?? []) this.insertMessage(mailbox, m, mb.account, mb.name);
      for (const j of journal) this.#q.journal.run(mailbox, j.modseq, KIND_CODE[j.kind], j.uid);
      if (mb && journal.length > 0) {
        const seq = this.#accountSeq(mb.account);
        for (const j of journal) {
          const g = gone.get(j.uid);
          const base = j.base ?? g?.base ?? this.#baseOf(mailbox, j.uid);
          const thread = g?.thread ?? this.#threads.threadOf(mb.account, base) ?? '';
          this.#q.accountJournal.run(mb.account, seq.next(), KIND_CODE[j.kind], mb.oid, j.uid, base, thread);
        }
        seq.done();
      }
      if (w.counters) this.#q.counters.run(w.counters.uidnext, w.counters.highestmodseq, mailbox);
      if (mb && journal.length > 0 && w.counters && ++this.#writes % PRUNE_EVERY === 0) {
        this.#prune(mailbox, w.counters.highestmodseq, mb.account);
      }
    });
  }

  /** The account and id of a mailbox entry. */
  #owner(mailbox: number): { account: string; oid: string; name: string } | null {
    const r = this.#q.mailboxById.get(mailbox) as Row | undefined;
    return r ? { account: String(r.account), oid: String(r.oid), name: String(r.name) } : null;
  }

  #baseOf(mailbox: number, uid: number): string {
    return String((this.#q.baseOf.get(mailbox, uid) as Row | undefined)?.base ?? '');
  }

  #writes = 0;

  /** Drops journal entries (not expunges: QRESYNC needs them) more than JOURNAL_KEEP behind,
   *  and the account journal's entries more than JOURNAL_KEEP behind its last. */
  #prune(mailbox: number, highest: number, account: string): void {
    const last = this.accountState(account);
    const aFloor = last - JOURNAL_KEEP;
    const r = this.#q.aseqGet.get(account) as Row | undefined;
    if (r && aFloor > Number(r.floor)) {
      this.#q.accountPrune.run(account, aFloor);
      this.#q.aseqFloor.run(aFloor, account);
    }
    const floor = highest - JOURNAL_KEEP;
    if (floor <= 0) return;
    this.#q.prune.run(mailbox, floor);
    this.#q.setFloor.run(floor, mailbox, floor);
  }

  /** The mailbox's messages in UID order, column by column (see MessageColumns). */
  messageColumns(mailbox: number): MessageColumns {
    return toColumns(this.#q.messages.all(mailbox) as Row[]);
  }

  /** What changed in the mailbox after `modseq` (backend.ts MailboxCatchUp), read in one
   *  transaction; null when the journal no longer reaches back that far. */
  catchUp(mailbox: number, modseq: number): MailboxCatchUp | null {
    return this.#snapshot(() => {
      const r = this.#q.mailboxRowById.get(mailbox) as Row | undefined;
      if (r && modseq < Number(r.journal_floor)) return null;
      return {
        row: r ? mailboxRow(r) : null,
        changed: toColumns(r ? (this.#q.messagesAfter.all(mailbox, modseq) as Row[]) : []),
        expunged: r ? this.vanishedSince(mailbox, modseq) : [],
      };
    });
  }

  cachedMany(mailbox: number, uids: readonly number[], field: CacheField): [number, string][] {
    const out: [number, string][] = [];
    if (uids.length === 0) return out;
    let lo = uids[0] as number;
    let hi = lo;
    for (const u of uids) {
      if (u < lo) lo = u;
      if (u > hi) hi = u;
    }
    // A dense set (FETCH 1:*, a batch of it): one range scan instead of a lookup per message.
    if (hi - lo < 4 * uids.length) {
      const wanted = new Set(uids);
      const q = {
        envelope: this.#q.cacheRangeEnvelope,
        structure: this.#q.cacheRangeStructure,
        search: this.#q.cacheRangeSearch,
      }[field];
      for (const r of q.all(mailbox, lo, hi) as Row[]) {
        const uid = Number(r.uid);
        if (typeof r.v === 'string' && wanted.has(uid)) out.push([uid, r.v]);
      }
      return out;
    }
    for (const uid of uids) {
      const v = this.cached(mailbox, uid, field);
      if (v !== null) out.push([uid, v]);
    }
    return out;
  }

  /** Stores parsed data in one transaction; rows of messages no longer indexed are skipped. */
  setCachedMany(mailbox: number, entries: readonly (readonly [number, CacheField, string])[]): void {
    this.tx(() => {
      for (const [uid, field, value] of entries) {
        if (this.#q.exists.get(mailbox, uid)) this.setCached(mailbox, uid, field, value);
      }
    });
  }

  /** Journal entries after `modseq`, or null when pruning removed some of them. */
  changesSince(mailbox: number, modseq: number): JournalRow[] | null {
    const floor = Number((this.#q.floor.get(mailbox) as Row | undefined)?.journal_floor ?? 0);
    if (modseq < floor) return null;
    return (this.#q.changes.all(mailbox, modseq) as Row[]).map(journalRow);
  }

  cached(mailbox: number, uid: number, field: CacheField): string | null {
    const r = this.#q.cacheGet.get(mailbox, uid) as Row | undefined;
    const v = r?.[field];
    return typeof v === 'string' ? v : null;
  }

  setCached(mailbox: number, uid: number, field: CacheField, value: string): void {
    const q = { envelope: this.#q.cacheEnvelope, structure: this.#q.cacheStructure, search: this.#q.cacheSearch }[
      field
    ];
    q.run(mailbox, uid, value);
  }

  /** UIDs expunged after `modseq` (QRESYNC). */
  vanishedSince(mailbox: number, modseq: number): number[] {
    return (this.#q.vanished.all(mailbox, modseq) as Row[]).map((r) => Number(r.uid));
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

function messageRow(r: Row): MessageRow {
  return {
    uid: Number(r.uid),
    base: String(r.base),
    inNew: Number(r.in_new) === 1,
    letters: String(r.letters),
    modseq: Number(r.modseq),
    size: Number(r.size),
    internalDate: Number(r.internaldate),
  };
}
