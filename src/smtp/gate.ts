// Every connection of one SMTP service from accept to close, and the limits that hold
// whatever a client sends (issue #10). smtp-server runs the protocol; the listening sockets are
// ours, and each accepted socket is handed to it with SMTPServer.connect() (public API) only
// once it passed the limits:
//
// - Connection limits at accept, before any work: per client address (IPv4, IPv6 /64) and in
//   total. A refused client gets its 421 on the plain listeners (nothing on implicit TLS, where
//   no byte can be written before a handshake that would cost us the CPU an attacker wants us
//   to spend) and its socket is destroyed after a short linger whatever it does: refused
//   connections are closed and forgotten. An over-limit client is looked at again after the
//   pending I/O of the same loop turn, so one that just closed its previous session (a client
//   that opens a connection per message) is not refused for a slot it was about to free.
// - A connection stops counting as soon as the server ends it (221 after QUIT, 421, a refusal)
//   or the client ends its side; not when the socket finally closes.
// - Deadlines, not only idle timeouts (RFC 5321 §4.5.3.2 gives the minimums; Postfix
//   smtpd_per_request_deadline and smtpd_min_data_rate the model): a command line must be
//   complete within `timeout` of its first byte; DATA within timeout + received/min_data_rate;
//   a TLS handshake within min(timeout, 60 s); a submission client must have authenticated
//   within login_timeout of connecting; a session ends after max_session_time (a DATA in
//   progress is answered first). 1 byte per second keeps nothing alive.
// - Errors (Postfix smtpd_soft_error_limit / smtpd_hard_error_limit): every 4xx/5xx reply a
//   client earns is counted; past the soft limit the service slows its replies (penalty()),
//   at the hard limit the session gets 421. On port 25 an address with a session past the soft
//   limit is remembered for a while: its next sessions start at the soft limit, so reconnecting
//   does not start afresh (a client that only makes the odd error is never slowed by it).
//
// The bytes a client sends and the replies we write are observed on the plaintext socket (the
// TCP socket, then the TLS socket after a handshake) by wrapping push/write/end of that socket
// object: no smtp-server internals are touched. A sweep every 250 ms enforces the deadlines
// and notices sockets that closed without telling us (STARTTLS drops every listener of the TCP
// socket).

