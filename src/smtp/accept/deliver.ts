// Delivery stage, the last step: local copies through MailStore.deliver and remote ones into
// the queue (queue/dispatch.ts, the only member of the dispatcher called here). It resolves
// once every local copy is durable (file and directory fsynced, docs/architecture.md §4) and
// the remote part is queued durably: only then is the 250 sent (RFC 5321 §4.1.1.4, §6.1:
// accepting a message takes responsibility for it). Its log line is the message's record.

import type { AccountId } from '../../core/ids.ts';
import type { Logger } from '../../core/log.ts';
import { smtpMessages } from '../../core/metrics.ts';
import type { DispatchRequest } from '../../queue/dispatch.ts';
import type { SmtpDeps, Transaction } from '../context.ts';
import { accepted, queued } from '../replies.ts';

const SERVICE = { smtp: { service: 'smtp' }, submission: { service: 'submission' } } as const;

/** Dispatches; resolves with the 250 text. */
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
): Promise<string> {
  const result = await deps.dispatcher.dispatch(req);
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
