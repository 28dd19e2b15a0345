// The mail index on PostgreSQL: the shared index of the nodes of a cluster (issue #18,
// docs/cluster.md "The mail index"), behind the MailIndexBackend the Maildir store uses
// (index/backend.ts), with the semantics of the SQLite index (index/db.ts) method by method;
// test/store/index-contract.ts runs against both. Tables: index/pg-schema.ts (component
// `mailindex`); writes: index/pg-write.ts; JMAP reads: index/pg-pages.ts.
//
// Across nodes:
//   - write(): one transaction that locks the mailbox row (FOR UPDATE) and then the account's
//     journal counter; with `expect`, a mailbox whose UIDNEXT or HIGHESTMODSEQ moved on (another
//     node wrote it) is refused with CONFLICT, nothing written;
//   - every transaction that added account journal entries publishes (account, last aseq) with
//     notifyChange (db/notify.ts) in that transaction: delivered at COMMIT only, in commit order;
//   - lockMailbox(): a session advisory lock on a pooled connection held until release(); this
//     process's write() and catchUp() of that mailbox run on that connection meanwhile, one at a
//     time, so N held locks never take the connections their own writes need. Key: the two-int4
//     form, (MAILBOX_LOCK_CLASS + the id's high 16 bits, the id's low 32 bits), injective for
//     ids below 2^48 and apart from the LOCK_CLASS keys of db/postgres.ts;
//   - the threading fields of messages given without them are read from their files
//     asynchronously before the transaction (the index runs on the main thread here).

import { ArclineError, errorMessage } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import { notifyChange } from '../../db/notify.ts';
import type { HeldConnection, Postgres, Queryable, TxOptions } from '../../db/postgres.ts';
import type { ThreadHeaders } from '../../mime/thread-key.ts';
import { isMailboxId, newMailboxId } from '../ids.ts';
import { maildirThreadSourceAsync } from '../maildir/thread-headers.ts';
import type {
  AccountChangeRow,
  CacheField,
  IndexWrite,
  JournalRow,
  LocatedRow,
  MailboxCatchUp,
  MailboxLock,
  MailboxRow,
  MailIndexBackend,
  MessageColumns,
  MessageQuery,
  WriteExpect,
} from './backend.ts';
import type { MailIndex, MessageRow } from './db.ts';
import {
  ACCOUNT_KIND,
  accountChangeRow,
  journalFrom,
  journalRow,
  type MailboxEvent,
  mailboxRow,
  PRUNE_EVERY,
  toColumns,
} from './journal.ts';
import { pgEmailPage, pgLocate, pgThreads } from './pg-pages.ts';
import { MAIL_INDEX_MIGRATIONS } from './pg-schema.ts';
import { applyWrite, emailsGone, type IndexTx, insertMessages, journalAccount, lockAccount } from './pg-write.ts';
import type { AsyncThreadHeaderSource } from './threads.ts';

/** The first key of a mailbox's advisory lock ("MB" in the high 16 bits; the low 16 bits take
 *  the mailbox id's bits 32-47). */
export const MAILBOX_LOCK_CLASS = 0x4d420000;

/** The advisory lock keys of mailbox `id` (see the file's comment). */
export function mailboxLockKeys(id: number): [number, number] {
  if (!Number.isSafeInteger(id) || id < 0 || id >= 2 ** 48) throw new ArclineError('INVALID', `mailbox id ${id}`);
  return [MAILBOX_LOCK_CLASS + Math.floor(id / 2 ** 32), (id % 2 ** 32) | 0];
}

const CACHE_COLUMN = { envelope: 'envelope', structure: 'structure', search: 'search' } as const;
const MESSAGE_COLUMNS = 'uid, base, in_new, letters, modseq, size, internaldate';
const READ: TxOptions = { isolation: 'repeatable read' };

/** A counting semaphore: take() waits (first come, first served) while all are taken. */
class Slots {
  #free: number;
  readonly #waiting: (() => void)[] = [];

  constructor(n: number) {
    this.#free = n;
  }

