// One SMTP session on one socket: the state machine of RFC 5321 (greeting, EHLO/HELO, MAIL,
// RCPT, DATA, RSET, NOOP, VRFY, HELP, QUIT), STARTTLS (RFC 3207) and AUTH (RFC 4954), written
// like the IMAP binding (imap/connection.ts): the bytes go through the pure wire layer
// (wire/lines.ts frames command lines, wire/command.ts parses them, wire/data.ts reads DATA) and
// the decisions that need the directory, the store or the hygiene checks are the policy's
// (service.ts and the acceptance stages in accept/), asked through `SessionPolicy`.
//
// Invariants:
// - Commands are handled one at a time, in order; while one waits for the policy, the lines a
//   pipelining client sent after it wait in the framer (bounded: reading stops past
//   LIMITS.smtp.maxPipelinedBytes).
// - Replies are batched (RFC 2920 §3.2): they are written once no further complete command is
//   held, so a pipelined MAIL/RCPT/DATA group costs one write, and so does "250 + 221" after
//   ".\r\nQUIT\r\n". A reply that the client must see before it sends more (354, 334, the
//   STARTTLS 220) is always followed by that point.
// - STARTTLS: whatever the client sent after the STARTTLS line is discarded (RFC 3207 §4,
//   CVE-2011-0411), and after the handshake the session starts afresh (RFC 3207 §4.2: no
//   EHLO, no transaction).
// - Every reply carries an enhanced status code (RFC 2034 §3, RFC 3463), except the greeting
//   and the EHLO/HELO reply, which RFC 2034 leaves out.
// - The gate's state of the connection (gate.ts: deadlines, errors, limits) is updated here;
//   the slot is released as soon as the 221 or a 421 is queued.

import { isUtf8 } from 'node:buffer';
import type net from 'node:net';
import tls from 'node:tls';
import { SaslExchange, type SaslStep } from '../auth/sasl-exchange.ts';
import { peerAddress } from '../core/ip.ts';
import { LIMITS } from '../core/limits.ts';
import type { SmtpAccess } from './access.ts';
import { isReply, type SmtpSession } from './context.ts';
import type { MailDsn, RcptDsn } from './dsn-params.ts';
import type { Client, ConnectionGate } from './gate.ts';
import { MessageStream } from './message-stream.ts';
import { mailParams, rcptParams } from './params.ts';
import { answerOnly, REPLIES, rawReply, reply, type SmtpReplyError } from './replies.ts';
import { type Command, type EsmtpParam, parseCommand } from './wire/command.ts';
import { DataReader } from './wire/data.ts';
import { LineFramer } from './wire/lines.ts';

/** The decisions of the service; a thrown or returned SmtpReplyError is sent as it is. */
export interface SessionPolicy {
  /** Connection stage (DNSBL): null to greet, or a refusal sent before closing. */
  connect(s: SmtpSession): Promise<SmtpReplyError | null> | null;
  mail(s: SmtpSession, address: string, params: readonly EsmtpParam[]): Promise<void>;
  rcpt(s: SmtpSession, address: string, dsn: RcptDsn): Promise<void>;
  /** null: authenticated as `username`; else the refusal. */
  auth(s: SmtpSession, mechanism: string, username: string, password: string): Promise<SmtpReplyError | null>;
  /** Receives the message (consuming `message` to its end); resolves with the 250 text or a refusal. */
  data(s: SmtpSession, message: MessageStream): Promise<string | SmtpReplyError>;
  /** The transaction is gone (RSET, EHLO, MAIL again, after DATA, STARTTLS). */
  reset(s: SmtpSession): void;
  closed(s: SmtpSession): void;
}

export interface ConnectionOptions {
  readonly hostname: string;
  /** Greeting text after "220 hostname ESMTP". */
  readonly banner: string;
  readonly submission: boolean;
  readonly maxMessageSize: number;
  /** [smtp] greeting_delay: clients that talk before the greeting are refused. */
  readonly greetingDelay: number;
  readonly gate: ConnectionGate;
  readonly policy: SessionPolicy;
  /** The TLS context for STARTTLS; null when there is no certificate (454). */
  readonly tlsContext: () => tls.SecureContext | null;
  /** Reverse DNS of the client, started at connect. */
  readonly reverse: ((ip: string) => Promise<string | null>) | null;
  /** Metrics and the access log of the session (access.ts). */
  readonly access?: (s: SmtpSession) => SmtpAccess;
}

