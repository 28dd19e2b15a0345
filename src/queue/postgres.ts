// The outbound queue of several nodes (issue #18, docs/cluster.md "The queue across nodes"):
// rows in PostgreSQL, message files in one spool directory every node mounts (a shared volume,
// NFS-like: atomic renames, no inotify; nothing here watches the directory). The database is
// authoritative: a file is a message only while its row exists.
//
// - Rows: queue_message (one per message, with the file's node), queue_recipient (one per
//   recipient), queue_job (one per message and domain with recipients still queued: the unit
//   a runner claims, with the earliest next_attempt of its recipients and its lease).
// - claim(): one transaction, `SELECT … FOR UPDATE SKIP LOCKED LIMIT n` of due jobs whose
//   lease is free or has run out, then lease_owner (node), lease_token (per claim) and
//   lease_until set. Nodes claiming together skip each other's rows, never wait on them and
//   never take the same job. Leases run on the database's clock (clock_timestamp()), so the
//   nodes' clocks need not agree; next_attempt is the runner's clock, as on SQLite.
// - The runner renews the lease while it delivers (extend). A node killed mid-delivery leaves
//   its jobs; another claims them once the lease has run out and delivers them again (a 250
//   the dead node got but had not recorded is a duplicate: RFC 5321 §6.1 prefers that to loss).
// - record(): one transaction that locks the message row, then checks the job's lease token is
//   still the claim's. A runner whose lease was taken over writes nothing (LeaseLost): the
//   other runner's result stands. The message row lock also orders two domains of one message
//   finishing on two nodes, so exactly one sees the last recipient done and deletes the rows.
// - enqueue(): file written as {spool}/ID.tmp, fsynced, renamed to ID.eml, directory fsynced,
//   then the rows committed (types.ts). IDs, hence file names, carry the node name and random
//   bits: unique across nodes without coordination. The file is removed after the rows.
// - recover() touches only what its own node left: unacknowledged (held) messages it queued,
//   its orphan files; other nodes may be in the middle of an enqueue. Orphans of any node older
//   than LIMITS.queue.orphanFileAgeMs go too (a node that finished another's message and died
//   before removing the file).
// - A scheduled message (releaseAt) has one job of domain '*' (SCHEDULED) due at its release
//   time instead of one per domain. claimScheduled() leases it as claim() leases jobs (SKIP
//   LOCKED, database-clock lease renewed while the dispatcher routes it), so two nodes never
//   release it together; cancel() locks that job row and deletes only while no live lease is
//   on it, and finishScheduled() deletes the entry only under its own lease token: a cancel
//   and a release never both succeed while the releasing node renews its lease.
// - Observers (QueueEvent) hear an attempt of a tagged message on the node that queued it (the
//   JMAP submission it follows was made there; docs/cluster.md "Queue events across nodes"):
//   the recording node tells its own observers when it queued the message itself, else the
//   event goes to that node through the database (queue/pg-events.ts, follow()). A release is
//   told where it happened, with the entries it queued there.

