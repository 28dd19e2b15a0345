// TLS reporting (RFC 8460) as the server runs it ([tls_reports], docs/delivery.md "TLS
// reporting (RFC 8460)"): the store ({state}/tls-reports.db or the cluster's PostgreSQL), the
// recorder the queue runner tells of every session, and the reporter the periodic task
// `tls-reports` runs (one node at a time in a cluster). Off with [tls_reports] enabled = false
// and when everything goes through [delivery] relay.

import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { Config } from '../config/schema.ts';
import type { Logger } from '../core/log.ts';
import type { Postgres } from '../db/postgres.ts';
import { TlsReportRecorder } from './tlsrpt-record.ts';
import { TlsReporter, type TlsReporterOptions } from './tlsrpt-send.ts';
import { openTlsReportStore, type TlsReportStore } from './tlsrpt-store.ts';

export interface TlsReporting {
  readonly store: TlsReportStore;
  readonly recorder: TlsReportRecorder;
  readonly reporter: TlsReporter;
  /** One round of the periodic task: this node's counters flushed, then the days to report. */
  round(): Promise<void>;
  close(): Promise<void>;
}

export async function openTlsReporting(
  config: Config,
  db: Postgres | null,
  deps: Pick<TlsReporterOptions, 'resolver' | 'sendMail' | 'signer'>,
  log: Logger,
): Promise<TlsReporting | null> {
  const o = config.tls_reports;
  if (!o.enabled || config.delivery.relay) return null;
  const rlog = log.child({ component: 'tls-reports' });
  const store = await openTlsReportStore({ file: join(config.storage.state, 'tls-reports.db'), db });
  const recorder = new TlsReportRecorder({ store, log: rlog });
  const reporter = new TlsReporter({
    ...deps,
    store,
    hostname: config.hostname,
    organization: o.organization || config.hostname,
    contact: o.contact || `postmaster@${config.hostname}`,
    extraCa: o.ca_file ? [await readFile(o.ca_file, 'utf8')] : [],
    log: rlog,
  });
  return {
    store,
    recorder,
    reporter,
    async round() {
      await recorder.flush();
      const r = await reporter.run();
      if (r.days.length > 0) rlog.info({ ...r }, 'TLS reports done');
    },
    async close() {
      await recorder.close();
      await store.close();
    },
  };
}
