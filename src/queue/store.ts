// The durable outbound queue: one spool file per message in {state}/queue/ and rows in
// {state}/queue.db (SQLite, WAL, shared with the CLI). See types.ts for the durability
// contract of enqueue(). The runner (runner.ts) works from here through claim()/record():
//
// - A recipient is 'queued' until a remote server took it ('sent') or it failed for good
//   ('failed', and a bounce was queued or delivered). When no recipient of a message is queued
//   any more its rows and file go.
// - Work is leased: claim() marks one (message, domain) pair as taken, in memory, so the next
//   look at the table does not hand it out twice; record() ends the lease. Leases are not
//   written: after a crash every recipient that was in flight is simply due again (a remote 250
//   not yet recorded may be sent twice: RFC 5321 §6.1 prefers a duplicate to a loss).
// - Commits are grouped: the rows of every enqueue() and record() issued in the same turn of
//   the event loop go in one transaction, so one fsync of the WAL covers many messages (node:
//   sqlite is synchronous; a commit per message would block the process on an fsync each).
//   Each caller still resolves only after the commit that holds its rows.

import { createReadStream } from 'node:fs';
import { access, mkdir, readdir, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Readable } from 'node:stream';
import { newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import { openDatabase, transaction } from '../core/sqlite.ts';
import { DirSyncer } from '../store/maildir/dirsync.ts';
import { writeDurably } from '../store/maildir/durable.ts';
import { borrowedFileMessage } from '../store/spool.ts';
import type { SpooledMessage } from '../store/types.ts';
import type {
  DeliveryQueue,
  OutboundMessage,
  QueuedMessage,
  QueuedRecipient,
  QueueEvent,
  QueueId,
  QueueOrigin,
  RecipientState,
  ReleaseResult,
} from './types.ts';

const MIGRATIONS = [
  `CREATE TABLE message (
     id TEXT PRIMARY KEY,
     sender TEXT NOT NULL,
     created INTEGER NOT NULL,
     size INTEGER NOT NULL,
     held INTEGER NOT NULL DEFAULT 0,
     origin TEXT NOT NULL,
     log_id TEXT NOT NULL,
     smtputf8 INTEGER NOT NULL DEFAULT 0,
     auth_user TEXT,
     envid TEXT
   ) STRICT;
   CREATE TABLE recipient (
     message_id TEXT NOT NULL REFERENCES message(id) ON DELETE CASCADE,
     address TEXT NOT NULL,
     domain TEXT NOT NULL,
     orcpt TEXT,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt INTEGER NOT NULL,
     last_attempt INTEGER,
     last_reply TEXT,
     last_host TEXT,
     delay_notified INTEGER NOT NULL DEFAULT 0,
     PRIMARY KEY (message_id, address)
   ) STRICT;
   CREATE INDEX recipient_due ON recipient(next_attempt) WHERE state = 'queued';`,
  // Scheduled messages (types.ts OutboundMessage.releaseAt) and the owner's tag.
  `ALTER TABLE message ADD COLUMN tag TEXT;
   ALTER TABLE message ADD COLUMN release_at INTEGER NOT NULL DEFAULT 0;`,
];

/** One unit of delivery work: the queued recipients of one message at one domain. */
export interface Job {
  readonly message: QueuedMessage;
  readonly domain: string;
  readonly recipients: readonly QueuedRecipient[];
}

/** What happened to one recipient in one attempt. */
export type RecipientOutcome =
  | { readonly address: string; readonly kind: 'sent'; readonly reply: string; readonly host: string | null }
  | { readonly address: string; readonly kind: 'failed'; readonly reply: string; readonly host: string | null }
  | {
      readonly address: string;
      readonly kind: 'deferred';
      readonly reply: string;
      readonly host: string | null;
      readonly nextAttempt: number;
      readonly delayNotified?: boolean;
    };

interface MessageRow {
  id: string;
  held: number;
  sender: string;
  created: number;
  size: number;
  origin: string;
  log_id: string;
  smtputf8: number;
  auth_user: string | null;
  envid: string | null;
  tag: string | null;
  release_at: number;
}

interface RecipientRow {
  message_id: string;
  address: string;
  domain: string;
  orcpt: string | null;
  state: string;
  attempts: number;
  next_attempt: number;
  last_attempt: number | null;
  last_reply: string | null;
  last_host: string | null;
  delay_notified: number;
}

export interface QueueStoreOptions {
  /** {state}: the database is {state}/queue.db, the files {state}/queue/. */
  readonly stateDir: string;
  readonly log: Logger;
}

export class QueueStore implements DeliveryQueue {
  readonly #db: DatabaseSync;
  readonly #dir: string;
  readonly #log: Logger;
  readonly #dirSync = new DirSyncer();
  readonly #q: Record<string, StatementSync>;
  /** "messageId\0domain" pairs being delivered by this process. */
  readonly #leases = new Set<string>();
  /** Writes waiting for the next grouped commit. */
  #pending: { write: () => void; resolve: () => void; reject: (e: unknown) => void }[] = [];
  /** Called after enqueue/release/retry so a runner in this process starts at once. */
  onWork: (() => void) | null = null;
  readonly #observers = new Set<(e: QueueEvent) => void>();

  constructor(opts: QueueStoreOptions) {
    this.#dir = join(opts.stateDir, 'queue');
    this.#log = opts.log;
    this.#db = openDatabase(join(opts.stateDir, 'queue.db'), { migrations: MIGRATIONS });
    const db = this.#db;
    this.#q = {
      insertMessage: db.prepare(
        `INSERT INTO message (id, sender, created, size, held, origin, log_id, smtputf8, auth_user, envid, tag,
           release_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertRecipient: db.prepare(
        `INSERT OR IGNORE INTO recipient (message_id, address, domain, orcpt, state, next_attempt)
         VALUES (?, ?, ?, ?, 'queued', ?)`,
      ),
      release: db.prepare('UPDATE message SET held = 0 WHERE id = ?'),
      keep: db.prepare('UPDATE message SET held = 2 WHERE id = ?'),
      // held: 0 eligible, 1 not yet acknowledged (removed at start), 2 held by the operator
      // (kept across restarts, not attempted until released).
      hold: db.prepare('UPDATE message SET held = 2 WHERE id = ? AND held <> 1'),
      message: db.prepare('SELECT * FROM message WHERE id = ?'),
      recipients: db.prepare('SELECT * FROM recipient WHERE message_id = ? ORDER BY domain, address'),
      due: db.prepare(
        `SELECT r.message_id, r.domain FROM recipient r JOIN message m ON m.id = r.message_id
         WHERE r.state = 'queued' AND r.next_attempt <= ? AND m.held = 0 AND m.release_at = 0
         ORDER BY r.next_attempt LIMIT ?`,
      ),
      nextDue: db.prepare(
        `SELECT message_id, domain, next_attempt FROM recipient WHERE state = 'queued' ORDER BY next_attempt LIMIT ?`,
      ),
      claim: db.prepare(
        `SELECT * FROM recipient WHERE message_id = ? AND domain = ? AND state = 'queued' AND next_attempt <= ?
         ORDER BY address`,
      ),
      record: db.prepare(
        `UPDATE recipient SET state = ?, attempts = attempts + 1, last_attempt = ?, last_reply = ?,
           last_host = ?, next_attempt = ?, delay_notified = MAX(delay_notified, ?)
         WHERE message_id = ? AND address = ?`,
      ),
      pending: db.prepare(`SELECT COUNT(*) AS n FROM recipient WHERE message_id = ? AND state = 'queued'`),
      deleteMessage: db.prepare('DELETE FROM message WHERE id = ?'),
      list: db.prepare(
        `SELECT * FROM message WHERE held <> 1 AND EXISTS
           (SELECT 1 FROM recipient r WHERE r.message_id = message.id AND r.state = 'queued')
         ORDER BY created, id LIMIT ?`,
      ),
      // A scheduled message keeps its release time (types.ts OutboundMessage.releaseAt).
      retryOne: db.prepare(
        `UPDATE recipient SET next_attempt = ? WHERE message_id = ? AND state = 'queued' AND next_attempt > ?
           AND message_id NOT IN (SELECT id FROM message WHERE release_at > 0)`,
      ),
      retryAll: db.prepare(
        `UPDATE recipient SET next_attempt = ? WHERE state = 'queued' AND next_attempt > ?
           AND message_id NOT IN (SELECT id FROM message WHERE release_at > 0)`,
      ),
      dueScheduled: db.prepare(
        'SELECT id FROM message WHERE release_at > 0 AND release_at <= ? AND held = 0 ORDER BY release_at LIMIT ?',
      ),
      reschedule: db.prepare('UPDATE message SET release_at = ? WHERE id = ? AND release_at > 0'),
      rescheduleRecipients: db.prepare('UPDATE recipient SET next_attempt = ? WHERE message_id = ?'),
      deleteScheduled: db.prepare('DELETE FROM message WHERE id = ? AND release_at > 0'),
      counts: db.prepare(
        `SELECT COUNT(DISTINCT message_id) AS messages, COUNT(*) AS recipients FROM recipient WHERE state = 'queued'`,
      ),
      byState: db.prepare(
        `SELECT COALESCE(SUM(m.held = 1), 0) AS held,
                COALESCE(SUM(m.held = 0 AND r.attempts > 0), 0) AS deferred,
                COALESCE(SUM(m.held = 0 AND r.attempts = 0), 0) AS waiting
           FROM recipient r JOIN message m ON m.id = r.message_id WHERE r.state = 'queued'`,
      ),
    };
  }

  /** Start-up recovery (see the header comments); returns what it removed. */
  async recover(): Promise<{ held: number; orphanFiles: number; missingFiles: string[] }> {
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    this.#leases.clear();
    const held = (this.#db.prepare('SELECT id FROM message WHERE held = 1').all() as { id: string }[]).map((r) => r.id);
    for (const id of held) {
      this.#q.deleteMessage!.run(id);
      await rm(this.#path(id as QueueId), { force: true });
    }
    const ids = new Set((this.#db.prepare('SELECT id FROM message').all() as { id: string }[]).map((r) => r.id));
    let orphanFiles = 0;
    const present = new Set<string>();
    for (const f of await readdir(this.#dir)) {
      const id = f.endsWith('.eml') ? f.slice(0, -4) : null;
      if (id !== null && ids.has(id)) {
        present.add(id);
        continue;
      }
      orphanFiles++;
      await rm(join(this.#dir, f), { force: true });
    }
    const missingFiles = [...ids].filter((id) => !present.has(id));
    if (held.length || orphanFiles || missingFiles.length) {
      this.#log.warn({ held: held.length, orphan_files: orphanFiles, missing_files: missingFiles }, 'queue recovered');
    }
    return { held: held.length, orphanFiles, missingFiles };
  }

  /** Runs `write` inside the next grouped transaction; resolves once that has committed. A
   *  write that throws fails alone: the group is retried without it. */
  #commit(write: () => void): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      this.#pending.push({ write, resolve, reject });
      if (this.#pending.length === 1) setImmediate(() => this.#flush());
    });
  }

  #flush(): void {
    const batch = this.#pending;
    this.#pending = [];
    const failed = new Set<number>();
    for (;;) {
      let at = -1;
      try {
        transaction(this.#db, () => {
          batch.forEach((p, i) => {
            if (failed.has(i)) return;
            at = i;
            p.write();
          });
          at = -1; // past the writes: a failure now is the commit's
        });
        break;
      } catch (e) {
        if (at < 0 || failed.has(at)) {
          for (const p of batch) p.reject(e); // the commit itself failed: everyone fails
          return;
        }
        failed.add(at);
        batch[at]?.reject(e);
      }
    }
    batch.forEach((p, i) => {
      if (!failed.has(i)) p.resolve();
    });
  }

  #path(id: QueueId): string {
    return join(this.#dir, `${id}.eml`);
  }

  async enqueue(m: OutboundMessage): Promise<QueueId> {
    if (m.recipients.length === 0) throw new Error('enqueue: no recipients');
    await mkdir(this.#dir, { recursive: true, mode: 0o700 });
    const id = newId('q') as QueueId;
    const tmp = join(this.#dir, `${id}.tmp`);
    const path = this.#path(id);
    let size: number;
    try {
      size = await writeDurably(tmp, m.prefix, m.message);
      await rename(tmp, path);
      await this.#dirSync.sync(this.#dir);
    } catch (e) {
      await rm(tmp, { force: true });
      await rm(path, { force: true });
      throw e;
    }
    const now = Date.now();
    try {
      await this.#commit(() => {
        this.#q.insertMessage!.run(
          id,
          m.sender,
          now,
          size,
          m.hold ? 1 : 0,
          m.origin,
          m.logId,
          m.smtputf8 ? 1 : 0,
          m.authUser ?? null,
          m.envid ?? null,
          m.tag ?? null,
          m.releaseAt ?? 0,
        );
        const due = Math.max(now, m.releaseAt ?? 0);
        for (const r of m.recipients) {
          this.#q.insertRecipient!.run(id, r.address, domainOf(r.address), r.orcpt ?? null, due);
        }
      });
    } catch (e) {
      await rm(path, { force: true });
      throw e;
    }
    if (!m.hold) this.onWork?.();
    return id;
  }

  release(id: QueueId, opts: { readonly hold?: boolean } = {}): void {
    if (opts.hold) {
      this.#q.keep!.run(id);
      return;
    }
    this.#q.release!.run(id);
    this.onWork?.();
  }

  /** Keeps a message from delivery until release() (the operator's hold); false if there is none. */
  hold(id: QueueId): boolean {
    return Number(this.#q.hold!.run(id).changes) > 0;
  }

  /** False when the message file is gone (damaged storage): the runner bounces it. */
  async hasFile(id: QueueId): Promise<boolean> {
    return access(this.#path(id)).then(
      () => true,
      () => false,
    );
  }

  /** The message file, for the transport. */
  open(id: QueueId): Readable {
    return createReadStream(this.#path(id), { highWaterMark: 256 * 1024 });
  }

  get(id: QueueId): QueuedMessage | null {
    const row = this.#q.message!.get(id) as MessageRow | undefined;
    return row ? this.#toMessage(row) : null;
  }

  list(opts: { limit?: number } = {}): QueuedMessage[] {
    const rows = this.#q.list!.all(opts.limit ?? 1_000_000) as unknown as MessageRow[];
    return rows.map((r) => this.#toMessage(r));
  }

  counts(): { messages: number; recipients: number } {
    return this.#q.counts!.get() as { messages: number; recipients: number };
  }

  /** Queued recipients by state (arcline_queue_recipients_by_state): held (the message is),
   *  deferred (tried before), waiting (not tried yet). */
  countsByState(): { held: number; deferred: number; waiting: number } {
    return this.#q.byState!.get() as { held: number; deferred: number; waiting: number };
  }

  #toMessage(row: MessageRow): QueuedMessage {
    const recipients = (this.#q.recipients!.all(row.id) as unknown as RecipientRow[]).map(toRecipient);
    return {
      id: row.id as QueueId,
      sender: row.sender,
      created: row.created,
      size: row.size,
      origin: row.origin as QueueOrigin,
      logId: row.log_id,
      smtputf8: row.smtputf8 === 1,
      authUser: row.auth_user,
      envid: row.envid,
      held: row.held === 2,
      tag: row.tag,
      releaseAt: row.release_at,
      recipients,
    };
  }

  retry(id: QueueId | 'all'): number {
    const now = Date.now();
    const r = id === 'all' ? this.#q.retryAll!.run(now, now) : this.#q.retryOne!.run(now, id, now);
    this.onWork?.();
    return Number(r.changes);
  }

  async drop(id: QueueId): Promise<boolean> {
    const r = this.#q.deleteMessage!.run(id);
    await rm(this.#path(id), { force: true });
    return Number(r.changes) > 0;
  }

  /** Due (message, domain) pairs, oldest first; `skip` holds domains that are busy. */
  due(now: number, limit: number, skip: ReadonlySet<string>): { messageId: QueueId; domain: string }[] {
    const rows = this.#q.due!.all(now, limit * 4 + skip.size * 8 + this.#leases.size) as {
      message_id: string;
      domain: string;
    }[];
    const seen = new Set<string>();
    const out: { messageId: QueueId; domain: string }[] = [];
    for (const r of rows) {
      if (skip.has(r.domain)) continue;
      const key = `${r.message_id}\0${r.domain}`;
      if (seen.has(key) || this.#leases.has(key)) continue;
      seen.add(key);
      out.push({ messageId: r.message_id as QueueId, domain: r.domain });
      if (out.length >= limit) break;
    }
    return out;
  }

  /** When the next recipient not being delivered now becomes due (ms), or null. */
  nextDue(): number | null {
    const rows = this.#q.nextDue!.all(this.#leases.size + 1) as {
      message_id: string;
      domain: string;
      next_attempt: number;
    }[];
    for (const r of rows) if (!this.#leases.has(`${r.message_id}\0${r.domain}`)) return r.next_attempt;
    return null;
  }

  /** Leases the due recipients of one message at one domain; null if taken or not due. */
  claim(messageId: QueueId, domain: string, now: number): Job | null {
    const key = `${messageId}\0${domain}`;
    if (this.#leases.has(key)) return null;
    const row = this.#q.message!.get(messageId) as MessageRow | undefined;
    if (!row) return null;
    const rows = this.#q.claim!.all(messageId, domain, now) as unknown as RecipientRow[];
    if (rows.length === 0) return null;
    this.#leases.add(key);
    return { message: this.#toMessage(row), domain, recipients: rows.map(toRecipient) };
  }

  /** Gives a claimed pair back without an attempt (a rate limit held it): due again as it was. */
  unclaim(messageId: QueueId, domain: string): void {
    this.#leases.delete(`${messageId}\0${domain}`);
  }

  /** Records the outcome of an attempt; returns true when the message is finished (its rows
   *  and file are gone). */
  async record(
    messageId: QueueId,
    domain: string,
    outcomes: readonly RecipientOutcome[],
    now: number,
  ): Promise<boolean> {
    let finished = false;
    const tag = (this.#q.message!.get(messageId) as MessageRow | undefined)?.tag ?? null;
    await this.#commit(() => {
      for (const o of outcomes) {
        const state: RecipientState = o.kind === 'deferred' ? 'queued' : o.kind;
        const next = o.kind === 'deferred' ? o.nextAttempt : now;
        const notified = o.kind === 'deferred' && o.delayNotified ? 1 : 0;
        this.#q.record!.run(state, now, o.reply.slice(0, 1000), o.host, next, notified, messageId, o.address);
      }
      const pending = (this.#q.pending!.get(messageId) as { n: number }).n;
      finished = pending === 0;
      if (finished) this.#q.deleteMessage!.run(messageId);
    });
    // Only a recorded outcome ends the lease (see the runner: a failed write keeps it).
    this.#leases.delete(`${messageId}\0${domain}`);
    if (finished) await rm(this.#path(messageId), { force: true });
    else this.onWork?.();
    this.#emit({
      kind: 'attempt',
      queueId: messageId,
      tag,
      outcomes: outcomes.map((o) => ({ address: o.address, kind: o.kind, reply: o.reply })),
    });
    return finished;
  }

  /** Follows what happens to queued messages (types.ts QueueEvent); returns the unsubscribe. */
  observe(listener: (e: QueueEvent) => void): () => void {
    this.#observers.add(listener);
    return () => this.#observers.delete(listener);
  }

  #emit(e: QueueEvent): void {
    for (const l of this.#observers) {
      try {
        l(e);
      } catch (err) {
        this.#log.error({ err: String(err), queue_id: e.queueId }, 'queue observer failed');
      }
    }
  }

  // Scheduled messages (types.ts OutboundMessage.releaseAt). A released or canceled one is
  // leased as "id\0*" while the dispatcher routes it, so a cancel and a release never both win.

  /** Scheduled messages whose time has come, not being released now. */
  dueScheduled(now: number, limit: number): QueueId[] {
    const rows = this.#q.dueScheduled!.all(now, limit + this.#leases.size) as { id: string }[];
    return rows
      .map((r) => r.id as QueueId)
      .filter((id) => !this.#leases.has(`${id}\0*`))
      .slice(0, limit);
  }

  /** Leases a due scheduled message for its release; null if taken or gone. */
  claimScheduled(id: QueueId): QueuedMessage | null {
    const key = `${id}\0*`;
    if (this.#leases.has(key)) return null;
    const m = this.get(id);
    if (!m || m.releaseAt === 0) return null;
    this.#leases.add(key);
    return m;
  }

  /** A scheduled message's file, for the dispatcher that routes it at release. */
  messageFile(m: QueuedMessage): SpooledMessage {
    return borrowedFileMessage(this.#path(m.id), m.size);
  }

  /** The release is durable (the dispatcher's copies and entries are): the scheduled entry goes. */
  async finishScheduled(m: QueuedMessage, result: ReleaseResult): Promise<void> {
    await this.#commit(() => this.#q.deleteMessage!.run(m.id));
    this.#leases.delete(`${m.id}\0*`);
    await rm(this.#path(m.id), { force: true });
    this.#emit({ kind: 'released', queueId: m.id, tag: m.tag, result });
  }

  /** The release failed (local trouble): tried again at `at`. */
  async rescheduleScheduled(id: QueueId, at: number): Promise<void> {
    await this.#commit(() => {
      this.#q.reschedule!.run(at, id);
      this.#q.rescheduleRecipients!.run(at, id);
    });
    this.#leases.delete(`${id}\0*`);
  }

  /** Cancels a scheduled message not yet released (RFC 8621 §7 undoStatus "canceled"): its
   *  rows and file go. False when it is being released, was released or never was scheduled. */
  async cancel(id: QueueId): Promise<boolean> {
    if (this.#leases.has(`${id}\0*`)) return false;
    let removed = false;
    await this.#commit(() => {
      removed = Number(this.#q.deleteScheduled!.run(id).changes) > 0;
    });
    if (removed) await rm(this.#path(id), { force: true });
    return removed;
  }

  close(): void {
    this.#db.close();
  }
}

function toRecipient(r: RecipientRow): QueuedRecipient {
  return {
    address: r.address,
    domain: r.domain,
    orcpt: r.orcpt,
    state: r.state as RecipientState,
    attempts: r.attempts,
    nextAttempt: r.next_attempt,
    lastAttempt: r.last_attempt,
    lastReply: r.last_reply,
    lastHost: r.last_host,
    delayNotified: r.delay_notified === 1,
  };
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}
