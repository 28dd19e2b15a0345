// DATA: a message is streamed to the spool while its bytes are checked, then refused or
// delivered (local copies written, remote ones queued) before the reply; see service.ts for the
// invariants. Refused whole, before anything else is looked at:
// - over the size limit (552 5.3.4, RFC 1870) or with a header over [smtp] max_header_size
//   (552 5.3.4): the whole header is read for the checks, so it is bounded;
// - a NUL byte (RFC 5322 §2.2, §3.5), on both ports; a bare CR or LF on port 25 (RFC 5321
//   §2.3.8; submission turns them into CRLF instead).

import { Readable } from 'node:stream';
import { type Address, parseAddress } from '../core/address.ts';
import { CrlfNormalizer } from '../core/crlf.ts';
import { type AccountId, newId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { smtpMessages } from '../core/metrics.ts';
import { withHead } from '../store/spool.ts';
import type { DeliveryTarget, SpooledMessage } from '../store/types.ts';
import type { ConnState, SmtpDeps, SmtpSession } from './context.ts';
import { BareNewlineDetector, NulDetector } from './line-endings.ts';
import type { MessageStream } from './message-stream.ts';
import { accepted, queued, REPLIES, reply, type SmtpReplyError } from './replies.ts';
import {
  addressesIn,
  authorAddresses,
  HeaderCapture,
  type HeaderField,
  headerFields,
  missingHeaders,
} from './submission.ts';
import { protocolName, receivedHeader, traceHeaders } from './trace.ts';

/** One stream of `head` followed by the message. */
function concatStreams(head: Buffer, msg: SpooledMessage): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    yield head;
    yield* msg.open() as AsyncIterable<Buffer>;
  }
  return Readable.from(bytes(), { objectMode: false });
}

/** True when one of the accounts has a quota that `extra` more bytes would exceed (or it is
 *  already at its limit when extra is 0). */
export async function overQuota(deps: SmtpDeps, accounts: readonly AccountId[], extra: number): Promise<boolean> {
  for (const a of accounts) {
    const limit = await deps.directory.quota(a);
    if (limit === null) continue;
    const used = await deps.store.usage(a);
    if (extra === 0 ? used >= limit : used + extra > limit) return true;
  }
  return false;
}

export class MessageReceiver {
  readonly #deps: SmtpDeps;
  readonly #submission: boolean;

  constructor(deps: SmtpDeps) {
    this.#deps = deps;
    this.#submission = deps.role === 'submission';
  }