type Phase = 'greeting' | 'command' | 'auth' | 'data' | 'tls' | 'closed';

export class SmtpConnection implements SmtpSession {
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  helo = '';
  ehlo = false;
  secure: boolean;
  tlsInfo: { version: string; cipher: string } | null = null;
  user: string | null = null;
  mailFrom: string | null = null;
  smtpUtf8 = false;
  /** MAIL's RET and ENVID (RFC 3461 §4.3, §4.4), null outside a transaction. */
  dsn: MailDsn | null = null;
  readonly access: SmtpAccess | null;

  readonly #o: ConnectionOptions;
  readonly #client: Client;
  readonly #raw: net.Socket;
  #socket: net.Socket;
  #phase: Phase = 'greeting';
  /** A command is waiting for the policy (or a DATA for its reply). */
  #busy = false;
  #paused = false;
  /** Waiting for the client to read our replies before taking another command. */
  #draining = false;
  #out = '';
  readonly #framer = new LineFramer(LIMITS.smtp.maxCommandLength);
  #reader: DataReader | null = null;
  #message: MessageStream | null = null;
  /** The DATA reply, when the policy answered before the end of the data. */
  #early: (() => void) | null = null;
  #rcpts = 0;
  /** AUTH LOGIN in progress: the user name once given. */
  #sasl: SaslExchange | null = null;
  #rdns: Promise<string | null> | null = null;
  #linger: NodeJS.Timeout | null = null;

