// Sending the DMARC aggregate reports (RFC 7489 §7.2), once a day per policy domain: the
// periodic task `dmarc-reports` (server.ts; one node of a cluster) takes each complete UTC day
// after the store's "reported up to" mark, builds each policy domain's report
// (dmarc-xml.ts), gzips it and mails it to every mailto: rua of the domain's record that
// passes the external destination check (§7.1) and takes its size (§6.2 "!10m"). Messages go
// with the null sender through the dispatcher's notice path (queue/dispatch.ts), DKIM-signed
// with the key of the From: address's domain when there is one. A domain's rows are forgotten
// once its report is queued; the day is marked when every domain is done, so a day is never
// sent twice (a round that fails part way resumes with the domains left).

import { randomBytes } from 'node:crypto';
import type { Resolver } from 'node:dns/promises';
import { Readable } from 'node:stream';
import { promisify } from 'node:util';
import { gzip } from 'node:zlib';
import { errorMessage } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { addDays, dayRange, utcDay } from './days.ts';
import type { DmarcRow } from './dmarc-aggregate.ts';
import { policyPublished, type ReportUri, reportUris } from './dmarc-record.ts';
import type { DmarcReportStore } from './dmarc-store.ts';
import { aggregateXml, reportFileName } from './dmarc-xml.ts';

export interface DmarcSenderDeps {
  readonly store: DmarcReportStore;
  /** TXT look-ups of the external destination check (§7.1). */
  readonly resolver: Pick<Resolver, 'resolveTxt'>;
  /** dispatcher.notice: the null sender, local or queued. */
  readonly notice: (to: string, message: Buffer, logId: string) => Promise<void>;
  /** DKIM-Signature fields for a message from `domain` ('' without a key). */
  readonly sign: ((domain: string, message: Readable) => Promise<string>) | null;
  readonly hostname: string;
  readonly orgName: string;
  /** report_metadata email and From:. */
  readonly email: string;
  readonly log: Logger;
  readonly now: () => number;
}

export interface SentReport {
  readonly domain: string;
  readonly day: string;
  readonly to: readonly string[];
  readonly skipped: readonly { readonly to: string; readonly why: string }[];
}

/** One round: every complete day not yet reported. Returns what was sent (tests, logs). */
export async function sendDmarcReports(d: DmarcSenderDeps): Promise<SentReport[]> {
  // A day is complete a little after its end: the counts of its last seconds are still on
  // their way from the recorders (every flush) when it ends.
  const today = utcDay(d.now() - LIMITS.dmarcReports.dayGraceMs);
  const lastComplete = addDays(today, -1);
  const keepFrom = addDays(today, -LIMITS.dmarcReports.keepDays);
  const mark = await d.store.reportedUpTo();
  if (mark !== null && mark >= lastComplete) return [];
  const sent: SentReport[] = [];
  for (let day = keepFrom; day <= lastComplete; day = addDays(day, 1)) {
    if (mark !== null && day <= mark) continue;
    for (const domain of await d.store.domains(day)) {
      const r = await sendOne(d, domain, day);
      if (r) sent.push(r);
      await d.store.remove(domain, day);
    }
  }
  await d.store.markReported(lastComplete, keepFrom);
  return sent;
}

async function sendOne(d: DmarcSenderDeps, domain: string, day: string): Promise<SentReport | null> {
  const report = await d.store.report(domain, day);
  // Only aggregate reports were seen: no report about reports (dmarc-aggregate.ts aboutReports).
  if (!report || report.rows.every((r) => r.aboutReports)) return null;
  const { begin, end } = dayRange(day);
  const receiver = domainOf(d.email);
  const reportId = `${day}.${randomBytes(6).toString('hex')}`;
  const xml = aggregateXml(
    { orgName: d.orgName, email: d.email, reportId, begin, end },
    policyPublished(domain, report.record),
    report.rows as DmarcRow[],
  );
  // zlib's thread pool, not the event loop (a 10,000-row report is megabytes of XML).
  const gz = await promisify(gzip)(xml);
  const fileName = reportFileName(receiver, domain, begin, end);
  const to: string[] = [];
  const skipped: { to: string; why: string }[] = [];
  for (const uri of reportUris(report.record)) {
    const why = await refusal(d, domain, uri);
    if (why) {
      skipped.push({ to: uri.address, why });
      d.log.info({ domain, day, to: uri.address, why }, 'DMARC report not sent to this address');
      continue;
    }
    const message = await compose(d, { to: uri.address, domain, reportId, fileName, gz, day });
    if (uri.maxBytes !== null && message.length > uri.maxBytes) {
      skipped.push({ to: uri.address, why: `report of ${message.length} bytes over its limit of ${uri.maxBytes}` });
      d.log.warn({ domain, day, to: uri.address, bytes: message.length }, 'DMARC report over the size the rua allows');
      continue;
    }
    try {
      await d.notice(uri.address, message, `dmarc-${domain}-${day}`);
    } catch (e) {
      // At most once: the other addresses are not sent to again for this one's failure.
      skipped.push({ to: uri.address, why: `not queued: ${errorMessage(e)}` });
      d.log.warn({ domain, day, to: uri.address, err: errorMessage(e) }, 'DMARC report could not be queued');
      continue;
    }
    to.push(uri.address);
  }
  d.log.info({ domain, day, rows: report.rows.length, to, skipped: skipped.length }, 'DMARC aggregate report');
  return { domain, day, to, skipped };
}

