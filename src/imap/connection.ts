// One IMAP connection: bytes -> CommandFramer -> Session, processed one event at a time with the
// input paused meanwhile (backpressure; one slow client never blocks another, and nothing a
// client sends piles up in memory while we work).
//
// Bounds and deadlines (the limits are in LIMITS.imap and [imap]):
// - before login, a command may hold at most LIMITS.imap.preauthCommandBytes, and a literal for a
//   command the state does not allow is refused before "+" (framer.ts); after login, a command's
//   memory budget; output a client does not read is bounded (output.ts);
// - COMPRESS=DEFLATE: the inflater is paused with the rest of the input, so a small compressed
//   input never expands beyond one inflated chunk ahead of the framer;
// - [imap] login_timeout: from connect to login, whatever the client sends;
// - [imap] command_timeout: a started command must arrive within it; literal bytes extend it at
//   [imap] min_data_rate (as Postfix's smtpd_min_data_rate), never beyond command_timeout left;
// - [imap] timeout: autologout after that long without traffic (RFC 9051 §5.4).
// Every way out ends in #hangUp: BYE, end, and the socket destroyed after a short linger
// whatever the client does. Everything held for the connection is released on close.

import type net from 'node:net';
import type { Readable } from 'node:stream';
import tls from 'node:tls';
import { createDeflateRaw, createInflateRaw, type DeflateRaw, type InflateRaw } from 'node:zlib';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Config } from '../config/schema.ts';
import { CrlfNormalizer } from '../core/crlf.ts';
import { errorMessage } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { isLoopback, peerAddress } from '../core/ip.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { watchTls } from '../core/metrics.ts';
import type { OffenceSink } from '../defense/types.ts';
import type { Directory } from '../directory/types.ts';
import type { MessageStore } from '../store/mailboxes.ts';
import type { SpooledMessage, SpoolWriter } from '../store/types.ts';
import { ImapAccess } from './access.ts';
import { Output, type OutputBounds, type Part } from './output.ts';
import { Session, type SessionDeps } from './session.ts';
import {
  CommandFramer,
  DEFAULT_FRAMER_LIMITS,
  type FramerEvent,
  type FramerLimits,
  PREAUTH_FRAMER_LIMITS,
} from './wire/framer.ts';

export interface ConnectionDeps {
  readonly config: Config;
  readonly directory: Directory;
  readonly store: MessageStore;
  readonly log: Logger;
  readonly authenticator: Authenticator;
  /** The current certificate, for STARTTLS. */
  readonly context: () => tls.SecureContext;
  /** The framer's limits after login (authenticatedFramerLimits), the same for everyone. */
  readonly authenticatedLimits: FramerLimits;
  /** Sessions ended for protocol errors count towards a ban (defense/bans.ts). */
  readonly offences?: OffenceSink | undefined;
}

/** After login: the per-literal limits and memory budget of LIMITS.imap, APPEND up to the
 *  largest message ([smtp] max_message_size). */
export function authenticatedFramerLimits(appendLimit: number): FramerLimits {
  return {
    ...DEFAULT_FRAMER_LIMITS,
    maxAppend: appendLimit,
    maxCommandLiterals: Math.max(LIMITS.imap.commandLiteralBytes, appendLimit),
  };
}

/** Why we hung up; the `reason` of the "imap hangup" log line (docs/imap.md). */
type HangUp =
  | 'login-timeout'
  | 'command-timeout'
  | 'autologout'
  | 'protocol'
  | 'output-not-read'
  | 'shutdown'
  | 'logout'
  | 'error';

/** Time a started command may still take (Postfix-style deadline): it runs only while we wait
 *  for the client, and literal bytes buy time at the minimum data rate, up to the full timeout.
 *  It exists only while a command is half-read (a new one starts with the full timeout, which
 *  credit cannot raise), so an idle connection holds none. */
class CommandClock {
  readonly #timeout: number;
  readonly #msPerByte: number;
  #left: number;
  #since: number | null = null;

