// The reports other operators sent us (TLS-RPT, RFC 8460; DMARC aggregate, RFC 7489 §7.2), read
// from a mailbox of ours for `arcline reports` (cli/reports.ts) and the admin API
// (api/reports.ts): the mailbox's INBOX through the store's interface (store/mailboxes.ts),
// each recent message's report parts parsed within bounds by the pure parsers
// (tlsrpt-parse.ts, dmarc-parse.ts) in a worker thread (parse-worker.ts: inflating and parsing a
// large report takes seconds, which must not stall the server under an API request), one
// message at a time (memory: one message and the parsed reports). The default mailbox is postmaster@ of the first domain
// (the address `arcline dns-records` suggests for rua). See docs/delivery.md.

import { Worker } from 'node:worker_threads';
import { parseAddress } from '../core/address.ts';
import { ArclineError } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Directory, DirectoryAdmin } from '../directory/types.ts';
import { readRange } from '../mime/reader.ts';
import type { Mailboxes, MessageBody } from '../store/mailboxes.ts';
import type { ReceivedReport as DmarcReport } from './dmarc-parse.ts';
import type { ParseRequest, ParseResponse } from './parse-worker.ts';
import type { ReceivedReport as TlsReport } from './tlsrpt-parse.ts';

/** What the admin API reads (api/reports.ts): bound to the server's directory and store. */
export interface ReceivedReports {
  mailbox(address?: string): Promise<{ account: AccountId; address: string }>;
  tls(account: AccountId, days: number): Promise<{ reports: TlsReport[]; unreadable: number }>;
  dmarc(account: AccountId, days: number): Promise<{ reports: DmarcReport[]; unreadable: number }>;
}

export function receivedReports(
  directory: Pick<Directory, 'postmasterDomain' | 'resolveRecipient'> & Pick<DirectoryAdmin, 'getUser'>,
  accounts: Mailboxes,
): ReceivedReports {
  return {
    mailbox: (address) => reportMailbox(directory, address),
    tls: (account, days) => receivedTlsReports(accounts, account, days),
    dmarc: (account, days) => receivedDmarcReports(accounts, account, days),
  };
}

/** The account of `address` (a user or an address delivering to one), or of postmaster@ the
 *  first domain; NOT_FOUND when there is none. */
export async function reportMailbox(
  directory: Pick<Directory, 'postmasterDomain' | 'resolveRecipient'> & Pick<DirectoryAdmin, 'getUser'>,
  address?: string,
): Promise<{ account: AccountId; address: string }> {
  let name = address ?? '';
  if (!name) {
    const domain = await directory.postmasterDomain([]);
    if (!domain) throw new ArclineError('NOT_FOUND', 'no domain, so no postmaster mailbox: name the mailbox');
    name = `postmaster@${domain}`;
  }
  const user = await directory.getUser(name);
  if (user) return { account: user.accountId, address: name };
  const parsed = parseAddress(name);
  const res = parsed ? await directory.resolveRecipient(parsed) : null;
  const account = res?.kind === 'deliver' ? res.accounts[0] : undefined;
  if (!account) throw new ArclineError('NOT_FOUND', `${name} is not a local mailbox`);
  return { account, address: name };
}

/** Each message of the INBOX received in the last `days` (at most `max`, the newest, none
 *  over `maxBytes`), handed to `each` with its bytes read through `read`. */
async function eachRecent(
  accounts: Mailboxes,
  account: AccountId,
  sinceMs: number,
  limits: { readonly max: number; readonly maxBytes: number },
  each: (body: MessageBody) => Promise<void>,
): Promise<void> {
  const box = await accounts.open(account, 'INBOX');
  try {
    const status = await box.sync();
    const recent = status.messages
      .filter((m) => m.internalDate.getTime() >= sinceMs && m.size <= limits.maxBytes)
      .slice(-limits.max);
    for (const m of recent) {
      const body = await box.openMessage(m.uid);
      if (!body) continue;
      try {
        await each(body);
      } finally {
        await body.close();
      }
    }
  } finally {
    accounts.release(account, box);
  }
}

/** The TLS reports received in the last `days`; `unreadable`: report parts that did not parse. */
export async function receivedTlsReports(
  accounts: Mailboxes,
  account: AccountId,
  days: number,
  now = Date.now(),
): Promise<{ reports: TlsReport[]; unreadable: number }> {
  const limits = { max: LIMITS.tlsReports.maxMessagesScanned, maxBytes: LIMITS.tlsReports.maxReportBytes * 2 };
  return parsed<TlsReport>('tls', accounts, account, now - days * 86_400_000, limits);
}

/** The DMARC aggregate reports received in the last `days`; `unreadable`: attachments that did
 *  not parse as reports. */
export async function receivedDmarcReports(
  accounts: Mailboxes,
  account: AccountId,
  days: number,
  now = Date.now(),
): Promise<{ reports: DmarcReport[]; unreadable: number }> {
  const limits = { max: LIMITS.dmarcReports.maxMessages, maxBytes: LIMITS.dmarcReports.maxAttachmentBytes * 2 };
  return parsed<DmarcReport>('dmarc', accounts, account, now - days * 86_400_000, limits);
}

/** The reports of `kind` in the recent messages, each message parsed by one worker thread
 *  started for this call (and ended with it). */
async function parsed<R>(
  kind: ParseRequest['kind'],
  accounts: Mailboxes,
  account: AccountId,
  sinceMs: number,
  limits: { readonly max: number; readonly maxBytes: number },
): Promise<{ reports: R[]; unreadable: number }> {
  const reports: R[] = [];
  let unreadable = 0;
  const ext = import.meta.url.endsWith('.ts') ? 'ts' : 'js';
  const worker = new Worker(new URL(`./parse-worker.${ext}`, import.meta.url));
  let next = 1;
  const waiting = new Map<number, (r: ParseResponse) => void>();
  let failed: ((e: Error) => void) | null = null;
  const died = new Promise<never>((_, reject) => {
    failed = reject;
  });
  died.catch(() => {});
  worker.on('message', (r: ParseResponse) => {
    waiting.get(r.id)?.(r);
    waiting.delete(r.id);
  });
  worker.on('error', (e) => failed?.(e));
  worker.on('exit', (code) => failed?.(new Error(`report parser exited (${code})`)));
  try {
    await eachRecent(accounts, account, sinceMs, limits, async (body) => {
      const bytes = await readRange(body, 0, body.size);
      const id = next++;
      const answer = new Promise<ParseResponse>((resolve) => waiting.set(id, resolve));
      const req: ParseRequest = { id, kind, bytes };
      worker.postMessage(req);
      const r = await Promise.race([answer, died]);
      reports.push(...(r.reports as R[]));
      unreadable += r.unreadable;
    });
  } finally {
    failed = null;
    await worker.terminate();
  }
  return { reports, unreadable };
}
