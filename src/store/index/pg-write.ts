// The writes of the PostgreSQL mail index (index/postgres.ts), each inside the caller's
// transaction and set-based (one statement per kind of row, unnest() of arrays), so an append
// is a handful of round trips and the 10,000 rows of an index rebuild are as many statements.
// The semantics are those of the SQLite index (index/db.ts, index/threads.ts), step by step:
//   - the account's journal counter row is locked first (reserve: INSERT … ON CONFLICT DO UPDATE
//     takes the row lock until commit), so every write touching an account's emails, threads or
//     journal runs one at a time per account, whichever node makes it: the journal is numbered
//     in commit order, and an email's thread is chosen against every key committed before;
//   - an email's thread is chosen before its row is inserted (the message triggers of
//     pg-schema.ts count threads from the email row), from the keys read in one query and the
//     keys of the rows before it in the same write (index/threads.ts: a reply in the same batch
//     joins its parent's thread).

import { isAccountId } from '../../db/notify.ts';
import type { Queryable } from '../../db/postgres.ts';
import {
  chooseThread,
  type KnownThread,
  messageIdKey,
  NO_THREAD_HEADERS,
  recordedKeys,
  subjectKey,
  type ThreadHeaders,
  threadCandidates,
} from '../../mime/thread-key.ts';
import { emailId } from '../ids.ts';
import type { IndexWrite, MessageRow } from './db.ts';
import { JOURNAL_KEEP, KIND_CODE } from './journal.ts';

/** A transaction of the index: its client, and the accounts whose journal it moved (published
 *  at its end: index/postgres.ts). */
export interface IndexTx {
  readonly q: Queryable;
  /** The account's journal reached `aseq` in this transaction. */
  moved(account: string, aseq: number): void;
}

/** One account journal entry to write. */
export interface AccountEntry {
  readonly kind: number;
  /** The mailbox's stable id. */
  readonly mailbox: string;
  readonly uid: number;
  readonly base: string;
  readonly thread: string;
}

/** Locks the account's journal counter and reserves `n` numbers: the first of them. A new
 *  counter starts at the time in microseconds (index/db.ts #accountSeq: no state a client kept
 *  from before is taken for a later one). */
async function reserve(q: Queryable, account: string, n: number): Promise<number> {
  const r = await q.query<{ last: number }>(
    `INSERT INTO mail_account_seq AS s (account, last, floor, start) VALUES ($1, $2::int8 + $3::int8, 0, $2)
     ON CONFLICT (account) DO UPDATE SET last = s.last + $3::int8 RETURNING last`,
    [account, Date.now() * 1000, n],
  );
  return Number(r.rows[0]?.last) - n + 1;
}

/** Locks the account's counter (taken before any row of the account's emails is read). */
export async function lockAccount(t: IndexTx, account: string): Promise<void> {
  await reserve(t.q, account, 0);
}

/** Writes account journal entries, numbered in order; the last number (0 for none). */
export async function journalAccount(t: IndexTx, account: string, entries: readonly AccountEntry[]): Promise<number> {
  if (entries.length === 0) return 0;
  const first = await reserve(t.q, account, entries.length);
  await t.q.query(
    `INSERT INTO mail_account_changes (account, aseq, kind, mailbox, uid, base, thread)
     SELECT $1, * FROM unnest($2::int8[], $3::int2[], $4::text[], $5::int8[], $6::text[], $7::text[])`,
    [
      account,
      entries.map((_, i) => first + i),
      entries.map((e) => e.kind),
      entries.map((e) => e.mailbox),
      entries.map((e) => e.uid),
      entries.map((e) => e.base),
      entries.map((e) => e.thread),
    ],
  );
  const last = first + entries.length - 1;
  // Only a canonical account id can be published (db/notify.ts reads nothing else).
  if (isAccountId(account)) t.moved(account, last);
  return last;
}

