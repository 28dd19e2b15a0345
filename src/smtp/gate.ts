// Every connection of one SMTP service from accept to close, and the limits that hold
// whatever a client sends (issue #10). The policy lives here; its state is plain fields of a
// `Client`, one per connection, which the connection (connection.ts) updates as it reads
// commands and writes replies. No socket is wrapped or patched.
//
// - Connection limits at accept, before any work: per client address (IPv4, IPv6 /64) and in
//   total, through `ConnectionSlots` (core/connection-limits.ts; several worker threads share
//   one). A refused client gets its 421 on the plain listeners (nothing on implicit TLS, where
//   no byte can be written before a handshake that would cost us the CPU an attacker wants us
//   to spend) and its socket is destroyed after a short linger whatever it does: refused
//   connections are closed and forgotten. An over-limit client is looked at again after the
//   pending I/O of the same loop turn, so one that just closed its previous session (a client
//   that opens a connection per message) is not refused for a slot it was about to free.
//   The slots also count wider client networks ([rate_limits] concurrent_per_network), and an
//   admitted connection's rate per client network is asked (`rate`, defense/rate-limits.ts; in
//   an inbound thread the main thread answers) before its session starts: over it, 421 4.7.0.
// - A connection stops counting as soon as the server ends it (when its 221 after QUIT or its
//   421 is queued, before the client can read it) or the client ends its side; not when the
//   socket finally closes. (Issue #12: a client running exactly max_connections_per_ip
//   sessions with a new connection per message was refused while finished sessions still
//   counted.)
// - Deadlines, not only idle timeouts (RFC 5321 §4.5.3.2 gives the minimums; Postfix
//   smtpd_per_request_deadline and smtpd_min_data_rate the model): the next command line must
//   be complete within `timeout` of the server waiting for it; DATA within timeout +
//   received/min_data_rate; a TLS handshake within min(timeout, 60 s); a submission client
//   must have authenticated within login_timeout of connecting; a session ends after
//   max_session_time (a DATA in progress is answered first). 1 byte per second keeps nothing
//   alive. A sweep every LIMITS.smtp.deadlineSweepMs enforces them.
// - Errors (Postfix smtpd_soft_error_limit / smtpd_hard_error_limit): every 4xx/5xx reply a
//   client earns is counted; past the soft limit the service slows its replies (penalty()),
//   at the hard limit the session gets 421. On port 25 an address with a session past the soft
//   limit is remembered for a while: its next sessions start at the soft limit, so reconnecting
//   does not start afresh (a client that only makes the odd error is never slowed by it).

import net from 'node:net';
import tls from 'node:tls';
import {
  ConnectionCounter,
  type ConnectionSlots,
  type ErrorMemory,
  LocalErrorMemory,
  type NetworkLimit,
} from '../core/connection-limits.ts';
import { newId } from '../core/ids.ts';
import { peerAddress } from '../core/ip.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { accessRefused, rateLimited } from '../core/metrics.ts';
import type { NetworkAccess, OffenceSink } from '../defense/types.ts';
import { REPLIES, type SmtpReplyError } from './replies.ts';

export interface GateOptions {
  readonly log: Logger;
  /** 'smtp' or 'submission', for the metrics. */
  readonly service: 'smtp' | 'submission';
  /** The IP allow and deny lists and the bans, asked first at accept (defense/access.ts). */
  readonly access?: NetworkAccess | undefined;
  /** Where a session ended for too many errors is reported (defense/bans.ts). */
  readonly offences?: OffenceSink | undefined;
  /** An implicit-TLS handshake failed (arcline_tls_handshake_failures_total). */
  readonly tlsFailed?: () => void;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  /** Limits of wider client networks (used when the gate counts its own connections), and the
   *  clients they do not count (trusted networks). */
  readonly networks?: readonly NetworkLimit[];
  readonly networkExempt?: (ip: string) => boolean;
  /** Shared connection slots (several workers); a counter of our own when absent. */
  readonly slots?: ConnectionSlots | undefined;
  /** Shared memory of slowed clients (several workers); a map of our own when absent. */
  readonly errorMemory?: ErrorMemory | undefined;
  /** Command line and TLS handshake deadline. */
  readonly timeout: number;
  readonly minDataRate: number;
  readonly maxSessionMs: number;
  /** Submission: time to authenticate; null on port 25. */
  readonly loginTimeout: number | null;
  readonly softErrorLimit: number;
  readonly hardErrorLimit: number;
  readonly errorDelay: number;
  /** Remember addresses slowed for errors across their sessions (port 25). */
  readonly rememberErrors: boolean;
  /** Connection rate (defense/rate-limits.ts): the limit a new connection is over, or null. */
  readonly rate?: (ip: string) => Promise<string | null>;
}

