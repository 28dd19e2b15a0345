// `arcline reports tls|dmarc [--days N] [--mailbox ADDR]` (docs/delivery.md "TLS reporting
// (RFC 8460)" and "Reading the reports you receive"): the reports other senders delivered to a
// mailbox of ours (reports/received.ts reads them through the store's interfaces), summed:
// TLS reports per reporting organisation and policy domain (sessions that succeeded, failures
// by result type); DMARC aggregate reports per reporting organisation, policy domain and source
// IP (reports/dmarc-summary.ts). Default mailbox: postmaster@ of the first domain.

import type { Context } from '../main.ts';
import { summarize } from '../reports/dmarc-summary.ts';
import { receivedDmarcReports, receivedTlsReports, reportMailbox } from '../reports/received.ts';
import { summarise } from '../reports/tlsrpt-parse.ts';
import { table } from './output.ts';

export async function reportsCommand(
  ctx: Context,
  sub: string | undefined,
  args: readonly string[],
  flags: { days?: string | undefined; mailbox?: string | undefined },
  say: (line: string) => void,
  usage: (message: string) => Error,
): Promise<void> {
  if (sub !== 'tls' && sub !== 'dmarc') throw usage('reports: tls or dmarc expected');
  if (args.length > 0) throw usage(`reports ${sub}: unexpected argument ${args[0]}`);
  const days = flags.days === undefined ? 7 : Number(flags.days);
  if (!Number.isInteger(days) || days < 1 || days > 3660)
    throw usage(`reports ${sub}: --days takes a whole number of days`);
  const { account, address } = await reportMailbox(ctx.directory, flags.mailbox);
  if (sub === 'tls') await tls(ctx, account, address, days, say);
  else await dmarc(ctx, account, days, say);
}

async function tls(
  ctx: Context,
  account: Parameters<typeof receivedTlsReports>[1],
  address: string,
  days: number,
  say: (line: string) => void,
): Promise<void> {
  const { reports, unreadable } = await receivedTlsReports(ctx.store.accounts, account, days);
  say(`TLS reports (RFC 8460) in ${address}, last ${days} day(s): ${reports.length}`);
  if (unreadable > 0) say(`unreadable report parts: ${unreadable}`);
  const rows = summarise(reports).map((r) => [
    r.organization,
    r.domain,
    String(r.reports),
    String(r.successes),
    String(r.failures),
    Object.entries(r.byResult)
      .sort((a, b) => b[1] - a[1])
      .map(([type, n]) => `${type}=${n}`)
      .join(' ') || '-',
  ]);
  if (rows.length > 0)
    table(['ORGANIZATION', 'POLICY DOMAIN', 'REPORTS', 'SUCCESSES', 'FAILURES', 'FAILURES BY TYPE'], rows, say);
}

async function dmarc(
  ctx: Context,
  account: Parameters<typeof receivedDmarcReports>[1],
  days: number,
  say: (line: string) => void,
): Promise<void> {
  const { reports, unreadable } = await receivedDmarcReports(ctx.store.accounts, account, days);
  const since = Math.floor(Date.now() / 1000) - days * 86_400;
  const lines = summarize(reports, since);
  say(`${reports.length} DMARC aggregate reports, ${lines.length} sources in the last ${days} days`);
  if (unreadable > 0) say(`${unreadable} attachments could not be read as reports`);
  if (lines.length === 0) return;
  table(
    ['ORG', 'DOMAIN', 'SOURCE IP', 'MESSAGES', 'PASS', 'FAIL', 'NONE', 'QUARANTINE', 'REJECT'],
    lines.map((l) => [
      l.org,
      l.domain,
      l.sourceIp,
      String(l.messages),
      String(l.pass),
      String(l.fail),
      String(l.none),
      String(l.quarantine),
      String(l.reject),
    ]),
    say,
  );
}
