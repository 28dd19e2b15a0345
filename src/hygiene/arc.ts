// ARC (RFC 8617) on inbound mail: what mailauth's authenticate() found of a message's ARC chain
// (RFC 8617 §5.2, validated along with DKIM in authenticate.ts), boiled down to the facts a
// later seal needs (arc-seal.ts, RFC 8617 §5.1), and the arc= result in our
// Authentication-Results (RFC 8617 §10.1, RFC 8601 §2.7.x method "arc").
//
// Pure: no I/O. The result is kept with the message as it goes to the Dispatcher (queue/
// dispatch.ts), in memory and across the inbound threads' calls, never read back from the
// message's bytes: a copy of our Authentication-Results in the message could be the sender's.

import type { ARCResult } from 'mailauth';

/** RFC 8617 §4.4 / §5.2: the chain validation status. */
export type ArcResult = 'pass' | 'fail' | 'none';

/** What sealing a forwarded copy of an inbound message needs (RFC 8617 §5.1). */
export interface InboundArc {
  /** Our validation of the chain the message arrived with. */
  readonly result: ArcResult;
  /** The cv= of the seal we add: none (no chain, i=1), pass, or fail once (RFC 8617 §5.1.2);
   *  null when the chain must not be sealed again (its newest seal already says cv=fail). */
  readonly cv: ArcResult | null;
  /** The value of the Authentication-Results we added (our authserv-id first), the payload of
   *  the ARC-Authentication-Results (RFC 8617 §4.1.1). */
  readonly authResults: string;
}

/** The chain result as mailauth reports it ('none' for a message without ARC fields). */
export function arcResultOf(res: ARCResult | false | undefined): { result: ArcResult; cv: ArcResult | null } {
  const raw = res ? res.status.result : 'none';
  if (raw === 'pass') return { result: 'pass', cv: 'pass' };
  if (raw === 'fail') {
    // RFC 8617 §5.1 step 2: a chain whose newest seal already says cv=fail is left alone;
    // otherwise the failure is sealed once (mailauth's shouldSeal: the newest cv was none/pass).
    return { result: 'fail', cv: res && res.status.shouldSeal === true ? 'fail' : null };
  }
  return { result: 'none', cv: 'none' };
}

const AR_NAME = /^authentication-results[ \t]*:[ \t]*/i;

/** The Authentication-Results field of mailauth's header block (CRLF-separated fields),
 *  with `arc=none` added when mailauth left the method out (it does in its lenient mode for a
 *  message without a chain; RFC 8617 §10.1 defines "none" as a result to record). */
export function withArcNone(headers: string): string {
  return splitFields(headers)
    .map((f) => (AR_NAME.test(f) && !/;\s*arc=/i.test(f) ? `${f.replace(/\r\n$/, '')};\r\n arc=none\r\n` : f))
    .join('');
}

/** The value of the first Authentication-Results field in `headers` (folding kept), or null. */
export function authResultsValue(headers: string): string | null {
  const field = splitFields(headers).find((f) => AR_NAME.test(f));
  return field === undefined ? null : field.replace(AR_NAME, '').replace(/\r\n$/, '');
}

/** Header fields (each with its CRLF) of a block of CRLF-terminated fields. */
function splitFields(headers: string): string[] {
  const out: string[] = [];
  for (const line of headers.split('\r\n')) {
    if (line === '') continue;
    if ((line.startsWith(' ') || line.startsWith('\t')) && out.length > 0) out[out.length - 1] += `${line}\r\n`;
    else out.push(`${line}\r\n`);
  }
  return out;
}