export type Deadline = 'command' | 'data' | 'handshake' | 'login' | 'session';

/** What the gate needs of a connection to end it. */
export interface Closable {
  /** Sends `reply` (when a session exists) and closes. */
  terminate(reply: SmtpReplyError): void;
  /** Destroys the sockets at once. */
  destroy(): void;
}

/** The gate's state of one accepted connection. */
export class Client {
  readonly id = newId('c');
  readonly since = Date.now();
  readonly ip: string;
  conn: Closable | null = null;
  /** When the server began waiting for the next command line; 0 while it is busy with one. */
  waitingSince = 0;
  /** Set while the client sends a message. */
  data: { since: number; bytes: number } | null = null;
  /** A transaction is being received or decided: the session deadline waits for its reply. */
  busy = false;
  /** When a TLS handshake started; 0 when none is under way. */
  handshakeSince = 0;
  authenticated = false;
  errors = 0;
  overshoot = 0;
  /** The session deadline passed while busy: 421 right after the reply. */
  closeAfterReply = false;
  counted = true;
  ended = false;

  constructor(ip: string) {
    this.ip = ip;
  }

  /** Which deadline has passed, if any. */
  overdue(now: number, o: GateOptions): Deadline | null {
    if (this.handshakeSince && now - this.handshakeSince > Math.min(o.timeout, LIMITS.smtp.maxTlsHandshakeMs)) {
      return 'handshake';
    }
    const d = this.data;
    if (d && now > d.since + o.timeout + (d.bytes * 1000) / o.minDataRate) return 'data';
    if (this.waitingSince && now - this.waitingSince > o.timeout) return 'command';
    if (o.loginTimeout !== null && !this.authenticated && now - this.since > o.loginTimeout) return 'login';
    if (now - this.since > o.maxSessionMs) {
      if (!this.busy) return 'session';
      this.closeAfterReply = true;
    }
    return null;
  }
}

const DEADLINE_REPLIES: Record<Deadline, () => SmtpReplyError> = {
  command: REPLIES.commandTimeout,
  data: REPLIES.dataTimeout,
  handshake: REPLIES.commandTimeout,
  login: REPLIES.loginTimeout,
  session: REPLIES.sessionTimeout,
};

/** Called with each admitted connection: the socket carries plaintext (after the implicit TLS
 *  handshake on a secure listener). */
export type OnConnection = (socket: net.Socket, client: Client, secure: boolean) => void;

export class ConnectionGate {
  readonly #o: GateOptions;
  /** Per client address and in total (core/connection-limits, shared with IMAP). */
  readonly #slots: ConnectionSlots;
  readonly #clients = new Map<string, Client>();
  /** Client address (port 25) slowed for errors -> until when its sessions start slowed;
   *  oldest first. */
  readonly #memory: ErrorMemory;
  #closing = false;
  #sweep: NodeJS.Timeout | null = null;

  constructor(o: GateOptions) {
    this.#o = o;
    this.#slots =
      o.slots ?? new ConnectionCounter(o.maxConnectionsPerIp, o.maxConnections, o.networks, o.networkExempt);
    this.#memory = o.errorMemory ?? new LocalErrorMemory(LIMITS.smtp.errorMemoryEntries);
  }

