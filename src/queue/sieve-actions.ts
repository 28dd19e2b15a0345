// The messages a Sieve run sends once the copies are durable (queue/sieve-filter.ts): the
// rejection notice of `reject`/`ereject` (RFC 5429 §2.1: after the message was accepted, the
// sender is told with a DSN) and the vacation reply (RFC 5230, src/sieve/vacation.ts decides
// and writes it). Both leave with the null sender through Dispatcher.notice, like bounces.

import { Readable } from 'node:stream';
import { parseAddress } from '../core/address.ts';
import { type AccountId, newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import { buildDsn } from './dsn.ts';

export interface SieveSendDeps {
  readonly hostname: string;
  /** Dispatcher.notice: a null-sender message to `to`, local or queued. */
  readonly notice: (to: string, message: Buffer, logId: string) => Promise<void>;
  /** DKIM-Signature fields for a message from `domain` ('' without a key); null: no signing. */
  readonly sign: ((domain: string, message: Readable) => Promise<string>) | null;
  readonly log: Logger;
}

/** RFC 5429 §2.1: tell the sender that `account` refused the message, with the script's reason
 *  as the diagnostic of a failed recipient (5.7.1). */
export async function sendRejectNotice(
  d: SieveSendDeps,
  account: AccountId,
  reason: string,
  original: { readonly head: Buffer; readonly sender: string },
): Promise<void> {
  if (original.sender === '') return;
  const now = new Date();
  const id = newId('m');
  const dsn = buildDsn({
    reportingMta: d.hostname,
    from: `MAILER-DAEMON@${d.hostname}`,
    to: original.sender,
    messageId: `reject-${id}@${d.hostname}`,
    date: now,
    arrivalDate: now,
    queueId: id,
    recipients: [{ address: account, action: 'failed', status: '5.7.1', diagnostic: `Sieve reject: ${reason}` }],
    originalHeaders: original.head,
  });
  await d.notice(original.sender, dsn, id);
  d.log.info({ msg_id: id, account, to: original.sender }, 'sieve: rejection notice sent');
}

/** The DKIM signature fields for `message`, signed by the domain of its author `from`. */
export async function signedCopy(d: SieveSendDeps, from: string, message: Buffer): Promise<Buffer> {
  const domain = parseAddress(from)?.domain;
  if (!d.sign || !domain) return message;
  const fields = await d.sign(domain, Readable.from([message]));
  return fields === '' ? message : Buffer.concat([Buffer.from(fields), message]);
}
