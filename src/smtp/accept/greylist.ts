// Greylisting stage (RFC 6647; defense/greylist.ts keeps the state): at RCPT of port 25, per
// recipient as postgrey is asked, after the recipient was found deliverable (an unknown user
// gets its 550, not a 451 first). The service asks the greylister; this turns the answer into
// the decision. 451 4.7.1 with a stable text; the client's retry (RFC 5321 §4.5.4.1) passes.

import type { GreylistAnswer } from '../../defense/types.ts';
import { REPLIES } from '../replies.ts';
import { CONTINUE, type Decision, refuse } from './decision.ts';

/** postmaster@ and abuse@ are never greylisted (postgrey's whitelist_recipients default): a
 *  report about a problem must not wait. RFC 5321 §4.5.1: postmaster must be reachable. */
export function greylistable(recipient: string): boolean {
  const at = recipient.lastIndexOf('@');
  const local = (at < 0 ? recipient : recipient.slice(0, at)).toLowerCase();
  return local !== 'postmaster' && local !== 'abuse';
}

export function greylistDecision(a: GreylistAnswer, ip: string, sender: string, recipient: string): Decision {
  if (a.kind === 'pass') return CONTINUE;
  return refuse(REPLIES.greylisted(), 'info', 'greylisted', {
    ip,
    from: sender,
    rcpt: recipient,
    retry_in: a.retryInSeconds,
  });
}