/** Inserts message rows into mailbox `mailbox` (named `name`) of `account`, with their emails
 *  (a first copy gets its thread: index/threads.ts) and thread keys. `headers`: the threading
 *  fields read for rows given without them. The thread of each row's email, by base. */
export async function insertMessages(
  t: IndexTx,
  mailbox: number,
  account: string,
  rows: readonly MessageRow[],
  headers: ReadonlyMap<string, ThreadHeaders>,
): Promise<Map<string, string>> {
  const threads = new Map<string, string>();
  if (rows.length === 0) return threads;
  const bases = rows.map((m) => m.base);
  const had = await t.q.query<{ base: string; thread: string }>(
    'SELECT base, thread FROM mail_emails WHERE account = $1 AND base = ANY($2::text[])',
    [account, bases],
  );
  for (const r of had.rows) threads.set(r.base, r.thread);
  const fresh = rows.filter((m) => !threads.has(m.base));
  const fields = new Map(fresh.map((m) => [m.base, m.thread ?? headers.get(m.base) ?? NO_THREAD_HEADERS]));
  // The known threads of every id the new emails may join, read at once (index order, as the
  // SQLite lookup returns them), then grown by each new email in turn.
  const known = new Map<string, KnownThread[]>();
  const wanted = [...new Set([...fields.values()].flatMap((h) => threadCandidates(h).map(messageIdKey)))];
  if (wanted.length > 0) {
    const k = await t.q.query<{ key: string; thread: string; subject: string }>(
      'SELECT key, thread, subject FROM mail_thread_keys WHERE account = $1 AND key = ANY($2::text[]) ORDER BY key, thread',
      [account, wanted],
    );
    for (const r of k.rows) pushKnown(known, r.key, { thread: r.thread, subject: r.subject });
  }
  const keyRows: { key: string; thread: string; subject: string }[] = [];
  for (const m of fresh) {
    if (threads.has(m.base)) continue;
    const h = fields.get(m.base) ?? NO_THREAD_HEADERS;
    const thread = chooseThread(h, (key) => known.get(key) ?? [], `T${emailId(m.base).slice(1)}`);
    threads.set(m.base, thread);
    const subject = subjectKey(h.subject);
    for (const key of recordedKeys(h))
      if (pushKnown(known, key, { thread, subject })) keyRows.push({ key, thread, subject });
  }
  // Emails first (a copy of a known one counts one more), then the messages, whose triggers
  // count their threads from the emails' rows.
  await t.q.query(
    `INSERT INTO mail_emails AS e (account, base, id, internaldate, size, copies, thread)
     SELECT $1, u.base, u.id, u.d, u.s, 1, u.t FROM unnest($2::text[], $3::text[], $4::int8[], $5::int8[], $6::text[])
       AS u(base, id, d, s, t)
     ON CONFLICT (account, base) DO UPDATE SET copies = e.copies + 1`,
    [
      account,
      bases,
      rows.map((m) => emailId(m.base)),
      rows.map((m) => m.internalDate),
      rows.map((m) => m.size),
      rows.map((m) => threads.get(m.base) as string),
    ],
  );
  await t.q.query(
    `INSERT INTO mail_messages (mailbox, uid, base, in_new, letters, modseq, size, internaldate)
     SELECT $1, * FROM unnest($2::int8[], $3::text[], $4::int2[], $5::text[], $6::int8[], $7::int8[], $8::int8[])`,
    [
      mailbox,
      rows.map((m) => m.uid),
      bases,
      rows.map((m) => (m.inNew ? 1 : 0)),
      rows.map((m) => m.letters),
      rows.map((m) => m.modseq),
      rows.map((m) => m.size),
      rows.map((m) => m.internalDate),
    ],
  );
  if (keyRows.length > 0)
    await t.q.query(
      `INSERT INTO mail_thread_keys (account, key, thread, subject)
       SELECT $1, * FROM unnest($2::text[], $3::text[], $4::text[]) ON CONFLICT DO NOTHING`,
      [account, keyRows.map((k) => k.key), keyRows.map((k) => k.thread), keyRows.map((k) => k.subject)],
    );
  return threads;
}