  take(): Promise<void> {
    if (this.#free > 0) {
      this.#free--;
      return Promise.resolve();
    }
    return new Promise((resolve) => this.#waiting.push(resolve));
  }

  give(): void {
    const next = this.#waiting.shift();
    if (next) next();
    else this.#free++;
  }
}

/** A mailbox lock this process holds: its connection, and the chain of the operations run on
 *  it (one at a time: a connection runs one transaction). */
class HeldLock {
  readonly held: HeldConnection;
  #chain: Promise<unknown> = Promise.resolve();

  constructor(held: HeldConnection) {
    this.held = held;
  }

  run<T>(fn: () => Promise<T>): Promise<T> {
    const p = this.#chain.then(() => {
      if (this.held.lost) throw new ArclineError('TEMPORARY', 'mail index: the mailbox lock was lost');
      return fn();
    });
    this.#chain = p.catch(() => {});
    return p.catch((e: unknown) => {
      if (this.held.lost && !(e instanceof ArclineError))
        throw new ArclineError('TEMPORARY', `mail index: the mailbox lock was lost: ${errorMessage(e)}`, { cause: e });
      throw e;
    });
  }

  /** Resolves once every operation queued so far has ended. */
  idle(): Promise<unknown> {
    return this.#chain;
  }
}

export class PostgresMailIndex implements MailIndexBackend {
  readonly shared = true;
  readonly #db: Postgres;
  readonly #headers: AsyncThreadHeaderSource | null;
  readonly #locks = new Map<number, HeldLock>();
  /** Mailbox locks this process may hold at once (see lockMailbox). */
  readonly #slots: Slots;
  #writes = 0;
  #closed = false;

  /** `root`: the Maildir root, where the threading fields of messages given without them are
   *  read (null: taken as absent). The pool stays the caller's (close() does not end it). */
  constructor(db: Postgres, root: string | null) {
    this.#db = db;
    this.#headers = root === null ? null : maildirThreadSourceAsync(root);
    this.#slots = new Slots(Math.max(1, db.poolSize - 1));
  }

  async open(): Promise<void> {
    await this.#db.migrate('mailindex', MAIL_INDEX_MIGRATIONS);
  }

  async ping(): Promise<void> {
    await this.#db.query('SELECT 1 FROM mail_mailboxes LIMIT 1');
  }

  /** Gives back the locks still held; the pool is its owner's. */
  async close(): Promise<void> {
    this.#closed = true;
    for (const [id, l] of this.#locks) {
      this.#locks.delete(id);
      l.held.release(true);
    }
  }

