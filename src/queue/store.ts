// The durable outbound queue of one node: one spool file per message in {state}/queue/ and
// rows in {state}/queue.db (SQLite, WAL, shared with the CLI). See types.ts for the durability
// contract of enqueue(). The runner (runner.ts) works from here through claim()/record():
//
// - A recipient is 'queued' until a remote server took it ('sent') or it failed for good
//   ('failed', and a bounce was queued or delivered). When no recipient of a message is queued
//   any more its rows and file go.
// - Work is leased: claim() marks (message, domain) pairs as taken, in memory, so the next
//   look at the table does not hand them out twice; record() ends the lease. Leases are not
//   written: after a crash every recipient that was in flight is simply due again (a remote 250
//   not yet recorded may be sent twice: RFC 5321 §6.1 prefers a duplicate to a loss). One
//   process owns the queue; several nodes share the PostgreSQL queue instead (postgres.ts).
// - Commits are grouped: the rows of every enqueue() and record() issued in the same turn of
//   the event loop go in one transaction, so one fsync of the WAL covers many messages (node:
//   sqlite is synchronous; a commit per message would block the process on an fsync each).
//   Each caller still resolves only after the commit that holds its rows.
// - The other methods are synchronous underneath and async only to meet QueueBackend.

import { randomUUID } from 'node:crypto';
import { join } from 'node:path';
import type { DatabaseSync, StatementSync } from 'node:sqlite';
import type { Readable } from 'node:stream';
import { newId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { openDatabase, transaction } from '../core/sqlite.ts';
import type { SpooledMessage } from '../store/types.ts';
import { QueueObservers } from './observers.ts';
import {
  domainOf,
  MAX_REPLY,
  type MessageRow,
  messageValues,
  type RecipientRow,
  toMessage,
  toRecipient,
} from './rows.ts';
import { SpoolFiles } from './spool-files.ts';
import {
  attemptEvent,
  type Job,
  LeaseLost,
  type OutboundMessage,
  type QueueBackend,
  type QueuedMessage,
  type QueueEvent,
  type QueueId,
  type QueueRecovery,
  type RecipientOutcome,
  type RecipientState,
  type ReleaseResult,
  SCHEDULED,
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
  // RFC 3461 (docs/delivery.md "Delivery status notifications"): RET of the message, NOTIFY of
  // each recipient (ENVID and ORCPT were kept from the start). NULL: not given.
  `ALTER TABLE message ADD COLUMN ret TEXT;
   ALTER TABLE recipient ADD COLUMN notify TEXT;`,
];

export type { Job, RecipientOutcome } from './types.ts';

export interface QueueStoreOptions {
  /** {state}: the database is {state}/queue.db, the files {state}/queue/. */
  readonly stateDir: string;
  readonly log: Logger;
}

export class QueueStore implements QueueBackend {
  readonly #db: DatabaseSync;
  readonly #files: SpoolFiles;
  readonly #log: Logger;
  readonly #q: Record<string, StatementSync>;
  /** "messageId\0domain" pairs being delivered by this process -> the lease of the claim. */
  readonly #leases = new Map<string, string>();
  /** Writes waiting for the next grouped commit. */
  #pending: { write: () => void; resolve: () => void; reject: (e: unknown) => void }[] = [];
  /** Called after enqueue/release/retry so a runner in this process starts at once. */
  onWork: (() => void) | null = null;
  readonly leaseMs = LIMITS.queue.leaseMs;
  readonly #observers: QueueObservers;

  constructor(opts: QueueStoreOptions) {
    this.#files = new SpoolFiles(join(opts.stateDir, 'queue'));
    this.#log = opts.log;
    this.#observers = new QueueObservers(opts.log);
    this.#db = openDatabase(join(opts.stateDir, 'queue.db'), { migrations: MIGRATIONS });
    const db = this.#db;
    this.#q = {
      insertMessage: db.prepare(
        `INSERT INTO message (id, sender, created, size, held, origin, log_id, smtputf8, auth_user, envid, tag,
           release_at, ret)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      insertRecipient: db.prepare(
        `INSERT OR IGNORE INTO recipient (message_id, address, domain, orcpt, notify, state, next_attempt)
         VALUES (?, ?, ?, ?, ?, 'queued', ?)`,
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
         ORDER BY r.next_attempt, r.message_id LIMIT ?`,
      ),
      nextDue: db.prepare(
        `SELECT r.message_id, r.domain, r.next_attempt, m.release_at FROM recipient r JOIN message m ON m.id = r.message_id
         WHERE r.state = 'queued' ORDER BY r.next_attempt`,
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
        'SELECT id FROM message WHERE release_at > 0 AND release_at <= ? AND held = 0 ORDER BY release_at, id LIMIT ?',
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
  async recover(): Promise<QueueRecovery> {
    this.#leases.clear();
    const held = (this.#db.prepare('SELECT id FROM message WHERE held = 1').all() as { id: string }[]).map((r) => r.id);
    for (const id of held) {
      this.#q.deleteMessage!.run(id);
      await this.#files.remove(id as QueueId);
    }
    const ids = new Set((this.#db.prepare('SELECT id FROM message').all() as { id: string }[]).map((r) => r.id));
    const { orphanFiles, missingFiles } = await this.#files.sweep(ids, async () => true);
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

  async enqueue(m: OutboundMessage): Promise<QueueId> {
    if (m.recipients.length === 0) throw new Error('enqueue: no recipients');
    const id = newId('q') as QueueId;
    const size = await this.#files.write(id, m.prefix, m.message);
    const now = Date.now();
    await this.#files.commitOrRemove(id, () =>
      this.#commit(() => {
        this.#q.insertMessage!.run(id, ...messageValues(m, now, size));
        const due = Math.max(now, m.releaseAt ?? 0);
        for (const r of m.recipients) {
          this.#q.insertRecipient!.run(id, r.address, domainOf(r.address), r.orcpt ?? null, r.notify ?? null, due);
        }
      }),
    );
    if (!m.hold) this.onWork?.();
    return id;
  }

  async release(id: QueueId, opts: { readonly hold?: boolean } = {}): Promise<void> {
    if (opts.hold) {
      this.#q.keep!.run(id);
      return;
    }
    this.#q.release!.run(id);
    this.onWork?.();
  }

  /** Keeps a message from delivery until release() (the operator's hold); false if there is none. */
  async hold(id: QueueId): Promise<boolean> {
    return Number(this.#q.hold!.run(id).changes) > 0;
  }

  /** False when the message file is gone (damaged storage): the runner bounces it. */
  async hasFile(id: QueueId): Promise<boolean> {
    return this.#files.has(id);
  }

  /** The message file, for the transport. */
  open(id: QueueId): Readable {
    return this.#files.open(id);
  }

  async get(id: QueueId): Promise<QueuedMessage | null> {
    return this.#get(id);
  }

  #get(id: QueueId): QueuedMessage | null {
    const row = this.#q.message!.get(id) as MessageRow | undefined;
    return row ? this.#toMessage(row) : null;
  }

  #toMessage(row: MessageRow): QueuedMessage {
    return toMessage(row, this.#q.recipients!.all(row.id) as unknown as RecipientRow[]);
  }

  async list(opts: { limit?: number } = {}): Promise<QueuedMessage[]> {
    const rows = this.#q.list!.all(opts.limit ?? 1_000_000) as unknown as MessageRow[];
    return rows.map((r) => this.#toMessage(r));
  }

  async counts(): Promise<{ messages: number; recipients: number }> {
    return this.#q.counts!.get() as { messages: number; recipients: number };
  }

  async countsByState(): Promise<{ held: number; deferred: number; waiting: number }> {
    return this.#q.byState!.get() as { held: number; deferred: number; waiting: number };
  }

  async retry(id: QueueId | 'all'): Promise<number> {
    const now = Date.now();
    const r = id === 'all' ? this.#q.retryAll!.run(now, now) : this.#q.retryOne!.run(now, id, now);
    this.onWork?.();
    return Number(r.changes);
  }

  async drop(id: QueueId): Promise<boolean> {
    const r = this.#q.deleteMessage!.run(id);
    await this.#files.remove(id);
    return Number(r.changes) > 0;
  }

  async claim(now: number, limit: number, admit: (domain: string) => boolean): Promise<Job[]> {
    const rows = this.#q.due!.all(now, limit * LIMITS.queue.claimScanFactor + this.#leases.size + 64) as {
      message_id: string;
      domain: string;
    }[];
    const jobs: Job[] = [];
    for (const r of rows) {
      if (jobs.length >= limit) break;
      const key = `${r.message_id}\0${r.domain}`;
      if (this.#leases.has(key) || !admit(r.domain)) continue;
      const message = this.#get(r.message_id as QueueId);
      if (!message) continue;
      const recipients = (this.#q.claim!.all(r.message_id, r.domain, now) as unknown as RecipientRow[]).map(
        toRecipient,
      );
      if (recipients.length === 0) continue;
      const lease = randomUUID();
      this.#leases.set(key, lease);
      jobs.push({ message, domain: r.domain, recipients, lease });
    }
    return jobs;
  }

  async nextDue(): Promise<number | null> {
    // Read in order until the first recipient whose job (or release) is not leased: a leased
    // job has as many rows as recipients there.
    const rows = this.#q.nextDue!.iterate() as Iterable<{
      message_id: string;
      domain: string;
      next_attempt: number;
      release_at: number;
    }>;
    for (const r of rows) {
      if (!this.#leases.has(`${r.message_id}\0${r.release_at > 0 ? SCHEDULED : r.domain}`)) return r.next_attempt;
    }
    return null;
  }

  /** Leases live in this process only: ours until recorded or given back (or a restart). */
  async extend(job: Job): Promise<boolean> {
    return this.#leases.get(`${job.message.id}\0${job.domain}`) === job.lease;
  }

  async unclaim(job: Job): Promise<void> {
    const key = `${job.message.id}\0${job.domain}`;
    if (this.#leases.get(key) === job.lease) this.#leases.delete(key);
  }

  async record(job: Job, outcomes: readonly RecipientOutcome[], now: number): Promise<boolean> {
    const messageId = job.message.id;
    const key = `${messageId}\0${job.domain}`;
    if (this.#leases.get(key) !== job.lease) throw new LeaseLost(messageId, job.domain);
    let finished = false;
    await this.#commit(() => {
      for (const o of outcomes) {
        const state: RecipientState = o.kind === 'deferred' ? 'queued' : o.kind;
        const next = o.kind === 'deferred' ? o.nextAttempt : now;
        const notified = o.kind === 'deferred' && o.delayNotified ? 1 : 0;
        this.#q.record!.run(state, now, o.reply.slice(0, MAX_REPLY), o.host, next, notified, messageId, o.address);
      }
      const pending = (this.#q.pending!.get(messageId) as { n: number }).n;
      finished = pending === 0;
      if (finished) this.#q.deleteMessage!.run(messageId);
    });
    // Only a recorded outcome ends the lease (see the runner: a failed write keeps it).
    this.#leases.delete(key);
    if (finished) await this.#files.remove(messageId);
    else this.onWork?.();
    this.#observers.emit(attemptEvent(job, outcomes));
    return finished;
  }

  observe(listener: (e: QueueEvent) => void): () => void {
    return this.#observers.add(listener);
  }

  // Scheduled messages (types.ts OutboundMessage.releaseAt): one released or canceled is
  // leased as "id\0*" while the dispatcher routes it, so a cancel and a release never both win.

  async claimScheduled(now: number, limit: number): Promise<Job[]> {
    const rows = this.#q.dueScheduled!.all(now, limit + this.#leases.size) as { id: string }[];
    const jobs: Job[] = [];
    for (const { id } of rows) {
      if (jobs.length >= limit) break;
      const key = `${id}\0${SCHEDULED}`;
      if (this.#leases.has(key)) continue;
      const message = this.#get(id as QueueId);
      if (!message || message.releaseAt === 0) continue;
      const lease = randomUUID();
      this.#leases.set(key, lease);
      jobs.push({ message, domain: SCHEDULED, recipients: message.recipients, lease });
    }
    return jobs;
  }

  messageFile(m: QueuedMessage): SpooledMessage {
    return this.#files.message(m.id, m.size);
  }

  async finishScheduled(job: Job, result: ReleaseResult): Promise<void> {
    const m = job.message;
    const key = `${m.id}\0${SCHEDULED}`;
    if (this.#leases.get(key) !== job.lease) throw new LeaseLost(m.id, SCHEDULED);
    await this.#commit(() => this.#q.deleteMessage!.run(m.id));
    this.#leases.delete(key);
    await this.#files.remove(m.id);
    this.#observers.emit({ kind: 'released', queueId: m.id, tag: m.tag, result });
  }

  async rescheduleScheduled(job: Job, at: number): Promise<void> {
    const id = job.message.id;
    const key = `${id}\0${SCHEDULED}`;
    if (this.#leases.get(key) !== job.lease) return;
    await this.#commit(() => {
      this.#q.reschedule!.run(at, id);
      this.#q.rescheduleRecipients!.run(at, id);
    });
    this.#leases.delete(key);
  }

  async cancel(id: QueueId): Promise<boolean> {
    if (this.#leases.has(`${id}\0${SCHEDULED}`)) return false;
    let removed = false;
    await this.#commit(() => {
      removed = Number(this.#q.deleteScheduled!.run(id).changes) > 0;
    });
    if (removed) await this.#files.remove(id);
    return removed;
  }

  async close(): Promise<void> {
    if (this.#db.isOpen) this.#db.close();
  }
}
