// Delivery stage, the last step: local copies through MailStore.deliver and remote ones into
// the queue (queue/dispatch.ts, the only member of the dispatcher called here). It resolves
// once every local copy is durable (file and directory fsynced, docs/architecture.md §4) and
// the remote part is queued durably: only then is the 250 sent (RFC 5321 §4.1.1.4, §6.1:
// accepting a message takes responsibility for it). Its log line is the message's record.

import { isArclineError } from '../../core/errors.ts';
import type { AccountId } from '../../core/ids.ts';
import type { Logger } from '../../core/log.ts';
import { smtpMessages } from '../../core/metrics.ts';
import { oneLine } from '../../core/text.ts';
import type { DispatchRequest } from '../../queue/dispatch.ts';
import type { SmtpDeps, Transaction } from '../context.ts';
import { accepted, queued, reply, type SmtpReplyError } from '../replies.ts';

const SERVICE = { smtp: { service: 'smtp' }, submission: { service: 'submission' } } as const;

/** Dispatches; resolves with the 250 text, or the refusal of the recipients' Sieve scripts
 *  (every copy rejected, nothing else to deliver: RFC 5429 §2.1, 550 5.7.1 with the reason). */
export async function deliver(
  deps: Pick<SmtpDeps, 'dispatcher'>,
  req: DispatchRequest,
  txn: Transaction,
  o: {
    readonly log: Logger;
    readonly started: number;
    readonly junk: ReadonlySet<AccountId>;
    readonly signed: boolean;
  },
): Promise<string | SmtpReplyError> {
  let result: Awaited<ReturnType<typeof deps.dispatcher.dispatch>>;
  try {
    result = await deps.dispatcher.dispatch(req);
  } catch (e) {
    if (!isArclineError(e, 'REFUSED')) throw e;
    o.log.info({ from: req.sender, rcpts: [...txn.recipients.keys()], reason: e.message }, 'message refused by Sieve');
    // The script's reason on one line, printable ASCII (no SMTPUTF8 reply text), bounded
    // (RFC 5321 §4.5.3.1.5).
    return reply(550, '5.7.1', oneLine(e.message, 400).replace(/[^\x20-\x7e]/g, '?') || 'Rejected');
  }
  o.log.info(
    {
      from: req.sender,
      rcpts: [...txn.recipients.keys(), ...txn.remote.keys()],
      accounts: result.copies.map((c) => c.account),
      ...(o.junk.size > 0 ? { junk: [...o.junk] } : {}),
      ...(o.signed ? { dkim_signed: true } : {}),
      ...(result.queueId ? { queue_id: result.queueId, remote: [...txn.remote.keys()] } : {}),
      // Forwarded copies with a rewritten sender are queue entries of their own (dispatch.ts).
      ...(result.queueIds.length > 1 ? { queue_ids: result.queueIds } : {}),
      size: req.message.size,
      ms: Math.round(performance.now() - o.started),
    },
    result.queueId ? 'message accepted' : 'message delivered',
  );
  smtpMessages.inc(req.origin === 'submission' ? SERVICE.submission : SERVICE.smtp);
  return result.queueId ? queued(req.logId) : accepted(req.logId);
}
