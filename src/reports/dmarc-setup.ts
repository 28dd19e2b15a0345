// DMARC aggregate reporting as the server runs it ([dmarc_reports], docs/delivery.md "DMARC
// aggregate reports (RFC 7489 §7)"): the store, the recorder that hygiene tells (and the inbound
// threads' rows join), and one round of sending, which server.ts runs as the periodic task
// `dmarc-reports` (a leader task on a cluster: one node sends).

import type { Resolver } from 'node:dns/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { Postgres } from '../db/postgres.ts';
import type { DkimKeys } from '../hygiene/dkim-keys.ts';
import { DkimSigner } from '../hygiene/sign.ts';
import type { DmarcRow } from './dmarc-aggregate.ts';
import { DmarcRecorder } from './dmarc-recorder.ts';
import { type SentReport, sendDmarcReports } from './dmarc-send.ts';
import { openDmarcReportStore } from './dmarc-store.ts';

export interface DmarcReporting {
  readonly recorder: DmarcRecorder;
  /** Rows an inbound thread counted (smtp/threads/host.ts). */
  addRows(rows: readonly DmarcRow[]): void;
  /** One round: the rows in memory stored, then every complete day not yet reported sent.
   *  `now` stands in for the clock (tests). */
  send(now?: number): Promise<SentReport[]>;
  close(): Promise<void>;
}

export async function openDmarcReporting(o: {
  readonly config: Config;
  readonly db: Postgres | null;
  readonly dkim: DkimKeys;
  readonly notice: (to: string, message: Buffer, logId: string) => Promise<void>;
  readonly resolver: Pick<Resolver, 'resolveTxt'>;
  readonly log: Logger;
}): Promise<DmarcReporting | null> {
  const c = o.config.dmarc_reports;
  if (!c.enabled) return null;
  const log = o.log.child({ component: 'dmarc-reports' });
  const store = await openDmarcReportStore({ file: join(o.config.storage.state, 'dmarc-reports.db'), db: o.db });
  const recorder = new DmarcRecorder({
    write: (rows) => store.add(rows),
    flushMs: LIMITS.dmarcReports.flushMs,
    maxPendingRows: LIMITS.dmarcReports.maxPendingRows,
    maxDkimPerRow: LIMITS.dmarcReports.maxDkimPerRow,
    log,
  });
  const signer = o.config.dkim.sign ? new DkimSigner(o.dkim, log) : null;
  const hostname = o.config.hostname;
  return {
    recorder,
    addRows: (rows) => {
      for (const r of rows) recorder.add(r);
    },
    async send(now) {
      await recorder.flush();
      return sendDmarcReports({
        store,
        resolver: o.resolver,
        notice: o.notice,
        sign: signer ? (domain, message) => signer.sign(domain, message) : null,
        hostname,
        orgName: c.org_name || hostname,
        email: c.email || `noreply-dmarc@${hostname}`,
        log,
        now: () => now ?? Date.now(),
      });
    },
    async close() {
      await recorder.close();
      await store.close();
    },
  };
}
