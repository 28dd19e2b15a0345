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
  // Per-mailbox thread counts (JMAP Mailbox totalThreads/unreadThreads, RFC 8621 §2; issue
  // #17; index/threads.ts): for each thread with a message in a mailbox, how many messages it
  // has there and how many of those are unread (neither \Seen nor \Draft: flag letters S, D;
  // RFC 8621 §2 unreadEmails), and per mailbox the number of
  // such threads and of those with an unseen message. Kept by triggers, so in the transaction
  // of every write whatever its path: a message row inserted (counted when its email has a
  // thread), its flags changed, deleted (an expunge, or the cascade of a mailbox deletion), and
  // an email given its thread later (insert order, ThreadIndex.backfill). A mailbox's rows go
  // with it (cascade). Built here from the existing rows.
  `CREATE TABLE mailbox_threads (
     mailbox INTEGER NOT NULL REFERENCES mailboxes(id) ON DELETE CASCADE,
     thread TEXT NOT NULL,
     messages INTEGER NOT NULL,
     unseen INTEGER NOT NULL,
     PRIMARY KEY (mailbox, thread)
   ) STRICT, WITHOUT ROWID;
   INSERT INTO mailbox_threads (mailbox, thread, messages, unseen)
     SELECT m.mailbox, e.thread, count(*), sum((instr(m.letters, 'S') = 0 AND instr(m.letters, 'D') = 0))
     FROM messages m JOIN mailboxes b ON b.id = m.mailbox JOIN emails e ON e.account = b.account AND e.base = m.base
     WHERE e.thread IS NOT NULL GROUP BY m.mailbox, e.thread;
   ALTER TABLE mailboxes ADD COLUMN total_threads INTEGER NOT NULL DEFAULT 0;
   ALTER TABLE mailboxes ADD COLUMN unread_threads INTEGER NOT NULL DEFAULT 0;
   UPDATE mailboxes SET
     total_threads = (SELECT count(*) FROM mailbox_threads t WHERE t.mailbox = mailboxes.id),
     unread_threads = (SELECT count(*) FROM mailbox_threads t WHERE t.mailbox = mailboxes.id AND t.unseen > 0);
   CREATE TRIGGER mailbox_threads_add AFTER INSERT ON mailbox_threads BEGIN
     UPDATE mailboxes SET total_threads = total_threads + 1, unread_threads = unread_threads + (new.unseen > 0)
     WHERE id = new.mailbox;
   END;
   CREATE TRIGGER mailbox_threads_change AFTER UPDATE OF unseen ON mailbox_threads
   WHEN (old.unseen > 0) <> (new.unseen > 0) BEGIN
     UPDATE mailboxes SET unread_threads = unread_threads + (new.unseen > 0) - (old.unseen > 0) WHERE id = new.mailbox;
   END;
   CREATE TRIGGER mailbox_threads_drop AFTER DELETE ON mailbox_threads BEGIN
     UPDATE mailboxes SET total_threads = total_threads - 1, unread_threads = unread_threads - (old.unseen > 0)
     WHERE id = old.mailbox;
   END;
   CREATE TRIGGER messages_thread_add AFTER INSERT ON messages BEGIN
     INSERT INTO mailbox_threads (mailbox, thread, messages, unseen)
       SELECT new.mailbox, e.thread, 1, (instr(new.letters, 'S') = 0 AND instr(new.letters, 'D') = 0)
       FROM mailboxes b JOIN emails e ON e.account = b.account AND e.base = new.base
       WHERE b.id = new.mailbox AND e.thread IS NOT NULL
     ON CONFLICT (mailbox, thread) DO UPDATE SET messages = messages + 1, unseen = unseen + excluded.unseen;
   END;
   CREATE TRIGGER messages_thread_seen AFTER UPDATE OF letters ON messages
   WHEN ((instr(old.letters, 'S') = 0 AND instr(old.letters, 'D') = 0)) <> ((instr(new.letters, 'S') = 0 AND instr(new.letters, 'D') = 0)) BEGIN
     UPDATE mailbox_threads SET unseen = unseen + ((instr(new.letters, 'S') = 0 AND instr(new.letters, 'D') = 0)) - ((instr(old.letters, 'S') = 0 AND instr(old.letters, 'D') = 0))
     WHERE mailbox = new.mailbox AND thread = (SELECT e.thread FROM mailboxes b JOIN emails e
       ON e.account = b.account AND e.base = new.base WHERE b.id = new.mailbox);
   END;
   CREATE TRIGGER messages_thread_drop AFTER DELETE ON messages BEGIN
     UPDATE mailbox_threads SET messages = messages - 1, unseen = unseen - ((instr(old.letters, 'S') = 0 AND instr(old.letters, 'D') = 0))
     WHERE mailbox = old.mailbox AND thread = (SELECT e.thread FROM mailboxes b JOIN emails e
       ON e.account = b.account AND e.base = old.base WHERE b.id = old.mailbox);
     DELETE FROM mailbox_threads WHERE mailbox = old.mailbox AND messages <= 0 AND thread = (SELECT e.thread
       FROM mailboxes b JOIN emails e ON e.account = b.account AND e.base = old.base WHERE b.id = old.mailbox);
   END;
   CREATE TRIGGER emails_thread_unset AFTER UPDATE OF thread ON emails
   WHEN old.thread IS NOT NULL AND old.thread IS NOT new.thread BEGIN
     UPDATE mailbox_threads SET
       messages = messages - (SELECT count(*) FROM messages m WHERE m.mailbox = mailbox_threads.mailbox AND m.base = old.base),
       unseen = unseen - (SELECT count(*) FROM messages m WHERE m.mailbox = mailbox_threads.mailbox AND m.base = old.base
         AND (instr(m.letters, 'S') = 0 AND instr(m.letters, 'D') = 0))
     WHERE thread = old.thread AND mailbox IN
       (SELECT m.mailbox FROM messages m JOIN mailboxes b ON b.id = m.mailbox WHERE m.base = old.base AND b.account = old.account);
     DELETE FROM mailbox_threads WHERE thread = old.thread AND messages <= 0 AND mailbox IN
       (SELECT m.mailbox FROM messages m JOIN mailboxes b ON b.id = m.mailbox WHERE m.base = old.base AND b.account = old.account);
   END;
   CREATE TRIGGER emails_thread_set AFTER UPDATE OF thread ON emails
   WHEN new.thread IS NOT NULL AND old.thread IS NOT new.thread BEGIN
     INSERT INTO mailbox_threads (mailbox, thread, messages, unseen)
       SELECT m.mailbox, new.thread, 1, (instr(m.letters, 'S') = 0 AND instr(m.letters, 'D') = 0)
       FROM messages m JOIN mailboxes b ON b.id = m.mailbox
       WHERE m.base = new.base AND b.account = new.account
     ON CONFLICT (mailbox, thread) DO UPDATE SET messages = messages + 1, unseen = unseen + excluded.unseen;
   END;`,
];
