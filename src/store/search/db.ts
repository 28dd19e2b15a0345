// The search index: a full-text index of the emails of every account (JMAP Email/query text
// conditions, RFC 8621 §4.4.1), SQLite FTS5 in its own database ({state}/mailsearch.db), apart
// from the mail index so that the mail index stays lean and this one can be deleted at any time:
// the indexer (search/indexer.ts) fills it again from the messages. Nothing here is the truth
// about mail; a missing or stale row costs a query's completeness only until the indexer
// catches up, and queries scan what it has not indexed yet (search/service.ts).
//   docs:    one row per email (account, email id, internal date), its rowid the FTS row's
//   text:    FTS5, contentless (the text is not stored twice; snippets are made from the
//            message), one column per field: from, to, cc, bcc (names and addresses), subject,
//            body (the text of the text/* parts); unicode61 with remove_diacritics 2, so words
//            match case- and accent-insensitively
//   cursors: per account, the account journal position (`aseq`) indexed up to
// This class is synchronous: the server uses it only in the search worker threads
// (search/worker.ts through search/client.ts).

import type { DatabaseSync } from 'node:sqlite';
import { openDatabase, transaction } from '../../core/sqlite.ts';
import type { SearchFields } from '../../mime/search-text.ts';

export const SEARCH_MIGRATIONS: readonly string[] = [
  `CREATE TABLE docs (
     id INTEGER PRIMARY KEY,
     account TEXT NOT NULL,
     email TEXT NOT NULL,
     received INTEGER NOT NULL,
     UNIQUE (account, email)
   ) STRICT;
   CREATE VIRTUAL TABLE text USING fts5(
     f_from, f_to, f_cc, f_bcc, subject, body,
     content = '', contentless_delete = 1,
     tokenize = 'unicode61 remove_diacritics 2'
   );
   CREATE TABLE cursors (account TEXT PRIMARY KEY, aseq INTEGER NOT NULL) STRICT;`,
];

/** What is indexed of one email. */
/** One email's row: what mime/search-text.ts reads of it, with its id and date. */
export interface SearchDocument extends SearchFields {
  readonly emailId: string;
  /** The internal date (ms): answers come newest first. */
  readonly receivedAt: number;
}

type Row = Record<string, unknown>;

export class SearchIndex {
  readonly #db: DatabaseSync;
  readonly #q: ReturnType<typeof statements>;

  constructor(path: string) {
    // synchronous = NORMAL: a crash may lose the last commits, which the indexer makes again
    // (its cursor is committed with the rows).
    this.#db = openDatabase(path, {
      migrations: SEARCH_MIGRATIONS,
      pragmas: ['synchronous = NORMAL', 'busy_timeout = 30000'],
    });
    this.#q = statements(this.#db);
  }

  /** fn in one transaction (the caller's, when already in one). */
  #tx(fn: () => void): void {
    if (this.#db.isTransaction) fn();
    else transaction(this.#db, fn);
  }

  /** The account journal position the account is indexed up to; null: never indexed (a new
   *  database, or an account the indexer has not finished a first pass of). */
  cursor(account: string): number | null {
    const r = this.#q.cursor.get(account) as Row | undefined;
    return r ? Number(r.aseq) : null;
  }

  /** Those of `ids` that have a row. */
  indexed(account: string, ids: readonly string[]): string[] {
    return ids.filter((id) => this.#q.docId.get(account, id) !== undefined);
  }

  /** In one transaction: the documents (a document already there is replaced), the removal of
   *  the emails `removed`, and the new cursor (null: left as it is). */
  write(account: string, docs: readonly SearchDocument[], removed: readonly string[], cursor: number | null): void {
    const q = this.#q;
    transaction(this.#db, () => {
      for (const id of [...removed, ...docs.map((d) => d.emailId)]) this.#remove(account, id);
      for (const d of docs) {
        const rowid = Number(q.insertDoc.run(account, d.emailId, d.receivedAt).lastInsertRowid);
        q.insertText.run(rowid, d.from, d.to, d.cc, d.bcc, d.subject, d.body);
      }
      if (cursor !== null) q.setCursor.run(account, cursor);
    });
  }

  #remove(account: string, id: string): void {
    const r = this.#q.docId.get(account, id) as Row | undefined;
    if (!r) return;
    this.#q.deleteText.run(Number(r.id));
    this.#q.deleteDoc.run(Number(r.id));
  }

  /** Removes the account's rows of emails not in `keep` (after a full pass: emails that went
   *  while the index was not followed); returns how many went. */
  retain(account: string, keep: readonly string[]): number {
    const wanted = new Set(keep);
    const gone = (this.#q.allIds.all(account) as Row[]).filter((r) => !wanted.has(String(r.email)));
    this.#tx(() => {
      for (const r of gone) {
        this.#q.deleteText.run(Number(r.id));
        this.#q.deleteDoc.run(Number(r.id));
      }
    });
    return gone.length;
  }

  /** The emails of the account matching the FTS5 expression (search/match.ts; null: every
   *  indexed email), newest first (ties by id) with their internal dates, and the cursor they
   *  are indexed up to, read in one snapshot. */
  search(account: string, match: string | null): { ids: string[]; dates: number[]; cursor: number | null } {
    this.#db.exec('BEGIN');
    try {
      const cursor = this.cursor(account);
      const rows = (match === null ? this.#q.all.all(account) : this.#q.match.all(match, account)) as Row[];
      return { ids: rows.map((r) => String(r.email)), dates: rows.map((r) => Number(r.received)), cursor };
    } finally {
      this.#db.exec('COMMIT');
    }
  }

  /** Removes everything of the account (a user deleted: its mail's text goes with it). */
  forget(account: string): void {
    this.#tx(() => {
      this.retain(account, []);
      this.#q.forgetCursor.run(account);
    });
  }

  /** Emails indexed, all accounts (metrics, benchmarks). */
  count(): number {
    return Number((this.#q.count.get() as Row).n);
  }

  close(): void {
    if (this.#db.isOpen) this.#db.close();
  }
}

/** The prepared statements, by name. */
function statements(db: DatabaseSync) {
  const p = (sql: string) => db.prepare(sql);
  return {
    cursor: p('SELECT aseq FROM cursors WHERE account = ?'),
    setCursor: p(
      'INSERT INTO cursors (account, aseq) VALUES (?, ?) ON CONFLICT (account) DO UPDATE SET aseq = excluded.aseq',
    ),
    docId: p('SELECT id FROM docs WHERE account = ? AND email = ?'),
    insertDoc: p('INSERT INTO docs (account, email, received) VALUES (?, ?, ?)'),
    insertText: p('INSERT INTO text (rowid, f_from, f_to, f_cc, f_bcc, subject, body) VALUES (?, ?, ?, ?, ?, ?, ?)'),
    deleteText: p('DELETE FROM text WHERE rowid = ?'),
    deleteDoc: p('DELETE FROM docs WHERE id = ?'),
    all: p('SELECT email, received FROM docs WHERE account = ? ORDER BY received DESC, email DESC'),
    allIds: p('SELECT id, email FROM docs WHERE account = ?'),
    match: p(
      'SELECT d.email, d.received FROM text JOIN docs d ON d.id = text.rowid WHERE text MATCH ? AND d.account = ? ORDER BY d.received DESC, d.email DESC',
    ),
    count: p('SELECT count(*) AS n FROM docs'),
    forgetCursor: p('DELETE FROM cursors WHERE account = ?'),
  };
}
