// The mail index's schema (index/db.ts): its migrations in order, each moving it one version up
// (core/sqlite.ts; docs/upgrading.md: released migrations are never edited).

export const MIGRATIONS: readonly string[] = [
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
  // Emails of an account (JMAP Email/query, issue #17): one row per base however many mailboxes
  // have a copy (`copies`), kept in the transaction of each insert and expunge, ordered by
  // internal date and by size. `id` is the email id (store/ids.ts, a SHA-256 SQLite lacks: rows
  // from before are given theirs when the index opens, MailIndex.#fillEmailIds).
  `CREATE TABLE emails (
     account TEXT NOT NULL,
     base TEXT NOT NULL,
     id TEXT,
     internaldate INTEGER NOT NULL,
     size INTEGER NOT NULL,
     copies INTEGER NOT NULL,
     PRIMARY KEY (account, base)
   ) STRICT, WITHOUT ROWID;
   INSERT INTO emails (account, base, internaldate, size, copies)
     SELECT b.account, m.base, MIN(m.internaldate), MAX(m.size), COUNT(*)
     FROM messages m JOIN mailboxes b ON b.id = m.mailbox GROUP BY b.account, m.base;
   CREATE UNIQUE INDEX emails_id ON emails (account, id);
   CREATE INDEX emails_date ON emails (account, internaldate, base);
   CREATE INDEX emails_size ON emails (account, size, base);
   CREATE INDEX messages_date ON messages (mailbox, internaldate, base);
   CREATE INDEX messages_size ON messages (mailbox, size, base);
   CREATE INDEX messages_by_base ON messages (base);`,
  // JMAP Mailbox sortOrder (RFC 8621 §2, issue #17): an UnsignedInt, 0 by default. A change is
  // a mailbox event of the account journal (kind 8). The folder keeps a value other than 0 in
  // its `arcline-sort-order` file too (maildir/kept.ts), which an index rebuild reads back.
  'ALTER TABLE mailboxes ADD COLUMN sort_order INTEGER NOT NULL DEFAULT 0;',
  // Conversation threads (JMAP Threads, issue #17; index/threads.ts): each email's thread id,
  // the message ids each thread's emails have or name (hashed: mime/thread-key.ts
  // messageIdKey) with their base subject's key, and the thread of each account journal entry
  // (Thread/changes). Emails from before get theirs when the index opens (ThreadIndex.backfill,
  // through the partial index of those still without); older journal entries have none ('').
  `ALTER TABLE emails ADD COLUMN thread TEXT;
   CREATE INDEX emails_thread ON emails (account, thread, internaldate, base);
   CREATE INDEX emails_unthreaded ON emails (account, internaldate, base) WHERE thread IS NULL;
   CREATE TABLE thread_keys (
     account TEXT NOT NULL,
     key TEXT NOT NULL,
     thread TEXT NOT NULL,
     subject TEXT NOT NULL,
     PRIMARY KEY (account, key, thread)
   ) STRICT, WITHOUT ROWID;
   CREATE INDEX thread_keys_thread ON thread_keys (account, thread);
   ALTER TABLE account_changes ADD COLUMN thread TEXT NOT NULL DEFAULT '';`,
];
