// Conversation threads in the mail index (JMAP Threads, RFC 8621 §3; docs/jmap-email.md
// "Threads"): every email (`emails` row) gets a thread when its first copy is indexed, by the
// rule of mime/thread-key.ts, from its Message-ID, In-Reply-To, References and base subject.
//   emails.thread: the email's thread id, "T" + the id suffix of the thread's first email, so
//                  never the id of another thread, and the same again when an index rebuilt
//                  from the files indexes the messages in the same order (delivery order)
//   thread_keys:   per account, the message ids (hashed: messageIdKey) each thread's emails
//                  have or name, with their base subject's key; dropped with the thread's last
//                  email, so a later message naming them starts a new thread.
// A thread id is never changed once given (RFC 8621 §4.1.1: threadId is immutable); threads
// never merge (a message naming two threads joins the first found, nearest id first).
// Synchronous, in the caller's transaction (index/db.ts, inside the index worker).

import type { DatabaseSync, StatementSync } from 'node:sqlite';
import {
  chooseThread,
  type KnownThread,
  NO_THREAD_HEADERS,
  recordedKeys,
  subjectKey,
  type ThreadHeaders,
} from '../../mime/thread-key.ts';

/** Where a message's file is: its base, new/ or cur/, its flag letters. */
export interface ThreadFileRef {
  readonly base: string;
  readonly inNew: boolean;
  readonly letters: string;
}

/** Reads the threading fields of a message the index has (index/worker.ts reads its file). */
export type ThreadHeaderSource = (account: string, mailbox: string, m: ThreadFileRef) => ThreadHeaders;
/** The same, asynchronous (the PostgreSQL index, on the main thread). */
export type AsyncThreadHeaderSource = (account: string, mailbox: string, m: ThreadFileRef) => Promise<ThreadHeaders>;

type Row = Record<string, unknown>;

/** Emails given a thread per transaction by the backfill. */
const BACKFILL_BATCH = 1000;

export class ThreadIndex {
  readonly #q;
  readonly #source: ThreadHeaderSource | null;

  constructor(db: DatabaseSync, source: ThreadHeaderSource | null) {
    const p = (sql: string) => db.prepare(sql);
    this.#source = source;
    this.#q = {
      known: p('SELECT thread, subject FROM thread_keys WHERE account = ? AND key = ?'),
      record: p('INSERT OR IGNORE INTO thread_keys (account, key, thread, subject) VALUES (?, ?, ?, ?)'),
      drop: p('DELETE FROM thread_keys WHERE account = ? AND thread = ?'),
      threadOf: p('SELECT thread FROM emails WHERE account = ? AND base = ?'),
      setThread: p('UPDATE emails SET thread = ? WHERE account = ? AND base = ?'),
      live: p('SELECT 1 FROM emails WHERE account = ? AND thread = ? LIMIT 1'),
      emails: p('SELECT id FROM emails WHERE account = ? AND thread = ? ORDER BY internaldate, base'),
      unthreaded: p(
        `SELECT account, base, id FROM emails WHERE thread IS NULL AND id IS NOT NULL ORDER BY account, internaldate, base LIMIT ${BACKFILL_BATCH}`,
      ),
      aCopy: p(
        'SELECT b.name, m.in_new, m.letters FROM messages m CROSS JOIN mailboxes b ON b.id = m.mailbox WHERE m.base = ? AND b.account = ? LIMIT 1',
      ),
    };
  }

  /** The thread of email `base`, or null (no such email, or not threaded yet). */
  threadOf(account: string, base: string): string | null {
    const t = (this.#q.threadOf.get(account, base) as Row | undefined)?.thread;
    return typeof t === 'string' ? t : null;
  }

  /** After a copy of email `base` (id `emailId`) was indexed in `mailbox`: the email's thread,
   *  assigned now when this is its first copy. `given`: its fields when the caller has the
   *  bytes; else they are read from the message (the header source). */
  added(
    account: string,
    mailbox: string,
    m: { base: string; inNew: boolean; letters: string },
    emailId: string,
    given: ThreadHeaders | undefined,
  ): string {
    const had = this.threadOf(account, m.base);
    if (had !== null) return had;
    const h = given ?? this.#source?.(account, mailbox, m) ?? NO_THREAD_HEADERS;
    return this.#assign(account, m.base, emailId, h);
  }

  #assign(account: string, base: string, emailId: string, h: ThreadHeaders): string {
    const known = (key: string) => this.#q.known.all(account, key) as unknown as KnownThread[];
    const thread = chooseThread(h, known, `T${emailId.slice(1)}`);
    this.#q.setThread.run(thread, account, base);
    const subject = subjectKey(h.subject);
    for (const key of recordedKeys(h)) this.#q.record.run(account, key, thread, subject);
    return thread;
  }

  /** An email of `thread` is gone: when it was the last, the thread's message ids go too. */
  emailGone(account: string, thread: string | null): void {
    if (thread !== null && !this.#q.live.get(account, thread)) this.#q.drop.run(account, thread);
  }

  /** The emails of each thread, oldest first (RFC 8621 §3: sorted by receivedAt); threads
   *  without emails are left out. */
  threads(account: string, ids: readonly string[]): { threadId: string; emailIds: string[] }[] {
    const out: { threadId: string; emailIds: string[] }[] = [];
    for (const id of ids) {
      const emailIds = (this.#q.emails.all(account, id) as Row[]).map((r) => String(r.id));
      if (emailIds.length > 0) out.push({ threadId: id, emailIds });
    }
    return out;
  }

  /** Gives every email without a thread (rows from before threads were stored) its thread, in
   *  internal-date order (the order they would have come in), BACKFILL_BATCH per transaction
   *  (`tx`), reading each one's header block through the header source. */
  backfill(tx: (fn: () => void) => void): number {
    let done = 0;
    for (;;) {
      const rows = this.#q.unthreaded.all() as Row[];
      if (rows.length === 0) return done;
      tx(() => {
        for (const r of rows) {
          const account = String(r.account);
          const base = String(r.base);
          const c = this.#q.aCopy.get(base, account) as Row | undefined;
          const h =
            c && this.#source
              ? this.#source(account, String(c.name), {
                  base,
                  inNew: Number(c.in_new) === 1,
                  letters: String(c.letters),
                })
              : NO_THREAD_HEADERS;
          this.#assign(account, base, String(r.id), h);
        }
      });
      done += rows.length;
    }
  }
}

/** The threads with an email in mailbox `mailbox` (its index id), and those with one there
 *  without \Seen (flag letter S): JMAP Mailbox totalThreads, unreadThreads (RFC 8621 §2), kept
 *  per mailbox by the triggers of `mailbox_threads` (index/schema.ts): one row read. */
export function mailboxThreads(stmt: (sql: string) => StatementSync, mailbox: number) {
  const r = stmt('SELECT total_threads, unread_threads FROM mailboxes WHERE id = ?').get(mailbox) as Row | undefined;
  return { total: Number(r?.total_threads ?? 0), unread: Number(r?.unread_threads ?? 0) };
}
