// The reads of the PostgreSQL mail index for JMAP (index/postgres.ts): accountMessages pages,
// locate, threads. The same answers as the SQLite index (index/pages.ts, db.ts locate,
// threads.ts), through the same indexes (pg-schema.ts); bases in the "C" collation, so ties
// break in byte order as on SQLite. Each runs in the caller's REPEATABLE READ transaction.

import type { Queryable } from '../../db/postgres.ts';
import { emailId } from '../ids.ts';
import type { LocatedRow, MessageQuery } from './db.ts';
import { FirstOfThreads } from './pages.ts';

/** Rows read at a time by a collapsed page (at least; twice the rows the page needs). */
const COLLAPSE_CHUNK = 256;

/** A page of `q` from `position`: the email ids of at most `limit`, and the total. */
export async function pgEmailPage(
  q: Queryable,
  account: string,
  m: MessageQuery,
): Promise<{ ids: string[]; total: number }> {
  const col = m.sort === 'size' ? 'size' : 'internaldate';
  const dir = m.descending ? 'DESC' : 'ASC';
  const limit = Math.max(0, Math.floor(m.limit));
  const offset = Math.max(0, Math.floor(m.position));
  let mb: { id: number; total_threads: number } | undefined;
  if (m.mailboxId !== undefined) {
    mb = (
      await q.query<{ id: number; total_threads: number }>(
        'SELECT id, total_threads FROM mail_mailboxes WHERE account = $1 AND oid = $2',
        [account, m.mailboxId],
      )
    ).rows[0];
    if (!mb) return { ids: [], total: 0 };
  }
  if (m.collapseThreads) {
    // RFC 8621 §4.4.3: the first email of each thread in the order asked; rows read in that
    // order through the plain pages' index until the page is full.
    const sql = mb
      ? `SELECT e.id, e.thread FROM mail_messages m JOIN mail_emails e ON e.account = $1 AND e.base = m.base
         WHERE m.mailbox = $2 ORDER BY m.${col} ${dir}, m.base ${dir}`
      : `SELECT id, thread FROM mail_emails WHERE account = $1 ORDER BY ${col} ${dir}, base ${dir}`;
    const ids = await firstOfThreads(q, sql, mb ? [account, mb.id] : [account], limit, offset);
    if (mb) return { ids, total: Number(mb.total_threads) };
    const n = await q.query<{ n: number }>(
      'SELECT count(DISTINCT thread)::int8 AS n FROM mail_emails WHERE account = $1',
      [account],
    );
    return { ids, total: Number(n.rows[0]?.n ?? 0) };
  }
  if (!mb) {
    const page = await q.query<{ id: string }>(
      `SELECT id FROM mail_emails WHERE account = $1 ORDER BY ${col} ${dir}, base ${dir} LIMIT $2 OFFSET $3`,
      [account, limit, offset],
    );
    const n = await q.query<{ n: number }>('SELECT count(*)::int8 AS n FROM mail_emails WHERE account = $1', [account]);
    return { ids: page.rows.map((r) => r.id), total: Number(n.rows[0]?.n ?? 0) };
  }
  const page = await q.query<{ base: string }>(
    `SELECT base FROM mail_messages WHERE mailbox = $1 ORDER BY ${col} ${dir}, base ${dir} LIMIT $2 OFFSET $3`,
    [mb.id, limit, offset],
  );
  const n = await q.query<{ n: number }>('SELECT count(*)::int8 AS n FROM mail_messages WHERE mailbox = $1', [mb.id]);
  return { ids: page.rows.map((r) => emailId(r.base)), total: Number(n.rows[0]?.n ?? 0) };
}

/** The first email of each thread of `sql`'s rows (id, thread), chunk by chunk. */
async function firstOfThreads(
  q: Queryable,
  sql: string,
  params: unknown[],
  limit: number,
  offset: number,
): Promise<string[]> {
  const pick = new FirstOfThreads(limit, offset);
  const chunk = Math.max(COLLAPSE_CHUNK, 2 * (offset + limit));
  for (let from = 0; !pick.full; from += chunk) {
    const r = await q.query<{ id: string; thread: string }>(`${sql} LIMIT ${chunk} OFFSET ${from}`, params);
    for (const row of r.rows) {
      pick.add(row.id, row.thread);
      if (pick.full) break;
    }
    if (r.rows.length < chunk) break;
  }
  return pick.ids;
}

/** Where each of these emails is (index/db.ts locate); unknown ids are left out. */
export async function pgLocate(q: Queryable, account: string, ids: readonly string[]): Promise<LocatedRow[]> {
  if (ids.length === 0) return [];
  const emails = await q.query<{ id: string; base: string; internaldate: number; size: number; thread: string }>(
    'SELECT id, base, internaldate, size, thread FROM mail_emails WHERE account = $1 AND id = ANY($2::text[])',
    [account, [...new Set(ids)]],
  );
  const byId = new Map(emails.rows.map((e) => [e.id, e]));
  const copies = new Map<string, { mailboxId: string; name: string; uid: number; letters: string }[]>();
  if (emails.rows.length > 0) {
    const c = await q.query<{ base: string; oid: string; name: string; uid: number; letters: string }>(
      `SELECT m.base, b.oid, b.name, m.uid, m.letters FROM mail_messages m JOIN mail_mailboxes b ON b.id = m.mailbox
       WHERE m.base = ANY($2::text[]) AND b.account = $1 ORDER BY b.name, m.uid`,
      [account, emails.rows.map((e) => e.base)],
    );
    for (const r of c.rows)
      listOf(copies, r.base).push({ mailboxId: r.oid, name: r.name, uid: Number(r.uid), letters: r.letters });
  }
  const out: LocatedRow[] = [];
  for (const id of ids) {
    const e = byId.get(id);
    if (!e) continue;
    out.push({
      emailId: id,
      threadId: e.thread,
      size: Number(e.size),
      internalDate: Number(e.internaldate),
      copies: copies.get(e.base) ?? [],
    });
  }
  return out;
}

/** The emails of each thread, oldest first (RFC 8621 §3); unknown threads are left out. */
export async function pgThreads(
  q: Queryable,
  account: string,
  ids: readonly string[],
): Promise<{ threadId: string; emailIds: string[] }[]> {
  if (ids.length === 0) return [];
  const r = await q.query<{ thread: string; id: string }>(
    'SELECT thread, id FROM mail_emails WHERE account = $1 AND thread = ANY($2::text[]) ORDER BY internaldate, base',
    [account, [...new Set(ids)]],
  );
  const by = new Map<string, string[]>();
  for (const e of r.rows) listOf(by, e.thread).push(e.id);
  const out: { threadId: string; emailIds: string[] }[] = [];
  for (const id of ids) {
    const emailIds = by.get(id);
    if (emailIds) out.push({ threadId: id, emailIds: [...emailIds] });
  }
  return out;
}

/** The list of `key` in `m`, made empty when missing. */
function listOf<V>(m: Map<string, V[]>, key: string): V[] {
  let list = m.get(key);
  if (!list) {
    list = [];
    m.set(key, list);
  }
  return list;
}
