// The mail index: what IMAP needs that Maildir files do not say by themselves. One SQLite
// database in the state directory ({state}/mailindex.db), next to the directory database.
//   mailboxes: per account and name: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, subscription
//   messages:  per mailbox and UID: the file's unique base, where it is (new/ or cur/), its flag
//              letters (a cache of the file name), MODSEQ, size, internal date
//   changes:   the change journal: every append, flag change and expunge with its MODSEQ, written
//              in the transaction of the change (QRESYNC VANISHED, RFC 7162 §3.2.10; JMAP states)
//   cache:     parsed ENVELOPE and MIME structure per message, filled on first FETCH
// The files are the truth for which messages exist and their flags; the index is reconciled
// with them on every sync (maildir/mailbox.ts) and can be rebuilt from them, at the price of a
// new UIDVALIDITY. Why SQLite in the state dir rather than files beside the Maildir as Dovecot
// does: one transactional store for all mailboxes, one thing to back up, and the same schema can
// move to PostgreSQL with the directory (roadmap: several nodes over PostgreSQL).
// This class is synchronous: the server uses it only inside the index worker thread
// (index/worker.ts, through index/client.ts), so no query ever runs on the event loop.

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { openDatabase, transaction } from '../../core/sqlite.ts';
import { emailId, isMailboxId, newMailboxId } from '../ids.ts';

const MIGRATIONS: readonly string[] = [
  `CREATE TABLE mailboxes (
     id INTEGER PRIMARY KEY,
     account TEXT NOT NULL,
     name TEXT NOT NULL,
     uidvalidity INTEGER NOT NULL,
     uidnext INTEGER NOT NULL,
     highestmodseq INTEGER NOT NULL,
     subscribed INTEGER NOT NULL,
     UNIQUE (account, name)
   ) STRICT;
   CREATE TABLE messages (
     mailbox INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
     uid INTEGER NOT NULL,
     base TEXT NOT NULL,
     in_new INTEGER NOT NULL,
     letters TEXT NOT NULL,
     modseq INTEGER NOT NULL,
     size INTEGER NOT NULL,
     internaldate INTEGER NOT NULL,
     PRIMARY KEY (mailbox, uid)
   ) STRICT, WITHOUT ROWID;
   CREATE UNIQUE INDEX messages_base ON messages (mailbox, base);
   CREATE TABLE vanished (
     mailbox INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
     uid INTEGER NOT NULL,
     modseq INTEGER NOT NULL,
     PRIMARY KEY (mailbox, uid)
   ) STRICT, WITHOUT ROWID;
   CREATE TABLE uidvalidity_seq (account TEXT PRIMARY KEY, last INTEGER NOT NULL) STRICT;`,
  // Parsed ENVELOPE and MIME structure per message: message files never change, so what was
  // parsed once stays true until the message is expunged (the cascade removes it then).
  `CREATE TABLE cache (
     mailbox INTEGER NOT NULL,
     uid INTEGER NOT NULL,
     envelope TEXT,
     structure TEXT,
     PRIMARY KEY (mailbox, uid),
     FOREIGN KEY (mailbox, uid) REFERENCES messages (mailbox, uid) ON DELETE CASCADE
   ) STRICT, WITHOUT ROWID;`,
  // The decoded header fields SEARCH keys use most (FROM TO CC BCC SUBJECT, SENT*), as JSON.
  'ALTER TABLE cache ADD COLUMN search TEXT;',
  // The parsed forms changed (imaptest compliance: body line counts, digest parts, ENVELOPE
  // groups and source routes): what was parsed before is parsed again on the next FETCH.
  'UPDATE cache SET envelope = NULL, structure = NULL;',
  // The change journal (issue #11, docs/architecture.md §7): one row per append (kind 1), flag
  // change (2) and expunge (3), with its MODSEQ, written in the transaction of the change. It
  // replaces `vanished` (whose rows become expunge entries). Entries other than expunges are
  // pruned below `journal_floor`; history from before the journal existed is below it too.
  `CREATE TABLE changes (
     mailbox INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
     modseq INTEGER NOT NULL,
     kind INTEGER NOT NULL,
     uid INTEGER NOT NULL,
     PRIMARY KEY (mailbox, modseq, uid)
   ) STRICT, WITHOUT ROWID;
   INSERT INTO changes (mailbox, modseq, kind, uid) SELECT mailbox, modseq, 3, uid FROM vanished;
   DROP TABLE vanished;
   ALTER TABLE mailboxes ADD COLUMN journal_floor INTEGER NOT NULL DEFAULT 0;
   UPDATE mailboxes SET journal_floor = highestmodseq;`,
  // Stable mailbox ids (JMAP, issue #17; store/ids.ts): kept through renames, and in the
  // folder's `arcline-id` file so an index rebuild finds them again. Existing mailboxes get one
  // now (hex is a subset of the id alphabet); the server writes their files at the next open.
  `ALTER TABLE mailboxes ADD COLUMN oid TEXT;
   UPDATE mailboxes SET oid = 'F' || lower(hex(randomblob(8)));
   CREATE UNIQUE INDEX mailboxes_oid ON mailboxes (oid);`,
  // The account journal (JMAP states and /changes, issue #17): every journal entry of every
  // mailbox of an account, and the mailbox events (create 4, rename 5, delete 6, subscription 7),
  // numbered by one counter per account (`aseq`), written in the transaction of the change, with
  // the mailbox's id and the message's base (its email id). A table of its own rather than
  // columns of `changes`: a mailbox's `changes` rows go with the mailbox, while a deleted
  // mailbox's messages must stay in the account's history. An account's counter starts at the
  // time in microseconds (`start`, see MailIndex.#accountSeq): states from before this
  // migration, or from before an index rebuild, are below it; `floor`: pruned up to there.
  `CREATE TABLE account_seq (
     account TEXT PRIMARY KEY,
     last INTEGER NOT NULL,
     floor INTEGER NOT NULL,
     start INTEGER NOT NULL
   ) STRICT;
   CREATE TABLE account_changes (
     account TEXT NOT NULL,
     aseq INTEGER NOT NULL,
     kind INTEGER NOT NULL,
     mailbox TEXT NOT NULL,
     uid INTEGER NOT NULL,
     base TEXT NOT NULL,
     PRIMARY KEY (account, aseq)
   ) STRICT, WITHOUT ROWID;`,
];

