// DMARC evaluations counted in memory (RFC 7489 §7.2: an aggregate report has one record per
// distinct source IP, disposition, alignment results, identifiers and authentication results,
// with their count), per policy domain and UTC day. Nothing is written per message: the
// recorder (dmarc-recorder.ts) takes the rows every few seconds and adds them to the store in
// one transaction; an inbound SMTP thread posts its rows to the main thread the same way.

import type { DmarcReportFacts } from '../hygiene/authenticate.ts';
import { utcDay } from './days.ts';
import type { Disposition } from './dmarc-record.ts';

export interface DmarcRow {
  readonly policyDomain: string;
  /** The UTC day, YYYY-MM-DD. */
  readonly day: string;
  /** The record as published at the last evaluation (the report's policy_published). */
  readonly record: string;
  readonly sourceIp: string;
  /** What we did with the message (§7.2.1 policy_evaluated disposition). */
  readonly disposition: Disposition;
  readonly dkim: 'pass' | 'fail';
  readonly spf: 'pass' | 'fail';
  /** Appendix C PolicyOverrideType: a failing message we treated otherwise than its policy
   *  says ([hygiene] actions, a user's allowlist, recipients that differ). */
  readonly override: 'local_policy' | null;
  readonly headerFrom: string;
  readonly envelopeFrom: string;
  readonly dkimResults: DmarcReportFacts['dkim'];
  readonly spfResult: DmarcReportFacts['spf'];
  /** The messages were aggregate reports themselves: a day with only such rows is not
   *  reported (no endless exchange of reports about reports between two receivers). */
  readonly aboutReports: boolean;
  readonly count: number;
}

/** The fields that make two evaluations one row (all but count and record). */
export function rowKey(r: Omit<DmarcRow, 'count' | 'record' | 'policyDomain' | 'day'>): string {
  return JSON.stringify([
    r.sourceIp,
    r.disposition,
    r.dkim,
    r.spf,
    r.override,
    r.headerFrom,
    r.envelopeFrom,
    r.dkimResults.map((d) => [d.domain, d.selector, d.result]),
    [r.spfResult.domain, r.spfResult.scope, r.spfResult.result],
    r.aboutReports,
  ]);
}

/** One evaluation as a row of count 1. */
export function evaluationRow(
  facts: DmarcReportFacts,
  ip: string,
  disposition: Disposition,
  aboutReports: boolean,
  at: number,
  maxDkim: number,
): DmarcRow {
  return {
    policyDomain: facts.policyDomain,
    day: utcDay(at),
    record: facts.record,
    sourceIp: ip,
    disposition,
    dkim: facts.dkimAligned ? 'pass' : 'fail',
    spf: facts.spfAligned ? 'pass' : 'fail',
    override: !facts.dkimAligned && !facts.spfAligned && disposition !== facts.policy ? 'local_policy' : null,
    headerFrom: facts.headerFrom,
    envelopeFrom: facts.envelopeFrom,
    dkimResults: facts.dkim.slice(0, maxDkim),
    spfResult: facts.spf,
    aboutReports,
    count: 1,
  };
}

/** Rows added up by (policy domain, day, row key); bounded in distinct rows. */
export class DmarcAggregate {
  readonly #rows = new Map<string, DmarcRow>();
  readonly #max: number;
  #dropped = 0;

  constructor(maxRows: number) {
    this.#max = maxRows;
  }

  get size(): number {
    return this.#rows.size;
  }

  add(row: DmarcRow): void {
    const key = `${row.policyDomain} ${row.day} ${rowKey(row)}`;
    const had = this.#rows.get(key);
    if (had) this.#rows.set(key, { ...had, record: row.record, count: had.count + row.count });
    else if (this.#rows.size < this.#max) this.#rows.set(key, row);
    else this.#dropped += row.count;
  }

  /** The rows so far, and how many evaluations were dropped for the bound; both emptied. */
  take(): { rows: DmarcRow[]; dropped: number } {
    const rows = [...this.#rows.values()];
    const dropped = this.#dropped;
    this.#rows.clear();
    this.#dropped = 0;
    return { rows, dropped };
  }
}