import net from 'node:net';
import tls from 'node:tls';
import type { SMTPServer, SMTPServerSession } from 'smtp-server';
import { ConnectionCounter, type ConnectionSlots, clientKey } from '../core/connection-limits.ts';
import { newId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { REPLIES, type SmtpReplyError } from './replies.ts';

export interface GateOptions {
  readonly log: Logger;
  readonly maxConnections: number;
  readonly maxConnectionsPerIp: number;
  /** Command line and TLS handshake deadline (and smtp-server's idle timeout). */
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
  /** Shared with other threads (core/shared-slots.ts); else counted here. */
  readonly slots?: ConnectionSlots;
}

export type Deadline = 'command' | 'data' | 'handshake' | 'login' | 'session';

/** One accepted connection. */
export class Client {
  readonly id = newId('c');
  readonly since = Date.now();
  readonly ip: string;
  readonly raw: net.Socket;
  readonly smtp: SMTPServer;
  /** The socket carrying plaintext: the TCP socket, or the TLS socket after a handshake. */
  plain: net.Socket;
  session: SMTPServerSession | null = null;
  /** When the first byte of the unfinished command line arrived; 0 when there is none. */
  lineSince = 0;
  /** Set while the client sends a message. */
  data: { since: number; bytes: number } | null = null;
  /** A transaction is being received or decided: the session deadline waits for its reply. */
  busy = false;
  /** When a TLS handshake started; 0 when none is under way. */
  handshakeSince = 0;
  greeted = false;
  errors = 0;
  overshoot = 0;
  /** The session deadline passed while busy: 421 right after the reply. */
  closeAfterReply = false;
  counted = true;
  ended = false;

  constructor(raw: net.Socket, ip: string, smtp: SMTPServer) {
    this.raw = raw;
    this.plain = raw;
    this.ip = ip;
    this.smtp = smtp;
  }

  /** Which deadline has passed, if any. */
  overdue(now: number, o: GateOptions): Deadline | null {
    if (this.handshakeSince && now - this.handshakeSince > Math.min(o.timeout, LIMITS.smtp.maxTlsHandshakeMs)) {
      return 'handshake';
    }
    const d = this.data;
    if (d && now > d.since + o.timeout + (d.bytes * 1000) / o.minDataRate) return 'data';
    if (this.lineSince && now - this.lineSince > o.timeout) return 'command';
    if (o.loginTimeout !== null && !this.session?.user && now - this.since > o.loginTimeout) return 'login';
    if (now - this.since > o.maxSessionMs) {
      if (!this.busy) return 'session';
      this.closeAfterReply = true;
    }
    return null;
  }

  /** Bytes from the client (command mode): tracks the unfinished line. */
  bytes(chunk: Buffer, now: number): void {
    if (this.data) return; // DATA is timed by its rate, from the message stream
    const lf = chunk.lastIndexOf(0x0a);
    if (lf === -1) {
      if (this.lineSince === 0) this.lineSince = now;
    } else {
      this.lineSince = lf === chunk.length - 1 ? 0 : now;
    }
  }
}

/** Sockets whose push/write/end are wrapped already. */
const observed = new WeakSet<net.Socket>();

const DEADLINE_REPLIES: Record<Deadline, () => SmtpReplyError> = {
  command: REPLIES.commandTimeout,
  data: REPLIES.dataTimeout,
  handshake: REPLIES.commandTimeout,
  login: REPLIES.loginTimeout,
  session: REPLIES.sessionTimeout,
};

export class ConnectionGate {
  readonly #o: GateOptions;
  /** Per client address and in total (core/connection-limits, shared with IMAP). */
  readonly #counter: ConnectionSlots;
  #open = 0;
  readonly #clients = new Map<string, Client>();
  /** Client address (port 25) slowed for errors -> until when its sessions start slowed;
   *  oldest first. */
  readonly #memory = new Map<string, number>();
  #closing = false;
  #sweep: NodeJS.Timeout | null = null;

  constructor(o: GateOptions) {
    this.#o = o;
    this.#counter = o.slots ?? new ConnectionCounter(o.maxConnectionsPerIp, o.maxConnections);
  }

  /** A listening socket whose connections go to `smtp` (implicit TLS when `secure`). */
  listener(smtp: SMTPServer, secure: boolean): net.Server {
    this.#sweep ??= setInterval(() => this.#check(), LIMITS.smtp.deadlineSweepMs).unref();
    // No Nagle (as for IMAP): a multi-part reply never waits for the client's delayed ACK.
    const server = net.createServer({ noDelay: true }, (socket) => {
      // Until smtp-server has its own, a reset must not become an uncaught 'error'.
      socket.on('error', () => {});
      this.#admit(socket, smtp, secure, server, true);
    });
    return server;
  }

  client(id: string): Client | undefined {
    return this.#clients.get(id);
  }

  /** The session of a connection started (onConnect); one from an address recently slowed
   *  for errors starts at the soft limit. */
  started(session: SMTPServerSession): void {
    const c = this.#clients.get(session.id);
    if (!c) return;
    c.session = session;
    if (!this.#o.rememberErrors) return;
    const until = this.#memory.get(clientKey(c.ip));
    if (until !== undefined && until > Date.now()) c.errors = this.#o.softErrorLimit;
  }

  /** A TLS handshake completed on the connection (STARTTLS; implicit TLS is ours). */
  secured(id: string, socket: net.Socket): void {
    const c = this.#clients.get(id);
    if (!c) return;
    c.handshakeSince = 0;
    c.lineSince = 0;
    this.#observe(c, socket);
  }

  dataStarted(id: string): void {
    const c = this.#clients.get(id);
    if (!c) return;
    c.data = { since: Date.now(), bytes: 0 };
    c.busy = true;
    c.lineSince = 0;
  }

  dataBytes(id: string, n: number): void {
    const d = this.#clients.get(id)?.data;
    if (d) d.bytes += n;
  }

  dataReceived(id: string): void {
    const c = this.#clients.get(id);
    if (c) c.data = null;
  }

  /** The reply to a transaction went out: a session past its deadline ends now. */
  transactionDone(id: string): void {
    const c = this.#clients.get(id);
    if (!c) return;
    c.busy = false;
    if (c.closeAfterReply) this.#expire(c, 'session');
  }

  /** How long the next reply of a session waits: error_delay per error beyond the soft limit. */
  penalty(id: string): number {
    const c = this.#clients.get(id);
    if (!c || c.errors < this.#o.softErrorLimit) return 0;
    return this.#o.errorDelay * (c.errors - this.#o.softErrorLimit + 1);
  }

  /** Stops taking connections: new ones are refused until the listeners are closed. */
  stop(): void {
    this.#closing = true;
  }

  /** Destroys every socket still open (the end of the shutdown grace period). */
  destroyAll(): void {
    for (const c of this.#clients.values()) {
      c.plain.destroy();
      c.raw.destroy();
    }
    if (this.#sweep) clearInterval(this.#sweep);
    this.#sweep = null;
  }

  /** Connections of this service (this thread) that count against the limits. */
  get open(): number {
    return this.#open;
  }

  #admit(socket: net.Socket, smtp: SMTPServer, secure: boolean, server: net.Server, first: boolean): void {
    if (socket.destroyed) return;
    const ip = socket.remoteAddress ?? '';
    if (this.#closing) {
      this.#refuse(socket, secure, REPLIES.shuttingDown());
      return;
    }
    const refusal = this.#counter.admit(ip);
    if (refusal !== null) {
      const full = refusal === 'total';
      // Look again once the I/O of this loop turn is processed: the client's previous
      // connection may have just ended (its FIN or QUIT is in the same batch of events).
      if (first) {
        setImmediate(() => this.#admit(socket, smtp, secure, server, false));
        return;
      }
      this.#o.log.warn(
        { ip, limit: full ? this.#o.maxConnections : this.#o.maxConnectionsPerIp },
        full ? 'too many connections' : 'too many connections from client',
      );
      this.#refuse(socket, secure, full ? REPLIES.tooManyConnections() : REPLIES.tooManyConnectionsFromIp());
      return;
    }
    this.#open++;
    const c = new Client(socket, ip, smtp);
    this.#clients.set(c.id, c);
    socket.once('close', () => this.#forget(c));
    if (!secure) {
      this.#observe(c, socket);
      smtp.connect(socket, { id: c.id });
      return;
    }
    // Implicit TLS (RFC 8314): the handshake is bounded like a command line; the session
    // starts once it is done, with the context smtp-server keeps for STARTTLS.
    c.handshakeSince = Date.now();
    const secureContext = smtp.secureContext.get('*');
    const t = new tls.TLSSocket(socket, { isServer: true, server, ...(secureContext ? { secureContext } : {}) });
    c.plain = t;
    t.on('error', () => t.destroy());
    t.once('close', () => this.#forget(c));
    t.once('secure', () => {
      c.handshakeSince = 0;
      this.#observe(c, t);
      smtp.connect(t, { id: c.id });
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

  /** Watches what the client sends and what we answer on a plaintext socket (once). */
  #observe(c: Client, socket: net.Socket): void {
    c.plain = socket;
    if (observed.has(socket)) return;
    observed.add(socket);
    socket.once('close', () => this.#forget(c));
    const push = socket.push;
    socket.push = (chunk: unknown, encoding?: BufferEncoding): boolean => {
      if (chunk === null)
        this.#release(c); // the client ended its side
      else if (Buffer.isBuffer(chunk)) c.bytes(chunk, Date.now());
      return push.call(socket, chunk, encoding);
    };
    const write = socket.write;
    socket.write = ((data: unknown, ...rest: unknown[]) => {
      if (typeof data === 'string') this.#reply(c, data);
      return (write as (...a: unknown[]) => boolean).call(socket, data, ...rest);
    }) as typeof socket.write;
    const end = socket.end;
    socket.end = ((...args: unknown[]) => {
      this.#release(c); // the server ends the session (QUIT, 421, a refusal)
      return (end as (...a: unknown[]) => net.Socket).apply(socket, args);
    }) as typeof socket.end;
  }

  /** A reply we send: counts the client's errors. */
  #reply(c: Client, text: string): void {
    const code = Number(text.slice(0, 3));
    if (code === 220) {
      if (c.greeted) c.handshakeSince = Date.now(); // "220 Ready to start TLS" (RFC 3207)
      c.greeted = true;
      return;
    }
    if (code < 400 || code === 421 || code === 451) return; // 451: our problem, not the client's
    if (code === 452 && text.startsWith('452 4.5.3') && ++c.overshoot <= LIMITS.smtp.recipientOvershootLimit) return;
    c.errors++;
    // Remembered as soon as it is slowed, so a client that gives up on a slowed session and
    // reconnects is slowed again at once.
    if (c.errors === this.#o.softErrorLimit && this.#o.rememberErrors) this.#remember(c.ip);
    if (c.errors === this.#o.hardErrorLimit) {
      this.#o.log.warn({ conn: c.id, ip: c.ip, errors: c.errors }, 'client disconnected: too many errors');
      setImmediate(() => this.#end(c, REPLIES.tooManyErrors()));
    }
  }

  #remember(ip: string): void {
    const key = clientKey(ip);
    this.#memory.delete(key); // re-inserted last: the map stays ordered by time
    this.#memory.set(key, Date.now() + LIMITS.smtp.errorMemoryMs);
    if (this.#memory.size > LIMITS.smtp.errorMemoryEntries) {
      const oldest = this.#memory.keys().next().value;
      if (oldest !== undefined) this.#memory.delete(oldest);
    }
  }

  #check(): void {
    const now = Date.now();
    for (const c of this.#clients.values()) {
      if (c.raw.destroyed && c.plain.destroyed) {
        this.#forget(c);
        continue;
      }
      if (c.ended) continue;
      const why = c.overdue(now, this.#o);
      if (why) this.#expire(c, why);
    }
  }

  #expire(c: Client, why: Deadline): void {
    this.#o.log.warn({ conn: c.id, ip: c.ip, deadline: why }, 'client disconnected: deadline exceeded');
    this.#end(c, DEADLINE_REPLIES[why]());
  }

  /** 421 through smtp-server when the session exists (it closes the connection), else the
   *  socket is destroyed; in every case it is destroyed after a short linger. */
  #end(c: Client, reply: SmtpReplyError): void {
    if (c.ended) return;
    c.ended = true;
    let conn: { send(code: number, data?: string): void } | undefined;
    for (const x of c.smtp.connections) if (x.id === c.id) conn = x;
    if (conn) conn.send(reply.responseCode, reply.message);
    else c.plain.destroy();
    this.#release(c);
    setTimeout(() => {
      c.plain.destroy();
      c.raw.destroy();
    }, LIMITS.smtp.refusalLingerMs).unref();
  }

  /** The connection no longer counts against the limits. */
  #release(c: Client): void {
    if (!c.counted) return;
    c.counted = false;
    this.#open--;
    this.#counter.release(c.ip);
  }

  #forget(c: Client): void {
    this.#release(c);
    this.#clients.delete(c.id);
  }
}
