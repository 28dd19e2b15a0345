// Milter stage ([[milter]], src/filter/milter/): the milters configured for this service run
// at the end of DATA, after our trace and hygiene fields are known and before signing and
// delivery, so a milter sees (and may sign) the message as it will be delivered.
//
// The whole SMTP conversation is replayed to each milter then: connect (the client's address,
// family and port, its reverse name), HELO, MAIL, every RCPT, DATA, the header, the body, end
// of message. Why not live, command by command, as Postfix does: our SMTP core answers MAIL and
// RCPT from plain lookups and pipelines the replies (RFC 2920), inbound threads would need a
// milter connection per SMTP connection held open for its whole life, and most milters
// (signers, content scanners, rspamd) decide at end of message anyway. The cost: a milter's
// per-recipient refusal refuses the message (the recipients were already accepted), and a
// refusal at connect or HELO comes after the DATA.
//
// Verdicts: reject -> 550 5.7.1 (or the milter's own reply), tempfail -> 451 4.7.1, discard ->
// 250 and the message is dropped (logged), quarantine -> every local copy in Junk and the
// remote part held in the queue (the admin API releases it), with the reason logged; a failing
// milter -> its on_failure.

import type { AccountId } from '../../core/ids.ts';
import type { Logger } from '../../core/log.ts';
import { type ChainMilter, chainMilter, runChain } from '../../filter/milter/chain.ts';
import type { MilterContext } from '../../filter/milter/client.ts';
import { withHead } from '../../store/spool.ts';
import type { SpooledMessage } from '../../store/types.ts';
import type { ConnState, SmtpDeps, SmtpSession } from '../context.ts';
import { accepted, REPLIES, reply } from '../replies.ts';
import { type Decision, refuse } from './decision.ts';

export type MilterDecision = Decision<{
  /** The message as the milters left it, our fields (`ours`) now in its header; null: unchanged. */
  readonly message: SpooledMessage | null;
  readonly quarantine: { readonly milter: string; readonly reason: string } | null;
  readonly discard: { readonly milter: string; readonly reason: string } | null;
}>;

type Passed = Extract<MilterDecision, { kind: 'continue' }>;

const UNCHANGED: Passed = Object.freeze({
  kind: 'continue' as const,
  message: null,
  quarantine: null,
  discard: null,
});

export interface MilterInput {
  readonly session: SmtpSession;
  readonly state: ConnState;
  readonly msgId: string;
  /** The fields we put on top of the message (Authentication-Results, Received, ...). */
  readonly ours: string;
  /** The message, its header block (`header`, no empty line) at its start. */
  readonly message: SpooledMessage;
  readonly header: Buffer;
}

export class MilterStage {
  readonly #deps: SmtpDeps;
  readonly #milters: readonly ChainMilter[];

  constructor(deps: SmtpDeps) {
    this.#deps = deps;
    const service = deps.role === 'submission' ? 'submission' : 'smtp';
    this.#milters = deps.config.milter.filter((m) => m.services.includes(service)).map(chainMilter);
  }

  async run(i: MilterInput): Promise<MilterDecision> {
    if (this.#milters.length === 0) return UNCHANGED;
    const { config, role } = this.#deps;
    const head = Buffer.concat([Buffer.from(i.ours, 'utf8'), i.header]);
    const bodyOffset = Math.min(i.header.length + 2, i.message.size);
    const r = await runChain(this.#milters, {
      context: await context(i, config.hostname, role === 'submission' ? 'submission' : 'smtp'),
      head,
      message: i.message,
      bodyOffset,
      createSpool: () => this.#deps.store.createSpool(),
      maxBodyBytes: role === 'submission' ? config.submission.max_message_size : config.smtp.max_message_size,
      maxHeaderBytes: config.smtp.max_header_size,
      log: i.state.log,
    });
    if (r.kind === 'refuse') {
      const fields = { milter: r.milter, reason: r.reason };
      if (r.reply) {
        const enhanced = r.reply.enhanced || (r.temporary ? '4.7.1' : '5.7.1');
        const text = r.reply.text || (r.temporary ? 'Try again later' : 'Message rejected');
        return refuse(reply(r.reply.code, enhanced, text), 'warn', 'message refused by milter', fields);
      }
      return refuse(
        r.temporary ? REPLIES.milterTempfail() : REPLIES.milterReject(),
        'warn',
        'message refused by milter',
        fields,
      );
    }
    if (r.kind === 'discard') return { ...UNCHANGED, discard: { milter: r.milter, reason: r.reason } };
    if (!r.head && !r.body) return r.quarantine ? { ...UNCHANGED, quarantine: r.quarantine } : UNCHANGED;
    const top = Buffer.concat([r.head ?? head, CRLF]);
    const message = r.body ? withBody(top, r.body, i.message) : withHead(i.message, top, bodyOffset);
    return { ...UNCHANGED, message, quarantine: r.quarantine };
  }
}

const CRLF = Buffer.from('\r\n');

async function context(i: MilterInput, hostname: string, daemonName: string): Promise<MilterContext> {
  const s = i.session;
  const txn = i.state.txn;
  return {
    client: { address: s.remoteAddress, port: s.remotePort, hostname: await s.clientHostname() },
    helo: s.helo,
    sender: s.mailFrom ?? '',
    recipients: [...txn.recipients.keys(), ...txn.remote.keys()],
    macros: {
      hostname,
      daemonName,
      queueId: i.msgId,
      authAuthen: s.user,
      tlsVersion: s.tlsInfo?.version ?? null,
      cipher: s.tlsInfo?.cipher ?? null,
    },
  };
}

/** `top` then the replacement body; disposing it disposes the replacement and the original. */
function withBody(top: Buffer, body: SpooledMessage, original: SpooledMessage): SpooledMessage {
  const view = withHead(body, top, 0);
  return {
    size: view.size,
    open: () => view.open(),
    buffers: () => view.buffers?.() ?? null,
    dispose: async () => {
      await view.dispose();
      await original.dispose();
    },
  };
}

/** Discard: the client gets its 250 (RFC 5321 §6.2 lets a receiver drop mail by policy), the
 *  message is not kept; the log line is the message's record. */
export function discarded(log: Logger, msgId: string, d: { readonly milter: string; readonly reason: string }): string {
  log.warn({ milter: d.milter, reason: d.reason }, 'message discarded by milter');
  return accepted(msgId);
}

/** Quarantine: every local copy goes to Junk (and the remote part is held in the queue). */
export function quarantined(
  log: Logger,
  q: { readonly milter: string; readonly reason: string },
  accounts: ReadonlySet<AccountId>,
): ReadonlySet<AccountId> {
  log.warn({ milter: q.milter, reason: q.reason }, 'message quarantined by milter');
  return accounts;
}
