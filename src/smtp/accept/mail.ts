// MAIL FROM stage: the reverse-path's syntax, its need for SMTPUTF8, and on submission its
// ownership. Pure: the ownership lookup is the caller's (service.ts), which passes its answer.

import { type Address, hasNonAscii, parseAddress } from '../../core/address.ts';
import type { Principal } from '../../directory/types.ts';
import { REPLIES } from '../replies.ts';
import { type Decision, refuse } from './decision.ts';

/** The parsed reverse-path: null for the null sender `<>` (RFC 5321 §4.5.5). */
export type SenderDecision = Decision<{ readonly sender: Address | null }>;

const NULL_SENDER: SenderDecision = Object.freeze({ kind: 'continue' as const, sender: null });

export function senderSyntax(address: string, smtpUtf8: boolean): SenderDecision {
  if (address === '') return NULL_SENDER;
  // RFC 6531 §3.5: a UTF-8 address needs the SMTPUTF8 parameter on MAIL.
  if (!smtpUtf8 && hasNonAscii(address)) return refuse(REPLIES.utf8NeedsSmtputf8());
  const sender = parseAddress(address);
  if (sender === null) return refuse(REPLIES.badSenderSyntax()); // RFC 5321 §4.1.2 syntax
  return { kind: 'continue', sender };
}

/** Submission: authentication first (RFC 4954 §6, RFC 6409 §4.3: 530 5.7.0; the session
 *  checks it, this is the backstop). RFC 6409 §6.1: the envelope sender must be one of the
 *  user's addresses (`owned`: the directory's maySendAs, asked by the caller when there is a
 *  principal and a sender); a null sender (RFC 8098 MDNs) is allowed, the From: check at DATA
 *  still applies. */
export function senderOwnership(
  principal: Principal | null,
  sender: Address | null,
  owned: boolean,
  raw: string,
): Decision {
  if (!principal) return refuse(REPLIES.authRequired());
  if (sender && !owned) {
    return refuse(REPLIES.senderNotOwned(), 'warn', 'sender refused: not owned', {
      user: principal.accountId,
      from: raw,
    });
  }
  return { kind: 'continue' };
}