import { randomBytes, randomUUID } from 'node:crypto';
import { mkdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { newId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { Postgres, Queryable } from '../db/postgres.ts';
import type { SpooledMessage } from '../store/types.ts';
import { QueueObservers } from './observers.ts';
import { forwardEvent, QueueEventCollector, type QueueEventSource } from './pg-events.ts';

export { QUEUE_CHANNEL, type QueueEventSource } from './pg-events.ts';

import { domainOf, MAX_REPLY, type MessageRow, messageValues, type RecipientRow, toMessage } from './rows.ts';
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
  type ReleaseResult,
  SCHEDULED,
} from './types.ts';

export const MIGRATIONS = [
  `CREATE TABLE queue_message (
     id TEXT PRIMARY KEY,
     node TEXT NOT NULL,
     sender TEXT NOT NULL,
     created BIGINT NOT NULL,
     size BIGINT NOT NULL,
     held SMALLINT NOT NULL DEFAULT 0,
     origin TEXT NOT NULL,
     log_id TEXT NOT NULL,
     smtputf8 SMALLINT NOT NULL DEFAULT 0,
     auth_user TEXT,
     envid TEXT
   );
   CREATE TABLE queue_recipient (
     message_id TEXT NOT NULL REFERENCES queue_message(id) ON DELETE CASCADE,
     address TEXT NOT NULL,
     domain TEXT NOT NULL,
     orcpt TEXT,
     state TEXT NOT NULL,
     attempts INTEGER NOT NULL DEFAULT 0,
     next_attempt BIGINT NOT NULL,
     last_attempt BIGINT,
     last_reply TEXT,
     last_host TEXT,
     delay_notified SMALLINT NOT NULL DEFAULT 0,
     PRIMARY KEY (message_id, address)
   );
   CREATE INDEX queue_recipient_queued ON queue_recipient (message_id, domain) WHERE state = 'queued';
   CREATE TABLE queue_job (
     message_id TEXT NOT NULL REFERENCES queue_message(id) ON DELETE CASCADE,
     domain TEXT NOT NULL,
     next_attempt BIGINT NOT NULL,
     lease_owner TEXT,
     lease_token UUID,
     lease_until BIGINT,
     PRIMARY KEY (message_id, domain)
   );
   CREATE INDEX queue_job_due ON queue_job (next_attempt);`,
  // Scheduled messages (types.ts OutboundMessage.releaseAt; one job of domain '*' each until
  // released) and the owner's tag.
  `ALTER TABLE queue_message ADD COLUMN tag TEXT, ADD COLUMN release_at BIGINT NOT NULL DEFAULT 0;`,
  // Events for the node that queued a tagged message, recorded by another node (see the header).
  `CREATE TABLE queue_event (
     seq BIGSERIAL PRIMARY KEY,
     node TEXT NOT NULL,
     at BIGINT NOT NULL,
     event TEXT NOT NULL
   );
   CREATE INDEX queue_event_node ON queue_event (node, seq);`,
  // RFC 3461 (docs/delivery.md "Delivery status notifications"): RET of the message, NOTIFY of
  // each recipient (ENVID and ORCPT were kept from the start). NULL: not given.
  `ALTER TABLE queue_message ADD COLUMN ret TEXT;
   ALTER TABLE queue_recipient ADD COLUMN notify TEXT;`,
];

/** The database's clock in ms: leases are compared with this only. */
const DB_NOW = '(extract(epoch from clock_timestamp()) * 1000)::bigint';

export interface PostgresQueueOptions {
  readonly db: Postgres;
  /** The spool directory on the volume every node mounts. */
  readonly spoolDir: string;
  /** This node's name (lease_owner, file names): unique in the cluster. */
  readonly node: string;
  readonly log: Logger;
  /** LIMITS.queue.leaseMs unless a test shortens it. */
  readonly leaseMs?: number;
}

/** A node name as it goes into file names: [A-Za-z0-9_-], at most 24 characters. */
function slug(node: string): string {
  return node.replace(/[^A-Za-z0-9_-]/g, '_').slice(0, 24) || 'node';
}

/** The node part of a spool file name (ID.eml / ID.tmp, ID = q…-node-random), or null. */
function nodeOfFile(name: string): string | null {
  return /^q[0-9a-v]{17}-(.+)-[0-9a-f]{8}\.(?:eml|tmp)$/.exec(name)?.[1] ?? null;
}

export class PostgresQueue implements QueueBackend {
  readonly #db: Postgres;
  readonly #files: SpoolFiles;
  readonly #node: string;
  readonly #slug: string;
  readonly #log: Logger;
  readonly leaseMs: number;
  onWork: (() => void) | null = null;
  readonly #observers: QueueObservers;
  readonly #events: QueueEventCollector;

  private constructor(opts: PostgresQueueOptions) {
    this.#db = opts.db;
    this.#observers = new QueueObservers(opts.log);
    this.#events = new QueueEventCollector(opts.db, opts.node, this.#observers, opts.log);
    this.#files = new SpoolFiles(opts.spoolDir);
    this.#node = opts.node;
    this.#slug = slug(opts.node);
    this.#log = opts.log;
    this.leaseMs = opts.leaseMs ?? LIMITS.queue.leaseMs;
  }

  /** Migrates the queue's tables (once, whichever node comes first) and makes the spool. */
  static async open(opts: PostgresQueueOptions): Promise<PostgresQueue> {
    await opts.db.migrate('queue', MIGRATIONS);
    await mkdir(opts.spoolDir, { recursive: true, mode: 0o700 });
    return new PostgresQueue(opts);
  }

  async recover(): Promise<QueueRecovery> {
    const held = await this.#db.rows<{ id: string }>(
      'DELETE FROM queue_message WHERE held = 1 AND node = $1 RETURNING id',
      [this.#node],
    );
    for (const { id } of held) await this.#files.remove(id as QueueId);
    // Our leases died with our previous run: free them rather than wait for them to run out.
    await this.#db.query(
      'UPDATE queue_job SET lease_owner = NULL, lease_token = NULL, lease_until = NULL WHERE lease_owner = $1',
      [this.#node],
    );
    const ids = new Set((await this.#db.rows<{ id: string }>('SELECT id FROM queue_message')).map((r) => r.id));
    const now = Date.now();
    // A row whose file is gone: enqueue and record never leave one, damaged storage does.
    const { orphanFiles, missingFiles } = await this.#files.sweep(ids, async (f) => {
      if (nodeOfFile(f) === this.#slug) return true;
      // Another node's file may be in the middle of its enqueue (file first, row next).
      const st = await stat(join(this.#files.dir, f)).catch(() => null);
      return st !== null && now - st.mtimeMs >= LIMITS.queue.orphanFileAgeMs;
    });
    if (held.length || orphanFiles || missingFiles.length) {
      this.#log.warn({ held: held.length, orphan_files: orphanFiles, missing_files: missingFiles }, 'queue recovered');
    }
    return { held: held.length, orphanFiles, missingFiles };
  }

  async enqueue(m: OutboundMessage): Promise<QueueId> {
    if (m.recipients.length === 0) throw new Error('enqueue: no recipients');
    const id = `${newId('q')}-${this.#slug}-${randomBytes(4).toString('hex')}` as QueueId;
    const size = await this.#files.write(id, m.prefix, m.message);
    const now = Date.now();
    const addresses = m.recipients.map((r) => r.address);
    const domains = addresses.map(domainOf);
    const scheduled = (m.releaseAt ?? 0) > 0;
    // One statement: atomic on its own, one round trip (the foreign keys are checked at its end).
    // A scheduled message gets its one release job (domain '*') instead of one per domain.
    await this.#files.commitOrRemove(id, async () => {
      await this.#db.query(
        `WITH m AS (
           INSERT INTO queue_message (id, node, sender, created, size, held, origin, log_id, smtputf8, auth_user, envid,
             tag, release_at, ret)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14) RETURNING id),
         r AS (
           INSERT INTO queue_recipient (message_id, address, domain, orcpt, notify, state, next_attempt)
           SELECT DISTINCT ON (a) m.id, a, d, o, n, 'queued', $18::bigint
             FROM m, unnest($15::text[], $16::text[], $17::text[], $20::text[]) AS t(a, d, o, n))
         INSERT INTO queue_job (message_id, domain, next_attempt)
         SELECT DISTINCT m.id, CASE WHEN $19 THEN '${SCHEDULED}' ELSE d END, $18::bigint
           FROM m, unnest($16::text[]) AS t(d)`,
        [
          id,
          this.#node,
          ...messageValues(m, now, size),
          addresses,
          domains,
          m.recipients.map((r) => r.orcpt ?? null),
          Math.max(now, m.releaseAt ?? 0),
          scheduled,
          m.recipients.map((r) => r.notify ?? null),
        ],
      );
    });
    if (!m.hold) this.onWork?.();
    return id;
  }

  async release(id: QueueId, opts: { readonly hold?: boolean } = {}): Promise<void> {
    await this.#db.query('UPDATE queue_message SET held = $2 WHERE id = $1', [id, opts.hold ? 2 : 0]);
    if (!opts.hold) this.onWork?.();
  }

  async hold(id: QueueId): Promise<boolean> {
    const r = await this.#db.query('UPDATE queue_message SET held = 2 WHERE id = $1 AND held <> 1', [id]);
    return (r.rowCount ?? 0) > 0;
  }

  async hasFile(id: QueueId): Promise<boolean> {
    return this.#files.has(id);
  }

  open(id: QueueId): Readable {
    return this.#files.open(id);
  }

  /** Messages with their recipients, in two queries. */
  async #messages(q: Queryable, rows: MessageRow[]): Promise<QueuedMessage[]> {
    if (rows.length === 0) return [];
    const rcpts = await q.query<RecipientRow>(
      'SELECT * FROM queue_recipient WHERE message_id = ANY($1::text[]) ORDER BY message_id, domain, address',
      [rows.map((r) => r.id)],
    );
    const by = new Map<string, RecipientRow[]>();
    for (const r of rcpts.rows) {
      const list = by.get(r.message_id);
      if (list) list.push(r);
      else by.set(r.message_id, [r]);
    }
    return rows.map((row) => toMessage(row, by.get(row.id) ?? []));
  }

  async get(id: QueueId): Promise<QueuedMessage | null> {
    const rows = await this.#db.rows<MessageRow>('SELECT * FROM queue_message WHERE id = $1', [id]);
    return (await this.#messages(this.#db, rows))[0] ?? null;
  }

  async list(opts: { limit?: number } = {}): Promise<QueuedMessage[]> {
    const rows = await this.#db.rows<MessageRow>(
      `SELECT * FROM queue_message m WHERE held <> 1 AND EXISTS
         (SELECT 1 FROM queue_recipient r WHERE r.message_id = m.id AND r.state = 'queued')
       ORDER BY created, id LIMIT $1`,
      [opts.limit ?? 1_000_000],
    );
    return this.#messages(this.#db, rows);
  }

  async counts(): Promise<{ messages: number; recipients: number }> {
    const r = await this.#db.rows<{ messages: number; recipients: number }>(
      `SELECT count(DISTINCT message_id) AS messages, count(*) AS recipients FROM queue_recipient WHERE state = 'queued'`,
    );
    return r[0] ?? { messages: 0, recipients: 0 };
  }

  async countsByState(): Promise<{ held: number; deferred: number; waiting: number }> {
    const r = await this.#db.rows<{ held: number; deferred: number; waiting: number }>(
      `SELECT count(*) FILTER (WHERE m.held = 1) AS held,
              count(*) FILTER (WHERE m.held = 0 AND r.attempts > 0) AS deferred,
              count(*) FILTER (WHERE m.held = 0 AND r.attempts = 0) AS waiting
         FROM queue_recipient r JOIN queue_message m ON m.id = r.message_id WHERE r.state = 'queued'`,
    );
    return r[0] ?? { held: 0, deferred: 0, waiting: 0 };
  }

  async retry(id: QueueId | 'all'): Promise<number> {
    const now = Date.now();
    const all = id === 'all';
    const n = await this.#db.tx(async (q) => {
      const r = await q.query(
        `UPDATE queue_recipient SET next_attempt = $1
          WHERE state = 'queued' AND next_attempt > $1 AND ($2 OR message_id = $3)
            AND message_id NOT IN (SELECT id FROM queue_message WHERE release_at > 0)`,
        [now, all, all ? '' : id],
      );
      // A scheduled message keeps its release time (its job is the '*' one).
      await q.query(
        `UPDATE queue_job SET next_attempt = $1
          WHERE next_attempt > $1 AND ($2 OR message_id = $3) AND domain <> '${SCHEDULED}'`,
        [now, all, all ? '' : id],
      );
      return r.rowCount ?? 0;
    });
    this.onWork?.();
    return n;
  }

  async drop(id: QueueId): Promise<boolean> {
    const r = await this.#db.query('DELETE FROM queue_message WHERE id = $1', [id]);
    await this.#files.remove(id);
    return (r.rowCount ?? 0) > 0;
  }

  claim(now: number, limit: number, admit: (domain: string) => boolean): Promise<Job[]> {
    return this.#claim(now, limit, admit, false);
  }

  claimScheduled(now: number, limit: number): Promise<Job[]> {
    return this.#claim(now, limit, () => true, true);
  }

  /** Delivery jobs, or (`scheduled`) the release jobs of scheduled messages (domain '*'). */
  async #claim(now: number, limit: number, admit: (domain: string) => boolean, scheduled: boolean): Promise<Job[]> {
    if (limit <= 0) return [];
    return this.#db.tx(async (q) => {
      // Rows another node holds locked (claiming them now) are skipped, not waited for.
      const candidates = await q.query<{ message_id: string; domain: string }>(
        `SELECT j.message_id, j.domain FROM queue_job j JOIN queue_message m ON m.id = j.message_id
          WHERE j.next_attempt <= $1 AND m.held = 0 AND (j.lease_until IS NULL OR j.lease_until < ${DB_NOW})
            AND (j.domain = '${SCHEDULED}') = $3
          ORDER BY j.next_attempt, j.message_id
          LIMIT $2
          FOR UPDATE OF j SKIP LOCKED`,
        [now, limit * LIMITS.queue.claimScanFactor, scheduled],
      );
      const chosen: { message_id: string; domain: string }[] = [];
      for (const c of candidates.rows) {
        if (chosen.length >= limit) break;
        if (admit(c.domain)) chosen.push(c);
      }
      if (chosen.length === 0) return [];
      const leased = await q.query<{ message_id: string; domain: string; lease_token: string }>(
        `UPDATE queue_job j SET lease_owner = $3, lease_token = t.token, lease_until = ${DB_NOW} + $4
           FROM unnest($1::text[], $2::text[], $5::uuid[]) AS t(message_id, domain, token)
          WHERE j.message_id = t.message_id AND j.domain = t.domain
          RETURNING j.message_id, j.domain, j.lease_token`,
        [
          chosen.map((c) => c.message_id),
          chosen.map((c) => c.domain),
          this.#node,
          this.leaseMs,
          chosen.map(() => randomUUID()),
        ],
      );
      const ids = [...new Set(chosen.map((c) => c.message_id))];
      const messages = new Map(
        (
          await this.#messages(
            q,
            (
              await q.query<MessageRow>('SELECT * FROM queue_message WHERE id = ANY($1::text[])', [ids])
            ).rows,
          )
        ).map((m) => [m.id as string, m]),
      );
      const tokens = new Map(leased.rows.map((r) => [`${r.message_id}\0${r.domain}`, r.lease_token]));
      const jobs: Job[] = [];
      for (const c of chosen) {
        const message = messages.get(c.message_id);
        const lease = tokens.get(`${c.message_id}\0${c.domain}`);
        if (!message || !lease) continue;
        const recipients = message.recipients.filter(
          (r) => (scheduled || r.domain === c.domain) && r.state === 'queued' && r.nextAttempt <= now,
        );
        jobs.push({ message, domain: c.domain, recipients, lease });
      }
      return jobs;
    });
  }

  async nextDue(): Promise<number | null> {
    const r = await this.#db.rows<{ next: number | null }>(
      `SELECT min(next_attempt) AS next FROM queue_job WHERE lease_until IS NULL OR lease_until < ${DB_NOW}`,
    );
    return r[0]?.next ?? null;
  }

  async extend(job: Job): Promise<boolean> {
    const r = await this.#db.query(
      `UPDATE queue_job SET lease_until = ${DB_NOW} + $4 WHERE message_id = $1 AND domain = $2 AND lease_token = $3`,
      [job.message.id, job.domain, job.lease, this.leaseMs],
    );
    return (r.rowCount ?? 0) > 0;
  }

  async unclaim(job: Job): Promise<void> {
    await this.#db.query(
      `UPDATE queue_job SET lease_owner = NULL, lease_token = NULL, lease_until = NULL
        WHERE message_id = $1 AND domain = $2 AND lease_token = $3`,
      [job.message.id, job.domain, job.lease],
    );
  }

  async record(job: Job, outcomes: readonly RecipientOutcome[], now: number): Promise<boolean> {
    const id = job.message.id;
    let written = true;
    let remote = false;
    const event = attemptEvent(job, outcomes);
    const finished = await this.#db.tx(async (q) => {
      written = true;
      remote = false;
      // The message row and the job's, locked: the message first for every writer (see the header).
      const locked = await q.query<{ lease_token: string; node: string }>(
        `SELECT j.lease_token, m.node FROM queue_message m JOIN queue_job j ON j.message_id = m.id AND j.domain = $2
          WHERE m.id = $1 FOR UPDATE`,
        [id, job.domain],
      );
      if (locked.rows[0]?.lease_token !== job.lease) {
        const exists = await q.query('SELECT 1 FROM queue_message WHERE id = $1', [id]);
        written = false;
        if (exists.rowCount === 0) return true; // dropped meanwhile: nothing left to record
        throw new LeaseLost(id, job.domain);
      }
      await q.query(
        `UPDATE queue_recipient r SET state = t.state, attempts = r.attempts + 1, last_attempt = $2,
            last_reply = t.reply, last_host = t.host, next_attempt = t.next,
            delay_notified = GREATEST(r.delay_notified, t.notified)
           FROM unnest($3::text[], $4::text[], $5::text[], $6::text[], $7::bigint[], $8::smallint[])
             AS t(address, state, reply, host, next, notified)
          WHERE r.message_id = $1 AND r.address = t.address`,
        [
          id,
          now,
          outcomes.map((o) => o.address),
          outcomes.map((o) => (o.kind === 'deferred' ? 'queued' : o.kind)),
          outcomes.map((o) => o.reply.slice(0, MAX_REPLY)),
          outcomes.map((o) => o.host),
          outcomes.map((o) => (o.kind === 'deferred' ? o.nextAttempt : now)),
          outcomes.map((o) => (o.kind === 'deferred' && o.delayNotified ? 1 : 0)),
        ],
      );
      // The job: gone with its last queued recipient, else due at the earliest one, unleased.
      const pending = await q.query<{ finished: boolean }>(
        `WITH nxt AS (
           SELECT min(next_attempt) AS at FROM queue_recipient
            WHERE message_id = $1 AND domain = $2 AND state = 'queued'),
         upd AS (
           UPDATE queue_job j SET next_attempt = nxt.at, lease_owner = NULL, lease_token = NULL, lease_until = NULL
             FROM nxt WHERE j.message_id = $1 AND j.domain = $2 AND nxt.at IS NOT NULL RETURNING 1),
         del AS (
           DELETE FROM queue_job WHERE message_id = $1 AND domain = $2 AND (SELECT at FROM nxt) IS NULL RETURNING 1)
         SELECT NOT EXISTS (SELECT 1 FROM queue_recipient WHERE message_id = $1 AND state = 'queued') AS finished,
                (SELECT count(*) FROM upd) + (SELECT count(*) FROM del) AS jobs`,
        [id, job.domain],
      );
      remote = await forwardEvent(q, this.#node, locked.rows[0]?.node ?? this.#node, event);
      if (!pending.rows[0]?.finished) return false;
      await q.query('DELETE FROM queue_message WHERE id = $1', [id]);
      return true;
    });
    if (finished) await this.#files.remove(id);
    else this.onWork?.();
    if (written && !remote) this.#observers.emit(event);
    return finished;
  }

  /** Tells this node's observers of the events other nodes recorded for its messages
   *  (queue/pg-events.ts); returns the function that stops. */
  follow(source: QueueEventSource): Promise<() => void> {
    return this.#events.follow(source);
  }

  /** The periodic sweep of the shared queue (leader task `queue-sweep`, docs/cluster.md): spool
   *  files of any node without a row, older than LIMITS.queue.orphanFileAgeMs (a node that
   *  finished a message and died before removing its file; recover() does only its own), and
   *  events never collected (their node gone for LIMITS.queue.eventRetentionMs). */
  async sweep(now = Date.now()): Promise<{ orphanFiles: number; events: number }> {
    const ids = new Set((await this.#db.rows<{ id: string }>('SELECT id FROM queue_message')).map((r) => r.id));
    const { orphanFiles } = await this.#files.sweep(ids, async (f) => {
      const st = await stat(join(this.#files.dir, f)).catch(() => null);
      return st !== null && now - st.mtimeMs >= LIMITS.queue.orphanFileAgeMs;
    });
    const r = await this.#db.query('DELETE FROM queue_event WHERE at < $1', [now - LIMITS.queue.eventRetentionMs]);
    const events = r.rowCount ?? 0;
    if (orphanFiles || events) this.#log.info({ orphan_files: orphanFiles, events }, 'queue swept');
    return { orphanFiles, events };
  }

  observe(listener: (e: QueueEvent) => void): () => void {
    return this.#observers.add(listener);
  }

  messageFile(m: QueuedMessage): SpooledMessage {
    return this.#files.message(m.id, m.size);
  }

  async finishScheduled(job: Job, result: ReleaseResult): Promise<void> {
    const m = job.message;
    await this.#db.tx(async (q) => {
      const r = await q.query(
        `DELETE FROM queue_message WHERE id = $1 AND EXISTS
           (SELECT 1 FROM queue_job WHERE message_id = $1 AND domain = '${SCHEDULED}' AND lease_token = $2)`,
        [m.id, job.lease],
      );
      if (r.rowCount === 0) throw new LeaseLost(m.id, SCHEDULED);
    });
    await this.#files.remove(m.id);
    // Told here, where the release queued the new entries: their attempts are told here too
    // (this node queued them), after it (queue/pg-events.ts).
    this.#observers.emit({ kind: 'released', queueId: m.id, tag: m.tag, result });
  }

  async rescheduleScheduled(job: Job, at: number): Promise<void> {
    await this.#db.query(
      `WITH j AS (
         UPDATE queue_job SET next_attempt = $3, lease_owner = NULL, lease_token = NULL, lease_until = NULL
          WHERE message_id = $1 AND domain = '${SCHEDULED}' AND lease_token = $2 RETURNING message_id),
       m AS (UPDATE queue_message SET release_at = $3 WHERE id IN (SELECT message_id FROM j))
       UPDATE queue_recipient SET next_attempt = $3 WHERE message_id IN (SELECT message_id FROM j)`,
      [job.message.id, job.lease, at],
    );
  }

  async cancel(id: QueueId): Promise<boolean> {
    const removed = await this.#db.tx(async (q) => {
      // The release job's row, locked: a claim holding it is waited for, and the lease is read
      // as that claim left it (a live lease: being released, the cancel fails).
      const free = await q.query(
        `SELECT 1 FROM queue_job WHERE message_id = $1 AND domain = '${SCHEDULED}'
            AND (lease_until IS NULL OR lease_until < ${DB_NOW})
          FOR UPDATE`,
        [id],
      );
      if (free.rowCount === 0) return false;
      const r = await q.query('DELETE FROM queue_message WHERE id = $1 AND release_at > 0', [id]);
      return (r.rowCount ?? 0) > 0;
    });
    if (removed) await this.#files.remove(id);
    return removed;
  }

  /** The pool belongs to whoever opened it (one per process, shared by the stores). */
  async close(): Promise<void> {}
}