  constructor(socket: net.Socket, client: Client, secure: boolean, o: ConnectionOptions) {
    this.#o = o;
    this.#client = client;
    this.#raw = socket;
    this.#socket = socket;
    this.id = client.id;
    this.secure = secure;
    this.remoteAddress = peerAddress(socket.remoteAddress);
    this.access = o.access?.(this) ?? null;
    if (secure) this.#setTlsInfo(socket as tls.TLSSocket);
    this.remotePort = socket.remotePort ?? 0;
    this.localPort = socket.localPort ?? 0;
    client.conn = { terminate: (r) => this.terminate(r), destroy: () => this.#destroy() };
  }

  /** The connection is receiving a message (DATA to its reply): shutdown lets it finish. */
  get receiving(): boolean {
    return this.#reader !== null || this.#message !== null;
  }

  clientHostname(): Promise<string | null> {
    return this.#rdns ?? Promise.resolve(null);
  }

  /** Starts the session: the connection stage, the greeting delay, then 220. */
  start(): void {
    this.#listen(this.#socket);
    this.#socket.once('close', () => this.#closed());
    if (this.#raw !== this.#socket) this.#raw.once('close', () => this.#closed());
    const reverse = this.#o.reverse;
    if (reverse) this.#rdns = reverse(this.remoteAddress);
    const verdict = this.#o.policy.connect(this);
    const delay = this.#o.greetingDelay;
    if (verdict === null && delay <= 0) {
      this.#greet(null);
      return;
    }
    const waits: Promise<SmtpReplyError | null>[] = [verdict ?? Promise.resolve(null)];
    if (delay > 0) waits.push(new Promise((resolve) => setTimeout(() => resolve(null), delay).unref()));
    Promise.all(waits).then(([refusal]) => this.#greet(refusal ?? null));
  }

  /** Sends `r` (a 421 of the gate or of shutdown) and closes. */
  terminate(r: SmtpReplyError): void {
    if (this.#phase === 'closed') return;
    this.access?.command('CONNECT'); // the server's own reply, not an answer to a command
    if (this.#phase !== 'tls') this.#write(r.responseCode, r.message);
    this.#close();
  }

  #greet(refusal: SmtpReplyError | null) {
    if (this.#phase !== 'greeting') return; // closed meanwhile (early talker, deadline)
    if (refusal) {
      this.#write(refusal.responseCode, refusal.message);
      this.#close();
      return;
    }
    this.#o.gate.started(this.#client);
    this.#out += `220 ${this.#o.hostname} ESMTP ${this.#o.banner}\r\n`;
    this.access?.reply(220);
    this.#phase = 'command';
    this.#pump();
  }

  #listen(socket: net.Socket) {
    socket.on('data', this.#onData);
    socket.on('end', this.#onEnd);
    socket.on('error', () => socket.destroy());
  }

  readonly #onData = (chunk: Buffer): void => {
    switch (this.#phase) {
      case 'data':
        this.#feedData(chunk);
        return;
      case 'greeting':
        if (this.#o.greetingDelay > 0) {
          // Pre-greet talkers (postscreen): a client that does not wait for 220 is a bot.
          this.#write(421, `4.7.0 ${this.#o.hostname} Error: You talk too soon`);
          this.#close();
          return;
        }
        break;
      case 'closed':
      case 'tls':
        return;
    }
    this.#framer.push(chunk);
    if (this.#framer.buffered > LIMITS.smtp.maxPipelinedBytes) this.#pause();
    this.#pump();
  };

  /** The client ended its side: it no longer counts; a DATA under way is lost. */
  readonly #onEnd = (): void => {
    this.#o.gate.release(this.#client);
    this.#message?.abort(new Error('client closed the connection during DATA'));
  };

  /** Handles the complete commands held, one at a time; writes the replies when none is left. */
  #pump() {
    while (!this.#busy && (this.#phase === 'command' || this.#phase === 'auth')) {
      if (this.#draining || (this.#outputFull() && this.#awaitDrain())) break;
      const f = this.#framer.next();
      if (f === null) break;
      if (f.kind === 'too-long') {
        // RFC 5321 §4.5.3.1.4 / §4.2.4: 500 for a line too long; its rest is discarded.
        this.access?.command('UNKNOWN');
        this.#sasl = null;
        if (this.#phase === 'auth') this.#phase = 'command';
        this.#send(reply(500, '5.5.2', 'Error: line too long'));
        continue;
      }
      // RFC 6531 §3.3 / RFC 3629: a command line is ASCII or, with SMTPUTF8, UTF-8; bytes that
      // are neither are refused, never decoded into replacement characters and accepted.
      if (!isUtf8(f.line)) {
        this.access?.command('UNKNOWN');
        this.#send(reply(501, '5.5.2', 'Syntax error: command is not valid UTF-8'));
        continue;
      }
      const line = f.line.toString('utf8');
      if (this.#phase === 'auth') this.#saslStep(line);
      else this.#command(parseCommand(line));
    }
    const phase = this.#phase;
    if (phase === 'closed') return;
    if (!this.#busy && (phase === 'command' || phase === 'auth')) {
      // The next command must be complete within [smtp] timeout from now (gate.ts).
      if (this.#client.waitingSince === 0) this.#client.waitingSince = Date.now();
      if (this.#paused && !this.#draining && this.#framer.buffered <= LIMITS.smtp.maxPipelinedBytes) this.#resume();
    }
    // RFC 2920 §3.2: while a command's answer is still being decided, the replies before it wait
    // and leave together with it (one write per pipelined group).
    if (this.#busy && (phase === 'command' || phase === 'auth')) return;
    this.#flush();
  }

  #command(c: Command) {
    this.#client.waitingSince = 0;
    this.access?.command(c.verb === 'SYNTAX' ? (c.hint.split(' ')[0] ?? '') : 'name' in c ? c.name : c.verb);
    switch (c.verb) {
      case 'EHLO':
      case 'HELO':
        return this.#hello(c.verb, c.domain);
      case 'MAIL':
        return this.#mail(c.address, c.params);
      case 'RCPT':
        return this.#rcpt(c.address, c.params);
      case 'DATA':
        return this.#data();
      case 'RSET': // §4.1.1.5
        this.#reset();
        return this.#send(reply(250, '2.0.0', 'Ok'));
      case 'QUIT': // §4.1.1.10
        this.#write(221, '2.0.0 Bye');
        return this.#close();
      case 'STARTTLS':
        return this.#startTls();
      case 'AUTH':
        return this.#auth(c.mechanism, c.initial);
      default: // commands that only get an answer (replies.ts answerOnly)
        return this.#send(answerOnly(c));
    }
  }

  #hello(verb: 'EHLO' | 'HELO', domain: string) {
    this.#reset(); // RFC 5321 §4.1.4: EHLO also resets the transaction
    this.helo = domain;
    this.ehlo = verb === 'EHLO';
    const host = this.#o.hostname;
    this.access?.reply(250);
    if (!this.ehlo) {
      this.#out += `250 ${host}\r\n`;
      return;
    }
    // RFC 2920, 1870, 6152, 2034, 6531, 3461, 3207, 4954.
    const ext = [`${host} Hello ${domain}`, 'PIPELINING', `SIZE ${this.#o.maxMessageSize}`, '8BITMIME'];
    ext.push('ENHANCEDSTATUSCODES', 'SMTPUTF8', 'DSN');
    if (!this.secure && this.#o.tlsContext() !== null) ext.push('STARTTLS');
    // RFC 4954 §4 / RFC 8314: AUTH only over TLS, and only for submission.
    if (this.#o.submission && this.secure && this.user === null) ext.push('AUTH PLAIN LOGIN');
    const last = ext.length - 1;
    for (let i = 0; i < last; i++) this.#out += `250-${ext[i]}\r\n`;
    this.#out += `250 ${ext[last]}\r\n`;
  }

  #mail(address: string, params: readonly EsmtpParam[]) {
    if (this.helo === '') return this.#send(reply(503, '5.5.1', 'Error: send HELO/EHLO first'));
    if (this.mailFrom !== null) return this.#send(reply(503, '5.5.1', 'Error: nested MAIL command'));
    if (this.#o.submission && this.user === null) return this.#send(REPLIES.authRequired());
    const checked = mailParams(params, this.#o.maxMessageSize); // params.ts
    if (isReply(checked)) return this.#send(checked);
    // SMTPUTF8 of this MAIL applies to its own address check; the transaction starts (mailFrom)
    // once the policy accepted it.
    this.smtpUtf8 = checked.utf8;
    this.dsn = checked.dsn;
    this.#policy(this.#o.policy.mail(this, address, params), () => {
      this.mailFrom = address;
      this.#rcpts = 0;
      return reply(250, '2.1.0', 'Ok');
    });
  }

  #rcpt(address: string, params: readonly EsmtpParam[]) {
    if (this.mailFrom === null) return this.#send(reply(503, '5.5.1', 'Error: need MAIL command'));
    const dsn = rcptParams(params); // RFC 3461 §4.1, §4.2 (params.ts)
    if (isReply(dsn)) return this.#send(dsn);
    this.#policy(this.#o.policy.rcpt(this, address, dsn), () => {
      this.#rcpts++;
      return reply(250, '2.1.5', 'Ok');
    });
  }

  /** Runs a policy decision; the reply (its own or the refusal) goes out after any penalty. */
  #policy(p: Promise<unknown>, ok: () => SmtpReplyError) {
    this.#busy = true;
    p.then(
      () => this.#answer(ok),
      (err: unknown) => this.#answer(() => (isReply(err) ? err : REPLIES.localError())),
    );
  }

  #answer(make: () => SmtpReplyError, after?: () => void) {
    const go = () => {
      if (this.#phase === 'closed') return;
      this.#busy = false;
      this.#send(make());
      after?.();
      this.#pump();
    };
    const wait = this.#o.gate.penalty(this.#client);
    if (wait > 0) setTimeout(go, wait).unref();
    else go();
  }

  #data() {
    if (this.mailFrom === null) return this.#send(reply(503, '5.5.1', 'Error: need MAIL command'));
    if (this.#rcpts === 0) return this.#send(reply(503, '5.5.1', 'Error: need RCPT command'));
    // 354 has no enhanced code (RFC 3463 defines classes 2, 4, 5 only).
    this.#send(rawReply(354, 'End data with <CR><LF>.<CR><LF>'));
    this.#phase = 'data';
    this.#busy = true;
    this.#reader = new DataReader();
    const message = new MessageStream(this.#o.maxMessageSize, () => {
      if (this.#paused && this.#phase === 'data') this.#resume();
    });
    this.#message = message;
    this.#o.gate.dataStarted(this.#client);
    const done = (r: string | SmtpReplyError) => {
      const answer = () =>
        this.#answer(
          () => (typeof r === 'string' ? rawReply(250, r) : r),
          () => {
            this.#message = null;
            this.#reset();
            this.#o.gate.transactionDone(this.#client);
          },
        );
      // A refusal before the end of the data waits for it (RFC 5321 §4.1.1.4: one reply, after
      // the end).
      if (this.#reader !== null) this.#early = answer;
      else answer();
    };
    this.#o.policy.data(this, message).then(done, () => done(REPLIES.localError()));
    // Bytes the client sent right after DATA (not waiting for 354) are message bytes.
    const rest = this.#framer.takeRest();
    if (rest.length > 0) this.#feedData(rest);
  }

  readonly #push = (bytes: Buffer): void => {
    this.#message?.push(bytes);
  };

  #feedData(chunk: Buffer) {
    const reader = this.#reader;
    const message = this.#message;
    if (!reader || !message) return;
    const used = reader.feed(chunk, this.#push);
    this.#o.gate.dataBytes(this.#client, used);
    this.access?.dataBytes(used);
    if (!reader.done) {
      if (message.queued > LIMITS.smtp.dataQueueBytes) this.#pause();
      return;
    }
    message.end();
    this.#reader = null;
    this.#phase = 'command';
    this.#o.gate.dataReceived(this.#client);
    if (this.#paused) this.#resume();
    // What follows the end is the next commands (RFC 2920: answered after the DATA reply).
    if (used < chunk.length) this.#framer.push(chunk.subarray(used));
    const early = this.#early;
    this.#early = null;
    early?.();
  }

  #reset() {
    this.mailFrom = null;
    this.smtpUtf8 = false;
    this.dsn = null;
    this.#rcpts = 0;
    this.#o.policy.reset(this);
  }

  /** RFC 3207. */
  #startTls() {
    if (this.secure) return this.#send(reply(503, '5.5.1', 'Error: TLS already active'));
    const context = this.#o.tlsContext();
    if (context === null) return this.#send(reply(454, '4.7.0', 'TLS not available due to temporary reason'));
    this.#write(220, '2.0.0 Ready to start TLS');
    this.#flush();
    // RFC 3207 §4 / CVE-2011-0411: nothing the client sent before the handshake is a command.
    this.#framer.takeRest();
    this.#phase = 'tls';
    this.#client.waitingSince = 0;
    this.#client.handshakeSince = Date.now();
    const plain = this.#socket;
    plain.off('data', this.#onData);
    plain.off('end', this.#onEnd);
    const t = new tls.TLSSocket(plain, { isServer: true, secureContext: context });
    this.#socket = t;
    t.on('error', () => {
      if (!this.secure) this.access?.tls(null);
      t.destroy();
    });
    t.once('close', () => {
      plain.destroy();
      this.#closed();
    });
    t.once('secure', () => {
      if (this.#phase !== 'tls') return;
      this.#client.handshakeSince = 0;
      this.secure = true;
      this.#setTlsInfo(t);
      // RFC 3207 §4.2: the session starts afresh; the client must EHLO again.
      this.#reset();
      this.helo = '';
      this.ehlo = false;
      this.#listen(t);
      this.#phase = 'command';
      this.#pump();
    });
  }

  #setTlsInfo(t: tls.TLSSocket) {
    const cipher = t.getCipher?.();
    this.tlsInfo = { version: t.getProtocol?.() ?? 'TLS', cipher: cipher?.name ?? 'unknown' };
    this.access?.tls(this.tlsInfo.version);
  }

  /** RFC 4954 §4. */
  #auth(mechanism: string, initial: string | null) {
    // Port 25 offers no AUTH: the command does not exist there.
    if (!this.#o.submission) return this.#send(reply(500, '5.5.2', 'Error: command not recognized'));
    // RFC 3207 §4 / RFC 4954 §4: credentials only over TLS.
    if (!this.secure) return this.#send(reply(530, '5.7.0', 'Must issue a STARTTLS command first'));
    if (this.user !== null) return this.#send(reply(503, '5.5.1', 'Error: already authenticated'));
    if (this.mailFrom !== null) return this.#send(reply(503, '5.5.1', 'Error: MAIL transaction in progress'));
    if (mechanism !== 'PLAIN' && mechanism !== 'LOGIN') {
      return this.#send(reply(504, '5.5.4', 'Unrecognized authentication type'));
    }
    this.#sasl = new SaslExchange(mechanism);
    this.#phase = 'auth';
    this.#saslNext(this.#sasl.start(initial));
  }

  /** A client line during AUTH (auth/sasl-exchange.ts). */
  #saslStep(line: string) {
    if (this.#sasl) this.#saslNext(this.#sasl.step(line));
  }

  #saslNext(step: SaslStep) {
    const mechanism = this.#sasl?.mechanism;
    if (step.kind === 'challenge') {
      this.#out += `334 ${step.text}\r\n`;
      this.access?.reply(334);
      return;
    }
    this.#sasl = null;
    this.#phase = 'command';
    if (step.kind === 'refuse' || !mechanism) {
      if (step.kind === 'refuse') {
        this.#send(
          step.reason === 'canceled'
            ? reply(501, '5.7.0', 'Authentication canceled')
            : reply(501, '5.5.2', 'Cannot decode the response'),
        );
      }
      return;
    }
    const { username, password } = step;
    this.#busy = true;
    this.#o.policy.auth(this, mechanism, username, password).then(
      (refusal) => {
        if (refusal === null) {
          this.user = username;
          this.#client.authenticated = true;
        }
        this.#answer(() => refusal ?? reply(235, '2.7.0', 'Authentication successful'));
      },
      () => this.#answer(() => REPLIES.localError()),
    );
  }

  /** Queues a reply and counts it for the gate (which may end the session). */
  #send(r: SmtpReplyError) {
    this.#write(r.responseCode, r.message);
    this.#o.gate.replied(this.#client, r.responseCode, r.message);
  }

  #write(code: number, text: string) {
    if (this.#phase === 'closed') return;
    this.#out += `${code} ${text}\r\n`;
    this.access?.reply(code);
  }

  #flush() {
    if (this.#out === '') return;
    const out = this.#out;
    this.#out = '';
    const s = this.#socket;
    if (s.writable) s.write(out);
  }

  /** Replies the client has not read yet, ours and the socket's, past the budget. */
  #outputFull(): boolean {
    return this.#out.length + this.#socket.writableLength > LIMITS.smtp.maxUnreadReplyBytes;
  }

