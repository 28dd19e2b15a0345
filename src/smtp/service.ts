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
// The protocol is our own (connection.ts over wire/, issue #12): this file is the binding
//   between the session (SessionPolicy callbacks) and the acceptance stages in accept/
//   (pure decisions where possible; DATA runs through accept/pipeline.ts), plus the listeners
//   (docs/architecture.md §3).
//
// Invariants:
// - 250 after DATA only once every local copy is durable and the remote part is queued
//   durably (Dispatcher.dispatch resolved); any failure is a 451 4.3.0, never a 5xx and never
//   a lost message.
// - One client's failure never touches another's: all handler errors become replies.
// - Shutdown: listeners close at once; a connection outside DATA gets 421 at once; a
//   transaction in DATA may finish within the grace period, then gets 421.

import type { AddressInfo, Server } from 'node:net';
import tls from 'node:tls';
import type { Address } from '../core/address.ts';
import { errorMessage } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { type ListenOptions, listenOn } from '../core/listen.ts';
import { countTls } from '../core/metrics.ts';
import { networkLimits } from '../defense/rate-limits.ts';
import { Networks } from '../hygiene/networks.ts';
import { SrsError } from '../srs/srs.ts';
import { refusalReply } from './accept/decision.ts';
import { greylistable, greylistDecision } from './accept/greylist.ts';
import { senderOwnership, senderSyntax } from './accept/mail.ts';
import { AcceptPipeline } from './accept/pipeline.ts';
import { overQuota } from './accept/quota.ts';
import { rateDecision } from './accept/rate.ts';
import {
  addRecipient,
  postmasterCandidates,
  type Resolved,
  recipientLimit,
  recipientQuota,
  recipientSyntax,
  resolution,
} from './accept/rcpt.ts';
import { type SrsRecipient, type SrsRefusal, srsRecipient } from './accept/srs.ts';
import { SmtpAccess } from './access.ts';
import { type SessionPolicy, SmtpConnection } from './connection.ts';
import { type ConnState, isReply, newTxn, type SmtpDeps, type SmtpSession } from './context.ts';
import { NO_RCPT_DSN, type RcptDsn } from './dsn-params.ts';
import { type Client, ConnectionGate } from './gate.ts';
import type { MessageStream } from './message-stream.ts';
import { REPLIES, reply, type SmtpReplyError } from './replies.ts';
import type { EsmtpParam } from './wire/command.ts';

export type { SmtpDeps, SmtpRole, SmtpSession } from './context.ts';

export class SmtpService implements SessionPolicy {
  readonly #deps: SmtpDeps;
  readonly #submission: boolean;
  readonly #listeners: Server[] = [];
  readonly #conns = new Map<string, { conn: SmtpConnection; state: ConnState }>();
  readonly #gate: ConnectionGate;
  readonly #pipeline: AcceptPipeline;
  #context: tls.SecureContext;
  #shuttingDown = false;

