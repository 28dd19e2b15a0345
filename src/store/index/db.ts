// The mail index: what IMAP needs that Maildir files do not say by themselves. One SQLite
// database in the state directory ({state}/mailindex.db), next to the directory database.
//   mailboxes: per account and name: UIDVALIDITY, UIDNEXT, HIGHESTMODSEQ, subscription
//   messages:  per mailbox and UID: the file's unique base, where it is (new/ or cur/), its flag
//              letters (a cache of the file name), MODSEQ, size, internal date
//   vanished:  expunged UIDs with the MODSEQ of their expunge (QRESYNC VANISHED, RFC 7162 §3.2.10)
//   cache:     parsed ENVELOPE and MIME structure per message, filled on first FETCH
// The files are the truth for which messages exist and their flags; the index is reconciled
// with them on every sync (maildir/mailbox.ts) and can be rebuilt from them, at the price of a
// new UIDVALIDITY. Why SQLite in the state dir rather than files beside the Maildir as Dovecot
// does: one transactional store for all mailboxes, one thing to back up, and the same schema can
// move to PostgreSQL with the directory (roadmap: several nodes over PostgreSQL).

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import { openDatabase, transaction } from '../../core/sqlite.ts';

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
];

export type CacheField = 'envelope' | 'structure' | 'search';

export interface MailboxRow {
  readonly id: number;
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
    this.#db = openDatabase(path, { migrations: MIGRATIONS, pragmas: ['synchronous = NORMAL'] });
    this.#q = prepare(this.#db);
  }

  tx<T>(fn: () => T): T {
    return transaction(this.#db, fn);
  }

  mailbox(account: string, name: string): MailboxRow | null {
    const r = this.#q.mailbox.get(account, name) as Row | undefined;
    return r ? mailboxRow(r) : null;
  }

  mailboxes(account: string): MailboxRow[] {
    return (this.#q.mailboxes.all(account) as Row[]).map(mailboxRow);
  }

  /** Creates the index entry of a mailbox with a fresh UIDVALIDITY (strictly increasing per
   *  account, so a re-created name never reuses one: RFC 9051 §2.3.1.1). */
  createMailbox(account: string, name: string, subscribed: boolean, minValidity = 0): MailboxRow {
    return this.tx(() => {
      const last = Number((this.#q.lastValidity.get(account) as Row | undefined)?.last ?? 0);
      const validity = Math.max(last + 1, minValidity, Math.floor(Date.now() / 1000));
      this.#q.setValidity.run(account, validity);
      this.#q.insertMailbox.run(account, name, validity, subscribed ? 1 : 0);
      return this.mailbox(account, name) as MailboxRow;
    });
  }

  deleteMailbox(id: number): void {
    this.#q.deleteMailbox.run(id);
  }

  renameMailbox(id: number, name: string): void {
    this.#q.renameMailbox.run(name, id);
  }

  setSubscribed(id: number, on: boolean): void {
    this.#q.subscribe.run(on ? 1 : 0, id);
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

  expungeMessage(mailbox: number, uid: number, modseq: number): void {
    this.#q.deleteMessage.run(mailbox, uid);
    this.#q.insertVanished.run(mailbox, uid, modseq);
  }

  setCounters(mailbox: number, uidnext: number, highestmodseq: number): void {
    this.#q.counters.run(uidnext, highestmodseq, mailbox);
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
      'INSERT INTO mailboxes (account, name, uidvalidity, uidnext, highestmodseq, subscribed) VALUES (?, ?, ?, 1, 1, ?)',
    ),
    deleteMailbox: p('DELETE FROM mailboxes WHERE id = ?'),
    renameMailbox: p('UPDATE mailboxes SET name = ? WHERE id = ?'),
    subscribe: p('UPDATE mailboxes SET subscribed = ? WHERE id = ?'),
    counters: p('UPDATE mailboxes SET uidnext = ?, highestmodseq = ? WHERE id = ?'),
    messages: p('SELECT * FROM messages WHERE mailbox = ? ORDER BY uid'),
    insertMessage: p(
      'INSERT INTO messages (mailbox, uid, base, in_new, letters, modseq, size, internaldate) VALUES (?, ?, ?, ?, ?, ?, ?, ?)',
    ),
    updateMessage: p('UPDATE messages SET in_new = ?, letters = ?, modseq = ? WHERE mailbox = ? AND uid = ?'),
    deleteMessage: p('DELETE FROM messages WHERE mailbox = ? AND uid = ?'),
    insertVanished: p('INSERT OR REPLACE INTO vanished (mailbox, uid, modseq) VALUES (?, ?, ?)'),
    vanished: p('SELECT uid FROM vanished WHERE mailbox = ? AND modseq > ? ORDER BY uid'),
    cacheGet: p('SELECT envelope, structure, search FROM cache WHERE mailbox = ? AND uid = ?'),
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
