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
 *  number of threads. A window over the account's emails (or the mailbox's messages): a scan,
 *  unlike the plain pages (docs/benchmarks.md). */
function collapsedPage(
  stmt: (sql: string) => StatementSync,
  account: string,
  q: { mailboxId?: string },
  col: 'size' | 'internaldate',
  dir: 'ASC' | 'DESC',
  limit: number,
  offset: number,
): { ids: string[]; total: number } {
  const order = `ORDER BY k ${dir}, base ${dir}`;
  if (q.mailboxId === undefined) {
    const page = stmt(
      `SELECT id FROM (SELECT id, base, ${col} AS k, row_number() OVER (PARTITION BY thread ORDER BY ${col} ${dir}, base ${dir}) AS n FROM emails WHERE account = ?) WHERE n = 1 ${order} LIMIT ? OFFSET ?`,
    );
    const total = stmt('SELECT count(DISTINCT thread) AS n FROM emails WHERE account = ?').get(account) as Row;
    return { ids: (page.all(account, limit, offset) as Row[]).map((r) => String(r.id)), total: Number(total.n) };
  }
  const mb = stmt('SELECT id FROM mailboxes WHERE account = ? AND oid = ?').get(account, q.mailboxId) as
    | Row
    | undefined;
  if (!mb) return { ids: [], total: 0 };
  const from = 'FROM messages m JOIN emails e ON e.account = ? AND e.base = m.base WHERE m.mailbox = ?';
  const page = stmt(
    `SELECT id FROM (SELECT e.id, m.base, m.${col} AS k, row_number() OVER (PARTITION BY e.thread ORDER BY m.${col} ${dir}, m.base ${dir}) AS n ${from}) WHERE n = 1 ${order} LIMIT ? OFFSET ?`,
  );
  const total = stmt(`SELECT count(DISTINCT e.thread) AS n ${from}`).get(account, mb.id as number) as Row;
  return {
    ids: (page.all(account, mb.id as number, limit, offset) as Row[]).map((r) => String(r.id)),
    total: Number(total.n),
  };
}