  /** A client that pipelines commands and never reads the replies would make us buffer them
   *  without end (an EHLO answer is 25 times its command): past the budget, the replies go to
   *  the socket and no further command is taken until the client has read them. Reading stops
   *  too, so the client's commands wait in its own buffers; the command deadline (gate.ts) ends a
   *  client that never reads. Returns true when waiting. */
  #awaitDrain(): boolean {
    this.#flush();
    const s = this.#socket;
    if (s.writableLength <= LIMITS.smtp.maxUnreadReplyBytes) return false;
    this.#draining = true;
    this.#pause();
    s.once('drain', () => {
      this.#draining = false;
      if (this.#phase === 'closed') return;
      this.#pump();
    });
    return true;
  }

  #pause() {
    if (this.#paused) return;
    this.#paused = true;
    this.#socket.pause();
  }

  #resume() {
    this.#paused = false;
    this.#socket.resume();
  }

  /** Ends the session from our side: the replies queued go out, the slot is free at once. */
  #close() {
    if (this.#phase === 'closed') return;
    // The slot is free before the last reply leaves: a client that reconnects as soon as it
    // reads its 221 may be admitted by another thread before this one runs its next line.
    this.#o.gate.release(this.#client);
    this.#flush();
    this.#phase = 'closed';
    this.#client.ended = true;
    this.#message?.abort(new Error('connection closed during DATA'));
    this.#socket.end();
    this.#socket.resume(); // read and drop whatever comes, so the client's FIN is seen
    this.#linger = setTimeout(() => this.#destroy(), LIMITS.smtp.refusalLingerMs).unref();
  }

  #destroy() {
    this.#socket.destroy();
    this.#raw.destroy();
  }

  #closedOnce = false;
  #closed() {
    if (this.#closedOnce) return;
    this.#closedOnce = true;
    this.#phase = 'closed';
    if (this.#linger) clearTimeout(this.#linger);
    this.#message?.abort(new Error('connection closed during DATA'));
    this.#o.gate.forget(this.#client);
    this.#destroy();
    this.#o.policy.closed(this);
  }
}