/** §7.1: a rua outside the policy domain's organization must say it takes the domain's
 *  reports: a TXT record "v=DMARC1..." at <policy-domain>._report._dmarc.<rua-domain>. The
 *  same organization is taken strictly here: the rua domain is the policy domain, or one is
 *  a parent of the other (siblings ask too). Returns why not, or null. */
async function refusal(d: DmarcSenderDeps, domain: string, uri: ReportUri): Promise<string | null> {
  const target = domainOf(uri.address).toLowerCase();
  if (target === domain || target.endsWith(`.${domain}`) || domain.endsWith(`.${target}`)) return null;
  const name = `${domain}._report._dmarc.${target}`;
  let records: string[][];
  try {
    records = await d.resolver.resolveTxt(name);
  } catch (e) {
    return `no authorization record at ${name} (${errorMessage(e)})`;
  }
  const ok = records.some((parts) => /^v\s*=\s*DMARC1(\s*;|\s*$)/i.test(parts.join('').slice(0, 256)));
  return ok ? null : `no v=DMARC1 authorization record at ${name}`;
}

function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1);
}

/** §7.2.1.1: the message of one report. */
async function compose(
  d: DmarcSenderDeps,
  m: { to: string; domain: string; reportId: string; fileName: string; gz: Buffer; day: string },
): Promise<Buffer> {
  const boundary = `=_dmarc_${randomBytes(12).toString('hex')}`;
  const clean = (s: string) => s.replace(/[^\x20-\x7e]/g, '');
  const date = new Date(d.now()).toUTCString().replace('GMT', '+0000');
  const name = clean(d.orgName).replace(/["\\]/g, '');
  const head = [
    `From: ${name ? `"${name}" ` : ''}<${clean(d.email)}>`,
    `To: <${clean(m.to)}>`,
    `Subject: Report Domain: ${clean(m.domain)} Submitter: ${clean(domainOf(d.email))} Report-ID: <${m.reportId}>`,
    `Date: ${date}`,
    `Message-ID: <${randomBytes(12).toString('hex')}@${d.hostname}>`,
    'Auto-Submitted: auto-generated',
    'MIME-Version: 1.0',
    `Content-Type: multipart/mixed; boundary="${boundary}"`,
  ];
  const body = [
    `--${boundary}`,
    'Content-Type: text/plain; charset=us-ascii',
    '',
    `This is a DMARC aggregate report (RFC 7489) for ${clean(m.domain)}, ${m.day} (UTC),`,
    `from ${clean(d.orgName)}.`,
    '',
    `--${boundary}`,
    `Content-Type: application/gzip; name="${m.fileName}"`,
    `Content-Disposition: attachment; filename="${m.fileName}"`,
    'Content-Transfer-Encoding: base64',
    '',
    ...(m.gz.toString('base64').match(/.{1,76}/g) ?? []),
    '',
    `--${boundary}--`,
    '',
  ];
  const unsigned = Buffer.from(`${[...head, '', ...body].join('\r\n')}`);
  if (!d.sign) return unsigned;
  const signature = await d.sign(domainOf(d.email).toLowerCase(), Readable.from([unsigned]));
  return signature ? Buffer.concat([Buffer.from(signature), unsigned]) : unsigned;
}