/** Journal entries other than expunges older than this many MODSEQs are pruned. */
const JOURNAL_KEEP = 100_000;
const KIND_CODE = { append: 1, flags: 2, expunge: 3 } as const;
const KIND_NAME = ['', 'append', 'flags', 'expunge'] as const;
/** Account journal kinds: the message kinds above, then the mailbox events. */
const ACCOUNT_KIND = {
  ...KIND_CODE,
  'mailbox-create': 4,
  'mailbox-rename': 5,
  'mailbox-delete': 6,
  'mailbox-subscribe': 7,
} as const;
const ACCOUNT_KIND_NAME = [...KIND_NAME, 'mailbox-create', 'mailbox-rename', 'mailbox-delete', 'mailbox-subscribe'];

export interface JournalRow {
  readonly modseq: number;
  readonly kind: 'append' | 'flags' | 'expunge';
  readonly uid: number;
  /** The message's file base (for the account journal); looked up when absent. */
  readonly base?: string;
}

/** One entry of an account's journal (store/mailboxes.ts AccountChange). */
export interface AccountChangeRow {
  readonly aseq: number;
  readonly kind: keyof typeof ACCOUNT_KIND;
  /** The mailbox's stable id. */
  readonly mailboxId: string;
  /** Message entries: the UID in that mailbox and the email id; 0 and null for mailbox events. */
  readonly uid: number;
  readonly emailId: string | null;
}

/** One change of a mailbox, applied in one transaction with its journal entries. */
export interface IndexWrite {
  readonly insert?: readonly MessageRow[];
  readonly update?: readonly { uid: number; inNew: boolean; letters: string; modseq: number }[];
  readonly expunge?: readonly number[];
  readonly counters?: { readonly uidnext: number; readonly highestmodseq: number };
  readonly journal?: readonly JournalRow[];
}

/** A mailbox's messages column by column (a structured clone of this from the index worker
 *  costs little on the main thread, unlike 100,000 objects). `bases` and `letters` are joined
 *  with "/", which neither a Maildir base nor flag letters contain. */
export interface MessageColumns {
  readonly count: number;
  readonly uids: Float64Array;
  readonly modseqs: Float64Array;
  readonly sizes: Float64Array;
  readonly dates: Float64Array;
  readonly inNew: Uint8Array;
  readonly bases: string;
  readonly letters: string;
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
}