/** Adds a known thread of `key` in thread order; false when it was there. */
function pushKnown(known: Map<string, KnownThread[]>, key: string, k: KnownThread): boolean {
  let list = known.get(key);
  if (!list) {
    list = [];
    known.set(key, list);
  }
  if (list.some((x) => x.thread === k.thread)) return false;
  const at = list.findIndex((x) => x.thread > k.thread);
  list.splice(at < 0 ? list.length : at, 0, k);
  return true;
}

/** One copy of each of these emails is gone: each row goes with its last copy, a thread's keys
 *  with its last email. The thread of each, by base. */
export async function emailsGone(t: IndexTx, account: string, bases: readonly string[]): Promise<Map<string, string>> {
  const threads = new Map<string, string>();
  if (bases.length === 0) return threads;
  const r = await t.q.query<{ base: string; thread: string; copies: number }>(
    'UPDATE mail_emails SET copies = copies - 1 WHERE account = $1 AND base = ANY($2::text[]) RETURNING base, thread, copies',
    [account, bases],
  );
  for (const e of r.rows) threads.set(e.base, e.thread);
  const last = r.rows.filter((e) => Number(e.copies) <= 0);
  if (last.length === 0) return threads;
  await t.q.query('DELETE FROM mail_emails WHERE account = $1 AND base = ANY($2::text[]) AND copies <= 0', [
    account,
    last.map((e) => e.base),
  ]);
  await t.q.query(
    `DELETE FROM mail_thread_keys k WHERE k.account = $1 AND k.thread = ANY($2::text[])
       AND NOT EXISTS (SELECT 1 FROM mail_emails e WHERE e.account = $1 AND e.thread = k.thread)`,
    [account, [...new Set(last.map((e) => e.thread))]],
  );
  return threads;
}

/** The mailbox a write goes to (its row locked until commit). */
export interface WriteTarget {
  readonly id: number;
  readonly account: string;
  readonly oid: string;
}

/** One change of a mailbox with its journal entries (index/db.ts write), in the caller's
 *  transaction, after the mailbox row was locked. `prune`: this write also prunes. */
