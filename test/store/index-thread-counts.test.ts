// Per-mailbox thread counts (JMAP Mailbox totalThreads/unreadThreads; index/schema.ts
// `mailbox_threads`, kept by triggers): after a random sequence of index writes (deliveries,
// copies, \Seen on and off, expunges, mailbox deletions, imports, emails threaded later by the
// backfill) the kept counts equal the full scan the index used before (the oracle below), and
// collapsed pages (collapseThreads, read in order until full) equal the old window query's.
// The migration, run on an index from before it, builds the same counts.

import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { DatabaseSync } from 'node:sqlite';
import { test } from 'node:test';
import type { ThreadHeaders } from '../../src/mime/thread-key.ts';
import { MailIndex, type MessageRow } from '../../src/store/index/db.ts';
import { MIGRATIONS } from '../../src/store/index/schema.ts';
import { rng } from '../harness/random.ts';

const ACCOUNT = 'alice@example.test';

/** The full scan of the mailbox's messages (the query before the counts were kept). */
function oracle(db: DatabaseSync, mailbox: number): { total: number; unread: number } {
  const r = db
    .prepare(
      `SELECT count(DISTINCT e.thread) AS total, count(DISTINCT CASE WHEN (instr(m.letters, 'S') = 0 AND instr(m.letters, 'D') = 0) THEN e.thread END) AS unread
       FROM messages m JOIN emails e ON e.account = ? AND e.base = m.base WHERE m.mailbox = ?`,
    )
    .get(ACCOUNT, mailbox) as { total: number; unread: number };
  return { total: Number(r.total), unread: Number(r.unread) };
}

/** The old collapsed page: a window over the mailbox's messages (or the account's emails). */
function oracleCollapsed(
  db: DatabaseSync,
  q: { mailbox?: number; col: string; dir: string },
  limit: number,
  offset: number,
) {
  const order = `ORDER BY k ${q.dir}, base ${q.dir}`;
  const rows =
    q.mailbox === undefined
      ? db
          .prepare(
            `SELECT id FROM (SELECT id, base, ${q.col} AS k, row_number() OVER (PARTITION BY thread ORDER BY ${q.col} ${q.dir}, base ${q.dir}) AS n FROM emails WHERE account = ?) WHERE n = 1 ${order} LIMIT ? OFFSET ?`,
          )
          .all(ACCOUNT, limit, offset)
      : db
          .prepare(
            `SELECT id FROM (SELECT e.id, m.base, m.${q.col} AS k, row_number() OVER (PARTITION BY e.thread ORDER BY m.${q.col} ${q.dir}, m.base ${q.dir}) AS n FROM messages m JOIN emails e ON e.account = ? AND e.base = m.base WHERE m.mailbox = ?) WHERE n = 1 ${order} LIMIT ? OFFSET ?`,
          )
          .all(ACCOUNT, q.mailbox, limit, offset);
  return rows.map((r) => String(r.id));
}

