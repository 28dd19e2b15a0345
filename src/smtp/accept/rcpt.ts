// RCPT TO stage: syntax, the postmaster special case, max_recipients, and the directory's
// answer turned into accept (local accounts, remote forwards) or a refusal. Pure: lookups
// (postmasterDomain, resolveRecipient, the quota) are the caller's (service.ts).

import { type Address, formatAddress, hasNonAscii, parseAddress } from '../../core/address.ts';
import type { AccountId } from '../../core/ids.ts';
import type { RecipientResolution } from '../../directory/types.ts';
import type { Transaction } from '../context.ts';
import { NO_RCPT_DSN, type RcptDsn } from '../dsn-params.ts';
import { REPLIES } from '../replies.ts';
import { CONTINUE, type Decision, refuse } from './decision.ts';

/** RFC 5321 §4.1.1.3: a bare "<Postmaster>" (any case) is postmaster of our own domain; the
 *  domains to try, in order, for our host name. */
export function postmasterCandidates(raw: string, hostname: string): readonly string[] | null {
  if (raw.length !== 10 || raw.toLowerCase() !== 'postmaster') return null;
  return [hostname.slice(hostname.indexOf('.') + 1), hostname];
}

export type RecipientSyntax = Decision<{ readonly address: Address; readonly key: string }>;

/** `postmaster`: the address a bare "<Postmaster>" stands for (postmasterCandidates), or null. */
export function recipientSyntax(raw: string, smtpUtf8: boolean, postmaster: string | null = null): RecipientSyntax {
  if (!smtpUtf8 && hasNonAscii(raw)) return refuse(REPLIES.utf8NeedsSmtputf8()); // RFC 6531 §3.5
  const address = parseAddress(postmaster ?? raw);
  if (address === null) return refuse(REPLIES.badRecipientSyntax());
  return { kind: 'continue', address, key: formatAddress(address) };
}

/** RFC 5321 §4.5.3.1.8: every RCPT counts, a repeated address too (else one message could
 *  carry any number of RCPT commands); past the limit 452 4.5.3 (§4.5.3.1.10: temporary). */
export function recipientLimit(accepted: number, max: number): Decision {
  return accepted >= max ? refuse(REPLIES.tooManyRecipients()) : CONTINUE;
}

export type Resolved = Decision<{
  /** Local accounts to check the quota of and deliver to (an alias that only forwards has
   *  none); null for a remote recipient of submission, which is not a local one. */
  readonly accounts: readonly AccountId[] | null;
  /** Remote addresses this recipient puts in the queue. */
  readonly remote: readonly Address[];
  /** The domain of ours that forwards to `remote` (an alias, a catch-all, an SRS address):
   *  their copy leaves with a rewritten sender (docs/srs.md); null when addressed directly. */
  readonly via: string | null;
}>;

/** The directory's answer. Inbound (RFC 5321 §3.6.2): no open relay, and an unknown user is
 *  refused now (never accept first and bounce later: no backscatter). Submission: an
 *  authenticated user may send anywhere, the queue delivers it. */
export function resolution(res: RecipientResolution, address: Address, key: string, submission: boolean): Resolved {
  if (res.kind === 'unknown-domain') {
    if (submission) return { kind: 'continue', accounts: null, remote: [address], via: null };
    return refuse(REPLIES.relayDenied(), 'info', 'rcpt refused: not a local domain', { rcpt: key });
  }
  if (res.kind === 'unknown-user') {
    return refuse(REPLIES.userUnknown(), 'info', 'rcpt refused: unknown user', { rcpt: key });
  }
  return { kind: 'continue', accounts: res.accounts, remote: res.remote, via: address.domain };
}

/** RFC 9208 §5 / RFC 3463 5.2.2: a full mailbox is refused at RCPT, while the sender still has
 *  the message (an alias with a full member is refused too: nothing is dropped silently). */
export function recipientQuota(over: boolean, key: string): Decision {
  return over ? refuse(REPLIES.mailboxFull(), 'info', 'rcpt refused: mailbox full', { rcpt: key }) : CONTINUE;
}

/** Records an accepted recipient in the transaction. An address both addressed directly and
 *  reached through a forward gets one copy, with the sender as it is. */
export function addRecipient(
  txn: Transaction,
  key: string,
  r: Extract<Resolved, { kind: 'continue' }>,
  dsn: RcptDsn = NO_RCPT_DSN,
): void {
  // RFC 3461 §4.1, §4.2, §6.2.7.1: NOTIFY and ORCPT go with the address to the next hop, a
  // forward of ours (an alias) included: the sender asked about the recipient it named.
  const params = {
    ...(dsn.orcpt !== null ? { orcpt: dsn.orcpt } : {}),
    ...(dsn.notify !== null ? { notify: dsn.notify } : {}),
  };
  for (const a of r.remote) {
    const f = formatAddress(a);
    const had = txn.remote.get(f);
    if (had !== undefined && (had.forwardedVia === undefined || r.via !== null)) continue;
    txn.remote.set(f, r.via === null ? { address: f, ...params } : { address: f, forwardedVia: r.via, ...params });
  }
  if (r.accounts !== null) txn.recipients.set(key, r.accounts);
  if (dsn.notify !== null || dsn.orcpt !== null) txn.dsn.set(key, dsn);
  txn.accepted++;
}