export async function applyWrite(
  t: IndexTx,
  mb: WriteTarget,
  w: IndexWrite,
  headers: ReadonlyMap<string, ThreadHeaders>,
  prune: boolean,
): Promise<void> {
  const q = t.q;
  const journal = w.journal ?? [];
  const touches = journal.length > 0 || (w.insert?.length ?? 0) > 0 || (w.expunge?.length ?? 0) > 0;
  if (touches) await lockAccount(t, mb.account);
  // Expunged messages' bases and threads, read as their rows go (emails, account journal).
  const gone = new Map<number, { base: string; thread: string }>();
  if (w.expunge?.length) {
    const r = await q.query<{ uid: number; base: string }>(
      'DELETE FROM mail_messages WHERE mailbox = $1 AND uid = ANY($2::int8[]) RETURNING uid, base',
      [mb.id, w.expunge],
    );
    const threads = await emailsGone(
      t,
      mb.account,
      r.rows.map((x) => x.base),
    );
    for (const x of r.rows) gone.set(Number(x.uid), { base: x.base, thread: threads.get(x.base) ?? '' });
  }
  if (w.update?.length) {
    // The last update of a UID wins, as when applied one by one.
    const u = [...new Map(w.update.map((x) => [x.uid, x])).values()];
    await q.query(
      `UPDATE mail_messages m SET in_new = u.in_new, letters = u.letters, modseq = u.modseq
       FROM unnest($2::int8[], $3::int2[], $4::text[], $5::int8[]) AS u(uid, in_new, letters, modseq)
       WHERE m.mailbox = $1 AND m.uid = u.uid`,
      [mb.id, u.map((x) => x.uid), u.map((x) => (x.inNew ? 1 : 0)), u.map((x) => x.letters), u.map((x) => x.modseq)],
    );
  }
  const threads = await insertMessages(t, mb.id, mb.account, w.insert ?? [], headers);
  if (journal.length > 0) {
    const j = [...new Map(journal.map((x) => [`${x.modseq} ${x.uid}`, x])).values()];
    await q.query(
      `INSERT INTO mail_changes AS c (mailbox, modseq, kind, uid)
       SELECT $1, * FROM unnest($2::int8[], $3::int2[], $4::int8[])
       ON CONFLICT (mailbox, modseq, uid) DO UPDATE SET kind = excluded.kind`,
      [mb.id, j.map((x) => x.modseq), j.map((x) => KIND_CODE[x.kind]), j.map((x) => x.uid)],
    );
    const bases = new Map<number, string>();
    const unknown = journal.filter((x) => x.base === undefined && !gone.has(x.uid)).map((x) => x.uid);
    if (unknown.length > 0) {
      const r = await q.query<{ uid: number; base: string }>(
        'SELECT uid, base FROM mail_messages WHERE mailbox = $1 AND uid = ANY($2::int8[])',
        [mb.id, unknown],
      );
      for (const x of r.rows) bases.set(Number(x.uid), x.base);
    }
    const baseOf = (x: (typeof journal)[number]) => x.base ?? gone.get(x.uid)?.base ?? bases.get(x.uid) ?? '';
    const unthreaded = [...new Set(journal.map(baseOf).filter((b) => b !== '' && !threads.has(b)))];
    if (unthreaded.length > 0) {
      const r = await q.query<{ base: string; thread: string }>(
        'SELECT base, thread FROM mail_emails WHERE account = $1 AND base = ANY($2::text[])',
        [mb.account, unthreaded],
      );
      for (const x of r.rows) threads.set(x.base, x.thread);
    }
    await journalAccount(
      t,
      mb.account,
      journal.map((x) => {
        const base = baseOf(x);
        const thread = gone.get(x.uid)?.thread ?? threads.get(base) ?? '';
        return { kind: KIND_CODE[x.kind], mailbox: mb.oid, uid: x.uid, base, thread };
      }),
    );
  }
  if (w.counters)
    await q.query('UPDATE mail_mailboxes SET uidnext = $1, highestmodseq = $2 WHERE id = $3', [
      w.counters.uidnext,
      w.counters.highestmodseq,
      mb.id,
    ]);
  if (prune && journal.length > 0 && w.counters) await pruneJournals(q, mb, w.counters.highestmodseq);
}

/** Drops journal entries (not expunges: QRESYNC needs them) more than JOURNAL_KEEP MODSEQs
 *  behind, and the account journal's entries more than JOURNAL_KEEP behind its last. */
async function pruneJournals(q: Queryable, mb: WriteTarget, highest: number): Promise<void> {
  const r = await q.query<{ last: number; floor: number }>(
    'SELECT last, floor FROM mail_account_seq WHERE account = $1',
    [mb.account],
  );
  const seq = r.rows[0];
  const aFloor = Number(seq?.last ?? 0) - JOURNAL_KEEP;
  if (seq && aFloor > Number(seq.floor)) {
    await q.query('DELETE FROM mail_account_changes WHERE account = $1 AND aseq <= $2', [mb.account, aFloor]);
    await q.query('UPDATE mail_account_seq SET floor = $1 WHERE account = $2', [aFloor, mb.account]);
  }
  const floor = highest - JOURNAL_KEEP;
  if (floor <= 0) return;
  await q.query('DELETE FROM mail_changes WHERE mailbox = $1 AND kind <> 3 AND modseq <= $2', [mb.id, floor]);
  await q.query('UPDATE mail_mailboxes SET journal_floor = $1 WHERE id = $2 AND journal_floor < $1', [floor, mb.id]);
}