test('kept thread counts equal the full scan after random writes', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'arcline-tcount-'));
  const path = join(dir, 'index.db');
  const headers = new Map<string, ThreadHeaders>();
  const source = (_a: string, _m: string, m: { base: string }) => headers.get(m.base) as ThreadHeaders;
  let index = new MailIndex(path, source);
  const db = new DatabaseSync(path);
  let mixed = 0;
  try {
    for (const seed of [1, 2, 3]) {
      const r = rng(seed);
      const names = ['INBOX', 'Archive', 'Trash', `Extra${seed}`];
      const bases: string[] = [];
      let modseq = 1;
      const box = (name: string) => index.mailbox(ACCOUNT, name) ?? index.createMailbox(ACCOUNT, name, true);
      const rows = (name: string) => index.messages(box(name).id);
      const insert = (name: string, base: string, letters: string) => {
        const mb = box(name);
        const uid = Math.max(0, ...index.messages(mb.id).map((x) => x.uid)) + 1;
        const m: MessageRow & { thread: ThreadHeaders } = {
          uid,
          base,
          inNew: false,
          letters,
          modseq: ++modseq,
          size: 100 + r(1000),
          internalDate: 1_700_000_000_000 + r(1e9),
          thread: headers.get(base) as ThreadHeaders,
        };
        index.write(mb.id, { insert: [m], journal: [{ modseq, kind: 'append', uid, base }] });
      };
      for (let step = 0; step < 400; step++) {
        const name = names[r(names.length)] as string;
        const op = r(100);
        const have = rows(name);
        if (op < 35 || bases.length === 0) {
          // A new email: a reply to an earlier one (same subject) or a new conversation.
          const base = `${seed}.${step}.host`;
          const parent = bases.length > 0 && r(2) === 0 ? bases[r(bases.length)] : undefined;
          const ph = parent ? headers.get(parent) : undefined;
          headers.set(base, {
            messageId: `${base}@x`,
            inReplyTo: ph?.messageId ? [ph.messageId] : [],
            references: ph?.messageId ? [ph.messageId] : [],
            subject: ph ? ph.subject : `subject ${step}`,
          });
          bases.push(base);
          insert(name, base, r(2) === 0 ? 'S' : '');
        } else if (op < 50) {
          // A copy (or the copy half of a move) of a message of another mailbox.
          const from = rows(names[r(names.length)] as string);
          const m = from[r(from.length)];
          if (m && !have.some((h) => h.base === m.base)) insert(name, m.base, m.letters);
        } else if (op < 75) {
          const m = have[r(have.length)];
          if (m) {
            const letters = m.letters.includes('S')
              ? m.letters.replace('S', '')
              : `${m.letters}S`.split('').sort().join('');
            index.write(box(name).id, { update: [{ uid: m.uid, inNew: false, letters, modseq: ++modseq }] });
          }
        } else if (op < 93) {
          const m = have[r(have.length)];
          if (m)
            index.write(box(name).id, {
              expunge: [m.uid],
              journal: [{ modseq: ++modseq, kind: 'expunge', uid: m.uid }],
            });
        } else if (op < 96) {
          index.deleteMailbox(box(name).id);
        } else if (op < 98) {
          // An import replaces the mailbox's rows.
          const old = index.mailbox(ACCOUNT, name);
          const kept = have.slice(0, r(have.length + 1));
          index.importMailbox(
            ACCOUNT,
            name,
            { uidvalidity: 1, uidnext: 1000, subscribed: true, expect: old?.id ?? null },
            kept,
          );
        } else {
          // Emails threaded later (rows from before threads were stored): the backfill at open.
          index.close();
          db.exec('UPDATE emails SET thread = NULL; DELETE FROM thread_keys');
          index = new MailIndex(path, source);
        }
        for (const mb of index.mailboxes(ACCOUNT)) {
          const kept = index.mailboxThreads(ACCOUNT, mb.oid);
          assert.deepEqual(kept, oracle(db, mb.id), `seed ${seed} step ${step} op ${op} ${mb.name}`);
          if (step % 20 === 0) {
            for (const [sort, col] of [
              ['receivedAt', 'internaldate'],
              ['size', 'size'],
            ] as const) {
              for (const descending of [false, true]) {
                for (const [position, limit] of [
                  [0, 5],
                  [3, 4],
                  [0, 1000],
                  [7, 0],
                ] as const) {
                  const dir = descending ? 'DESC' : 'ASC';
                  const what = `seed ${seed} step ${step} ${mb.name} ${sort} ${dir} ${position} ${limit}`;
                  const page = (mailboxId?: string) =>
                    index.accountMessages(ACCOUNT, {
                      sort,
                      descending,
                      collapseThreads: true,
                      position,
                      limit,
                      ...(mailboxId ? { mailboxId } : {}),
                    });
                  const inBox = page(mb.oid);
                  assert.deepEqual(inBox.ids, oracleCollapsed(db, { mailbox: mb.id, col, dir }, limit, position), what);
                  assert.equal(inBox.total, kept.total, what);
                  assert.deepEqual(page().ids, oracleCollapsed(db, { col, dir }, limit, position), `${what} (account)`);
                }
              }
            }
          }
          if (kept.unread > 0 && kept.total > kept.unread && kept.total < index.messages(mb.id).length) mixed++;
        }
      }
    }
    // The migration builds the counts from the rows of an index from before it.
    index.close();
    for (const t of db.prepare("SELECT name FROM sqlite_schema WHERE type = 'trigger'").all())
      db.exec(`DROP TRIGGER ${String(t.name)}`);
    db.exec(`DROP TABLE mailbox_threads;
      ALTER TABLE mailboxes DROP COLUMN total_threads;
      ALTER TABLE mailboxes DROP COLUMN unread_threads;
      PRAGMA user_version = ${MIGRATIONS.length - 1};`);
    index = new MailIndex(path, source);
    let checked = 0;
    for (const mb of index.mailboxes(ACCOUNT)) {
      assert.deepEqual(index.mailboxThreads(ACCOUNT, mb.oid), oracle(db, mb.id), `migrated ${mb.name}`);
      checked += index.mailboxThreads(ACCOUNT, mb.oid).total;
    }
    assert.ok(checked > 0, 'the migration had threads to count');
    const n = db.prepare('SELECT count(*) AS n FROM mailbox_threads WHERE messages <= 0 OR unseen < 0').get() as {
      n: number;
    };
    assert.equal(n.n, 0, 'no empty or negative rows');
    assert.ok(mixed > 100, 'threads of several messages, read and unread ones, were counted');
  } finally {
    index.close();
    db.close();
    await rm(dir, { recursive: true, force: true });
  }
});
