// The queue's observers (types.ts QueueEvent, QueueBackend.observe), one set per backend
// instance: events are told in the process that made the change, after it is durable. Other
// nodes of a cluster do not hear them (docs/cluster.md "Scheduled messages and events").

import type { Logger } from '../core/log.ts';
import type { QueueEvent } from './types.ts';

export class QueueObservers {
  readonly #listeners = new Set<(e: QueueEvent) => void>();
  readonly #log: Logger;

  constructor(log: Logger) {
    this.#log = log;
  }

  add(listener: (e: QueueEvent) => void): () => void {
    this.#listeners.add(listener);
    return () => this.#listeners.delete(listener);
  }

  /** Tells every listener; one that throws is logged and the others still hear it. */
  emit(e: QueueEvent): void {
    for (const l of this.#listeners) {
      try {
        l(e);
      } catch (err) {
        this.#log.error({ err: String(err), queue_id: e.queueId }, 'queue observer failed');
      }
    }
  }
}
