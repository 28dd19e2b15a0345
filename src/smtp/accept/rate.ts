// Rate stage of submission (defense/rate-limits.ts, docs/spam.md "Rate limits"): messages per
// authenticated user at MAIL, recipients at RCPT, per hour and per day. Over a limit: 451 4.7.1
// (RFC 3463 4.7.1: delivery not authorized, temporary), so a client holding a message retries it
// later instead of losing it.

import type { RateLimitName } from '../../defense/rate-limits.ts';
import { REPLIES } from '../replies.ts';
import { CONTINUE, type Decision, refuse } from './decision.ts';

export function rateDecision(over: RateLimitName | null, what: 'message' | 'recipient', user: string): Decision {
  if (over === null) return CONTINUE;
  const reply = what === 'message' ? REPLIES.messageRate() : REPLIES.recipientRate();
  return refuse(reply, 'warn', 'rate limited', { user, limit: over });
}
