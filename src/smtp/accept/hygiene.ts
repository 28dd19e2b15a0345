// Hygiene stage (port 25): SPF, DKIM and DMARC through hygiene/pipeline.ts (atBody), whose
// outcome becomes a refusal (reject 5xx, defer 4xx: the operator's actions per recipient
// domain, RFC 7489 §6.6.2) or what delivery needs: our Authentication-Results (RFC 8601) and
// Received-SPF (RFC 7208 §9.1), the accounts that get it in Junk, the header without forged
// Authentication-Results (RFC 8601 §5).

import type { AccountId } from '../../core/ids.ts';
import type { BodyOutcome } from '../../hygiene/pipeline.ts';
import { reply } from '../replies.ts';
import { type Refusal, refuse } from './decision.ts';

/** Continuing is the checks' own 'deliver' outcome, handed on as it is (no copy). */
export type Deliver = Extract<BodyOutcome, { kind: 'deliver' }>;
export type HygieneDecision = Deliver | Refusal;

export function hygieneDecision(outcome: BodyOutcome): HygieneDecision {
  if (outcome.kind === 'deliver') return outcome;
  const v = outcome.verdict;
  return refuse(
    reply(v.code, v.enhanced, v.text),
    'warn',
    v.kind === 'reject' ? 'message rejected by policy' : 'message deferred by policy',
    { reason: v.reason },
  );
}

/** No checks (submission, or no hygiene configured). */
export const UNCHECKED: Deliver = Object.freeze({
  kind: 'deliver' as const,
  header: '',
  junk: new Set<AccountId>(),
  cleanedHeader: null,
});
