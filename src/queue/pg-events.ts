// Queue events across nodes (issue #18, docs/cluster.md "Queue events across nodes"). The
// observers of a tagged message (JMAP EmailSubmission, jmap/methods/submission-track.ts) live
// on the node that queued it: the submission was made there, and that node's tracker keeps the
// events that come before its record exists (a delivery may be recorded before the create that
// queued it answers). So an attempt recorded by another node is not told there: it is written
// to queue_event for the queuing node, in the outcome's own transaction,
// with pg_notify('arcline_queue', <node>), which PostgreSQL delivers only at COMMIT. The
// queuing node takes its rows (DELETE … RETURNING, in order) and tells its observers when
// notified, after its listening session came back (notifications of the time away are lost),
// and at start (events recorded while it was down wait for it). The payload is only the node's
// name: the row is the truth (anyone who can connect can NOTIFY; a forged payload costs one
// empty read). The leader's queue sweep drops rows a node never collected.

import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { Postgres, Queryable } from '../db/postgres.ts';
import type { QueueObservers } from './observers.ts';
import type { QueueEvent } from './types.ts';

/** The channel on which a node is told that events wait for it (payload: the node's name). */
export const QUEUE_CHANNEL = 'arcline_queue';

/** What the collector needs of the node's Notifier (db/notify.ts). */
export interface QueueEventSource {
  listen(channel: string, listener: (payload: string) => void): Promise<() => void>;
  onResync(hook: () => void): () => void;
}

/** In an attempt's transaction on node `self`: a tagged message queued by another node gets
 *  its event written for that node (told at COMMIT); true when so (then not told here).
 *  Untagged messages have no observer: nothing is written for them. (A release of a scheduled
 *  message is told where it happens: the entries it queues are that node's, their attempts
 *  told there after it, in order; the submission's record exists by then.) */
export async function forwardEvent(q: Queryable, self: string, owner: string, event: QueueEvent): Promise<boolean> {
  if (event.tag === null || owner === self) return false;
  await q.query('INSERT INTO queue_event (node, at, event) VALUES ($1, $2, $3)', [
    owner,
    Date.now(),
    JSON.stringify(event),
  ]);
  await q.query('SELECT pg_notify($1, $2)', [QUEUE_CHANNEL, owner]);
  return true;
}

export class QueueEventCollector {
  readonly #db: Postgres;
  readonly #node: string;
  readonly #observers: QueueObservers;
  readonly #log: Logger;
  #collecting: Promise<void> = Promise.resolve();
  #busy = false;
  #again = false;

  constructor(db: Postgres, node: string, observers: QueueObservers, log: Logger) {
    this.#db = db;
    this.#node = node;
    this.#observers = observers;
    this.#log = log;
  }

  /** Collects on `source`'s notifications for this node, after its resyncs, and now (awaited).
   *  An event is taken (deleted) before it is told: one lost to a crash in between leaves a
   *  submission's status behind; none is told twice. Returns the function that stops. */
  async follow(source: QueueEventSource): Promise<() => void> {
    const unlisten = await source.listen(QUEUE_CHANNEL, (payload) => {
      if (payload === this.#node) this.#soon();
    });
    const unresync = source.onResync(() => this.#soon());
    this.#soon();
    await this.#collecting;
    return () => {
      unlisten();
      unresync();
    };
  }

  /** One collection at a time; a request meanwhile makes one more after it. */
  #soon(): void {
    if (this.#busy) {
      this.#again = true;
      return;
    }
    this.#busy = true;
    this.#collecting = (async () => {
      do {
        this.#again = false;
        try {
          while ((await this.#collect()) === LIMITS.queue.eventsPerRead);
        } catch (e) {
          this.#log.warn({ err: String(e) }, 'queue: collecting the events of other nodes failed');
        }
      } while (this.#again);
      this.#busy = false;
    })();
  }

  async #collect(): Promise<number> {
    const rows = await this.#db.rows<{ seq: string; event: string }>(
      `DELETE FROM queue_event WHERE seq IN
         (SELECT seq FROM queue_event WHERE node = $1 ORDER BY seq LIMIT $2 FOR UPDATE SKIP LOCKED)
       RETURNING seq, event`,
      [this.#node, LIMITS.queue.eventsPerRead],
    );
    // DELETE … RETURNING gives no order: the events of one message are told as recorded.
    rows.sort((a, b) => Number(a.seq) - Number(b.seq));
    for (const r of rows) {
      let e: QueueEvent;
      try {
        e = JSON.parse(r.event) as QueueEvent;
      } catch {
        continue;
      }
      this.#observers.emit(e);
    }
    return rows.length;
  }
}