  /** The reply for a message refused for its bytes alone, or null. */
  #refusal(
    stream: MessageStream,
    headers: HeaderCapture,
    nul: NulDetector,
    bare: BareNewlineDetector | null,
    log: Logger,
  ): SmtpReplyError | null {
    const { config } = this.#deps;
    if (stream.sizeExceeded) {
      log.info({ size: stream.byteLength }, 'message refused: too big');
      return REPLIES.tooBig(this.#submission ? config.submission.max_message_size : config.smtp.max_message_size);
    }
    if (headers.end().kind === 'too-big') {
      log.info({ limit: config.smtp.max_header_size }, 'message refused: header too big');
      return REPLIES.headerTooBig(config.smtp.max_header_size);
    }
    if (nul.found) {
      log.warn('message refused: NUL byte');
      return REPLIES.nulByte();
    }
    if (bare?.end()) {
      log.warn('message refused: bare CR or LF');
      return REPLIES.bareNewline();
    }
    return null;
  }

  /** Spools the message (the chunks of `stream`, dot-stuffing removed), checks it, delivers
   *  every copy; returns the reply. */
  async receive(
    stream: MessageStream,
    session: SmtpSession,
    state: ConnState,
    msgId: string,
    log: Logger,
  ): Promise<string | SmtpReplyError> {
    const { store, config } = this.#deps;
    const sub = this.#submission;
    const started = performance.now();
    const spool = store.createSpool();
    const bare = new BareNewlineDetector();
    const nul = new NulDetector();
    const crlf = sub ? new CrlfNormalizer() : null;
    const headers = new HeaderCapture(config.smtp.max_header_size);
    // Past a limit (size, header size) or after bytes we refuse, the rest is only drained,
    // never stored.
    const refused = () => stream.sizeExceeded || headers.tooBig || nul.found || bare.found;
    const write = async (chunk: Buffer) => {
      headers.feed(chunk);
      if (!refused()) await spool.write(chunk);
    };
    try {
      for await (const raw of stream) {
        nul.feed(raw);
        if (crlf) {
          // Submission: a sloppy client's bare LF/CR become CRLF (we re-send the bytes, so
          // nothing ambiguous leaves here). Inbound: refused whole, see line-endings.ts.
          if (!refused()) await write(crlf.push(raw));
          continue;
        }
        bare.feed(raw);
        if (!refused()) await write(raw);
      }
      if (crlf && !refused()) await write(crlf.end());
    } catch (err) {
      await spool.abort();
      throw err; // the client went away mid-DATA; nothing more is sent
    }
    const refusal = this.#refusal(stream, headers, nul, crlf ? null : bare, log);
    if (refusal) {
      await spool.abort();
      return refusal;
    }
    const header = headers.end();
    if (header.kind !== 'ok') throw new Error('header refused after the checks'); // #refusal saw it
    const headerBlock = header.block;
    const fields = headerFields(headerBlock);
    // RFC 5321 §6.3: a message that has passed too many hops is in a loop (alias forwarding
    // between two servers, say); it is refused rather than passed on for ever.
    const hops = fields.filter((f) => f.name === 'received').length;
    if (hops >= LIMITS.smtp.maxHops) {
      await spool.abort();
      log.warn({ hops }, 'message refused: too many hops');
      return REPLIES.tooManyHops();
    }
    let added = '';
    if (sub) {
      const checked = await this.#checkAuthor(fields, state, log);
      if (typeof checked !== 'string') {
        await spool.abort();
        return checked;
      }
      added = checked;
    }
    const spooled = await spool.finish();
    let msg = spooled;
    try {
      const localAccounts = [...new Set([...state.txn.recipients.values()].flat())];
      if (await overQuota(this.#deps, localAccounts, spooled.size)) {
        log.info({ size: spooled.size }, 'message refused: a mailbox would exceed its quota');
        return REPLIES.mailboxFull();
      }
      const received = this.#received(session, state, msgId, await session.clientHostname());
      const returnPath = session.mailFrom ?? '';
      // Port 25: SPF, DKIM, DMARC -> refuse, Junk or deliver, and our Authentication-Results.
      let auth = '';
      let junk: ReadonlySet<AccountId> = new Set();
      const hygiene = this.#deps.hygiene;
      if (!sub && hygiene) {
        const outcome = await hygiene.atBody({
          message: spooled,
          headerBlock,
          ip: session.remoteAddress,
          helo: session.helo,
          sender: returnPath,
          recipients: state.txn.recipients,
          forwardedFor: [...state.txn.remote.keys()],
          authors: addressesIn(fields, 'from'),
          log,
        });
        if (outcome.kind === 'refuse') {
          const v = outcome.verdict;
          log.warn(
            { reason: v.reason },
            v.kind === 'reject' ? 'message rejected by policy' : 'message deferred by policy',
          );
          return reply(v.code, v.enhanced, v.text);
        }
        auth = outcome.header;
        junk = outcome.junk;
        if (outcome.cleanedHeader) msg = withHead(spooled, outcome.cleanedHeader, headerBlock.length);
      }
      // Submission: DKIM-sign what leaves (the headers we add + the message), by the From: domain.
      let signatures = '';
      const signer = this.#deps.signer;
      if (sub && signer && state.txn.remote.size > 0) {
        const author = addressesIn(fields, 'from')[0] ?? '';
        const domain = parseAddress(author)?.domain;
        if (domain) signatures = await signer.sign(domain, concatStreams(Buffer.from(added, 'utf8'), msg));
      }
      const result = await this.#deps.dispatcher.dispatch({
        sender: returnPath,
        local: this.#targets(state, { received, auth, added, returnPath, junk }),
        remote: [...state.txn.remote.values()],
        remotePrefix: Buffer.from(auth + received + signatures + added, 'utf8'),
        message: msg,
        origin: sub ? 'submission' : 'forward',
        logId: msgId,
        smtputf8: session.smtpUtf8,
        authUser: state.principal?.accountId ?? null,
      });
      log.info(
        {
          from: returnPath,
          rcpts: [...state.txn.recipients.keys(), ...state.txn.remote.keys()],
          accounts: result.copies.map((c) => c.account),
          ...(junk.size > 0 ? { junk: [...junk] } : {}),
          ...(signatures ? { dkim_signed: true } : {}),
          ...(result.queueId ? { queue_id: result.queueId, remote: [...state.txn.remote.keys()] } : {}),
          size: msg.size,
          ms: Math.round(performance.now() - started),
        },
        result.queueId ? 'message accepted' : 'message delivered',
      );
      smtpMessages.inc({ service: sub ? 'submission' : 'smtp' });
      return result.queueId ? queued(msgId) : accepted(msgId);
    } finally {
      await msg.dispose();
    }
  }

  /** Submission: From:, Sender:, Resent-From:, Resent-Sender: must be the user's; returns the header lines to add, or a refusal. */
  async #checkAuthor(fields: readonly HeaderField[], state: ConnState, log: Logger): Promise<string | SmtpReplyError> {
    const principal = state.principal;
    if (!principal) return REPLIES.authRequired();
    const authors = authorAddresses(fields);
    if (!authors.ok) {
      log.info({ reason: authors.reason }, 'message refused: bad From header');
      return authors.reason === 'too-long' ? REPLIES.authorFieldsTooLong() : REPLIES.badFromHeader();
    }
    for (const a of authors.authors) {
      const parsed: Address | null = parseAddress(a);
      if (!parsed || !(await this.#deps.directory.maySendAs(principal, parsed))) {
        log.warn({ user: principal.accountId, author: a }, 'message refused: From not owned');
        return REPLIES.fromNotOwned();
      }
    }
    return missingHeaders(fields, { id: newId('m'), hostname: this.#deps.config.hostname, date: new Date() });
  }

  #received(session: SmtpSession, state: ConnState, msgId: string, rdns: string | null): string {
    const { recipients, remote } = state.txn;
    const single = recipients.size + remote.size === 1 ? [...recipients.keys(), ...remote.keys()][0] : undefined;
    return receivedHeader({
      helo: session.helo || 'unknown',
      clientHostname: rdns,
      clientIp: session.remoteAddress,
      byHost: this.#deps.config.hostname,
      protocol: protocolName({
        ehlo: session.ehlo,
        tls: session.secure,
        utf8: session.smtpUtf8,
        auth: this.#submission && session.user !== null,
      }),
      id: msgId,
      tls: session.secure ? session.tlsInfo : null,
      forRecipient: single ?? null,
      date: new Date(),
    });
  }

  /** One target per distinct local account, each with its own trace headers; Junk where the
   *  checks said so. Order (RFC 8601 §5, RFC 7208 §9.1): Return-Path, Delivered-To, our
   *  Authentication-Results and Received-SPF, then our Received. */
  #targets(
    state: ConnState,
    t: { received: string; auth: string; added: string; returnPath: string; junk: ReadonlySet<AccountId> },
  ): DeliveryTarget[] {
    const accounts = new Set<AccountId>();
    for (const list of state.txn.recipients.values()) for (const a of list) accounts.add(a);
    return [...accounts].map((account) => ({
      account,
      ...(t.junk.has(account) ? { mailbox: 'Junk' } : {}),
      prefix: Buffer.concat([
        traceHeaders({ returnPath: t.returnPath, deliveredTo: account, received: t.auth + t.received }),
        Buffer.from(t.added, 'utf8'),
      ]),
    }));
  }
}