export interface MessageRow {
  readonly uid: number;
  readonly base: string;
  readonly inNew: boolean;
  readonly letters: string;
  readonly modseq: number;
  readonly size: number;
  readonly internalDate: number;
}

type Row = Record<string, unknown>;

export class MailIndex {
  readonly #db: DatabaseSync;
  readonly #q: ReturnType<typeof prepare>;

  constructor(path: string) {
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
  }

  /** fn in one transaction (the caller's, when already in one). */
  tx<T>(fn: () => T): T {
    return this.#db.isTransaction ? fn() : transaction(this.#db, fn);
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
  #mailboxEvent(
    account: string,
    oid: string,
    kind: 'mailbox-create' | 'mailbox-rename' | 'mailbox-delete' | 'mailbox-subscribe',
  ): number {
    const seq = this.#accountSeq(account);
    const aseq = seq.next();
    this.#q.accountJournal.run(account, aseq, ACCOUNT_KIND[kind], oid, 0, '');
    seq.done();
    return aseq;
  }

  /** The account's last journal number (JMAP state), 0 before its first change. */
  accountState(account: string): number {
    return Number((this.#q.aseqGet.get(account) as Row | undefined)?.last ?? 0);
  }

  /** At most `max` account journal entries after `aseq`, in order; null when the journal does
   *  not reach back that far (pruned, or a state from before an index rebuild) or `aseq` is
   *  beyond it: the caller resynchronises from the full state (JMAP cannotCalculateChanges). */
  accountChangesSince(account: string, aseq: number, max: number): AccountChangeRow[] | null {
    const r = this.#q.aseqGet.get(account) as Row | undefined;
    if (!r) return aseq === 0 ? [] : null;
    // 0: the state of an account before its first change (its history starts at `start`).
    const from = aseq === 0 ? Number(r.start) : aseq;
    if (from < Number(r.start) || from < Number(r.floor) || from > Number(r.last)) return null;
    return (this.#q.accountChanges.all(account, from, Math.max(0, Math.floor(max))) as Row[]).map((c) => ({
      aseq: Number(c.aseq),
      kind: ACCOUNT_KIND_NAME[Number(c.kind)] as AccountChangeRow['kind'],
      mailboxId: String(c.mailbox),
      uid: Number(c.uid),
      emailId: c.base === '' ? null : emailId(String(c.base)),
    }));
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
  createMailbox(account: string, name: string, subscribed: boolean, minValidity = 0, oid = ''): MailboxRow {
    return this.tx(() => {
      // Another caller made it meanwhile (a LIST with ids and an open of the same folder).
      const had = this.mailbox(account, name);
      if (had) return had;
      const last = Number((this.#q.lastValidity.get(account) as Row | undefined)?.last ?? 0);
      const validity = Math.max(last + 1, minValidity, Math.floor(Date.now() / 1000));
      this.#q.setValidity.run(account, validity);
      const id = isMailboxId(oid) && !this.#q.oidTaken.get(oid) ? oid : newMailboxId();
      this.#q.insertMailbox.run(account, name, validity, subscribed ? 1 : 0, id);
      this.#mailboxEvent(account, id, 'mailbox-create');
      return this.mailbox(account, name) as MailboxRow;
    });
  }

  /** createMailbox for many folders in one transaction (subscribed, as a folder found without an
   *  index entry is: maildir/account.ts). */
  createMailboxes(
    account: string,
    wanted: readonly { name: string; minValidity: number; oid: string }[],
  ): MailboxRow[] {
    return this.tx(() => wanted.map((w) => this.createMailbox(account, w.name, true, w.minValidity, w.oid)));
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
      for (const m of rows) this.insertMessage(row.id, m);
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
          this.#q.accountJournal.run(mb.account, seq.next(), KIND_CODE.expunge, mb.oid, Number(m.uid), String(m.base));
        }
        this.#q.accountJournal.run(mb.account, seq.next(), ACCOUNT_KIND['mailbox-delete'], mb.oid, 0, '');
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

  messages(mailbox: number): MessageRow[] {
    return (this.#q.messages.all(mailbox) as Row[]).map(messageRow);
  }

  insertMessage(mailbox: number, m: MessageRow): void {
    this.#q.insertMessage.run(mailbox, m.uid, m.base, m.inNew ? 1 : 0, m.letters, m.modseq, m.size, m.internalDate);
  }

  updateMessage(mailbox: number, uid: number, fields: { inNew: boolean; letters: string; modseq: number }): void {
    this.#q.updateMessage.run(fields.inNew ? 1 : 0, fields.letters, fields.modseq, mailbox, uid);
  }

  /** One change, with its journal entries, in one transaction. */
  write(mailbox: number, w: IndexWrite): void {
    this.tx(() => {
      const journal = w.journal ?? [];
      const mb = journal.length > 0 ? this.#owner(mailbox) : null;
      // The bases of expunged messages, read before their rows go (for the account journal).
      const gone = new Map<number, string>();
      if (mb) for (const uid of w.expunge ?? []) gone.set(uid, this.#baseOf(mailbox, uid));
      for (const uid of w.expunge ?? []) this.#q.deleteMessage.run(mailbox, uid);
      for (const u of w.update ?? []) this.updateMessage(mailbox, u.uid, u);
      for (const m of w.insert ?? []) this.insertMessage(mailbox, m);
      for (const j of journal) this.#q.journal.run(mailbox, j.modseq, KIND_CODE[j.kind], j.uid);
      if (mb) {
        const seq = this.#accountSeq(mb.account);
        for (const j of journal) {
          const base = j.base ?? gone.get(j.uid) ?? this.#baseOf(mailbox, j.uid);
          this.#q.accountJournal.run(mb.account, seq.next(), KIND_CODE[j.kind], mb.oid, j.uid, base);
        }
        seq.done();
      }
      if (w.counters) this.#q.counters.run(w.counters.uidnext, w.counters.highestmodseq, mailbox);
      if (mb && w.counters && ++this.#writes % 256 === 0) {
        this.#prune(mailbox, w.counters.highestmodseq, mb.account);
      }
    });
  }

  /** The account and id of a mailbox entry. */
  #owner(mailbox: number): { account: string; oid: string } | null {
    const r = this.#q.mailboxById.get(mailbox) as Row | undefined;
    return r ? { account: String(r.account), oid: String(r.oid) } : null;
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
    const rows = this.#q.messages.all(mailbox) as Row[];
    const n = rows.length;
    const c = {
      count: n,
      uids: new Float64Array(n),
      modseqs: new Float64Array(n),
      sizes: new Float64Array(n),
      dates: new Float64Array(n),
      inNew: new Uint8Array(n),
      bases: '',
      letters: '',
    };
    const bases: string[] = new Array(n);
    const letters: string[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const r = rows[i] as Row;
      c.uids[i] = Number(r.uid);
      c.modseqs[i] = Number(r.modseq);
      c.sizes[i] = Number(r.size);
      c.dates[i] = Number(r.internaldate);
      c.inNew[i] = Number(r.in_new);
      bases[i] = String(r.base);
      letters[i] = String(r.letters);
    }
    c.bases = bases.join('/');
    c.letters = letters.join('/');
    return c;
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
    return (this.#q.changes.all(mailbox, modseq) as Row[]).map((r) => ({
      modseq: Number(r.modseq),
      kind: KIND_NAME[Number(r.kind)] as JournalRow['kind'],
      uid: Number(r.uid),
    }));
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

function prepare(db: DatabaseSync) {
  const p = (sql: string): StatementSync => db.prepare(sql);
  return {
    mailbox: p('SELECT * FROM mailboxes WHERE account = ? AND name = ?'),
    mailboxes: p('SELECT * FROM mailboxes WHERE account = ? ORDER BY name'),
    lastValidity: p('SELECT last FROM uidvalidity_seq WHERE account = ?'),
    setValidity: p(
      'INSERT INTO uidvalidity_seq (account, last) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET last = excluded.last',
    ),
    insertMailbox: p(
      'INSERT INTO mailboxes (account, name, uidvalidity, uidnext, highestmodseq, subscribed, oid) VALUES (?, ?, ?, 1, 1, ?, ?)',
    ),
    oidTaken: p('SELECT 1 FROM mailboxes WHERE oid = ?'),
    mailboxById: p('SELECT account, oid FROM mailboxes WHERE id = ?'),
    messageBases: p('SELECT uid, base FROM messages WHERE mailbox = ? ORDER BY uid'),
    baseOf: p('SELECT base FROM messages WHERE mailbox = ? AND uid = ?'),
    aseqGet: p('SELECT last, floor, start FROM account_seq WHERE account = ?'),
    aseqInsert: p('INSERT INTO account_seq (account, last, floor, start) VALUES (?, ?, ?, ?)'),
    aseqSet: p('UPDATE account_seq SET last = ? WHERE account = ?'),
    aseqFloor: p('UPDATE account_seq SET floor = ? WHERE account = ?'),
    accountJournal: p(
      'INSERT INTO account_changes (account, aseq, kind, mailbox, uid, base) VALUES (?, ?, ?, ?, ?, ?)',
    ),
    accountChanges: p(
      'SELECT aseq, kind, mailbox, uid, base FROM account_changes WHERE account = ? AND aseq > ? ORDER BY aseq LIMIT ?',
    ),
    accountPrune: p('DELETE FROM account_changes WHERE account = ? AND aseq <= ?'),
    deleteMailbox: p('DELETE FROM mailboxes WHERE id = ?'),
    importMailbox: p(
      'INSERT INTO mailboxes (account, name, uidvalidity, uidnext, highestmodseq, subscribed, journal_floor, oid) VALUES (?, ?, ?, ?, 1, ?, 1, ?)',
    ),
    renameMailbox: p('UPDATE mailboxes SET name = ? WHERE id = ?'),
    subscribe: p('UPDATE mailboxes SET subscribed = ? WHERE id = ?'),
    counters: p('UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?'),
    messages: p('SELECT * FROM messages WHERE mailbox = ? ORDER BY uid'),
    insertMessage: p(
      'INSERT INTO messages (mailbox, uid, base, in_new, letters, modseq, size, internaldate) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    updateMessage: p('UPDATE messages SET in_new = ?, letters = ?, modseq = ? WHERE mailbox = ? AND uid = ?'),
    deleteMessage: p('DELETE FROM messages WHERE mailbox = ? AND uid = ?'),
    journal: p('INSERT OR REPLACE INTO changes (mailbox, modseq, kind, uid) VALUES (?, ?, ?, ?)'),
    vanished: p('SELECT uid FROM changes WHERE mailbox = ? AND kind = 3 AND modseq > ? ORDER BY uid'),
    changes: p('SELECT modseq, kind, uid FROM changes WHERE mailbox = ? AND modseq > ? ORDER BY modseq, uid'),
    prune: p('DELETE FROM changes WHERE mailbox = ? AND kind <> 3 AND modseq <= ?'),
    floor: p('SELECT journal_floor FROM mailboxes WHERE id = ?'),
    setFloor: p('UPDATE mailboxes SET journal_floor = ? WHERE id = ? AND journal_floor < ?'),
    exists: p('SELECT 1 FROM messages WHERE mailbox = ? AND uid = ?'),
    cacheGet: p('SELECT envelope, structure, search FROM cache WHERE mailbox = ? AND uid = ?'),
    cacheRangeEnvelope: p('SELECT uid, envelope AS v FROM cache WHERE mailbox = ? AND uid BETWEEN ? AND ?'),
    cacheRangeStructure: p('SELECT uid, structure AS v FROM cache WHERE mailbox = ? AND uid BETWEEN ? AND ?'),
    cacheRangeSearch: p('SELECT uid, search AS v FROM cache WHERE mailbox = ? AND uid BETWEEN ? AND ?'),
    cacheSearch: p(
      'INSERT INTO cache (mailbox, uid, search) VALUES (?, ?, ?) ON CONFLICT (mailbox, uid) DO UPDATE SET search = excluded.search',
    ),
    cacheEnvelope: p(
      'INSERT INTO cache (mailbox, uid, envelope) VALUES (?, ?, ?) ON CONFLICT (mailbox, uid) DO UPDATE SET envelope = excluded.envelope',
    ),
    cacheStructure: p(
      'INSERT INTO cache (mailbox, uid, structure) VALUES (?, ?, ?) ON CONFLICT (mailbox, uid) DO UPDATE SET structure = excluded.structure',
    ),
  };
}

function mailboxRow(r: Row): MailboxRow {
  return {
    id: Number(r.id),
    oid: String(r.oid ?? ''),
    name: String(r.name),
    uidvalidity: Number(r.uidvalidity),
    uidnext: Number(r.uidnext),
    highestmodseq: Number(r.highestmodseq),
    subscribed: Number(r.subscribed) === 1,
  };
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
