// RCPT of an SRS address of ours (docs/srs.md "Bounces"): a bounce coming back to an address we
// made when forwarding. Reversed (srs/srs.ts), it names where the bounce goes next: the original
// sender (SRS0) or the first forwarder's SRS0 address (SRS1), a remote recipient forwarded by the
// SRS address's domain. Pure: the caller reverses (service.ts) and hands in the outcome.
//
// Refusals (RFC 3463): a hash that matches none of our secrets is 550 5.7.1 (§3.8 X.7.1
// "delivery not authorized, message refused": the address is a forgery, not a mistake; it
// counts as an offence, as an unknown user does); a valid but expired address is 550 5.7.1
// too, saying "expired" (we no longer carry mail for it); an address whose fields cannot be
// read is 550 5.1.1 (§3.2 X.1.1 "bad destination mailbox address"). All permanent: retrying
// never makes an address valid.

import { type Address, parseAddress } from '../../core/address.ts';
import type { SrsErrorCode } from '../../srs/srs.ts';
import { REPLIES } from '../replies.ts';
import { type Continue, type Refusal, refuse } from './decision.ts';

/** What Srs.reverse gave: the decoded address, or why it refused. */
export type SrsOutcome = { readonly address: string } | { readonly error: SrsErrorCode };

/** `offence`: counts towards a ban as an unknown recipient does (defense/bans.ts). */
export type SrsRefusal = Refusal & { readonly offence: boolean };

export type SrsRecipient =
  /** `next`: where the bounce goes, its local part as it was written (the next hop decides its
   *  case, RFC 5321 §2.4), its domain normalised. */
  Continue<{ readonly next: Address }> | SrsRefusal;

export function srsRecipient(o: SrsOutcome, key: string): SrsRecipient {
  if ('address' in o) {
    const parsed = parseAddress(o.address);
    if (parsed !== null) {
      return {
        kind: 'continue',
        next: { local: o.address.slice(0, o.address.lastIndexOf('@')), domain: parsed.domain },
      };
    }
  } else if (o.error === 'expired') {
    return {
      ...refuse(REPLIES.srsExpired(), 'info', 'rcpt refused: SRS address expired', { rcpt: key }),
      offence: false,
    };
  } else if (o.error === 'forged') {
    return { ...refuse(REPLIES.srsForged(), 'info', 'rcpt refused: forged SRS address', { rcpt: key }), offence: true };
  }
  // Unreadable fields, too long, or a decoded address that is none.
  return {
    ...refuse(REPLIES.srsMalformed(), 'info', 'rcpt refused: malformed SRS address', { rcpt: key }),
    offence: true,
  };
}
