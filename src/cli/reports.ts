// `arcline reports tls [--days N] [--mailbox ADDR]` (docs/delivery.md "TLS reporting (RFC
// 8460)"): the TLS reports (RFC 8460) other senders delivered to a mailbox of ours, summed per
// reporting organisation and policy domain: sessions that succeeded, and failures by result type.
// The mailbox is read through the store's interfaces (store/mailboxes.ts), the reports by the
// pure reports/tlsrpt-parse.ts. Default mailbox: postmaster@ of the first domain (the address
// `arcline dns-records` publishes in `_smtp._tls`).

import { parseAddress } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { Context } from '../main.ts';
import { readRange } from '../mime/reader.ts';
import { type ReceivedReport, readReport, reportParts, summarise } from '../reports/tlsrpt-parse.ts';
import { table } from './output.ts';

export async function reportsCommand(
  ctx: Context,
  sub: string | undefined,
  args: readonly string[],
  flags: { days?: string; mailbox?: string },
  say: (line: string) => void,
  usage: (message: string) => Error,
): Promise<void> {
  if (sub !== 'tls') throw usage('reports: tls expected');
  if (args.length > 0) throw usage(`reports tls: unexpected argument ${args[0]}`);
  const days = flags.days === undefined ? 7 : Number(flags.days);
  if (!Number.isInteger(days) || days < 1 || days > 3660)
    throw usage('reports tls: --days takes a whole number of days');
  let mailbox = flags.mailbox ?? '';
  if (!mailbox) {
    const domain = await ctx.directory.postmasterDomain([]);
    if (!domain) throw new ArclineError('NOT_FOUND', 'no domain, so no postmaster mailbox: give --mailbox');
    mailbox = `postmaster@${domain}`;
  }
  const addr = parseAddress(mailbox);
  const res = addr ? await ctx.directory.resolveRecipient(addr) : null;
  const account = res?.kind === 'deliver' ? res.accounts[0] : undefined;
  if (!account) throw new ArclineError('NOT_FOUND', `${mailbox} is not a local mailbox`);
  const since = Date.now() - days * 86_400_000;
  const reports: ReceivedReport[] = [];
  let unreadable = 0;
  const box = await ctx.store.accounts.open(account, 'INBOX');
  try {
    const status = await box.sync();
    const recent = status.messages
      .filter((m) => m.internalDate.getTime() >= since && m.size <= LIMITS.tlsReports.maxReportBytes * 2)
      .slice(-LIMITS.tlsReports.maxMessagesScanned);
    for (const m of recent) {
      const body = await box.openMessage(m.uid);
      if (!body) continue;
      let bytes: Buffer;
      try {
        bytes = await readRange(body, 0, body.size);
      } finally {
        await body.close();
      }
      for (const part of await reportParts(bytes)) {
        const read = readReport(part);
        if (read.ok) reports.push(read.report);
        else unreadable++;
      }
    }
  } finally {
    ctx.store.accounts.release(account, box);
  }
  say(`TLS reports (RFC 8460) in ${mailbox}, last ${days} day(s): ${reports.length}`);
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
