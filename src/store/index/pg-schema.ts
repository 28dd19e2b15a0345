// The mail index on PostgreSQL (component `mailindex`, index/postgres.ts; docs/cluster.md "The
// mail index"): the tables of the SQLite index (index/schema.ts) with the prefix mail_, in one
// migration (released migrations are never edited: docs/upgrading.md). Text keys compared or
// sorted are in the "C" collation (byte order, as SQLite's BINARY), so pages tie by base as on
// SQLite. Booleans stay smallints 0/1 so one row mapping (index/journal.ts) serves both.
// Thread counts per mailbox (mail_mailbox_threads, mail_mailboxes.total_threads and
// unread_threads) are kept by triggers as in SQLite; an email always has its thread before its
// first message row is inserted here (index/pg-write.ts), so only the message triggers count.

/** Unread for the thread counts: neither \Seen nor \Draft (letters S, D; RFC 8621 §2). */
const UNSEEN = (letters: string) => `(position('S' in ${letters}) = 0 AND position('D' in ${letters}) = 0)::int`;

export const MAIL_INDEX_MIGRATIONS: readonly string[] = [
  `CREATE TABLE mail_mailboxes (
     id INT8 GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
     account TEXT COLLATE "C" NOT NULL,
     name TEXT COLLATE "C" NOT NULL,
     uidvalidity INT8 NOT NULL,
     uidnext INT8 NOT NULL,
     highestmodseq INT8 NOT NULL,
     subscribed SMALLINT NOT NULL,
     journal_floor INT8 NOT NULL DEFAULT 0,
     oid TEXT COLLATE "C" NOT NULL UNIQUE,
     sort_order INT8 NOT NULL DEFAULT 0,
     total_threads INT8 NOT NULL DEFAULT 0,
     unread_threads INT8 NOT NULL DEFAULT 0,
     UNIQUE (account, name));
   CREATE TABLE mail_uidvalidity_seq (account TEXT COLLATE "C" PRIMARY KEY, last INT8 NOT NULL);
   CREATE TABLE mail_messages (
     mailbox INT8 NOT NULL REFERENCES mail_mailboxes(id) ON DELETE CASCADE,
     uid INT8 NOT NULL,
     base TEXT COLLATE "C" NOT NULL,
     in_new SMALLINT NOT NULL,
     letters TEXT COLLATE "C" NOT NULL,
     modseq INT8 NOT NULL,
     size INT8 NOT NULL,
     internaldate INT8 NOT NULL,
     PRIMARY KEY (mailbox, uid),
     UNIQUE (mailbox, base));
   CREATE INDEX mail_messages_date ON mail_messages (mailbox, internaldate, base);
   CREATE INDEX mail_messages_size ON mail_messages (mailbox, size, base);
   CREATE INDEX mail_messages_modseq ON mail_messages (mailbox, modseq);
   CREATE INDEX mail_messages_by_base ON mail_messages (base);
   CREATE TABLE mail_changes (
     mailbox INT8 NOT NULL REFERENCES mail_mailboxes(id) ON DELETE CASCADE,
     modseq INT8 NOT NULL,
     kind SMALLINT NOT NULL,
     uid INT8 NOT NULL,
     PRIMARY KEY (mailbox, modseq, uid));
   CREATE TABLE mail_cache (
     mailbox INT8 NOT NULL,
     uid INT8 NOT NULL,
     envelope TEXT,
     structure TEXT,
     search TEXT,
     PRIMARY KEY (mailbox, uid),
     FOREIGN KEY (mailbox, uid) REFERENCES mail_messages (mailbox, uid) ON DELETE CASCADE);
   CREATE TABLE mail_account_seq (
     account TEXT COLLATE "C" PRIMARY KEY,
     last INT8 NOT NULL,
     floor INT8 NOT NULL,
     start INT8 NOT NULL);
   CREATE TABLE mail_account_changes (
     account TEXT COLLATE "C" NOT NULL,
     aseq INT8 NOT NULL,
     kind SMALLINT NOT NULL,
     mailbox TEXT COLLATE "C" NOT NULL,
     uid INT8 NOT NULL,
     base TEXT COLLATE "C" NOT NULL,
     thread TEXT COLLATE "C" NOT NULL DEFAULT '',
     PRIMARY KEY (account, aseq));
   CREATE TABLE mail_emails (
     account TEXT COLLATE "C" NOT NULL,
     base TEXT COLLATE "C" NOT NULL,
     id TEXT COLLATE "C" NOT NULL,
     internaldate INT8 NOT NULL,
     size INT8 NOT NULL,
     copies INT8 NOT NULL,
     thread TEXT COLLATE "C" NOT NULL,
     PRIMARY KEY (account, base));
   CREATE UNIQUE INDEX mail_emails_id ON mail_emails (account, id);
   CREATE INDEX mail_emails_date ON mail_emails (account, internaldate, base);
   CREATE INDEX mail_emails_size ON mail_emails (account, size, base);
   CREATE INDEX mail_emails_thread ON mail_emails (account, thread, internaldate, base);
   CREATE TABLE mail_thread_keys (
     account TEXT COLLATE "C" NOT NULL,
     key TEXT COLLATE "C" NOT NULL,
     thread TEXT COLLATE "C" NOT NULL,
     subject TEXT COLLATE "C" NOT NULL,
     PRIMARY KEY (account, key, thread));
   CREATE INDEX mail_thread_keys_thread ON mail_thread_keys (account, thread);
   CREATE TABLE mail_mailbox_threads (
     mailbox INT8 NOT NULL REFERENCES mail_mailboxes(id) ON DELETE CASCADE,
     thread TEXT COLLATE "C" NOT NULL,
     messages INT8 NOT NULL,
     unseen INT8 NOT NULL,
     PRIMARY KEY (mailbox, thread));

   -- A message row's thread: its email's (the mailbox's account, the row's base).
   CREATE FUNCTION mail_thread_of(mb INT8, b TEXT) RETURNS TEXT LANGUAGE sql STABLE AS $$
     SELECT e.thread FROM mail_mailboxes x JOIN mail_emails e ON e.account = x.account AND e.base = b
     WHERE x.id = mb $$;
   CREATE FUNCTION mail_messages_threads() RETURNS trigger LANGUAGE plpgsql AS $$
   DECLARE
     t TEXT;
     was INT;
     unread INT;
   BEGIN
     IF TG_OP = 'INSERT' THEN
       t := mail_thread_of(NEW.mailbox, NEW.base);
       IF t IS NOT NULL THEN
         unread := ${UNSEEN('NEW.letters')};
         INSERT INTO mail_mailbox_threads AS m (mailbox, thread, messages, unseen) VALUES (NEW.mailbox, t, 1, unread)
           ON CONFLICT (mailbox, thread) DO UPDATE SET messages = m.messages + 1, unseen = m.unseen + unread;
       END IF;
     ELSIF TG_OP = 'UPDATE' THEN
       was := ${UNSEEN('OLD.letters')};
       unread := ${UNSEEN('NEW.letters')};
       IF was <> unread THEN
         UPDATE mail_mailbox_threads SET unseen = unseen + unread - was
         WHERE mailbox = NEW.mailbox AND thread = mail_thread_of(NEW.mailbox, NEW.base);
       END IF;
     ELSE
       t := mail_thread_of(OLD.mailbox, OLD.base);
       IF t IS NOT NULL THEN
         UPDATE mail_mailbox_threads SET messages = messages - 1, unseen = unseen - ${UNSEEN('OLD.letters')}
         WHERE mailbox = OLD.mailbox AND thread = t;
         DELETE FROM mail_mailbox_threads WHERE mailbox = OLD.mailbox AND thread = t AND messages <= 0;
       END IF;
     END IF;
     RETURN NULL;
   END $$;
   CREATE TRIGGER mail_messages_threads AFTER INSERT OR DELETE OR UPDATE OF letters ON mail_messages
     FOR EACH ROW EXECUTE FUNCTION mail_messages_threads();
   -- The mailbox's totals follow its thread rows.
   CREATE FUNCTION mail_mailbox_threads_totals() RETURNS trigger LANGUAGE plpgsql AS $$
   BEGIN
     IF TG_OP = 'INSERT' THEN
       UPDATE mail_mailboxes SET total_threads = total_threads + 1,
         unread_threads = unread_threads + (NEW.unseen > 0)::int WHERE id = NEW.mailbox;
     ELSIF TG_OP = 'UPDATE' THEN
       IF (OLD.unseen > 0) <> (NEW.unseen > 0) THEN
         UPDATE mail_mailboxes SET unread_threads = unread_threads + (NEW.unseen > 0)::int - (OLD.unseen > 0)::int
         WHERE id = NEW.mailbox;
       END IF;
     ELSE
       UPDATE mail_mailboxes SET total_threads = total_threads - 1,
         unread_threads = unread_threads - (OLD.unseen > 0)::int WHERE id = OLD.mailbox;
     END IF;
     RETURN NULL;
   END $$;
   CREATE TRIGGER mail_mailbox_threads_totals AFTER INSERT OR DELETE OR UPDATE OF unseen ON mail_mailbox_threads
     FOR EACH ROW EXECUTE FUNCTION mail_mailbox_threads_totals();`,
];
