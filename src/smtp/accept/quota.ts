// Quota stage (RFC 9208 §5; RFC 3463 5.2.2 mailbox full, 552): at RCPT with nothing added (a
// mailbox already at its limit), at the end of DATA with the message's size (every local
// account of the transaction). The rule is pure; the lookups use only directory.quota and
// store.usage (the inbound worker threads proxy no other member of the store).

import type { AccountId } from '../../core/ids.ts';
import type { SmtpDeps, Transaction } from '../context.ts';
import { REPLIES } from '../replies.ts';
import { CONTINUE, type Decision, refuse } from './decision.ts';

/** True when `extra` more bytes exceed `limit` (or, extra 0, the account is at its limit). */
export function exceeds(used: number, limit: number | null, extra: number): boolean {
  if (limit === null) return false;
  return extra === 0 ? used >= limit : used + extra > limit;
}

/** True when one of the accounts has a quota that `extra` more bytes would exceed. */
export async function overQuota(
  deps: Pick<SmtpDeps, 'directory' | 'store'>,
  accounts: Iterable<AccountId>,
  extra: number,
): Promise<boolean> {
  for (const a of accounts) {
    const limit = await deps.directory.quota(a);
    if (limit === null) continue;
    if (exceeds(await deps.store.usage(a), limit, extra)) return true;
  }
  return false;
}

/** The distinct local accounts of a transaction, in the order their recipients came. */
export function localAccounts(txn: Transaction): Set<AccountId> {
  const out = new Set<AccountId>();
  for (const list of txn.recipients.values()) for (const a of list) out.add(a);
  return out;
}

export function messageQuota(over: boolean, size: number): Decision {
  return over
    ? refuse(REPLIES.mailboxFull(), 'info', 'message refused: a mailbox would exceed its quota', { size })
    : CONTINUE;
}