  /** A listening socket whose admitted connections go to `onConnection`; implicit TLS
   *  (RFC 8314) with the context `context()` returns when `secure`. */
  listener(onConnection: OnConnection, secure: boolean, context: () => tls.SecureContext): net.Server {
    this.#sweep ??= setInterval(() => this.#check(), LIMITS.smtp.deadlineSweepMs).unref();
    // No Nagle (as for IMAP): a multi-part reply never waits for the client's delayed ACK.
    const server = net.createServer({ noDelay: true }, (socket) => {
      socket.on('error', () => socket.destroy());
      this.#admit(socket, secure, onConnection, context, true);
    });
    return server;
  }

  /** The session of a connection started; one from an address recently slowed for errors
   *  starts at the soft limit. */
  started(c: Client): void {
    if (!this.#o.rememberErrors) return;
    if (this.#memory.slowedUntil(c.ip) > Date.now()) c.errors = this.#o.softErrorLimit;
  }

  /** A reply we send: counts the client's errors; at the hard limit the session ends. */
  replied(c: Client, code: number, text: string): void {
    if (code < 400 || code === 421 || code === 451) return; // 451: our problem, not the client's
    if (code === 452 && text.startsWith('4.5.3') && ++c.overshoot <= LIMITS.smtp.recipientOvershootLimit) return;
    c.errors++;
    // Remembered as soon as it is slowed, so a client that gives up on a slowed session and
    // reconnects is slowed again at once.
    if (c.errors === this.#o.softErrorLimit && this.#o.rememberErrors) this.#remember(c.ip);
    if (c.errors === this.#o.hardErrorLimit) {
      this.#o.log.warn({ conn: c.id, ip: c.ip, errors: c.errors }, 'client disconnected: too many errors');
      this.#end(c, REPLIES.tooManyErrors());
      this.#o.offences?.offence(c.ip, 'protocol');
    }
  }

  dataStarted(c: Client): void {
    c.data = { since: Date.now(), bytes: 0 };
    c.busy = true;
    c.waitingSince = 0;
  }

  dataBytes(c: Client, n: number): void {
    if (c.data) c.data.bytes += n;
  }

  dataReceived(c: Client): void {
    c.data = null;
  }

  /** The reply to a transaction went out: a session past its deadline ends now. */
  transactionDone(c: Client): void {
    c.busy = false;
    if (c.closeAfterReply) this.#expire(c, 'session');
  }

  /** How long the next reply of a session waits: error_delay per error beyond the soft limit. */
  penalty(c: Client): number {
    if (c.errors < this.#o.softErrorLimit) return 0;
    return this.#o.errorDelay * (c.errors - this.#o.softErrorLimit + 1);
  }

  /** Stops taking connections: new ones are refused until the listeners are closed. */
  stop(): void {
    this.#closing = true;
  }

  /** Destroys every socket still open (the end of the shutdown grace period). */
  destroyAll(): void {
    for (const c of this.#clients.values()) c.conn?.destroy();
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  /** The connection no longer counts against the limits (221 queued, 421, the client's FIN). */
  release(c: Client): void {
    if (!c.counted) return;
    c.counted = false;
    this.#slots.release(c.ip);
  }

  /** The socket closed. */
  forget(c: Client): void {
    this.release(c);
    this.#clients.delete(c.id);
  }

  #admit(
    socket: net.Socket,
    secure: boolean,
    onConnection: OnConnection,
    context: () => tls.SecureContext,
    first: boolean,
  ): void {
    if (socket.destroyed) return;
    const ip = peerAddress(socket.remoteAddress);
    if (this.#closing) {
      this.#refuse(socket, secure, REPLIES.shuttingDown());
      return;
    }
    if (first && this.#o.access) {
      const v = this.#o.access.verdict(ip);
      if (v.kind === 'deny' || v.kind === 'banned') {
        accessRefused.inc({ service: this.#o.service, reason: v.kind });
        this.#o.log.info({ ip, reason: v.kind }, 'connection refused');
        this.#refuse(socket, secure, v.kind === 'deny' ? REPLIES.denied(ip) : REPLIES.banned(ip, v.until));
        return;
      }
    }
    const refusal = this.#slots.admit(ip);
    if (refusal !== null) {
      const full = refusal === 'total';
      // Look again once the I/O of this loop turn is processed: the client's previous
      // connection may have just ended (its FIN or QUIT is in the same batch of events).
      if (first) {
        setImmediate(() => this.#admit(socket, secure, onConnection, context, false));
        return;
      }
      if (refusal === 'per-network') {
        this.#o.log.warn({ ip }, 'too many connections from client network');
        rateLimited.inc({ limit: 'concurrent_network' });
        this.#refuse(socket, secure, REPLIES.connectionRate());
        return;
      }
      this.#o.log.warn(
        { ip, limit: full ? this.#o.maxConnections : this.#o.maxConnectionsPerIp },
        full ? 'too many connections' : 'too many connections from client',
      );
      this.#refuse(socket, secure, full ? REPLIES.tooManyConnections() : REPLIES.tooManyConnectionsFromIp());
      return;
    }
    const c = new Client(ip);
    this.#clients.set(c.id, c);
    socket.once('close', () => this.forget(c));
    const rate = this.#o.rate;
    if (!rate) {
      this.#start(socket, c, secure, onConnection, context);
      return;
    }
    // The connection rate per client network (docs/spam.md "Rate limits"): counted while the
    // socket waits, paused (nothing is read before the greeting anyway).
    rate(ip).then(
      (limit) => {
        if (socket.destroyed) return;
        if (limit === null) {
          this.#start(socket, c, secure, onConnection, context);
          return;
        }
        this.#o.log.warn({ ip, limit }, 'too many connections from client network');
        this.release(c);
        this.#refuse(socket, secure, REPLIES.connectionRate());
      },
      (err: unknown) => {
        // A failed check never refuses a client.
        this.#o.log.error({ ip, err: String(err) }, 'connection rate check failed');
        if (!socket.destroyed) this.#start(socket, c, secure, onConnection, context);
      },
    );
  }

  #start(
    socket: net.Socket,
    c: Client,
    secure: boolean,
    onConnection: OnConnection,
    context: () => tls.SecureContext,
  ): void {
    if (!secure) {
      onConnection(socket, c, false);
      return;
    }
    // Implicit TLS (RFC 8314): the handshake is bounded like a command line (the sweep
    // destroys it: no session, nothing to say); the session starts once it is done.
    c.handshakeSince = Date.now();
    c.conn = { terminate: () => t.destroy(), destroy: () => t.destroy() };
    const t = new tls.TLSSocket(socket, { isServer: true, secureContext: context() });
    t.on('error', () => {
      if (c.handshakeSince !== 0) this.#o.tlsFailed?.();
      t.destroy();
    });
    t.once('close', () => {
      socket.destroy();
      this.forget(c);
    });
    t.once('secure', () => {
      c.handshakeSince = 0;
      onConnection(t, c, true);
    });
  }

  /** 421 (plain listeners) and the socket's end; destroyed after a short linger in any case. */
  #refuse(socket: net.Socket, secure: boolean, reply: SmtpReplyError): void {
    if (secure) {
      socket.destroy();
      return;
    }
    socket.end(`${reply.responseCode} ${reply.message}\r\n`);
    socket.resume(); // read and drop whatever comes, so the client's FIN is seen
    const linger = setTimeout(() => socket.destroy(), LIMITS.smtp.refusalLingerMs).unref();
    socket.once('close', () => clearTimeout(linger));
  }

  #remember(ip: string): void {
    this.#memory.remember(ip, Date.now() + LIMITS.smtp.errorMemoryMs);
  }

  #check(): void {
    const now = Date.now();
    for (const c of this.#clients.values()) {
      if (c.ended) continue;
      const why = c.overdue(now, this.#o);
      if (why) this.#expire(c, why);
    }
  }

  #expire(c: Client, why: Deadline): void {
    this.#o.log.warn({ conn: c.id, ip: c.ip, deadline: why }, 'client disconnected: deadline exceeded');
    this.#end(c, DEADLINE_REPLIES[why]());
  }

  /** 421 and the end of the connection; it stops counting at once. */
  #end(c: Client, reply: SmtpReplyError): void {
    if (c.ended) return;
    c.ended = true;
    this.release(c);
    c.conn?.terminate(reply);
  }
}
