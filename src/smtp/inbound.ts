// Inbound SMTP (the MX, port 25): receives mail for our local domains and delivers it to the
// store. No AUTH and no relaying here: a recipient outside our domains is refused at RCPT
// (RFC 5321 §3.6.2, no open relay), an unknown user too (never accept first and bounce later).
//
// Invariants:
// - 250 after DATA only once every recipient's copy is durable (MailStore.deliver resolved);
//   any storage failure is a 451 4.3.0, never a 5xx and never a lost message.
// - A message with a bare CR or LF is refused whole (smuggling, see line-endings.ts).
// - One client's failure never touches another's: all handler errors become replies.
// - Shutdown: listeners close at once; a connection outside DATA gets 421 at once; a
//   transaction in DATA may finish within the grace period, then gets 421.

import type { Resolver } from 'node:dns';
import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerDataStream, type SMTPServerOptions, type SMTPServerSession } from 'smtp-server';
import type { SMTPConnection } from 'smtp-server/lib/smtp-connection.js';
import type { Config } from '../config/schema.ts';
import { parseListen } from '../config/schema.ts';
import { formatAddress, hasNonAscii, parseAddress } from '../core/address.ts';
import { ConnectionCounter } from '../core/connection-limits.ts';
import { errorMessage } from '../core/errors.ts';
import { type AccountId, newId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import type { Directory } from '../directory/types.ts';
import type { DeliveryTarget, MailStore } from '../store/types.ts';
import type { TlsManager } from '../tls/certs.ts';
import { BareNewlineDetector } from './line-endings.ts';
import { accepted, REPLIES, type SmtpReplyError } from './replies.ts';
import { installSmtpServerPatches } from './smtp-server-patches.ts';
import { protocolName, receivedHeader, traceHeaders } from './trace.ts';

export interface InboundDeps {
  readonly config: Config;
  readonly directory: Directory;
  readonly store: MailStore;
  readonly tls: TlsManager;
  readonly log: Logger;
  /** Reverse DNS for Received headers; null disables the lookup. */
  readonly resolver: Resolver | null;
}

/** What this service knows about a connection's current mail transaction. */
interface Transaction {
  /** Normalised recipient address -> accounts it delivers to. */
  readonly recipients: Map<string, readonly AccountId[]>;
}

interface ConnState {
  readonly log: Logger;
  txn: Transaction;
  inData: boolean;
}

type Callback = (err?: Error | null) => void;
type DataCallback = (err?: Error | null, message?: string) => void;

export class InboundSmtp {
  readonly #deps: InboundDeps;
  readonly #servers: SMTPServer[] = [];
  readonly #conns = new Map<string, ConnState>();
  readonly #perIp: ConnectionCounter;
  #shuttingDown = false;

  constructor(deps: InboundDeps) {
    this.#deps = deps;
    this.#perIp = new ConnectionCounter(deps.config.smtp.max_connections_per_ip);
    installSmtpServerPatches();
  }

  /** Starts one listener per address; resolves with the bound addresses. */
  async listen(addresses: readonly string[]): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const a of addresses) {
      const where = parseListen(a);
      if (!where) throw new Error(`bad listen address ${a}`);
      const server = this.#createServer();
      this.#servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.server.once('error', reject);
        server.listen(where.port, where.host, () => {
          server.server.off('error', reject);
          resolve();
        });
      });
      bound.push(server.server.address() as AddressInfo);
    }
    return bound;
  }

  #createServer(): SMTPServer {
    const { config, tls, resolver } = this.#deps;
    // greetingDelay is ours: see smtp-server-patches.ts.
    const options: SMTPServerOptions & { greetingDelay: number } = {
      name: config.hostname,
      banner: 'arcline ESMTP ready',
      key: tls.current.key,
      cert: tls.current.cert,
      size: config.smtp.max_message_size,
      disabledCommands: ['AUTH'],
      authOptional: true,
      hideENHANCEDSTATUSCODES: false, // RFC 2034; smtp-server hides it unless told
      hideDSN: true, // not advertised until DSN is really honoured (outbound queue, issue #4)
      hideREQUIRETLS: true,
      maxClients: config.smtp.max_connections,
      maxCommandLength: LIMITS.smtp.maxCommandLength,
      socketTimeout: config.smtp.timeout,
      greetingDelay: config.smtp.greeting_delay,
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
    this.#conns.set(session.id, { log, txn: { recipients: new Map() }, inData: false });
    log.info({ ip: session.remoteAddress, port: session.remotePort, local: session.localPort }, 'smtp connect');
    cb();
  }

  #onClose(session: SMTPServerSession): void {
    const state = this.#conns.get(session.id);
    if (!state) return; // refused in onConnect: nothing was counted
    this.#conns.delete(session.id);
    this.#perIp.release(session.remoteAddress);
    state.log.info('smtp disconnect');
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
    state.txn = { recipients: new Map() }; // MAIL starts a new transaction (RFC 5321 §3.3)
    if (address !== '' && !session.envelope.smtpUtf8 && hasNonAscii(address)) {
      throw REPLIES.utf8NeedsSmtputf8();
    }
    if (address !== '' && parseAddress(address) === null) throw REPLIES.badSenderSyntax();
  }

  async #onRcptTo(raw: string, session: SMTPServerSession): Promise<void> {
    const state = this.#state(session);
    if (!session.envelope.smtpUtf8 && hasNonAscii(raw)) throw REPLIES.utf8NeedsSmtputf8();
    const addr = parseAddress(await this.#withPostmasterDomain(raw));
    if (addr === null) throw REPLIES.badRecipientSyntax();
    const key = formatAddress(addr);
    const recipients = state.txn.recipients;
    if (!recipients.has(key) && recipients.size >= this.#deps.config.smtp.max_recipients) {
      throw REPLIES.tooManyRecipients();
    }
    const res = await this.#deps.directory.resolveRecipient(addr);
    if (res.kind === 'unknown-domain') {
      state.log.info({ rcpt: key }, 'rcpt refused: not a local domain');
      throw REPLIES.relayDenied();
    }
    if (res.kind === 'unknown-user') {
      state.log.info({ rcpt: key }, 'rcpt refused: unknown user');
      throw REPLIES.userUnknown();
    }
    if (res.remote.length > 0) {
      // Forwarding needs the outbound queue (issue #4). Until then the sender keeps the message
      // and retries: a temporary refusal loses nothing, an accept-then-drop would.
      state.log.warn({ rcpt: key, remote: res.remote.map(formatAddress) }, 'rcpt deferred: remote forwarding');
      throw REPLIES.forwardingUnavailable();
    }
    recipients.set(key, res.accounts);
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
    const started = performance.now();
    const spool = store.createSpool();
    const bare = new BareNewlineDetector();
    try {
      for await (const chunk of stream as AsyncIterable<Buffer>) {
        bare.feed(chunk);
        // Past the limit or after a bare newline the rest is only drained, never stored.
        if (!stream.sizeExceeded && !bare.found) await spool.write(chunk);
      }
    } catch (err) {
      await spool.abort();
      throw err; // the client went away mid-DATA; smtp-server sends nothing more
    }
    if (stream.sizeExceeded) {
      await spool.abort();
      log.info({ size: stream.byteLength }, 'message refused: too big');
      return REPLIES.tooBig(config.smtp.max_message_size);
    }
    if (bare.end()) {
      await spool.abort();
      log.warn('message refused: bare CR or LF');
      return REPLIES.bareNewline();
    }
    const msg = await spool.finish();
    try {
      const targets = this.#targets(session, msgId);
      const copies = await store.deliver(targets, msg);
      log.info(
        {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          rcpts: [...this.#state(session).txn.recipients.keys()],
          accounts: copies.map((c) => c.account),
          size: msg.size,
          ms: Math.round(performance.now() - started),
        },
        'message delivered',
      );
      return accepted(msgId);
    } finally {
      await msg.dispose();
    }
  }

  /** One target per distinct account, each with its own trace headers. */
  #targets(session: SMTPServerSession, msgId: string): DeliveryTarget[] {
    const { recipients } = this.#state(session).txn;
    const accounts = new Set<AccountId>();
    for (const list of recipients.values()) for (const a of list) accounts.add(a);
    const single = recipients.size === 1 ? [...recipients.keys()][0] : undefined;
    const tlsInfo = session.tlsOptions;
    const received = receivedHeader({
      helo: session.hostNameAppearsAs || 'unknown',
      clientHostname: clientHostname(session),
      clientIp: session.remoteAddress,
      byHost: this.#deps.config.hostname,
      protocol: protocolName({
        ehlo: session.openingCommand === 'EHLO',
        tls: session.secure,
        utf8: session.envelope.smtpUtf8 === true,
      }),
      id: msgId,
      tls: tlsInfo ? { version: tlsInfo.version, cipher: tlsInfo.name } : null,
      forRecipient: single ?? null,
      date: new Date(),
    });
    const returnPath = session.envelope.mailFrom ? session.envelope.mailFrom.address : '';
    return [...accounts].map((account) => ({
      account,
      prefix: traceHeaders({ returnPath, deliveredTo: account, received }),
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