  /** fn in a transaction (on the mailbox's lock connection while this process holds it),
   *  publishing at its end the account journal positions it reached. */
  #tx<T>(fn: (t: IndexTx) => Promise<T>, mailbox?: number, opts: TxOptions = {}): Promise<T> {
    if (this.#closed) return Promise.reject(new ArclineError('TEMPORARY', 'mail index is closed'));
    const body = async (q: Queryable) => {
      const moved = new Map<string, number>();
      const r = await fn({ q, moved: (a, aseq) => moved.set(a, Math.max(moved.get(a) ?? 0, aseq)) });
      for (const [a, aseq] of moved) await notifyChange(q, a as AccountId, aseq);
      return r;
    };
    const lock = mailbox === undefined ? undefined : this.#locks.get(mailbox);
    if (lock) return lock.run(() => this.#db.txOn(lock.held, body, opts));
    return this.#db.tx(body, opts);
  }

  /** One row of one statement outside a transaction, on the mailbox's lock connection while
   *  this process holds it (else the pool). */
  async #one(sql: string, params: unknown[], mailbox: number): Promise<Record<string, unknown> | undefined> {
    if (this.#closed) throw new ArclineError('TEMPORARY', 'mail index is closed');
    const lock = this.#locks.get(mailbox);
    if (lock) return lock.run(async () => (await lock.held.client.query(sql, params)).rows[0]);
    return (await this.#db.query(sql, params)).rows[0];
  }

  async #rows<R extends Record<string, unknown>>(sql: string, params: unknown[]): Promise<R[]> {
    if (this.#closed) throw new ArclineError('TEMPORARY', 'mail index is closed');
    return (await this.#db.query<R>(sql, params)).rows;
  }

  async mailbox(account: string, name: string): Promise<MailboxRow | null> {
    const r = await this.#rows('SELECT * FROM mail_mailboxes WHERE account = $1 AND name = $2', [account, name]);
    return r[0] ? mailboxRow(r[0]) : null;
  }

  async mailboxes(account: string): Promise<MailboxRow[]> {
    return (await this.#rows('SELECT * FROM mail_mailboxes WHERE account = $1 ORDER BY name', [account])).map(
      mailboxRow,
    );
  }

  async accounts(): Promise<string[]> {
    return (await this.#rows<{ account: string }>('SELECT DISTINCT account FROM mail_mailboxes', [])).map(
      (r) => r.account,
    );
  }

  async messageColumns(mailbox: number): Promise<MessageColumns> {
    const sql = `SELECT ${MESSAGE_COLUMNS} FROM mail_messages WHERE mailbox = $1 ORDER BY uid`;
    // On the lock's connection while held (a view loads under the lock on its first write).
    const lock = this.#locks.get(mailbox);
    if (lock) return toColumns((await lock.run(() => lock.held.client.query(sql, [mailbox]))).rows);
    return toColumns(await this.#rows(sql, [mailbox]));
  }

  async cachedMany(mailbox: number, uids: readonly number[], field: CacheField): Promise<[number, string][]> {
    if (uids.length === 0) return [];
    const col = CACHE_COLUMN[field];
    let lo = uids[0] as number;
    let hi = lo;
    for (const u of uids) {
      if (u < lo) lo = u;
      if (u > hi) hi = u;
    }
    // A dense set (FETCH 1:*): one range scan, as the SQLite index does.
    const dense = hi - lo < 4 * uids.length;
    const rows = await this.#rows<{ uid: number; v: string | null }>(
      dense
        ? `SELECT uid, ${col} AS v FROM mail_cache WHERE mailbox = $1 AND uid BETWEEN $2 AND $3 ORDER BY uid`
        : `SELECT uid, ${col} AS v FROM mail_cache WHERE mailbox = $1 AND uid = ANY($2::int8[])`,
      dense ? [mailbox, lo, hi] : [mailbox, [...new Set(uids)]],
    );
    const found = new Map<number, string>();
    for (const r of rows) if (typeof r.v === 'string') found.set(Number(r.uid), r.v);
    if (dense) {
      const wanted = new Set(uids);
      return [...found].filter(([uid]) => wanted.has(uid));
    }
    const out: [number, string][] = [];
    for (const uid of uids) {
      const v = found.get(uid);
      if (v !== undefined) out.push([uid, v]);
    }
    return out;
  }

  async setCachedMany(mailbox: number, entries: readonly (readonly [number, CacheField, string])[]): Promise<void> {
    const by = new Map<CacheField, Map<number, string>>();
    for (const [uid, field, value] of entries) {
      const m = by.get(field) ?? new Map<number, string>();
      by.set(field, m.set(uid, value));
    }
    if (by.size === 0) return;
    // A message expunged by another node between the check and the insert fails the foreign
    // key (23503): the cache is an optimisation, that batch is dropped.
    await this.#tx(async ({ q }) => {
      for (const [field, m] of by) {
        const col = CACHE_COLUMN[field];
        // Rows of messages no longer indexed are skipped (index/db.ts setCachedMany).
        await q.query(
          `INSERT INTO mail_cache (mailbox, uid, ${col})
           SELECT $1, u.uid, u.v FROM unnest($2::int8[], $3::text[]) AS u(uid, v)
           WHERE EXISTS (SELECT 1 FROM mail_messages m WHERE m.mailbox = $1 AND m.uid = u.uid)
           ON CONFLICT (mailbox, uid) DO UPDATE SET ${col} = excluded.${col}`,
          [mailbox, [...m.keys()], [...m.values()]],
        );
      }
    }).catch((e: unknown) => {
      if ((e as { code?: unknown }).code !== '23503') throw e;
    });
  }

  async vanishedSince(mailbox: number, modseq: number): Promise<number[]> {
    const r = await this.#rows<{ uid: number }>(
      'SELECT uid FROM mail_changes WHERE mailbox = $1 AND kind = 3 AND modseq > $2 ORDER BY uid',
      [mailbox, modseq],
    );
    return r.map((x) => Number(x.uid));
  }