  constructor(timeoutMs: number, minRate: number) {
    this.#timeout = timeoutMs;
    this.#msPerByte = 1000 / minRate;
    this.#left = timeoutMs;
  }

  /** Input arrived: the wait is over. */
  stop(now: number): void {
    if (this.#since !== null) this.#left -= now - this.#since;
    this.#since = null;
  }

  credit(literalBytes: number): void {
    this.#left = Math.min(this.#timeout, this.#left + literalBytes * this.#msPerByte);
  }

  /** Waiting for the rest of a command from `now`; returns the time left. */
  wait(now: number): number {
    this.#since = now;
    return Math.max(0, this.#left);
  }
}

// Memory: thousands of idle connections are normal, so what each holds is kept small. The
// connection is its session's deps (SessionDeps, shared services through getters, the wire
// through methods) and its output's bounds, instead of an object with a closure per callback;
// what only some connections need (spools, command deadline, input queue) is made on first use.
export class Connection implements SessionDeps, OutputBounds {
  #socket: net.Socket;
  /** The TCP socket under any TLS: destroying it ends everything. */
  readonly #raw: net.Socket;
  /** Where the client's bytes come from: the socket, or the inflater after COMPRESS. */
  #source: Readable;
  #secure: boolean;
  readonly #deps: ConnectionDeps;
  readonly #ip: string;
  readonly #log: Logger;
  readonly #out: Output;
  #framer: CommandFramer;
  readonly #session: Session;
  readonly access: ImapAccess;
  /** Chunks that arrived while one was being handled (null: none yet). */
  #queue: Buffer[] | null = null;
  #running = false;
  /** Set by STARTTLS: everything read before the upgrade is discarded. */
  #upgraded = false;
  /** Set by COMPRESS: the rest of the input goes through the inflater. */
  #switched = false;
  #zlib: { inflate: InflateRaw; deflate: DeflateRaw } | null = null;
  /** Streamed APPEND literals of the command being read, by literal index (null: none). */
  #spools: Map<number, { writer: SpoolWriter; crlf: CrlfNormalizer | null }> | null = null;
  #spooled: Map<number, Promise<SpooledMessage>> | null = null;
  readonly #onData = (chunk: Buffer) => this.#enqueue(chunk);
  readonly #onClose = () => this.#closed();
  readonly #onError = (err: Error) => this.#log.debug({ err: errorMessage(err) }, 'imap socket error');
  readonly #onTimeout = () => this.#expire('autologout');
  /** The deadline of a half-read command (null: none in progress). */
  #clock: CommandClock | null = null;
  #literalBytes = 0;
  #commandTimer: NodeJS.Timeout | null = null;
  #loginTimer: NodeJS.Timeout | null = null;
  #lingerTimer: NodeJS.Timeout | null = null;
  #authenticated = false;
  /** The server is shutting down: BYE once no command is in progress. */
  #closing = false;
  #hungUp = false;
  /** Bytes read (and dropped) after #hangUp. */
  #afterBye = 0;
  #done = false;

  /** `socket` is `raw` or an implicit-TLS socket over it, already secure. `loginBy` is when the
   *  login deadline passes (it started at connect, before any TLS handshake). */
  constructor(socket: net.Socket, raw: net.Socket, secure: boolean, deps: ConnectionDeps, loginBy: number) {
    this.#socket = socket;
    this.#raw = raw;
    this.#source = socket;
    this.#secure = secure;
    this.#deps = deps;
    this.#ip = peerAddress(raw.remoteAddress);
    this.#log = deps.log.child({ conn: newId('c') });
    this.#out = new Output(socket, this);
    const out = this.#out;
    this.access = new ImapAccess(this.#log, deps.config.log.access, this.#ip, () => out.written);
    this.#session = new Session(this);
    this.#framer = this.#newFramer();
    this.#loginTimer = setTimeout(() => this.#expire('login-timeout'), Math.max(0, loginBy - Date.now()));
  }

  // SessionDeps: what the session reaches through its connection.
  get directory(): Directory {
    return this.#deps.directory;
  }
  get store(): MessageStore {
    return this.#deps.store;
  }
  get authenticator(): Authenticator {
    return this.#deps.authenticator;
  }
  get log(): Logger {
    return this.#log;
  }
  get hostname(): string {
    return this.#deps.config.hostname;
  }
  get appendLimit(): number {
    return this.#deps.config.smtp.max_message_size;
  }
  get remoteAddress(): string {
    return this.#ip;
  }
  get loopback(): boolean {
    return isLoopback(this.#ip);
  }
  send(parts: readonly Part[]): Promise<void> {
    return this.#out.send(parts);
  }
  push(text: string): void {
    this.#out.push(text);
  }
  startTls(): Promise<void> {
    return this.#startTls(this.#deps.context());
  }
  startCompress(): Promise<void> {
    return this.#startCompress();
  }
  secure(): boolean {
    return this.#secure;
  }
  streamedLiteral(index: number): Promise<SpooledMessage> {
    return this.#spooled?.get(index) ?? Promise.reject(new Error('no such literal'));
  }

  // OutputBounds: output a client does not read.
  get maxQueued(): number {
    return LIMITS.imap.maxQueuedOutputBytes;
  }
  onOverflow(): void {
    this.#log.info({ ip: this.#ip, reason: 'output-not-read' }, 'imap hangup');
    this.#raw.destroy();
  }

  /** The TCP socket. */
  get raw(): net.Socket {
    return this.#raw;
  }

  start(): void {
    this.#log.info({ ip: this.#ip, tls: this.#secure }, 'imap connect');
    this.#attach(this.#socket);
    void this.#out.line(this.#session.greeting());
  }

  /** The server is stopping: BYE now, or once the command in progress is complete. */
  shutdown(): void {
    this.#closing = true;
    if (!this.#running && !this.#framer.busy) this.#hangUp('shutdown', 'Server shutting down');
  }

  #newFramer(): CommandFramer {
    return new CommandFramer(this.#limits(), this.#session);
  }

  #limits(): FramerLimits {
    return this.#authenticated ? this.#deps.authenticatedLimits : PREAUTH_FRAMER_LIMITS;
  }

  #attach(socket: net.Socket): void {
    // setTimeout(ms) and an 'on' listener: setTimeout(ms, cb) would add a `once` wrapper.
    socket.setTimeout(this.#deps.config.imap.timeout);
    socket.on('timeout', this.#onTimeout);
    socket.on('data', this.#onData);
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
  }

  #expire(reason: 'login-timeout' | 'command-timeout' | 'autologout'): void {
    const text = {
      'login-timeout': 'Took too long to log in',
      'command-timeout': 'Command took too long',
      autologout: 'Autologout; idle for too long',
    }[reason];
    this.#hangUp(reason, text);
  }

  /** Says BYE (when `text` is given), ends the connection and closes it after a short linger
   *  whatever the client does; nothing more is read. */
  #hangUp(reason: HangUp, text?: string): void {
    if (this.#hungUp || this.#done) return;
    this.#hungUp = true;
    this.#clearTimers();
    // A stable line for fail2ban (docs/security.md): address first, then the reason.
    if (reason !== 'logout') this.#log.info({ ip: this.#ip, reason, ...(text ? { bye: text } : {}) }, 'imap hangup');
    if (reason === 'protocol') this.#deps.offences?.offence(this.#ip, 'protocol');
    this.#queue = null;
    this.#lingerTimer = setTimeout(() => this.#raw.destroy(), LIMITS.imap.closeLingerMs);
    const socket = this.#socket;
    const zlib = this.#zlib;
    const end = () => {
      // With COMPRESS the deflater ends the socket once what it holds is written.
      if (zlib) zlib.deflate.end();
      else if (!socket.destroyed) socket.end();
    };
    if (text) void this.#out.line(`* BYE ${text}`).then(end);
    else end();
    // Read and drop what still comes, so the client's close is seen.
    this.#source.resume();
  }

  #clearTimers(): void {
    for (const t of [this.#commandTimer, this.#loginTimer, this.#lingerTimer]) if (t) clearTimeout(t);
    this.#commandTimer = this.#loginTimer = this.#lingerTimer = null;
  }

  #enqueue(chunk: Buffer): void {
    this.access.bytesIn += chunk.length;
    if (this.#hungUp) {
      this.#afterBye += chunk.length;
      if (this.#afterBye > LIMITS.imap.maxBytesAfterBye) this.#raw.destroy();
      return;
    }
    if (this.#commandTimer) {
      clearTimeout(this.#commandTimer);
      this.#commandTimer = null;
    }
    this.#clock?.stop(Date.now());
    if (!this.#running) {
      void this.#run(chunk);
      return;
    }
    this.#queue ??= [];
    this.#queue.push(chunk);
  }

  async #run(first: Buffer): Promise<void> {
    this.#running = true;
    this.#source.pause();
    try {
      let chunk: Buffer | undefined = first;
      while (chunk && !this.#hungUp && !this.#raw.destroyed) {
        await this.#chunk(chunk);
        chunk = this.#queue?.shift();
      }
      this.#queue = null;
    } catch (e) {
      this.#log.error({ err: errorMessage(e) }, 'imap connection failed');
      this.#hangUp('error');
      this.#raw.destroy();
    } finally {
      this.#running = false;
      this.#idle();
    }
  }

  /** Frames and handles one chunk, a command at a time. */
  async #chunk(chunk: Buffer): Promise<void> {
    let rest = chunk;
    while (rest.length > 0 && !this.#hungUp) {
      const { events, used } = this.#framer.feed(rest);
      rest = rest.subarray(used);
      const read = this.#framer.literalBytesRead;
      // No clock yet: the command began in this chunk and has its full time, which credit
      // cannot raise.
      this.#clock?.credit(read - this.#literalBytes);
      this.#literalBytes = read;
      for (const ev of events) {
        await this.#event(ev);
        if (this.#hungUp || this.#raw.destroyed) return;
      }
      if (!this.#framer.busy) this.#clock = null; // the next command starts with the full time
      if (this.#upgraded) {
        // RFC 9051 §6.2.1: nothing sent before the TLS handshake survives it.
        this.#queue = null;
        this.#upgraded = false;
        return;
      }
      if (this.#switched) {
        // RFC 4978 §3: the client's next byte after the OK is compressed, even in this chunk.
        this.#switched = false;
        const inflate = this.#zlib?.inflate;
        if (!inflate) return;
        for (const c of [rest, ...(this.#queue ?? [])]) if (c.length > 0) inflate.write(c);
        this.#queue = null;
        this.#socket.pipe(inflate); // with backpressure: the socket waits while inflate is full
        return;
      }
      if (this.#closing && !this.#framer.busy) {
        this.#hangUp('shutdown', 'Server shutting down');
        return;
      }
    }
  }

  /** The input is drained: resume reading; a command left half-read runs against its deadline. */
  #idle(): void {
    if (this.#hungUp || this.#raw.destroyed) return;
    if (this.#framer.busy) {
      const { command_timeout, min_data_rate } = this.#deps.config.imap;
      this.#clock ??= new CommandClock(command_timeout, min_data_rate);
      const left = this.#clock.wait(Date.now());
      this.#commandTimer = setTimeout(() => this.#expire('command-timeout'), left);
    }
    this.#source.resume();
  }

  async #event(ev: FramerEvent): Promise<void> {
    switch (ev.type) {
      case 'continue':
        return this.#out.line('+ Ready for literal data');
      case 'literal-data': {
        // A streamed APPEND message: spooled with CRLF line endings, like SMTP mail; a literal8
        // (RFC 3516 §4.4) as sent, converted once complete (imap/binary-spool.ts: its binary
        // parts to base64, then its line endings). The framer streams only after login; this
        // is the last line of defence.
        if (!this.#authenticated) throw new Error('literal data before login');
        this.#spools ??= new Map();
        const spools = this.#spools;
        let sp = spools.get(ev.index);
        if (!sp) {
          sp = { writer: this.#deps.store.createSpool(), crlf: ev.binary ? null : new CrlfNormalizer() };
          spools.set(ev.index, sp);
        }
        await sp.writer.write(sp.crlf ? sp.crlf.push(ev.chunk) : ev.chunk);
        if (ev.end) {
          if (sp.crlf) await sp.writer.write(sp.crlf.end());
          this.#spooled ??= new Map();
          this.#spooled.set(ev.index, sp.writer.finish());
        }
        return;
      }
      case 'error': {
        const code = ev.code ? `[${ev.code}] ` : '';
        this.access.unparsed(ev.code ? 'NO' : 'BAD');
        if (ev.fatal) return this.#hangUp('protocol', `${code}${ev.text}`);
        return this.#out.line(`${ev.tag ?? '*'} ${ev.code ? 'NO' : 'BAD'} ${code}${ev.text}`);
      }
      case 'command':
        try {
          await this.#session.handle(ev.frame);
        } finally {
          await this.#releaseSpools();
        }
        if (this.#session.state.kind === 'logout') return this.#hangUp('logout');
        if (!this.#authenticated && this.#session.state.kind !== 'notAuthenticated') this.#loggedIn();
        return;
    }
  }

  #loggedIn(): void {
    this.#authenticated = true;
    if (this.#loginTimer) clearTimeout(this.#loginTimer);
    this.#loginTimer = null;
    this.#framer.limits = this.#limits();
  }

  async #releaseSpools(): Promise<void> {
    const spools = this.#spools;
    const spooled = this.#spooled;
    this.#spools = this.#spooled = null;
    for (const sp of spools?.values() ?? []) await sp.writer.abort();
    for (const p of spooled?.values() ?? []) await p.then((m) => m.dispose()).catch(() => {});
  }

  async #startTls(context: tls.SecureContext): Promise<void> {
    const plain = this.#socket;
    plain.off('data', this.#onData);
    plain.setTimeout(0);
    this.#upgraded = true;
    this.#framer = this.#newFramer();
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: context });
    watchTls('imap', secure);
    await new Promise<void>((resolve) => {
      secure.once('secure', resolve);
      secure.once('error', () => resolve());
      secure.once('close', () => resolve());
    });
    this.#socket = secure;
    this.#source = secure;
    this.#secure = true;
    this.#out.replaceSocket(secure);
    this.#attach(secure);
    secure.pause(); // resumed when the command is done (#idle)
    plain.resume();
  }

  /** RFC 4978: raw DEFLATE both ways from the next byte on. The client's compressed bytes are
   *  inflated before the framer, piped with backpressure and paused with the rest of the input;
   *  our output is deflated and flushed after each response. */
  async #startCompress(): Promise<void> {
    const socket = this.#socket;
    const inflate = createInflateRaw();
    const deflate = createDeflateRaw({ level: 6 });
    this.#zlib = { inflate, deflate };
    socket.off('data', this.#onData);
    inflate.on('data', this.#onData);
    inflate.pause(); // resumed when the command is done (#idle)
    this.#source = inflate;
    const fail = (err: Error) => {
      this.#log.info({ err: errorMessage(err) }, 'imap compression error');
      this.#raw.destroy();
    };
    inflate.on('error', fail);
    deflate.on('error', fail);
    deflate.pipe(socket);
    this.#out.compress(deflate);
    this.#framer = this.#newFramer();
    // What was already read is written to the inflater first, then the socket is piped (#chunk).
    this.#switched = true;
  }

  #closed(): void {
    // After STARTTLS both the plain and the TLS socket report 'close': clean up once.
    if (this.#done) return;
    this.#done = true;
    this.#clearTimers();
    this.#queue = null;
    this.#session.leave();
    void this.#releaseSpools();
    if (this.#zlib) {
      this.#zlib.inflate.destroy();
      this.#zlib.deflate.destroy();
      this.#zlib = null;
    }
    this.access.close();
    this.#log.info('imap disconnect');
  }
}
