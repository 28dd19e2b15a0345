// TLS reporting (RFC 8460), the daily sending: for each policy domain with counters for the last
// complete UTC day that publishes a `_smtp._tls.<domain>` record (§3), the JSON report (§4),
// gzipped (§5.2), to each of its rua URIs: mailto: as a message (§5.3, DKIM-signed when we have
// a key, sent with a null sender like a bounce), https: as a POST (§5.4). A day is claimed in
// the store before it is reported (the shared mark, tlsrpt-store.ts), so a restart or another
// node never sends it twice; a report whose delivery fails is logged, not retried (§5.5 allows
// dropping it).

import { randomBytes, randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { errorMessage } from '../core/errors.ts';
import { firstAddress, httpsCall, trustedCas } from '../core/https-call.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { addDays, utcDay } from './days.ts';
import { buildReport, mailtoAddress, parseTlsRptRecord, reportMessage, type TlsCount } from './tlsrpt-format.ts';
import type { TlsReportStore } from './tlsrpt-store.ts';

export interface TlsReporterOptions {
  readonly store: TlsReportStore;
  readonly resolver: {
    resolveTxt(name: string): Promise<string[][]>;
    resolve4(name: string): Promise<string[]>;
    resolve6(name: string): Promise<string[]>;
  };
  /** Our host name: the submitter (§5.3), the From: domain and the DKIM signing domain. */
  readonly hostname: string;
  readonly organization: string;
  readonly contact: string;
  readonly now?: () => number;
  /** Delivers a message with a null sender (Dispatcher.notice); resolves once durable. */
  readonly sendMail: (to: string, message: Buffer, logId: string) => Promise<void>;
  /** DKIM-Signature fields for a message from `domain` ('' without a key): hygiene/sign.ts. */
  readonly signer: { sign(domain: string, message: Readable): Promise<string> } | null;
  /** CAs trusted besides the system's for https: endpoints ([tls_reports] ca_file). */
  readonly extraCa: readonly string[];
  readonly log: Logger;
}

export interface ReportRun {
  /** The days claimed and reported by this run. */
  readonly days: string[];
  readonly reports: number;
  readonly delivered: number;
  readonly failed: number;
}

export class TlsReporter {
  readonly #o: TlsReporterOptions;
  readonly #now: () => number;
  readonly #ca: string[];

  constructor(o: TlsReporterOptions) {
    this.#o = o;
    this.#now = o.now ?? Date.now;
    this.#ca = trustedCas(o.extraCa);
  }

  /** Reports the complete days not reported yet (at most LIMITS.tlsReports.maxCatchUpDays), as
   *  of `now` (the clock's time; tests give another). */
  async run(now: number = this.#now()): Promise<ReportRun> {
    const L = LIMITS.tlsReports;
    const { store } = this.#o;
    const last = addDays(utcDay(now - L.settleMs), -1);
    const through = await store.reportedThrough();
    const earliest = addDays(last, -(L.maxCatchUpDays - 1));
    let day = through ? addDays(through, 1) : last;
    if (day < earliest) day = earliest;
    const out = { days: [] as string[], reports: 0, delivered: 0, failed: 0 };
    for (; day <= last; day = addDays(day, 1)) {
      if (!(await store.claim(day))) continue;
      out.days.push(day);
      const r = await this.#reportDay(day, await store.countsFor(day));
      out.reports += r.reports;
      out.delivered += r.delivered;
      out.failed += r.failed;
    }
    await store.prune(addDays(last, -L.keepDays));
    return out;
  }

  async #reportDay(day: string, counts: readonly TlsCount[]) {
    const out = { reports: 0, delivered: 0, failed: 0 };
    if (counts.length >= LIMITS.tlsReports.maxRowsPerDay)
      this.#o.log.warn({ day, rows: counts.length }, 'TLS reporting: too many counters for a day; some left out');
    const domains = [...new Set(counts.map((c) => c.domain))];
    for (const domain of domains) {
      const rua = await this.#ruaOf(domain);
      if (!rua) continue;
      const { hostname } = this.#o;
      const reportId = `${day.replaceAll('-', '')}.${randomUUID()}@${hostname}`;
      const json = buildReport(
        { organization: this.#o.organization, contact: this.#o.contact, reportId, day },
        domain,
        counts,
      );
      const gzipped = await promisify(gzip)(Buffer.from(JSON.stringify(json)));
      out.reports++;
      for (const uri of rua.slice(0, LIMITS.tlsReports.maxRua)) {
        const fields = { domain, day, report_id: reportId, rua: uri };
        try {
          if (/^mailto:/i.test(uri)) await this.#mail(uri, { domain, day, reportId, gzipped });
          else await this.#post(uri, gzipped);
          out.delivered++;
          this.#o.log.info(fields, 'TLS report sent');
        } catch (e) {
          out.failed++;
          this.#o.log.warn({ ...fields, err: errorMessage(e) }, 'TLS report not delivered');
        }
      }
    }
    return out;
  }

  /** §3: the rua URIs of the domain's `_smtp._tls` record, or null (none, unusable, or DNS failed). */
  async #ruaOf(domain: string): Promise<string[] | null> {
    try {
      const records = await this.#o.resolver.resolveTxt(`_smtp._tls.${domain}`);
      return parseTlsRptRecord(records, LIMITS.tlsReports.maxRecordBytes);
    } catch {
      return null;
    }
  }

  /** §5.3: the report as a message to the mailto: address, with a null sender. */
  async #mail(uri: string, r: { domain: string; day: string; reportId: string; gzipped: Buffer }): Promise<void> {
    const to = mailtoAddress(uri);
    if (!to) throw new Error('not a usable mailto: URI');
    const { hostname } = this.#o;
    const unsigned = reportMessage({
      from: `tls-reports@${hostname}`,
      to,
      submitter: hostname,
      domain: r.domain,
      reportId: r.reportId,
      day: r.day,
      gzipped: r.gzipped,
      date: new Date(this.#now()),
      messageId: `${randomUUID()}@${hostname}`,
      boundary: `tlsrpt-${randomBytes(12).toString('hex')}`,
    });
    // §5.3: the report should be DKIM-signed.
    const signature = this.#o.signer ? await this.#o.signer.sign(hostname, Readable.from([unsigned])) : '';
    const message = signature ? Buffer.concat([Buffer.from(signature), unsigned]) : unsigned;
    await this.#o.sendMail(to, message, `tlsrpt-${r.domain}-${r.day}`);
  }

  /** §5.4: POST with Content-Type application/tlsrpt+gzip over verified TLS; 2xx is success.
   *  The host name is resolved through our resolver; bounded time and answer. */
  async #post(uri: string, body: Buffer): Promise<void> {
    const url = new URL(uri);
    if (url.protocol !== 'https:') throw new Error('not an https: URI');
    const host = url.hostname.replace(/^\[|\]$/g, '');
    const named = isIP(host) === 0;
    const { status } = await httpsCall({
      address: named ? await firstAddress(this.#o.resolver, host) : host,
      port: url.port ? Number(url.port) : 443,
      path: `${url.pathname}${url.search}`,
      method: 'POST',
      servername: named ? host : null,
      headers: { host: url.host, 'content-type': 'application/tlsrpt+gzip', 'content-length': String(body.length) },
      body,
      ca: this.#ca,
      timeoutMs: LIMITS.tlsReports.httpsTimeoutMs,
      maxBytes: LIMITS.tlsReports.maxHttpsResponseBytes,
      timedOut: `POST to ${host} timed out`,
      tooLarge: 'answer too large',
    });
    if (status < 200 || status >= 300) throw new Error(`HTTP ${status} from ${host}`);
  }
}
