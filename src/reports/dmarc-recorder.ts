// The recorder of DMARC evaluations for aggregate reports (RFC 7489 §7.2; docs/delivery.md
// "DMARC aggregate reports"). Hygiene (hygiene/pipeline.ts) tells it of every evaluation whose
// policy domain asked for reports (a rua tag) with the disposition we applied; it counts them in
// memory (dmarc-aggregate.ts) and hands the rows on every LIMITS.dmarcReports.flushMs: to the
// store in the main thread, to the main thread from an inbound SMTP thread
// (smtp/threads/worker.ts posts them, host.ts adds them here). The hot path does no I/O.

import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { DmarcReportFacts } from '../hygiene/authenticate.ts';
import type { DmarcSink } from '../hygiene/pipeline.ts';
import { DmarcAggregate, type DmarcRow, evaluationRow } from './dmarc-aggregate.ts';
import type { Disposition } from './dmarc-record.ts';

export interface RecorderOptions {
  /** Where the rows go at each flush (the store's add, or a post to the main thread). */
  readonly write: (rows: readonly DmarcRow[]) => Promise<void> | void;
  readonly flushMs: number;
  readonly maxPendingRows: number;
  readonly maxDkimPerRow: number;
  readonly log: Logger;
  /** The clock (tests). */
  readonly now?: () => number;
}

export class DmarcRecorder implements DmarcSink {
  readonly #o: RecorderOptions;
  readonly #agg: DmarcAggregate;
  #timer: NodeJS.Timeout | null = null;
  #flushing: Promise<void> = Promise.resolve();
  #closed = false;

  constructor(o: RecorderOptions) {
    this.#o = o;
    this.#agg = new DmarcAggregate(o.maxPendingRows);
  }

  record(facts: DmarcReportFacts, ip: string, disposition: Disposition, report: boolean): void {
    this.add(evaluationRow(facts, ip, disposition, report, (this.#o.now ?? Date.now)(), this.#o.maxDkimPerRow));
  }

  /** Rows counted elsewhere (an inbound thread's). */
  add(row: DmarcRow): void {
    // After close (the store is closing): a transaction that ends during the stop is not counted.
    if (this.#closed) return;
    this.#agg.add(row);
    this.#timer ??= setTimeout(() => {
      this.#timer = null;
      void this.flush();
    }, this.#o.flushMs);
    this.#timer.unref();
  }

  /** Hands the rows counted so far on; a failed write is logged (its counts are lost). */
  flush(): Promise<void> {
    this.#flushing = this.#flushing.then(async () => {
      const { rows, dropped } = this.#agg.take();
      if (dropped > 0) this.#o.log.warn({ dropped }, 'DMARC report rows over the bound between two flushes: dropped');
      // In pieces, the event loop free between them: SQLite writes block it (about 18 ms for
      // 1,000 new rows measured; a flood of distinct sources makes many).
      const chunk = LIMITS.dmarcReports.writeChunkRows;
      for (let i = 0; i < rows.length; i += chunk) {
        if (i > 0) await new Promise((r) => setImmediate(r));
        try {
          await this.#o.write(rows.slice(i, i + chunk));
        } catch (e) {
          this.#o.log.warn({ err: String(e), rows: rows.length }, 'DMARC report rows could not be stored');
          return;
        }
      }
    });
    return this.#flushing;
  }

  /** Stops the timer and flushes what is left. */
  async close(): Promise<void> {
    this.#closed = true;
    if (this.#timer) clearTimeout(this.#timer);
    this.#timer = null;
    await this.flush();
  }
}
