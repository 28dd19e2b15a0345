// The acceptance pipeline of a DATA (docs/architecture.md §3): runs the stages in order and
// turns the first refusal into its reply and log line. In order:
//   reader   spool the bytes, collecting the facts (reader.ts)        one pass, no copy
//   body     size, header size, NUL, bare CR/LF (body.ts)             pure
//   hops     Received: count (body.ts)                                pure
//   author   submission: From:/Sender: owned, Message-ID/Date added    pure + maySendAs
//   quota    every local account with the message's size (quota.ts)  pure + quota/usage
//   trace    our Received: (trace.ts)                                 pure + reverse DNS
//   hygiene  port 25: SPF, DKIM, DMARC -> refuse, Junk or deliver     wraps hygiene.atBody
//   spam     rspamd's verdict -> refuse, greylist, Junk, headers (spam.ts)
//   milter   [[milter]]: refuse, discard, quarantine or edit (milter.ts)
//   sign     submission: DKIM signature for the remote copy (sign.ts)
//   deliver  local copies durable, remote ones queued, then 250 (deliver.ts)
// Invariants (see service.ts): a refused or failed message leaves nothing behind (the spool
// is aborted or disposed); a failure is thrown to the binding, which answers 451 4.3.0.

import { isUtf8 } from 'node:buffer';
import { hasNonAscii, parseAddress } from '../../core/address.ts';
import { newId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import type { Logger } from '../../core/log.ts';
import { withHead } from '../../store/spool.ts';
import type { SpooledMessage } from '../../store/types.ts';
import type { ConnState, SmtpDeps, SmtpSession, Transaction } from '../context.ts';
import { notifies } from '../dsn-params.ts';
import type { MessageStream } from '../message-stream.ts';
import { REPLIES, type SmtpReplyError } from '../replies.ts';
import { addressesIn, type HeaderField, headerFields } from '../submission.ts';
import { authorDecision, authorFields } from './author.ts';
import { type BodyLimits, bodyChecks, hopCheck } from './body.ts';
import { type Decision, type Refusal, refusalReply, refuse } from './decision.ts';
import { deliver } from './deliver.ts';
import { type HygieneDecision, hygieneDecision, UNCHECKED } from './hygiene.ts';
import { discarded, MilterStage, quarantined } from './milter.ts';
import { localAccounts, messageQuota, overQuota } from './quota.ts';
import { DataReader } from './reader.ts';
import { sign, signingDomain } from './sign.ts';
import { junkAccounts, spamStage } from './spam.ts';
import { received, targets } from './trace.ts';

export class AcceptPipeline {
  readonly #deps: SmtpDeps;
  readonly #submission: boolean;
  readonly #limits: BodyLimits;
  readonly #milter: MilterStage;

  constructor(deps: SmtpDeps) {
    this.#deps = deps;
    this.#milter = new MilterStage(deps);
    this.#submission = deps.role === 'submission';
    const { smtp, submission } = deps.config;
    this.#limits = {
      maxMessageSize: this.#submission ? submission.max_message_size : smtp.max_message_size,
      maxHeaderSize: smtp.max_header_size,
    };
  }

  /** Receives one message (consuming `stream` to its end); resolves with the 250 text or the
   *  refusal. Throws when the client went away or on an unexpected failure. */
  async receive(
    stream: MessageStream,
    session: SmtpSession,
    state: ConnState,
    msgId: string,
    log: Logger,
  ): Promise<string | SmtpReplyError> {
    const started = performance.now();
    const reader = new DataReader(stream, this.#deps.store.createSpool(), this.#limits.maxHeaderSize, this.#submission);
    await reader.read();
    let d = bodyChecks(reader, this.#limits);
    if (d.kind === 'refuse') return this.#abort(reader, log, d);
    const headerBlock = reader.headerBlock;
    const fields = headerFields(headerBlock);
    d = hopCheck(fields, LIMITS.smtp.maxHops);
    if (d.kind === 'refuse') return this.#abort(reader, log, d);
    let added = '';
    if (this.#submission) {
      const a = await this.#author(fields, state);
      if (a.kind === 'refuse') return this.#abort(reader, log, a);
      added = a.added;
    }
    const spooled = await reader.spool.finish();
    let msg = spooled;
    try {
      const txn = state.txn;
      const accounts = localAccounts(txn);
      d = messageQuota(await overQuota(this.#deps, accounts, spooled.size), spooled.size);
      if (d.kind === 'refuse') return refusalReply(log, d);
      const trace = received(session, txn, {
        byHost: this.#deps.config.hostname,
        id: msgId,
        rdns: await session.clientHostname(),
        auth: this.#submission && session.user !== null,
        date: new Date(),
      });
      const returnPath = session.mailFrom ?? '';
      const h = await this.#hygiene(spooled, headerBlock, fields, session, state, returnPath, log);
      if (h.kind === 'refuse') return refusalReply(log, h);
      if (h.cleanedHeader) msg = withHead(spooled, h.cleanedHeader, headerBlock.length);
      const cleaned = h.cleanedHeader ?? headerBlock;
      const s = await spamStage(this.#deps, { message: msg, headerBlock: cleaned, session, state, msgId, log });
      if (s?.kind === 'refuse') return refusalReply(log, s);
      if (s?.head) msg = withHead(spooled, s.head, headerBlock.length);
      // Milters see the message as rspamd left it, with our fields on top (milter.ts).
      let ours = { trace: h.header + (s?.header ?? '') + trace, added };
      const header = s?.head ?? cleaned;
      const m = await this.#milter.run({ session, state, msgId, ours: ours.trace + added, message: msg, header });
      if (m.kind === 'refuse') return refusalReply(log, m);
      if (m.discard) return discarded(log, msgId, m.discard);
      if (m.message) [msg, ours] = [m.message, { trace: '', added: '' }]; // ours are in its header now
      const junk = m.quarantine
        ? quarantined(log, m.quarantine, accounts)
        : junkAccounts(h.junk, accounts, s?.junk === true);
      let signatures = '';
      const signer = this.#deps.signer;
      if (this.#submission && signer) {
        const domain = signingDomain(fields, txn.remote.size);
        if (domain) signatures = await sign(signer, domain, ours.added, msg);
      }
      return await deliver(
        this.#deps,
        {
          sender: returnPath,
          local: targets(accounts, { returnPath, trace: ours.trace, added: ours.added, junk }),
          remote: [...txn.remote.values()],
          remotePrefix: Buffer.from(ours.trace + signatures + ours.added, 'utf8'),
          message: msg,
          origin: this.#submission ? 'submission' : 'forward',
          logId: msgId,
          smtputf8: needsSmtputf8(session, txn, headerBlock),
          ret: session.dsn?.ret ?? null,
          envid: session.dsn?.envid ?? null,
          notifyDelivered: notifyDelivered(txn),
          authUser: state.principal?.accountId ?? null,
          hold: m.quarantine !== null,
          arc: h.arc ?? null, // RFC 8617 §5.1: seals the copies forwarded (queue/dispatch.ts)
        },
        txn,
        { log, started, junk, signed: signatures !== '' },
      );
    } finally {
      await msg.dispose();
    }
  }

  async #abort(reader: DataReader, log: Logger, r: Refusal): Promise<SmtpReplyError> {
    await reader.spool.abort();
    return refusalReply(log, r);
  }

  /** Submission: the author stage, with its maySendAs lookups. */
  async #author(fields: readonly HeaderField[], state: ConnState): Promise<Decision<{ readonly added: string }>> {
    const principal = state.principal;
    if (!principal) return refuse(REPLIES.authRequired()); // the session checks first; the backstop
    const a = authorFields(fields);
    if (a.kind === 'refuse') return a;
    let notOwned: string | null = null;
    for (const author of a.authors) {
      const parsed = parseAddress(author);
      if (!parsed || !(await this.#deps.directory.maySendAs(principal, parsed))) {
        notOwned = author;
        break;
      }
    }
    const { hostname } = this.#deps.config;
    return authorDecision(fields, principal.accountId, notOwned, { id: newId('m'), hostname, date: new Date() });
  }

  /** Port 25: the hygiene stage; submission or no checks configured: nothing to add. */
  async #hygiene(
    message: SpooledMessage,
    headerBlock: Buffer,
    fields: readonly HeaderField[],
    session: SmtpSession,
    state: ConnState,
    sender: string,
    log: Logger,
  ): Promise<HygieneDecision> {
    const hygiene = this.#deps.hygiene;
    if (this.#submission || !hygiene) return UNCHECKED;
    const outcome = await hygiene.atBody({
      message,
      headerBlock,
      ip: session.remoteAddress,
      helo: session.helo,
      sender,
      recipients: state.txn.recipients,
      forwardedFor: [...state.txn.remote.keys()],
      authors: addressesIn(fields, 'from'),
      log,
    });
    return hygieneDecision(outcome);
  }
}

/** RFC 6531 §3.4: the message needs SMTPUTF8 at the next hop when the client asked for it
 *  (MAIL ... SMTPUTF8), when an envelope address is UTF-8, or when a header field carries
 *  UTF-8 (RFC 6532). Raw 8-bit header bytes that are not UTF-8 (legacy mail) do not count:
 *  they were never internationalised mail, and refusing them would bounce what always went. */
export function needsSmtputf8(session: SmtpSession, txn: Transaction, header: Buffer): boolean {
  if (session.smtpUtf8) return true;
  if (hasNonAscii(session.mailFrom ?? '')) return true;
  for (const a of txn.remote.keys()) if (hasNonAscii(a)) return true;
  return header.some((b) => b >= 0x80) && isUtf8(header);
}

/** Local recipients that asked NOTIFY=SUCCESS (RFC 3461 §4.1), for their "delivered" notice. */
function notifyDelivered(txn: Transaction): { address: string; orcpt: string | null }[] {
  const out: { address: string; orcpt: string | null }[] = [];
  for (const [key, dsn] of txn.dsn) {
    if ((txn.recipients.get(key)?.length ?? 0) > 0 && notifies(dsn.notify, 'SUCCESS')) {
      out.push({ address: key, orcpt: dsn.orcpt });
    }
  }
  return out;
}
