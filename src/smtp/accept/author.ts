// Submission author stage (RFC 6409): From:, Sender:, Resent-From: and Resent-Sender: must be
// addresses the authenticated user owns (§6.1: the MSA may refuse what it cannot vouch for),
// and Message-ID: / Date: are added when missing (§8.1, §8.3). Pure around one lookup: the
// caller asks the directory (maySendAs) for each author and passes the first one not owned.

import type { AccountId } from '../../core/ids.ts';
import { REPLIES } from '../replies.ts';
import { type AuthorCheck, authorAddresses, type HeaderField, missingHeaders } from '../submission.ts';
import { type Decision, refuse } from './decision.ts';

/** The author addresses to look up, or the refusal of a header without exactly one From:
 *  with an address (RFC 5322 §3.6: 550 5.6.0), or of author fields too long to parse. */
export function authorFields(fields: readonly HeaderField[]): Decision<{ readonly authors: readonly string[] }> {
  const a: AuthorCheck = authorAddresses(fields);
  if (a.ok) return { kind: 'continue', authors: a.authors };
  const reply = a.reason === 'too-long' ? REPLIES.authorFieldsTooLong() : REPLIES.badFromHeader();
  return refuse(reply, 'info', 'message refused: bad From header', { reason: a.reason });
}

/** `notOwned`: the first author the user may not send as, or null. On success, the header
 *  lines to add (Message-ID, Date), '' when none is missing. */
export function authorDecision(
  fields: readonly HeaderField[],
  account: AccountId,
  notOwned: string | null,
  fresh: { readonly id: string; readonly hostname: string; readonly date: Date },
): Decision<{ readonly added: string }> {
  if (notOwned !== null) {
    return refuse(REPLIES.fromNotOwned(), 'warn', 'message refused: From not owned', {
      user: account,
      author: notOwned,
    });
  }
  return { kind: 'continue', added: missingHeaders(fields, fresh) };
}
