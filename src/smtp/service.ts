// The SMTP service, in one of two roles that share everything but their policy:
//
// inbound (the MX, port 25): receives mail for our local domains. No AUTH and no relaying: a
//   recipient outside our domains is refused at RCPT (RFC 5321 §3.6.2, no open relay), an
//   unknown user too (never accept first and bounce later). Aliases that forward outside put
//   those copies in the outbound queue. A message with a bare CR or LF is refused whole
//   (smuggling, see line-endings.ts).
// submission (587 STARTTLS, 465 implicit TLS; RFC 6409, RFC 8314): AUTH PLAIN/LOGIN only
//   after TLS (RFC 4954 §4, RFC 3207), MAIL before AUTH -> 530 5.7.0; the envelope sender and
//   the From:/Sender: addresses must be the user's own (553 5.7.1 at MAIL / at end of DATA); any recipient
//   (remote ones go to the queue); sloppy line endings are normalised to CRLF; Message-ID and
//   Date are added when missing (see submission.ts).
//
// Invariants:
// - 250 after DATA only once every local copy is durable and the remote part is queued
//   durably (Dispatcher.dispatch resolved); any failure is a 451 4.3.0, never a 5xx and never
//   a lost message.
// - One client's failure never touches another's: all handler errors become replies.
// - Shutdown: listeners close at once; a connection outside DATA gets 421 at once; a
//   transaction in DATA may finish within the grace period, then gets 421.

import type { Resolver } from 'node:dns';
import type { AddressInfo } from 'node:net';
import { Readable } from 'node:stream';
import {
  SMTPServer,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Config } from '../config/schema.ts';
