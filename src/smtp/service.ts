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
// Hostile clients (gate.ts): connection limits at accept, deadlines for a command line, a DATA,
//   a TLS handshake, the login (submission) and the session; errors slow a session and then end
//   it. Every RCPT counts against max_recipients, repeated addresses included.
//
// Invariants:
// - 250 after DATA only once every local copy is durable and the remote part is queued
//   durably (Dispatcher.dispatch resolved); any failure is a 451 4.3.0, never a 5xx and never
//   a lost message.
// - One client's failure never touches another's: all handler errors become replies.
// - Shutdown: listeners close at once; a connection outside DATA gets 421 at once; a
//   transaction in DATA may finish within the grace period, then gets 421.

import type { AddressInfo, Server } from 'node:net';
import {
  SMTPServer,
  type SMTPServerAuthentication,
  type SMTPServerAuthenticationResponse,
  type SMTPServerDataStream,
  type SMTPServerOptions,
  type SMTPServerSession,
} from 'smtp-server';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import { formatAddress, hasNonAscii, parseAddress } from '../core/address.ts';
import { errorMessage } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { listenOn } from '../core/listen.ts';
import { type ConnState, isReply, newTxn, type SmtpDeps } from './context.ts';
import { ConnectionGate } from './gate.ts';
import { MessageReceiver, overQuota } from './receive.ts';
import { REPLIES, reply } from './replies.ts';
import { installSmtpServerPatches } from './smtp-server-patches.ts';

export type { SmtpDeps, SmtpRole } from './context.ts';

type Callback = (err?: Error | null) => void;
type DataCallback = (err?: Error | null, message?: string) => void;

export class SmtpService {
  readonly #deps: SmtpDeps;
  readonly #submission: boolean;
  readonly #servers: SMTPServer[] = [];
  readonly #listeners: Server[] = [];
  readonly #conns = new Map<string, ConnState>();
  readonly #gate: ConnectionGate;
  readonly #receiver: MessageReceiver;
  #shuttingDown = false;

  constructor(deps: SmtpDeps) {
    this.#deps = deps;
    this.#submission = deps.role === 'submission';
    const { smtp, submission } = deps.config;
    this.#gate = new ConnectionGate({
      log: deps.log,
      maxConnections: smtp.max_connections,
      maxConnectionsPerIp: this.#submission ? submission.max_connections_per_ip : smtp.max_connections_per_ip,
      timeout: smtp.timeout,
      minDataRate: smtp.min_data_rate,
      maxSessionMs: smtp.max_session_time,
      loginTimeout: this.#submission ? submission.login_timeout : null,
      softErrorLimit: smtp.soft_error_limit,
      hardErrorLimit: smtp.hard_error_limit,
      errorDelay: smtp.error_delay,
      rememberErrors: !this.#submission,
      ...(deps.slots ? { slots: deps.slots } : {}),
    });
    this.#receiver = new MessageReceiver(deps, this.#gate);
    installSmtpServerPatches();
  }

  /** Starts one listener per address (implicit TLS for `secure`); resolves with the bound addresses. */
  async listen(
    addresses: readonly string[],
    secure = false,
    opts: { reusePort?: boolean } = {},
  ): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const a of addresses) {
      const server = this.#createServer(secure);
      this.#servers.push(server);
      const listener = this.#gate.listener(server, secure);
      this.#listeners.push(listener);
      bound.push(await listenOn(listener, a, opts));
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
      onSecure: (socket, session, cb) => {
        cb();
        this.#gate.secured(session.id, socket);
      },
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
    // The connection limits were applied when the socket was accepted (gate.ts).
    this.#gate.started(session);
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
    if (!state) return; // refused in onConnect
    this.#conns.delete(session.id);
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

  /** Runs an async handler; any unexpected error becomes 451 4.3.0 and is logged. A client
   *  past the soft error limit waits before each reply (gate.ts). */
  #guard(session: SMTPServerSession, cb: Callback, fn: () => Promise<void>): void {
    const answer = (err?: Error) => {
      const wait = this.#gate.penalty(session.id);
      if (wait > 0) setTimeout(() => cb(err), wait);
      else cb(err);
    };
    fn().then(
      () => answer(),
      (err: unknown) => {
        if (isReply(err)) return answer(err);
        this.#state(session).log.error({ err: errorMessage(err) }, 'smtp handler failed');
        answer(REPLIES.localError());
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
    // RFC 5321 §4.5.3.1.8: every RCPT counts, a repeated address too (else one message could
    // carry any number of RCPT commands).
    if (state.txn.accepted >= this.#deps.config.smtp.max_recipients) throw REPLIES.tooManyRecipients();
    const res = await this.#deps.directory.resolveRecipient(addr);
    if (res.kind === 'unknown-domain') {
      if (this.#submission) {
        // An authenticated user may send anywhere: the queue delivers it.
        remote.set(key, { address: key });
        state.txn.accepted++;
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
    if (await overQuota(this.#deps, res.accounts, 0)) {
      state.log.info({ rcpt: key }, 'rcpt refused: mailbox full');
      throw REPLIES.mailboxFull();
    }
    for (const r of res.remote) {
      const a = formatAddress(r);
      if (!remote.has(a)) remote.set(a, { address: a });
    }
    recipients.set(key, res.accounts);
    state.txn.accepted++;
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
    this.#gate.dataStarted(session.id);
    const msgId = newId('m');
    const log = state.log.child({ msg_id: msgId });
    const answer = (err: Error | null, reply?: string) => {
      state.inData = false;
      const send = () => {
        cb(err, reply);
        this.#gate.transactionDone(session.id);
      };
      const wait = this.#gate.penalty(session.id);
      if (wait > 0) setTimeout(send, wait);
      else send();
    };
    this.#receiver.receive(stream, session, state, msgId, log).then(
      (reply) => (typeof reply === 'string' ? answer(null, reply) : answer(reply)),
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'delivery failed');
        answer(REPLIES.localError());
      },
    );
  }

  /** Stops listening and ends every connection (see the header comment). */
  async close(): Promise<void> {
    this.#shuttingDown = true;
    this.#gate.stop();
    const grace = this.#deps.config.server.shutdown_grace;
    const deadline = Date.now() + grace;
    // Our listeners close once every socket they accepted is closed; smtp-server's close()
    // makes its sessions answer 421 to any further command.
    const closed = this.#listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve())));
    for (const s of this.#servers) s.close();
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
    // Whatever is still open a moment after the deadline (a client that does not close its
    // side after our 421) is destroyed: shutdown never takes longer than the grace period.
    const last = setTimeout(() => this.#gate.destroyAll(), grace + 250);
    try {
      await Promise.all(closed);
    } finally {
      clearInterval(timer);
      clearTimeout(last);
      this.#gate.destroyAll();
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