  /** Journal entries after `modseq`, or null below the pruning floor: one statement, so the
   *  floor and the entries are of one snapshot. */
  async changesSince(mailbox: number, modseq: number): Promise<JournalRow[] | null> {
    const r = await this.#rows<{ floor: number; modseq: number | null }>(
      `SELECT b.floor, c.modseq, c.kind, c.uid
       FROM (SELECT coalesce((SELECT journal_floor FROM mail_mailboxes WHERE id = $1), 0) AS floor) b
       LEFT JOIN mail_changes c ON c.mailbox = $1 AND c.modseq > $2 ORDER BY c.modseq, c.uid`,
      [mailbox, modseq],
    );
    if (modseq < Number(r[0]?.floor ?? 0)) return null;
    return r.filter((x) => x.modseq !== null).map(journalRow);
  }

  async catchUp(mailbox: number, modseq: number): Promise<MailboxCatchUp | null> {
    // The common case (a write under the mailbox's lock, a poll): nothing was committed after
    // `modseq`, which one read of the mailbox's row tells (every change moves HIGHESTMODSEQ).
    const head = await this.#one('SELECT * FROM mail_mailboxes WHERE id = $1', [mailbox], mailbox);
    if (!head) return { row: null, changed: toColumns([]), expunged: [] };
    if (Number(head.highestmodseq) <= modseq && modseq >= Number(head.journal_floor)) {
      return { row: mailboxRow(head), changed: toColumns([]), expunged: [] };
    }
    return this.#tx(
      async ({ q }) => {
        const r = (await q.query('SELECT * FROM mail_mailboxes WHERE id = $1', [mailbox])).rows[0];
        if (!r) return { row: null, changed: toColumns([]), expunged: [] };
        if (modseq < Number(r.journal_floor)) return null;
        const changed = await q.query(
          `SELECT ${MESSAGE_COLUMNS} FROM mail_messages WHERE mailbox = $1 AND modseq > $2 ORDER BY uid`,
          [mailbox, modseq],
        );
        const gone = await q.query<{ uid: number }>(
          'SELECT uid FROM mail_changes WHERE mailbox = $1 AND kind = 3 AND modseq > $2 ORDER BY uid',
          [mailbox, modseq],
        );
        return { row: mailboxRow(r), changed: toColumns(changed.rows), expunged: gone.rows.map((x) => Number(x.uid)) };
      },
      mailbox,
      READ,
    );
  }

  accountMessages(account: string, q: MessageQuery): Promise<{ ids: string[]; total: number }> {
    return this.#tx((t) => pgEmailPage(t.q, account, q), undefined, READ);
  }

  locate(account: string, ids: readonly string[]): Promise<LocatedRow[]> {
    return this.#tx((t) => pgLocate(t.q, account, ids), undefined, READ);
  }

  async threads(account: string, ids: readonly string[]): Promise<{ threadId: string; emailIds: string[] }[]> {
    if (this.#closed) throw new ArclineError('TEMPORARY', 'mail index is closed');
    return pgThreads(this.#db, account, ids);
  }

  async mailboxThreads(account: string, oid: string): Promise<{ total: number; unread: number }> {
    const r = await this.#rows<{ total_threads: number; unread_threads: number }>(
      'SELECT total_threads, unread_threads FROM mail_mailboxes WHERE account = $1 AND oid = $2',
      [account, oid],
    );
    return { total: Number(r[0]?.total_threads ?? 0), unread: Number(r[0]?.unread_threads ?? 0) };
  }

  async accountState(account: string): Promise<number> {
    const r = await this.#rows<{ last: number }>('SELECT last FROM mail_account_seq WHERE account = $1', [account]);
    return Number(r[0]?.last ?? 0);
  }

  /** As index/db.ts: the counter and the entries read in one statement (one snapshot). */
  async accountChangesSince(account: string, aseq: number, max: number): Promise<AccountChangeRow[] | null> {
    const r = await this.#rows(
      `SELECT s.last, s.floor, s.start, c.aseq, c.kind, c.mailbox, c.uid, c.base, c.thread
       FROM mail_account_seq s LEFT JOIN LATERAL (
         SELECT * FROM mail_account_changes WHERE account = s.account
           AND aseq > (CASE WHEN $2::int8 = 0 THEN s.start ELSE $2::int8 END) ORDER BY aseq LIMIT $3) c ON true
       WHERE s.account = $1 ORDER BY c.aseq`,
      [account, aseq, Math.max(0, Math.floor(max))],
    );
    const from = journalFrom(r[0], aseq);
    if (from === null || from === 'none') return from === 'none' ? [] : null;
    return r.filter((c) => c.aseq !== null).map(accountChangeRow);
  }

  /** createMailbox of index/db.ts in the caller's transaction: the entry (made by another
   *  node meanwhile: that one), UIDVALIDITY strictly increasing per account (RFC 9051
   *  §2.3.1.1), the id `oid` unless another mailbox has it. */
  async #create(
    t: IndexTx,
    account: string,
    w: { name: string; subscribed: boolean; minValidity: number; oid: string; sortOrder: number },
  ): Promise<MailboxRow> {
    const had = await mailboxIn(t.q, account, w.name);
    if (had) return had;
    const v = await t.q.query<{ last: number }>(
      `INSERT INTO mail_uidvalidity_seq AS s (account, last) VALUES ($1, greatest(1, $2::int8, $3::int8))
       ON CONFLICT (account) DO UPDATE SET last = greatest(s.last + 1, $2::int8, $3::int8) RETURNING last`,
      [account, w.minValidity, Math.floor(Date.now() / 1000)],
    );
    let oid = isMailboxId(w.oid) ? w.oid : newMailboxId();
    for (;;) {
      const r = await t.q.query(
        `INSERT INTO mail_mailboxes (account, name, uidvalidity, uidnext, highestmodseq, subscribed, oid, sort_order)
         VALUES ($1, $2, $3, 1, 1, $4, $5, $6) ON CONFLICT DO NOTHING RETURNING *`,
        [account, w.name, v.rows[0]?.last, w.subscribed ? 1 : 0, oid, w.sortOrder],
      );
      if (r.rows[0]) {
        const row = mailboxRow(r.rows[0]);
        await this.#event(t, account, row.oid, 'mailbox-create');
        return row;
      }
      // Made meanwhile by another node (the name), or the id is another mailbox's.
      const other = await mailboxIn(t.q, account, w.name);
      if (other) return other;
      oid = newMailboxId();
    }
  }

  #event(t: IndexTx, account: string, oid: string, kind: MailboxEvent): Promise<number> {
    return journalAccount(t, account, [{ kind: ACCOUNT_KIND[kind], mailbox: oid, uid: 0, base: '', thread: '' }]);
  }

  createMailbox(
    ...[account, name, subscribed, minValidity = 0, oid = '', sortOrder = 0]: Parameters<MailIndex['createMailbox']>
  ): Promise<MailboxRow> {
    return this.#tx((t) => this.#create(t, account, { name, subscribed, minValidity, oid, sortOrder }));
  }

  createMailboxes(
    account: string,
    wanted: readonly { name: string; minValidity: number; oid: string; sortOrder?: number }[],
  ): Promise<MailboxRow[]> {
    return this.#tx(async (t) => {
      const out: MailboxRow[] = [];
      for (const w of wanted)
        out.push(await this.#create(t, account, { ...w, subscribed: true, sortOrder: w.sortOrder ?? 0 }));
      return out;
    });
  }

  /** index/db.ts importMailbox: refused when the entry for the name is not the one the caller
   *  saw; messages at MODSEQ 1, not journaled one by one (the account's history starts after). */
  importMailbox(
    account: string,
    name: string,
    head: { uidvalidity: number; uidnext: number; subscribed: boolean; expect: number | null },
    rows: readonly MessageRow[],
  ): Promise<MailboxRow> {
    return this.#readHeaders(account, name, rows).then((headers) =>
      this.#tx(async (t) => {
        const old = await mailboxIn(t.q, account, name, true);
        if ((old?.id ?? null) !== head.expect) throw new Error(`mailbox ${name} changed during the import`);
        if (old) await t.q.query('DELETE FROM mail_mailboxes WHERE id = $1', [old.id]);
        await t.q.query(
          `INSERT INTO mail_uidvalidity_seq AS s (account, last) VALUES ($1, $2)
           ON CONFLICT (account) DO UPDATE SET last = greatest(s.last, $2::int8)`,
          [account, head.uidvalidity],
        );
        const r = await t.q.query(
          `INSERT INTO mail_mailboxes (account, name, uidvalidity, uidnext, highestmodseq, subscribed, journal_floor, oid)
           VALUES ($1, $2, $3, $4, 1, $5, 1, $6) RETURNING *`,
          [account, name, head.uidvalidity, head.uidnext, head.subscribed ? 1 : 0, newMailboxId()],
        );
        const row = mailboxRow(r.rows[0] ?? {});
        await lockAccount(t, account);
        await insertMessages(t, row.id, account, rows, headers);
        const aseq = await this.#event(t, account, row.oid, 'mailbox-create');
        await t.q.query('UPDATE mail_account_seq SET floor = $1 WHERE account = $2', [aseq, account]);
        return row;
      }),
    );
  }

  /** Deletes a mailbox's entry; its messages go as expunges in the account journal. */
  deleteMailbox(id: number): Promise<void> {
    return this.#tx(async (t) => {
      const mb = (
        await t.q.query<{ account: string; oid: string }>(
          'SELECT account, oid FROM mail_mailboxes WHERE id = $1 FOR UPDATE',
          [id],
        )
      ).rows[0];
      if (!mb) return;
      await lockAccount(t, mb.account);
      const msgs = (
        await t.q.query<{ uid: number; base: string }>(
          'SELECT uid, base FROM mail_messages WHERE mailbox = $1 ORDER BY uid',
          [id],
        )
      ).rows;
      const threads = await emailsGone(
        t,
        mb.account,
        msgs.map((m) => m.base),
      );
      await journalAccount(t, mb.account, [
        ...msgs.map((m) => ({
          kind: ACCOUNT_KIND.expunge,
          mailbox: mb.oid,
          uid: Number(m.uid),
          base: m.base,
          thread: threads.get(m.base) ?? '',
        })),
        { kind: ACCOUNT_KIND['mailbox-delete'], mailbox: mb.oid, uid: 0, base: '', thread: '' },
      ]);
      await t.q.query('DELETE FROM mail_mailboxes WHERE id = $1', [id]);
    });
  }

  /** An UPDATE of one mailbox's row and its event in the account journal. */
  #changeMailbox(id: number, set: string, value: unknown, kind: MailboxEvent): Promise<void> {
    return this.#tx(async (t) => {
      const r = await t.q.query<{ account: string; oid: string }>(
        `UPDATE mail_mailboxes SET ${set} = $1 WHERE id = $2 RETURNING account, oid`,
        [value, id],
      );
      const mb = r.rows[0];
      if (mb) await this.#event(t, mb.account, mb.oid, kind);
    });
  }

  renameMailbox(id: number, name: string): Promise<void> {
    return this.#changeMailbox(id, 'name', name, 'mailbox-rename');
  }

  setSubscribed(id: number, on: boolean): Promise<void> {
    return this.#changeMailbox(id, 'subscribed', on ? 1 : 0, 'mailbox-subscribe');
  }

  /** JMAP sortOrder (RFC 8621 §2), journaled as a mailbox event. */
  setSortOrder(id: number, sortOrder: number): Promise<void> {
    return this.#changeMailbox(id, 'sort_order', sortOrder, 'mailbox-sort-order');
  }

  async write(mailbox: number, w: IndexWrite, expect?: WriteExpect): Promise<void> {
    let headers: ReadonlyMap<string, ThreadHeaders> = new Map();
    if (w.insert?.some((m) => m.thread === undefined) && this.#headers) {
      const mb = (
        await this.#rows<{ account: string; name: string }>('SELECT account, name FROM mail_mailboxes WHERE id = $1', [
          mailbox,
        ])
      )[0];
      if (mb) headers = await this.#readHeaders(mb.account, mb.name, w.insert, true);
    }
    const prune = (w.journal?.length ?? 0) > 0 && w.counters !== undefined && ++this.#writes % PRUNE_EVERY === 0;
    await this.#tx(async (t) => {
      const mb = (
        await t.q.query<{ id: number; account: string; oid: string; uidnext: number; highestmodseq: number }>(
          'SELECT id, account, oid, uidnext, highestmodseq FROM mail_mailboxes WHERE id = $1 FOR UPDATE',
          [mailbox],
        )
      ).rows[0];
      if (expect && (!mb || Number(mb.uidnext) !== expect.uidnext || Number(mb.highestmodseq) !== expect.highestmodseq))
        throw new ArclineError('CONFLICT', 'the mailbox changed since its counters were read');
      if (!mb) return;
      await applyWrite(t, { id: Number(mb.id), account: mb.account, oid: mb.oid }, w, headers, prune);
    }, mailbox);
  }

  /** The threading fields of `rows` given without them, read from their files (bounded:
   *  LIMITS.store.threadHeaderReads at once). `unknownOnly`: only for emails the index does
   *  not have yet (a copy's email has its thread). */
  async #readHeaders(
    account: string,
    name: string,
    rows: readonly MessageRow[],
    unknownOnly = false,
  ): Promise<Map<string, ThreadHeaders>> {
    const out = new Map<string, ThreadHeaders>();
    const source = this.#headers;
    let todo = rows.filter((m) => m.thread === undefined);
    if (!source || todo.length === 0) return out;
    if (unknownOnly) {
      const known = new Set(
        (
          await this.#rows<{ base: string }>(
            'SELECT base FROM mail_emails WHERE account = $1 AND base = ANY($2::text[])',
            [account, todo.map((m) => m.base)],
          )
        ).map((r) => r.base),
      );
      todo = todo.filter((m) => !known.has(m.base));
    }
    let next = 0;
    const worker = async () => {
      while (next < todo.length) {
        const m = todo[next++] as MessageRow;
        out.set(m.base, await source(account, name, m));
      }
    };
    await Promise.all(Array.from({ length: Math.min(LIMITS.store.threadHeaderReads, todo.length) }, worker));
    return out;
  }

  /** Takes the mailbox's advisory lock on a connection of its own, waiting (bounded by the
   *  pool's statement_timeout: then TEMPORARY). */
  async lockMailbox(mailbox: number): Promise<MailboxLock> {
    if (this.#closed) throw new ArclineError('TEMPORARY', 'mail index is closed');
    const keys = mailboxLockKeys(mailbox);
    // Each held lock keeps a pooled connection, and its holder may still need the pool (a
    // mailbox's first load, the thread keys of a copy): at most pool_size - 1 locks are held at
    // once, later ones wait here for a slot, so the holders can never take every connection
    // and wait for each other (a burst of deliveries to more mailboxes than connections).
    await this.#slots.take();
    let held: HeldConnection;
    try {
      held = await this.#db.acquire();
    } catch (e) {
      this.#slots.give();
      throw new ArclineError('TEMPORARY', `mail index: mailbox lock: ${errorMessage(e)}`, { cause: e });
    }
    try {
      await held.client.query('SELECT pg_advisory_lock($1, $2)', keys);
    } catch (e) {
      held.release(true);
      this.#slots.give();
      throw new ArclineError('TEMPORARY', `mail index: mailbox lock: ${errorMessage(e)}`, { cause: e });
    }
    const lock = new HeldLock(held);
    this.#locks.set(mailbox, lock);
    let released = false;
    return {
      release: async () => {
        if (released) return;
        released = true;
        if (this.#locks.get(mailbox) === lock) this.#locks.delete(mailbox);
        await lock.idle();
        try {
          // Lost, or given back by close(): nothing to unlock on it.
          if (held.lost || this.#closed) return held.release(true);
          await held.client.query('SELECT pg_advisory_unlock($1, $2)', keys);
          held.release();
        } catch {
          // A connection that may still hold the lock never goes back to the pool.
          held.release(true);
        } finally {
          this.#slots.give();
        }
      },
    };
  }
}

/** The entry of (account, name) read in `q`'s transaction (locked with `forUpdate`). */
async function mailboxIn(q: Queryable, account: string, name: string, forUpdate = false): Promise<MailboxRow | null> {
  const r = await q.query(
    `SELECT * FROM mail_mailboxes WHERE account = $1 AND name = $2${forUpdate ? ' FOR UPDATE' : ''}`,
    [account, name],
  );
  return r.rows[0] ? mailboxRow(r.rows[0]) : null;
}
