// Body checks: the message is refused whole for its bytes alone, from the facts the DATA reader
// (reader.ts) collected in its one pass, before anything else is looked at. Pure.
// - over the size limit: 552 5.3.4 (RFC 1870 §6.3; RFC 3463 5.3.4);
// - a header over [smtp] max_header_size: 552 5.3.4 (the whole header is read for the checks,
//   so it is bounded);
// - a NUL byte (RFC 5322 §2.2, §3.5), on both ports: 554 5.6.0;
// - a bare CR or LF on port 25 (RFC 5321 §2.3.8; SMTP smuggling, see line-endings.ts):
//   554 5.6.0. Submission turns them into CRLF instead, so never has one;
// and then, from the parsed header fields:
// - too many Received: fields (RFC 5321 §6.3: a mail loop): 554 5.4.6.

import { REPLIES } from '../replies.ts';
import type { HeaderField } from '../submission.ts';
import { CONTINUE, type Decision, refuse } from './decision.ts';

/** What the DATA reader saw of the bytes. */
export interface BodyFacts {
  /** Bytes received, those past the size limit included. */
  readonly byteLength: number;
  readonly sizeExceeded: boolean;
  readonly headerTooBig: boolean;
  readonly nul: boolean;
  readonly bareNewline: boolean;
}

export interface BodyLimits {
  readonly maxMessageSize: number;
  readonly maxHeaderSize: number;
}

export function bodyChecks(f: BodyFacts, limits: BodyLimits): Decision {
  if (f.sizeExceeded) {
    return refuse(REPLIES.tooBig(limits.maxMessageSize), 'info', 'message refused: too big', { size: f.byteLength });
  }
  if (f.headerTooBig) {
    return refuse(REPLIES.headerTooBig(limits.maxHeaderSize), 'info', 'message refused: header too big', {
      limit: limits.maxHeaderSize,
    });
  }
  if (f.nul) return refuse(REPLIES.nulByte(), 'warn', 'message refused: NUL byte');
  if (f.bareNewline) return refuse(REPLIES.bareNewline(), 'warn', 'message refused: bare CR or LF');
  return CONTINUE;
}

/** RFC 5321 §6.3: a message that has passed too many hops is in a loop (alias forwarding
 *  between two servers, say); it is refused rather than passed on for ever. */
export function hopCheck(fields: readonly HeaderField[], maxHops: number): Decision {
  let hops = 0;
  for (const f of fields) if (f.name === 'received') hops++;
  return hops >= maxHops ? refuse(REPLIES.tooManyHops(), 'warn', 'message refused: too many hops', { hops }) : CONTINUE;
}