  constructor(deps: SmtpDeps) {
    this.#deps = deps;
    this.#submission = deps.role === 'submission';
    const { smtp, submission } = deps.config;
    const trustedNets = new Networks(deps.config.hygiene.trusted_networks);
    // Trusted networks and the IP allow list are not counted against their network.
    const trusted = (ip: string) => trustedNets.has(ip) || deps.access?.verdict(ip).kind === 'allow';
    this.#gate = new ConnectionGate({
      log: deps.log,
      service: this.#submission ? 'submission' : 'smtp',
      access: deps.access,
      offences: deps.offences,
      tlsFailed: () => countTls(this.#submission ? 'submission' : 'smtp', null),
      maxConnections: smtp.max_connections,
      maxConnectionsPerIp: this.#submission ? submission.max_connections_per_ip : smtp.max_connections_per_ip,
      networks: networkLimits(
        deps.config.rate_limits,
        this.#submission ? submission.max_connections_per_ip : smtp.max_connections_per_ip,
      ),
      networkExempt: trusted,
      slots: deps.slots,
      errorMemory: deps.errorMemory,
      timeout: smtp.timeout,
      minDataRate: smtp.min_data_rate,
      maxSessionMs: smtp.max_session_time,
      loginTimeout: this.#submission ? submission.login_timeout : null,
      softErrorLimit: smtp.soft_error_limit,
      hardErrorLimit: smtp.hard_error_limit,
      errorDelay: smtp.error_delay,
      rememberErrors: !this.#submission,
      ...(deps.connectionRate ? { rate: deps.connectionRate } : {}),
    });
    this.#pipeline = new AcceptPipeline(deps);
    const pair = deps.tls.current;
    this.#context = tls.createSecureContext({ key: pair.key, cert: pair.cert });
    deps.tls.onChange((p) => {
      this.#context = tls.createSecureContext({ key: p.key, cert: p.cert });
    });
  }

  /** Starts one listener per address (implicit TLS for `secure`); resolves with the bound
   *  addresses. `reusePort` (Node >= 22.12, Linux/FreeBSD) lets several worker threads or
   *  processes listen on the same port, the kernel spreading the connections. */
  async listen(addresses: readonly string[], secure = false, opts: ListenOptions = {}): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const a of addresses) {
      const listener = this.#gate.listener(this.#accept, secure, () => this.#context);
      this.#listeners.push(listener);
      bound.push(await listenOn(listener, a, opts));
    }
    return bound;
  }

  readonly #accept = (socket: import('node:net').Socket, client: Client, secure: boolean): void => {
    const { config, resolver } = this.#deps;
    const sub = this.#submission;
    const log = this.#deps.log.child({ conn: client.id });
    // [log] access: one line per transaction unless "off" (docs/logging.md).
    const accessLog = config.log.access === 'off' ? null : log;
    const conn = new SmtpConnection(socket, client, secure, {
      hostname: config.hostname,
      banner: sub ? 'arcline submission' : 'arcline',
      submission: sub,
      maxMessageSize: sub ? config.submission.max_message_size : config.smtp.max_message_size,
      greetingDelay: sub ? 0 : config.smtp.greeting_delay,
      gate: this.#gate,
      policy: this,
      tlsContext: () => this.#context,
      access: (s) => new SmtpAccess(sub ? 'submission' : 'smtp', accessLog, s),
      reverse: resolver
        ? (ip) =>
            nullAfter(
              resolver(ip).then((names) => names[0] ?? null),
              LIMITS.smtp.reverseLookupMs,
            )
        : null,
    });
    this.#conns.set(conn.id, {
      conn,
      state: { log, txn: newTxn(), inData: false, principal: null, hadRecipient: false },
    });
    log.info({ ip: conn.remoteAddress, port: conn.remotePort, local: conn.localPort }, 'smtp connect');
    conn.start();
  };

  /** SessionPolicy: the connection stage. DNS blocklists on port 25: a listed client waits a
   *  little before its 554 (bots that hammer get slowed down), every other client is greeted
   *  at once. */
  connect(s: SmtpSession): Promise<SmtpReplyError | null> | null {
    if (this.#shuttingDown) return Promise.resolve(REPLIES.shuttingDown());
    const hygiene = this.#deps.hygiene;
    if (this.#submission || !hygiene) return null;
    // The IP allow list skips the DNS blocklists (docs/spam.md).
    if (this.#deps.access?.verdict(s.remoteAddress).kind === 'allow') return null;
    const log = this.#state(s).log;
    return hygiene.atConnect(s.remoteAddress).then(
      (listing) => {
        if (!listing) return null;
        log.warn({ ip: s.remoteAddress, zone: listing.zone, reason: listing.reason }, 'client refused: DNSBL');
        return new Promise<SmtpReplyError>((resolve) =>
          setTimeout(
            () => resolve(REPLIES.dnsblListed(s.remoteAddress, listing.zone, listing.reason)),
            this.#deps.config.hygiene.dnsbl_delay,
          ).unref(),
        );
      },
      (err: unknown) => {
        log.error({ err: errorMessage(err) }, 'DNSBL check failed; client accepted');
        return null;
      },
    );
  }

  closed(s: SmtpSession): void {
    const entry = this.#conns.get(s.id);
    if (!entry) return;
    this.#conns.delete(s.id);
    entry.conn.access?.closed();
    entry.state.log.info('smtp disconnect');
  }

  reset(s: SmtpSession): void {
    const entry = this.#conns.get(s.id);
    if (entry) entry.state.txn = newTxn();
  }

  mail(s: SmtpSession, address: string, _params: readonly EsmtpParam[]): Promise<void> {
    return this.#guard(s, () => this.#onMailFrom(address, s));
  }

  rcpt(s: SmtpSession, address: string, dsn: RcptDsn = NO_RCPT_DSN): Promise<void> {
    return this.#guard(s, () => this.#onRcptTo(address, s, dsn));
  }

  /** Any unexpected error becomes 451 4.3.0 and is logged. */
  async #guard(s: SmtpSession, fn: () => Promise<void>): Promise<void> {
    try {
      await fn();
    } catch (err) {
      if (isReply(err)) throw err;
      this.#state(s).log.error({ err: errorMessage(err) }, 'smtp handler failed');
      throw REPLIES.localError();
    }
  }

  #state(s: SmtpSession): ConnState {
    const e = this.#conns.get(s.id);
    if (!e) throw new Error('no state for connection');
    return e.state;
  }

  /** RFC 4954: AUTH PLAIN / LOGIN through the shared Authenticator (canonical identity, fair
   *  throttling, cache, bounded hashing). 535 5.7.8 for wrong credentials; 454 4.7.0 (RFC 4954
   *  §6, temporary) when this address and account failed too often or too many logins wait. */
  async auth(s: SmtpSession, mechanism: string, username: string, password: string): Promise<SmtpReplyError | null> {
    const state = this.#state(s);
    const authenticator = this.#deps.authenticator;
    if (!authenticator) return REPLIES.localError();
    try {
      const result = await authenticator.login({
        service: 'submission',
        ip: s.remoteAddress,
        username,
        password,
        mechanism,
        conn: s.id,
      });
      if (!result.ok) {
        const refusal = {
          failed: REPLIES.authFailed,
          throttled: REPLIES.authBlocked,
          busy: () => reply(454, '4.7.0', 'Temporary authentication failure, try again later'),
        }[result.reason];
        return refusal();
      }
      state.principal = result.principal;
      state.log.info({ user: result.principal.accountId, method: mechanism }, 'authenticated');
      return null;
    } catch (err) {
      state.log.error({ err: errorMessage(err) }, 'auth failed unexpectedly');
      return REPLIES.localError();
    }
  }

  /** MAIL: the mail stage (accept/mail.ts), with the ownership lookup on submission. */
  async #onMailFrom(address: string, session: SmtpSession): Promise<void> {
    const state = this.#state(session);
    state.txn = newTxn(); // MAIL starts a new transaction (RFC 5321 §3.3)
    const d = senderSyntax(address, session.smtpUtf8);
    if (d.kind === 'refuse') throw refusalReply(state.log, d);
    if (!this.#submission) return;
    const { principal } = state;
    const owned =
      principal !== null && d.sender !== null && (await this.#deps.directory.maySendAs(principal, d.sender));
    const o = senderOwnership(principal, d.sender, owned, address);
    if (o.kind === 'refuse') throw refusalReply(state.log, o);
    const rate = this.#deps.userRate;
    if (rate && principal) {
      const r = rateDecision(
        await rate.message(principal.accountId, session.remoteAddress),
        'message',
        principal.accountId,
      );
      if (r.kind === 'refuse') throw refusalReply(state.log, r);
    }
  }

  /** RCPT: the rcpt stage (accept/rcpt.ts) around its lookups: the postmaster domain, an SRS
   *  address of ours or the directory's resolution, the quota of the accounts it names. */
  async #onRcptTo(raw: string, session: SmtpSession, dsn: RcptDsn): Promise<void> {
    const state = this.#state(session);
    const { directory, config } = this.#deps;
    const postmaster = postmasterCandidates(raw, config.hostname);
    const domain = postmaster ? await directory.postmasterDomain(postmaster) : null;
    const syntax = recipientSyntax(raw, session.smtpUtf8, domain ? `postmaster@${domain}` : null);
    if (syntax.kind === 'refuse') throw refusalReply(state.log, syntax);
    const txn = state.txn;
    const limit = recipientLimit(txn.accepted, config.smtp.max_recipients);
    if (limit.kind === 'refuse') throw refusalReply(state.log, limit);
    const { address, key } = syntax;
    const r = await this.#resolve(raw, address, key);
    if (r.kind === 'refuse') {
      // Probing for users or for a relay counts towards a ban (defense/bans.ts), until the
      // session had a recipient accepted: a mailing list's stale addresses among good ones are
      // a sender's housekeeping, not an attack (its errors still count at the error limits).
      // An expired SRS address is a late bounce, no probe.
      if (!this.#submission && !state.hadRecipient && (!('offence' in r) || r.offence)) {
        this.#deps.offences?.offence(session.remoteAddress, 'unknown-recipient');
      }
      throw refusalReply(state.log, r);
    }
    if (r.accounts !== null && r.accounts.length > 0) {
      const q = recipientQuota(await overQuota(this.#deps, r.accounts, 0), key);
      if (q.kind === 'refuse') throw refusalReply(state.log, q);
    }
    await this.#limits(session, state, key);
    addRecipient(txn, key, r, dsn);
    state.hadRecipient = true;
  }

  /** Where a recipient goes. An SRS address of ours (a bounce of mail we forwarded, docs/srs.md)
   *  is reversed (accept/srs.ts) and goes on to the address it stands for: forwarded by the SRS
   *  address's domain (a sender, when not null, is rewritten again), or to the mailbox when
   *  that address is ours. Anything else, an address that is no SRS after all included: the
   *  directory. (`raw`: the address as the client wrote it, whose case the hash may need.) */
  async #resolve(raw: string, address: Address, key: string): Promise<Resolved | SrsRefusal> {
    const { srs, directory } = this.#deps;
    if (srs && (await srs.isOurs(raw, address.domain))) {
      let s: SrsRecipient | null;
      try {
        s = srsRecipient({ address: srs.reverse(raw) }, key);
      } catch (e) {
        if (!(e instanceof SrsError)) throw e;
        s = e.code === 'not-srs' ? null : srsRecipient({ error: e.code }, key);
      }
      if (s?.kind === 'refuse') return s;
      if (s) {
        const res = await directory.resolveRecipient(s.next);
        if (res.kind !== 'unknown-domain') return resolution(res, s.next, key, false);
        return { kind: 'continue', accounts: [], remote: [s.next], via: address.domain };
      }
    }
    return resolution(await directory.resolveRecipient(address), address, key, this.#submission);
  }

  /** RCPT of a deliverable recipient: greylisting on port 25, the user's recipient rate on
   *  submission. */
  async #limits(session: SmtpSession, state: ConnState, recipient: string): Promise<void> {
    const { greylist, userRate } = this.#deps;
    if (!this.#submission && greylist && greylistable(recipient)) {
      const sender = session.mailFrom ?? '';
      const ip = session.remoteAddress;
      const g = greylistDecision(await greylist.check({ ip, sender, recipient }), ip, sender, recipient);
      if (g.kind === 'refuse') throw refusalReply(state.log, g);
    }
    if (this.#submission && userRate && state.principal) {
      const user = state.principal.accountId;
      const r = rateDecision(await userRate.recipient(user, session.remoteAddress), 'recipient', user);
      if (r.kind === 'refuse') throw refusalReply(state.log, r);
    }
  }

  data(s: SmtpSession, message: MessageStream): Promise<string | SmtpReplyError> {
    const state = this.#state(s);
    state.inData = true;
    const msgId = newId('m');
    this.#conns.get(s.id)?.conn.access?.messageId(msgId);
    const log = state.log.child({ msg_id: msgId });
    return this.#pipeline.receive(message, s, state, msgId, log).then(
      (r) => {
        state.inData = false;
        return r;
      },
      (err: unknown) => {
        state.inData = false;
        log.error({ err: errorMessage(err) }, 'delivery failed');
        return REPLIES.localError();
      },
    );
  }

  /** Stops listening and ends every connection (see the header comment). */
  /** Open sessions (the node's heartbeat, db/nodes.ts). */
  get connections(): number {
    return this.#conns.size;
  }

  async close(): Promise<void> {
    this.#shuttingDown = true;
    this.#gate.stop();
    const grace = this.#deps.config.server.shutdown_grace;
    const deadline = Date.now() + grace;
    // Our listeners close once every socket they accepted is closed.
    const closed = this.#listeners.map((l) => new Promise<void>((resolve) => l.close(() => resolve())));
    // Idle connections get 421 at once; those receiving a message may finish first.
    const sweep = () => {
      for (const { conn } of this.#conns.values()) {
        if (conn.receiving && Date.now() < deadline) continue;
        conn.terminate(REPLIES.shuttingDown());
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

/** `p`'s value, or null when it fails or takes longer than `ms` (the client's host name is only
 *  for the Received header: never worth a wait). */
function nullAfter<T>(p: Promise<T | null>, ms: number): Promise<T | null> {
  return new Promise((resolve) => {
    const t = setTimeout(() => resolve(null), ms);
    t.unref();
    p.then(
      (v) => {
        clearTimeout(t);
        resolve(v);
      },
      () => {
        clearTimeout(t);
        resolve(null);
      },
    );
  });
}
