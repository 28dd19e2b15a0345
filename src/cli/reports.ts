// `arcline reports dmarc [--days N] [--mailbox ADDR]` (docs/delivery.md "Reading the reports
// you receive"): the DMARC aggregate reports in a mailbox's INBOX, read through the store
// interface (store/mailboxes.ts), parsed within bounds (reports/dmarc-parse.ts) and summed per
// reporting organization and source IP (reports/dmarc-summary.ts). Without --mailbox: the
// mailbox postmaster@ of the first domain delivers to.

import { parseAddress } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Context } from '../main.ts';
import { type ReceivedReport, reportsInMessage } from '../reports/dmarc-parse.ts';
import { summarize } from '../reports/dmarc-summary.ts';
import { table } from './output.ts';

export async function reportsCommand(
  ctx: Context,
  sub: string | undefined,
  args: readonly string[],
  flags: { days?: string | undefined; mailbox?: string | undefined },
  say: (line: string) => void,
  usage: (message: string) => Error,
): Promise<void> {
  if (sub !== 'dmarc') throw usage('reports: dmarc expected');
  if (args.length > 0) throw usage(`reports dmarc: unexpected argument ${args[0]}`);
  const days = flags.days === undefined ? 7 : Number(flags.days);
  if (!Number.isInteger(days) || days < 1 || days > 3660) throw usage('reports dmarc: --days takes a number of days');
  const account = await mailboxAccount(ctx, flags.mailbox);
  const mailbox = await ctx.store.accounts.open(account, 'INBOX');
  const reports: ReceivedReport[] = [];
  let problems = 0;
  try {
    const status = await mailbox.sync();
    for (const m of status.messages.slice(-LIMITS.dmarcReports.maxMessages)) {
      if (m.size > LIMITS.dmarcReports.maxAttachmentBytes * 2) continue;
      const body = await mailbox.openMessage(m.uid);
      if (!body) continue;
      try {
        const found = await reportsInMessage(body, body.size);
        reports.push(...found.reports);
        problems += found.errors.length;
      } finally {
        await body.close();
      }
    }
  } finally {
    ctx.store.accounts.release(account, mailbox);
  }
  const since = Math.floor(Date.now() / 1000) - days * 86_400;
  const lines = summarize(reports, since);
  say(`${reports.length} DMARC aggregate reports, ${lines.length} sources in the last ${days} days`);
  if (problems > 0) say(`${problems} attachments could not be read as reports`);
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

/** The account of --mailbox, or of postmaster@ the first domain. */
async function mailboxAccount(ctx: Context, mailbox: string | undefined): Promise<AccountId> {
  let address = mailbox;
  if (!address) {
    const domain = await ctx.directory.postmasterDomain([]);
    if (!domain) throw new ArclineError('NOT_FOUND', 'no domain: name the mailbox with --mailbox');
    address = `postmaster@${domain}`;
  }
  const user = await ctx.directory.getUser(address);
  if (user) return user.accountId;
  const parsed = parseAddress(address);
  const res = parsed ? await ctx.directory.resolveRecipient(parsed) : null;
  const account = res?.kind === 'deliver' ? res.accounts[0] : undefined;
  if (!account) throw new ArclineError('NOT_FOUND', `${address} is not a mailbox here`);
  return account;
}
