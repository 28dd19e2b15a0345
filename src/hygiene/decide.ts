// The inbound decision: authentication results + the operator's actions -> one verdict.
// Pure, so every combination is a table test.
//
// RFC 7489 §6.6.2-§6.7: a DMARC "fail" is acted on per the domain's policy (reject ->
// [hygiene] dmarc_reject, quarantine -> dmarc_quarantine, none -> deliver). Temporary DNS
// errors never lead to a permanent refusal: when a result that could have passed is unknown
// (SPF or DKIM temperror), or the DMARC policy itself could not be fetched, a message that would
// otherwise be refused or filed as Junk is deferred with 451 instead (the sender retries).
// Without a DMARC record, an SPF "fail" (-all) gets [hygiene] spf_fail (RFC 7208 §8.4 allows
// rejecting; many operators prefer Junk, our default). softfail, neutral, none, permerror: deliver.

import type { AuthSummary } from './authenticate.ts';

export type Action = 'reject' | 'junk' | 'accept';

export interface Actions {
  readonly dmarc_reject: Action;
  readonly dmarc_quarantine: Action;
  readonly spf_fail: Action;
}

export type Verdict =
  | { readonly kind: 'accept'; readonly reason: string }
  | { readonly kind: 'junk'; readonly reason: string }
  | {
      readonly kind: 'reject';
      readonly reason: string;
      readonly code: number;
      readonly enhanced: string;
      readonly text: string;
    }
  | {
      readonly kind: 'defer';
      readonly reason: string;
      readonly code: number;
      readonly enhanced: string;
      readonly text: string;
    };

const DEFER = { code: 451, enhanced: '4.7.5', text: 'Temporary failure checking the sender, please try again later' };

export function decide(auth: AuthSummary, actions: Actions): Verdict {
  const temporary = auth.spf === 'temperror' || auth.dkim.some((d) => d.result === 'temperror');
  const { dmarc } = auth;
  if (dmarc && dmarc.result === 'fail') {
    const action =
      dmarc.policy === 'reject'
        ? actions.dmarc_reject
        : dmarc.policy === 'quarantine'
          ? actions.dmarc_quarantine
          : 'accept';
    const reason = `dmarc=fail (p=${dmarc.policy}) for ${dmarc.domain}`;
    if (action !== 'accept' && temporary)
      return { kind: 'defer', reason: `${reason}, with a temporary error`, ...DEFER };
    if (action === 'reject') {
      return {
        kind: 'reject',
        reason,
        code: 550,
        enhanced: '5.7.1',
        text: `Message rejected: the DMARC policy of ${dmarc.domain} rejects unauthenticated mail`,
      };
    }
    return { kind: action, reason };
  }
  if (dmarc && dmarc.result === 'temperror') {
    // The policy is unknown: refusing or filing could be wrong either way; try again later,
    // unless the message is authenticated anyway.
    if (auth.spf !== 'pass' && !auth.dkim.some((d) => d.result === 'pass')) {
      return { kind: 'defer', reason: 'dmarc=temperror', ...DEFER };
    }
    return { kind: 'accept', reason: 'dmarc=temperror, but authenticated' };
  }
  if (dmarc && dmarc.result === 'pass') return { kind: 'accept', reason: `dmarc=pass for ${dmarc.domain}` };
  if (auth.spf === 'fail') {
    const action = actions.spf_fail;
    if (action === 'reject') {
      // RFC 7372 §3.2: 5.7.23 "SPF validation failed".
      return {
        kind: 'reject',
        reason: 'spf=fail',
        code: 550,
        enhanced: '5.7.23',
        text: 'Message rejected: SPF check failed',
      };
    }
    return { kind: action, reason: 'spf=fail, no DMARC policy' };
  }
  return { kind: 'accept', reason: `spf=${auth.spf}${dmarc ? `, dmarc=${dmarc.result}` : ''}` };
}