import { type Address, formatAddress, hasNonAscii, parseAddress } from '../core/address.ts';
import { ConnectionCounter } from '../core/connection-limits.ts';
import { CrlfNormalizer } from '../core/crlf.ts';
import { errorMessage } from '../core/errors.ts';
import { type AccountId, newId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { listenOn } from '../core/listen.ts';
import type { Logger } from '../core/log.ts';
import { smtpMessages } from '../core/metrics.ts';
import type { Directory, Principal } from '../directory/types.ts';
import type { Hygiene } from '../hygiene/pipeline.ts';
import type { DkimSigner } from '../hygiene/sign.ts';
import type { Dispatcher } from '../queue/dispatch.ts';
import type { OutboundRecipient } from '../queue/types.ts';
import { withHead } from '../store/spool.ts';
import type { DeliveryTarget, MailStore, SpooledMessage } from '../store/types.ts';
import type { TlsManager } from '../tls/certs.ts';
import { BareNewlineDetector } from './line-endings.ts';
import { accepted, queued, REPLIES, reply, type SmtpReplyError } from './replies.ts';
import { installSmtpServerPatches } from './smtp-server-patches.ts';
import {
  addressesIn,
  authorAddresses,
  HeaderCapture,
  type HeaderField,
  headerFields,
  missingHeaders,
} from './submission.ts';
import { protocolName, receivedHeader, traceHeaders } from './trace.ts';

export type SmtpRole = 'inbound' | 'submission';

export interface SmtpDeps {
  readonly role: SmtpRole;
  readonly config: Config;
  readonly directory: Directory;
  readonly store: MailStore;
  readonly dispatcher: Dispatcher;
  readonly tls: TlsManager;
  readonly log: Logger;
  /** Reverse DNS for Received headers; null disables the lookup. */
  readonly resolver: Resolver | null;
  /** The login path (submission), shared with IMAP so both count the same attempts. */
  readonly authenticator?: Authenticator;
  /** Inbound checks (DNSBL, SPF, DKIM, DMARC); port 25 only. */
  readonly hygiene?: Hygiene;
  /** DKIM signing of submitted mail. */
  readonly signer?: DkimSigner;
}

/** One stream of `head` followed by the message. */
function concatStreams(head: Buffer, msg: SpooledMessage): Readable {
  async function* bytes(): AsyncGenerator<Buffer> {
    yield head;
    yield* msg.open() as AsyncIterable<Buffer>;
  }
  return Readable.from(bytes(), { objectMode: false });
}

/** What this service knows about a connection's current mail transaction. */
interface Transaction {
  /** Normalised recipient address -> local accounts it delivers to. */
  readonly recipients: Map<string, readonly AccountId[]>;
  /** Remote addresses (submission recipients, inbound alias forwards), deduplicated. */
  readonly remote: Map<string, OutboundRecipient>;
}

interface ConnState {
  readonly log: Logger;
  txn: Transaction;
  inData: boolean;
  principal: Principal | null;
}

type Callback = (err?: Error | null) => void;
type DataCallback = (err?: Error | null, message?: string) => void;

const newTxn = (): Transaction => ({ recipients: new Map(), remote: new Map() });

export class SmtpService {
  readonly #deps: SmtpDeps;
  readonly #submission: boolean;
  readonly #servers: SMTPServer[] = [];
  readonly #conns = new Map<string, ConnState>();
  readonly #perIp: ConnectionCounter;
  #shuttingDown = false;

  constructor(deps: SmtpDeps) {
    this.#deps = deps;
    this.#submission = deps.role === 'submission';
    this.#perIp = new ConnectionCounter(
      this.#submission ? deps.config.submission.max_connections_per_ip : deps.config.smtp.max_connections_per_ip,
    );
    installSmtpServerPatches();
  }

  /** Starts one listener per address (implicit TLS for `secure`); resolves with the bound addresses. */
  async listen(addresses: readonly string[], secure = false): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const a of addresses) {
      const server = this.#createServer(secure);
      this.#servers.push(server);
      bound.push(await listenOn(server.server, a));
    }
    return bound;
  }

  #createServer(secure: boolean): SMTPServer {
    const { config, tls, resolver } = this.#deps;
    const sub = this.#submission;
    // greetingDelay is ours: see smtp-server-patches.ts.
    const options: SMTPServerOptions & { greetingDelay: number; authRequiresTls: boolean } = {
      name: config.hostname,
      banner: sub ? 'arcline ESMTP submission ready' : 'arcline ESMTP ready',
      key: tls.current.key,
      cert: tls.current.cert,
      secure,
      size: sub ? config.submission.max_message_size : config.smtp.max_message_size,
      // RFC 4954 §4 / RFC 8314: AUTH only over TLS; smtp-server hides it from EHLO until then.
      ...(sub
        ? {
            authMethods: ['PLAIN', 'LOGIN'],
            allowInsecureAuth: false,
            authOptional: false,
            authRequiredMessage: '5.7.0 Authentication required',
            onAuth: (auth: SMTPServerAuthentication, session: SMTPServerSession, cb: AuthCallback) =>
              this.#onAuth(auth, session, cb),
          }
        : { disabledCommands: ['AUTH'], authOptional: true }),
      hideENHANCEDSTATUSCODES: false, // RFC 2034; smtp-server hides it unless told
      hideDSN: true, // the DSN extension (RFC 3461) is not offered yet; bounces are sent regardless
      hideREQUIRETLS: true,
      maxClients: config.smtp.max_connections,
      maxCommandLength: LIMITS.smtp.maxCommandLength,
      socketTimeout: config.smtp.timeout,
      greetingDelay: sub ? 0 : config.smtp.greeting_delay,
      authRequiresTls: sub,
      // Our own sweep (close()) ends connections at the deadline; this is only a backstop.
      closeTimeout: config.server.shutdown_grace + 1000,
      ...(resolver ? { resolver } : { disableReverseLookup: true }),
      logger: false,
      onConnect: (session, cb) => this.#onConnect(session, cb),
      onMailFrom: (address, session, cb) =>
        this.#guard(session, cb, async () => {
          checkParams(address.args, MAIL_PARAMS);
          await this.#onMailFrom(address.address, session);
        }),
      onRcptTo: (address, session, cb) =>
        this.#guard(session, cb, async () => {
          checkParams(address.args, RCPT_PARAMS);
          await this.#onRcptTo(address.address, session);
        }),
      onData: (stream, session, cb) => this.#onData(stream, session, cb),
      onClose: (session) => this.#onClose(session),
    };
    const server = new SMTPServer(options);
    // Socket-level errors (resets, TLS handshake failures) are per connection: log and go on.
    server.on('error', (err) => this.#deps.log.debug({ err: errorMessage(err) }, 'smtp connection error'));
    tls.onChange((p) => server.updateSecureContext({ key: p.key, cert: p.cert }));
    return server;
  }

  #onConnect(session: SMTPServerSession, cb: Callback): void {
    if (this.#shuttingDown) {
      cb(REPLIES.shuttingDown());
      return;
    }
    if (!this.#perIp.acquire(session.remoteAddress)) {
      this.#deps.log.warn({ conn: session.id, ip: session.remoteAddress }, 'too many connections from client');
      cb(REPLIES.tooManyConnectionsFromIp());
      return;
    }
    const log = this.#deps.log.child({ conn: session.id });
    this.#conns.set(session.id, { log, txn: newTxn(), inData: false, principal: null });
    log.info({ ip: session.remoteAddress, port: session.remotePort, local: session.localPort }, 'smtp connect');
    const hygiene = this.#deps.hygiene;
    if (this.#submission || !hygiene) {
      cb();
      return;
    }
    // Connection stage: DNS blocklists. A listed client waits a little before its 554 (bots
    // that hammer get slowed down), every other client is greeted at once.
    hygiene.atConnect(session.remoteAddress).then(
      (listing) => {
        if (!listing) return cb();
        log.warn({ ip: session.remoteAddress, zone: listing.zone, reason: listing.reason }, 'client refused: DNSBL');
        setTimeout(
          () => cb(REPLIES.dnsblListed(session.remoteAddress, listing.zone, listing.reason)),
          this.#deps.config.hygiene.dnsbl_delay,
        ).unref();
      },
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'DNSBL check failed; client accepted');
        cb();
      },
    );
  }

  #onClose(session: SMTPServerSession): void {
    const state = this.#conns.get(session.id);
    if (!state) return; // refused in onConnect: nothing was counted
    this.#conns.delete(session.id);
    this.#perIp.release(session.remoteAddress);
    state.log.info('smtp disconnect');
  }

  /** RFC 4954: AUTH PLAIN / LOGIN through the shared Authenticator (canonical identity, fair
   *  throttling, cache, bounded hashing). 535 5.7.8 for wrong credentials; 454 4.7.0 (RFC 4954
   *  §6, temporary) when this address and account failed too often or too many logins wait. */
  #onAuth(auth: SMTPServerAuthentication, session: SMTPServerSession, cb: AuthCallback): void {
    const state = this.#conns.get(session.id);
    const authenticator = this.#deps.authenticator;
    if (!authenticator) {
      cb(REPLIES.localError());
      return;
    }
    const conn = state?.log.bindings().conn;
    authenticator
      .login({
        service: 'submission',
        ip: session.remoteAddress,
        username: auth.username ?? '',
        password: auth.password ?? '',
        mechanism: auth.method,
        ...(typeof conn === 'string' ? { conn } : {}),
      })
      .then(
        (result) => {
          if (!result.ok) {
            const refusal = {
              failed: REPLIES.authFailed,
              throttled: REPLIES.authBlocked,
              busy: () => reply(454, '4.7.0', 'Temporary authentication failure, try again later'),
            }[result.reason];
            cb(refusal());
            return;
          }
          if (state) state.principal = result.principal;
          state?.log.info({ user: result.principal.accountId, method: auth.method }, 'authenticated');
          cb(null, { user: result.principal.accountId });
        },
        (err: unknown) => {
          state?.log.error({ err: errorMessage(err) }, 'auth failed unexpectedly');
          cb(REPLIES.localError());
        },
      );
  }

  /** Runs an async handler; any unexpected error becomes 451 4.3.0 and is logged. */
  #guard(session: SMTPServerSession, cb: Callback, fn: () => Promise<void>): void {
    fn().then(
      () => cb(),
      (err: unknown) => {
        if (isReply(err)) return cb(err);
        this.#state(session).log.error({ err: errorMessage(err) }, 'smtp handler failed');
        cb(REPLIES.localError());
      },
    );
  }

  #state(session: SMTPServerSession): ConnState {
    const s = this.#conns.get(session.id);
    if (!s) throw new Error('no state for connection');
    return s;
  }

  async #onMailFrom(address: string, session: SMTPServerSession): Promise<void> {
    const state = this.#state(session);
    state.txn = newTxn(); // MAIL starts a new transaction (RFC 5321 §3.3)
    if (address !== '' && !session.envelope.smtpUtf8 && hasNonAscii(address)) {
      throw REPLIES.utf8NeedsSmtputf8();
    }
    const parsed = address === '' ? null : parseAddress(address);
    if (address !== '' && parsed === null) throw REPLIES.badSenderSyntax();
    if (!this.#submission) return;
    const principal = state.principal;
    if (!principal) throw REPLIES.authRequired(); // smtp-server checks first; this is the backstop
    // RFC 6409 §6.1: the envelope sender must be one of the user's addresses. A null sender
    // (RFC 8098 MDNs) is allowed; the From: check at DATA still applies.
    if (parsed && !(await this.#deps.directory.maySendAs(principal, parsed))) {
      state.log.warn({ user: principal.accountId, from: address }, 'sender refused: not owned');
      throw REPLIES.senderNotOwned();
    }
  }

  async #onRcptTo(raw: string, session: SMTPServerSession): Promise<void> {
    const state = this.#state(session);
    if (!session.envelope.smtpUtf8 && hasNonAscii(raw)) throw REPLIES.utf8NeedsSmtputf8();
    const addr = parseAddress(await this.#withPostmasterDomain(raw));
    if (addr === null) throw REPLIES.badRecipientSyntax();
    const key = formatAddress(addr);
    const { recipients, remote } = state.txn;
    const max = this.#deps.config.smtp.max_recipients;
    if (!recipients.has(key) && !remote.has(key) && recipients.size + remote.size >= max) {
      throw REPLIES.tooManyRecipients();
    }
    const res = await this.#deps.directory.resolveRecipient(addr);
    if (res.kind === 'unknown-domain') {
      if (this.#submission) {
        // An authenticated user may send anywhere: the queue delivers it.
        remote.set(key, { address: key });
        return;
      }
      state.log.info({ rcpt: key }, 'rcpt refused: not a local domain');
      throw REPLIES.relayDenied();
    }
    if (res.kind === 'unknown-user') {
      state.log.info({ rcpt: key }, 'rcpt refused: unknown user');
      throw REPLIES.userUnknown();
    }
    // RFC 9208 §5 / RFC 3463 5.2.2: a full mailbox is refused now, while the sender still has
    // the message (an alias with a full member is refused too: nothing is dropped silently).
    if (await this.#overQuota(res.accounts, 0)) {
      state.log.info({ rcpt: key }, 'rcpt refused: mailbox full');
      throw REPLIES.mailboxFull();
    }
    for (const r of res.remote) {
      const a = formatAddress(r);
      if (!remote.has(a)) remote.set(a, { address: a });
    }
    recipients.set(key, res.accounts);
  }

  /** True when one of the accounts has a quota that `extra` more bytes would exceed (or it is
   *  already at its limit when extra is 0). */
  async #overQuota(accounts: readonly AccountId[], extra: number): Promise<boolean> {
    for (const a of accounts) {
      const limit = await this.#deps.directory.quota(a);
      if (limit === null) continue;
      const used = await this.#deps.store.usage(a);
      if (extra === 0 ? used >= limit : used + extra > limit) return true;
    }
    return false;
  }

  /** RFC 5321 §4.1.1.3: a bare "<Postmaster>" (any case) is postmaster of our own domain. */
  async #withPostmasterDomain(raw: string): Promise<string> {
    if (raw.toLowerCase() !== 'postmaster') return raw;
    const host = this.#deps.config.hostname;
    const domain = await this.#deps.directory.postmasterDomain([host.slice(host.indexOf('.') + 1), host]);
    return domain ? `postmaster@${domain}` : raw;
  }

  #onData(stream: SMTPServerDataStream, session: SMTPServerSession, cb: DataCallback): void {
    const state = this.#conns.get(session.id);
    if (!state) {
      stream.resume();
      stream.on('end', () => cb(REPLIES.localError()));
      return;
    }
    state.inData = true;
    const msgId = newId('m');
    const log = state.log.child({ msg_id: msgId });
    this.#receive(stream, session, msgId, log).then(
      (reply) => {
        state.inData = false;
        if (typeof reply === 'string') cb(null, reply);
        else cb(reply);
      },
      (err: unknown) => {
        state.inData = false;
        log.error({ err: errorMessage(err) }, 'delivery failed');
        cb(REPLIES.localError());
      },
    );
  }

  /** Spools the message, checks it, delivers every copy; returns the reply. */
  async #receive(
    stream: SMTPServerDataStream,
    session: SMTPServerSession,
    msgId: string,
    log: Logger,
  ): Promise<string | SmtpReplyError> {
    const { store, config } = this.#deps;
    const sub = this.#submission;
    const started = performance.now();
    const spool = store.createSpool();
    const bare = new BareNewlineDetector();
    const crlf = sub ? new CrlfNormalizer() : null;
    const headers = new HeaderCapture(LIMITS.smtp.maxHeaderBlock);
    const write = async (chunk: Buffer) => {
      headers.feed(chunk);
      await spool.write(chunk);
    };
    try {
      for await (const raw of stream as AsyncIterable<Buffer>) {
        if (crlf) {
          // Submission: a sloppy client's bare LF/CR become CRLF (we re-send the bytes, so
          // nothing ambiguous leaves here). Inbound: refused whole, see line-endings.ts.
          if (!stream.sizeExceeded) await write(crlf.push(raw));
          continue;
        }
        bare.feed(raw);
        // Past the limit or after a bare newline the rest is only drained, never stored.
        if (!stream.sizeExceeded && !bare.found) await write(raw);
      }
      if (crlf && !stream.sizeExceeded) await write(crlf.end());
    } catch (err) {
      await spool.abort();
      throw err; // the client went away mid-DATA; smtp-server sends nothing more
    }
    if (stream.sizeExceeded) {
      await spool.abort();
      log.info({ size: stream.byteLength }, 'message refused: too big');
      return REPLIES.tooBig(sub ? config.submission.max_message_size : config.smtp.max_message_size);
    }
    if (!crlf && bare.end()) {
      await spool.abort();
      log.warn('message refused: bare CR or LF');
      return REPLIES.bareNewline();
    }
    const fields = headerFields(headers.result().block);
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
      const checked = await this.#checkAuthor(fields, session, log);
      if (typeof checked !== 'string') {
        await spool.abort();
        return checked;
      }
      added = checked;
    }
    const headerBlock = headers.result().block;
    const spooled = await spool.finish();
    let msg = spooled;
    try {
      const state = this.#state(session);
      const localAccounts = [...new Set([...state.txn.recipients.values()].flat())];
      if (await this.#overQuota(localAccounts, spooled.size)) {
        log.info({ size: spooled.size }, 'message refused: a mailbox would exceed its quota');
        return REPLIES.mailboxFull();
      }
      const received = this.#received(session, msgId);
      const returnPath = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
      // Port 25: SPF, DKIM, DMARC -> refuse, Junk or deliver, and our Authentication-Results.
      let auth = '';
      let junk: ReadonlySet<AccountId> = new Set();
      const hygiene = this.#deps.hygiene;
      if (!sub && hygiene) {
        const outcome = await hygiene.atBody({
          message: spooled,
          headerBlock,
          ip: session.remoteAddress,
          helo: session.hostNameAppearsAs || '',
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
        smtputf8: session.envelope.smtpUtf8 === true,
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

  /** Submission: From:/Sender: must be the user's; returns the header lines to add, or a refusal. */
  async #checkAuthor(
    fields: readonly HeaderField[],
    session: SMTPServerSession,
    log: Logger,
  ): Promise<string | SmtpReplyError> {
    const principal = this.#state(session).principal;
    if (!principal) return REPLIES.authRequired();
    const authors = authorAddresses(fields);
    if (!authors.ok) {
      log.info({ reason: authors.reason }, 'message refused: bad From header');
      return REPLIES.badFromHeader();
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

  #received(session: SMTPServerSession, msgId: string): string {
    const { recipients, remote } = this.#state(session).txn;
    const single = recipients.size + remote.size === 1 ? [...recipients.keys(), ...remote.keys()][0] : undefined;
    const tlsInfo = session.tlsOptions;
    return receivedHeader({
      helo: session.hostNameAppearsAs || 'unknown',
      clientHostname: clientHostname(session),
      clientIp: session.remoteAddress,
      byHost: this.#deps.config.hostname,
      protocol: protocolName({
        ehlo: session.openingCommand === 'EHLO',
        tls: session.secure,
        utf8: session.envelope.smtpUtf8 === true,
        auth: this.#submission && session.user !== undefined,
      }),
      id: msgId,
      tls: tlsInfo ? { version: tlsInfo.version, cipher: tlsInfo.name } : null,
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

  /** Stops listening and ends every connection (see the header comment). */
  async close(): Promise<void> {
    this.#shuttingDown = true;
    const grace = this.#deps.config.server.shutdown_grace;
    const deadline = Date.now() + grace;
    const closed = this.#servers.map((s) => new Promise<void>((resolve) => s.close(() => resolve())));
    // smtp-server's close() waits up to closeTimeout and then sends 421 to whoever is left.
    // We end idle connections at once and let those in DATA finish first.
    const sweep = () => {
      for (const server of this.#servers) {
        for (const conn of server.connections) {
          const state = this.#conns.get(conn.id);
          if (state?.inData && Date.now() < deadline) continue;
          endWith421(conn);
        }
      }
    };
    sweep();
    const timer = setInterval(sweep, 50);
    try {
      await Promise.all(closed);
    } finally {
      clearInterval(timer);
    }
  }
}

type AuthCallback = (err: Error | null | undefined, response?: SMTPServerAuthenticationResponse) => void;

// RFC 5321 §4.1.1.11: a MAIL/RCPT parameter we do not support gets 555. smtp-server accepts any
// parameter, including those of extensions we do not advertise (DSN's RET/ENVID/NOTIFY/ORCPT).
const MAIL_PARAMS: Readonly<Record<string, (v: string | true) => boolean>> = {
  SIZE: (v) => typeof v === 'string' && /^\d{1,20}$/.test(v), // RFC 1870
  BODY: (v) => typeof v === 'string' && /^(7BIT|8BITMIME)$/i.test(v), // RFC 6152; no BINARYMIME
  SMTPUTF8: (v) => v === true, // RFC 6531
};
const RCPT_PARAMS: Readonly<Record<string, (v: string | true) => boolean>> = {};

function checkParams(args: Readonly<Record<string, string | true>> | false, allowed: typeof MAIL_PARAMS): void {
  for (const [key, value] of Object.entries(args || {})) {
    const ok = allowed[key.toUpperCase()];
    if (!ok) throw REPLIES.unsupportedParameter(key);
    if (!ok(value)) throw REPLIES.badParameter(key);
  }
}

function endWith421(conn: SMTPConnection): void {
  if (conn._closing || conn._closed) return;
  const r = REPLIES.shuttingDown();
  conn.send(r.responseCode, r.message);
  conn.close();
}

function clientHostname(session: SMTPServerSession): string | null {
  const h = session.clientHostname;
  // smtp-server puts "[ip]" there when the reverse lookup found nothing.
  return h && !h.startsWith('[') ? h : null;
}

function isReply(e: unknown): e is SmtpReplyError {
  return e instanceof Error && typeof (e as Partial<SmtpReplyError>).responseCode === 'number';
}
