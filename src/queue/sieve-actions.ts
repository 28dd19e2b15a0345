// The messages a Sieve run sends once the copies are durable (queue/sieve-filter.ts): the
// rejection notice of `reject`/`ereject` (RFC 5429 §2.1: after the message was accepted, the
// sender is told with a DSN) and the vacation reply (RFC 5230, src/sieve/vacation.ts decides
// and writes it). Both leave with the null sender through Dispatcher.notice, like bounces.

import { Readable } from 'node:stream';
import { parseAddress } from '../core/address.ts';
import { type AccountId, newId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import type { SieveAction, SieveMessage } from '../sieve/run-types.ts';
import { addressesIn, buildVacationReply, vacationDecision } from '../sieve/vacation.ts';
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
  const domain = parseAddress(addressesIn(from)[0] ?? '')?.domain;
  if (!d.sign || !domain) return message;
  const fields = await d.sign(domain, Readable.from([message]));
  return fields === '' ? message : Buffer.concat([Buffer.from(fields), message]);
}

export interface VacationDeps extends SieveSendDeps {
  readonly recent: (account: AccountId, handle: string, sender: string, seconds: number) => Promise<boolean>;
  readonly record: (account: AccountId, handle: string, sender: string, seconds: number) => Promise<void>;
  /** [sieve] vacation periods in seconds: a script's period is clamped to these (0 max: none). */
  readonly minSeconds: number;
  readonly maxSeconds: number;
  /** Whether `account` may send as `address` (its own address or an alias of it): a :from
   *  naming anyone else is not used (the reply would forge that sender from our servers). */
  readonly maySendAs: (account: AccountId, address: string) => Promise<boolean>;
}

/** RFC 5230: reply unless the rules say no (vacationDecision) or a reply to this sender under
 *  this handle went out within the period; the reply is DKIM-signed by its From: domain and
 *  sent with the null sender (RFC 5230 §5.1), then remembered. */
export async function sendVacation(
  d: VacationDeps,
  account: AccountId,
  action: Extract<SieveAction, { kind: 'vacation' }>,
  original: { readonly sender: string; readonly msg: SieveMessage; readonly ownAddresses: readonly string[] },
): Promise<void> {
  const decision = vacationDecision({
    headers: original.msg.headers,
    envelopeFrom: original.sender,
    ownAddresses: original.ownAddresses,
    addresses: action.addresses ?? [],
  });
  if (!decision.reply) {
    d.log.info({ account, from: original.sender, why: decision.why }, 'sieve: no vacation reply');
    return;
  }
  let seconds = Math.max(action.seconds, d.minSeconds);
  if (d.maxSeconds > 0) seconds = Math.min(seconds, d.maxSeconds);
  if (await d.recent(account, action.handle, decision.to, seconds)) {
    d.log.info({ account, from: original.sender, why: 'already-replied' }, 'sieve: no vacation reply');
    return;
  }
  const from =
    action.from !== null && (await d.maySendAs(account, addressesIn(action.from)[0] ?? '')) ? action.from : null;
  if (action.from !== null && from === null) {
    d.log.warn({ account, from: action.from }, 'sieve: vacation :from is not an address of this user: not used');
  }
  const reply = buildVacationReply({
    headers: original.msg.headers,
    to: decision.to,
    recipient: account,
    from,
    subject: action.subject,
    reason: action.reason,
    mime: action.mime,
    hostname: d.hostname,
    now: new Date(),
  });
  const id = newId('m');
  // Remembered first: a failure to queue then costs one missed reply, never a reply storm.
  await d.record(account, action.handle, decision.to, seconds);
  await d.notice(decision.to, await signedCopy(d, from ?? account, reply), id);
  d.log.info({ msg_id: id, account, to: decision.to, seconds }, 'sieve: vacation reply sent');
}
