// The pages of MailIndex.accountMessages() (index/db.ts): an account's emails, or a mailbox's
// messages, by internal date or size (ties by base), through the indexes of `emails` and
// `messages`; with collapseThreads, one email per thread (index/threads.ts).

import type { StatementSync } from 'node:sqlite';
import { emailId } from '../ids.ts';
import type { MessageQuery } from './db.ts';

type Row = Record<string, unknown>;

/** A page of `q` from `position`: the email ids of at most `limit`, and the total. `stmt`: the
 *  cached prepared statement of an SQL text (made from fixed parts only). */
export function emailPage(
  stmt: (sql: string) => StatementSync,
  account: string,
  q: MessageQuery,
): { ids: string[]; total: number } {
  const col = q.sort === 'size' ? 'size' : 'internaldate';
  const dir = q.descending ? 'DESC' : 'ASC';
  const limit = Math.max(0, Math.floor(q.limit));
  const offset = Math.max(0, Math.floor(q.position));
  if (q.collapseThreads) return collapsedPage(stmt, account, q, col, dir, limit, offset);
  if (q.mailboxId === undefined) {
    const page = stmt(`SELECT id FROM emails WHERE account = ? ORDER BY ${col} ${dir}, base ${dir} LIMIT ? OFFSET ?`);
    const total = Number((stmt('SELECT count(*) AS n FROM emails WHERE account = ?').get(account) as Row).n);
    return { ids: (page.all(account, limit, offset) as Row[]).map((r) => String(r.id)), total };
  }
  const mb = stmt('SELECT id FROM mailboxes WHERE account = ? AND oid = ?').get(account, q.mailboxId) as
    | Row
    | undefined;
  if (!mb) return { ids: [], total: 0 };
  const page = stmt(`SELECT base FROM messages WHERE mailbox = ? ORDER BY ${col} ${dir}, base ${dir} LIMIT ? OFFSET ?`);
  const id = Number(mb.id);
  const total = Number((stmt('SELECT count(*) AS n FROM messages WHERE mailbox = ?').get(id) as Row).n);
  return { ids: (page.all(id, limit, offset) as Row[]).map((r) => emailId(String(r.base))), total };
}

/** A page of accountMessages() with one email per thread (JMAP collapseThreads, RFC 8621
 *  §4.4.3): the first of each thread in the order asked (`col`, `dir`, ties by base), and the
 *  number of threads. The emails (or the mailbox's messages) are read in that order through
 *  the index of the plain pages, each with its thread, until the page is full: a first page
 *  reads its 50 threads' worth of rows, not the mailbox; a page at position p reads the rows of
 *  p + limit threads (docs/benchmarks.md "Thread counts kept"). A mailbox's number of threads
 *  is kept (mailboxes.total_threads, index/schema.ts); the account's is an index-only count. */
function collapsedPage(
  stmt: (sql: string) => StatementSync,
  account: string,
  q: { mailboxId?: string },
  col: 'size' | 'internaldate',
  dir: 'ASC' | 'DESC',
  limit: number,
  offset: number,
): { ids: string[]; total: number } {
  if (q.mailboxId === undefined) {
    const rows = stmt(`SELECT id, thread FROM emails WHERE account = ? ORDER BY ${col} ${dir}, base ${dir}`).iterate(
      account,
    );
    const total = stmt('SELECT count(DISTINCT thread) AS n FROM emails WHERE account = ?').get(account) as Row;
    return { ids: firstOfThreads(rows, limit, offset), total: Number(total.n) };
  }
  const mb = stmt('SELECT id, total_threads FROM mailboxes WHERE account = ? AND oid = ?').get(account, q.mailboxId) as
    | Row
    | undefined;
  if (!mb) return { ids: [], total: 0 };
  // CROSS JOIN: the messages first, in the order of their index; each one's email by its key.
  const rows = stmt(
    `SELECT e.id, e.thread FROM messages m CROSS JOIN emails e ON e.account = ? AND e.base = m.base WHERE m.mailbox = ? ORDER BY m.${col} ${dir}, m.base ${dir}`,
  ).iterate(account, mb.id as number);
  return { ids: firstOfThreads(rows, limit, offset), total: Number(mb.total_threads) };
}

/** The ids of the first row of each thread in `rows` (an email not threaded yet is its own),
 *  from the `offset`-th such row, at most `limit`; stops reading there. */
function firstOfThreads(rows: Iterator<unknown>, limit: number, offset: number): string[] {
  const pick = new FirstOfThreads(limit, offset);
  for (let r = rows.next(); !r.done && !pick.full; r = rows.next()) {
    const row = r.value as Row;
    pick.add(String(row.id), row.thread);
  }
  rows.return?.();
  return pick.ids;
}

/** Picks the first email of each thread from rows given in order (collapseThreads), from the
 *  `offset`-th thread, at most `limit` (the SQLite and the PostgreSQL pages). */
export class FirstOfThreads {
  readonly ids: string[] = [];
  readonly #seen = new Set<string>();
  readonly #limit: number;
  #skip: number;

  constructor(limit: number, offset: number) {
    this.#limit = limit;
    this.#skip = offset;
  }

  get full(): boolean {
    return this.ids.length >= this.#limit;
  }

  /** One row: its email id and thread (null: not threaded yet, its own). */
  add(id: string, thread: unknown): void {
    const t = thread === null || thread === undefined ? id : String(thread);
    if (this.#seen.has(t)) return;
    this.#seen.add(t);
    if (this.#skip > 0) this.#skip--;
    else if (!this.full) this.ids.push(id);
  }
}
