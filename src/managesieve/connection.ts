// One ManageSieve connection: bytes → CommandFramer (wire.ts) → Session (session.ts), one
// command at a time with the input paused meanwhile (what a client pipelines waits in the
// kernel, not in our memory).
//
// Bounds and deadlines (LIMITS.managesieve, [managesieve]):
// - a line is at most maxLineBytes; a literal at most preauthLiteralBytes before login and
//   [sieve] max_script_size after, refused when announced, before its octets (fatal: NO with
//   QUOTA/MAXSIZE, then BYE, as the stream cannot be resynchronised without reading it);
// - [managesieve] login_timeout from accept (the TLS handshake of STARTTLS included) to login;
// - [managesieve] command_timeout: a started command must be complete within it from its first
//   byte (a trickled literal does not buy time);
// - [managesieve] timeout without a command once logged in;
// - output a client does not read: at most maxQueuedOutputBytes, then the socket is closed.
// Every way out ends in #hangUp: BYE, end, and the socket destroyed after a short linger.

import type net from 'node:net';
import tls from 'node:tls';
import type { Authenticator } from '../auth/authenticator.ts';
import { errorMessage } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { isLoopback, peerAddress } from '../core/ip.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { watchTls } from '../core/metrics.ts';
import type { OffenceSink } from '../defense/types.ts';
import type { SieveScripts } from '../sieve/store-types.ts';
import { Session, type SessionDeps } from './session.ts';
import { CommandFramer, response } from './wire.ts';

const M = LIMITS.managesieve;

export interface ConnectionDeps {
  readonly scripts: SieveScripts;
  readonly authenticator: Authenticator;
  readonly log: Logger;
  /** [sieve] max_script_size. */
  readonly maxScriptBytes: number;
  /** [managesieve] timeout: idle time once logged in. */
  readonly idleTimeoutMs: number;
  /** [managesieve] login_timeout: again after UNAUTHENTICATE. */
  readonly loginTimeoutMs: number;
  /** [managesieve] command_timeout. */
  readonly commandTimeoutMs: number;
  /** The current certificate, for STARTTLS. */
  readonly context: () => tls.SecureContext;
  readonly offences?: OffenceSink | undefined;
}

type HangUp =
  | 'login-timeout'
  | 'command-timeout'
  | 'autologout'
  | 'protocol'
  | 'output-not-read'
  | 'shutdown'
  | 'logout';

export class Connection implements SessionDeps {
  readonly #deps: ConnectionDeps;
  readonly #raw: net.Socket;
  #socket: net.Socket;
  #secure: boolean;
  readonly #ip: string;
  readonly #log: Logger;
  readonly #session: Session;
  #framer: CommandFramer;
  #running = false;
  #closing = false;
  #hungUp = false;
  #done = false;
  #afterBye = 0;
  #loginTimer: NodeJS.Timeout | null = null;
  #commandTimer: NodeJS.Timeout | null = null;
  #lingerTimer: NodeJS.Timeout | null = null;
  /** Commands (and framer errors) handled so far, and their number when the command deadline
   *  was set. */
  #completed = 0;
  #completedAtTimer = 0;
  readonly #started = Date.now();
  readonly #onData = (chunk: Buffer) => this.#enqueue(chunk);
  readonly #onClose = () => this.#closed();
  readonly #onError = (err: Error) => this.#log.debug({ err: errorMessage(err) }, 'managesieve socket error');
  readonly #onTimeout = () => this.#hangUp('autologout', 'Idle for too long');

  constructor(socket: net.Socket, raw: net.Socket, secure: boolean, deps: ConnectionDeps, loginBy: number) {
    this.#deps = deps;
    this.#raw = raw;
    this.#socket = socket;
    this.#secure = secure;
    this.#ip = peerAddress(raw.remoteAddress);
    this.#log = deps.log.child({ conn: newId('c') });
    this.#session = new Session(this);
    this.#framer = this.#newFramer();
    this.#loginTimer = setTimeout(() => this.#hangUp('login-timeout', 'Took too long to log in'), loginBy - Date.now());
  }

  // SessionDeps
  get scripts(): SieveScripts {
    return this.#deps.scripts;
  }
  get authenticator(): Authenticator {
    return this.#deps.authenticator;
  }
  get log(): Logger {
    return this.#log;
  }
  get remoteAddress(): string {
    return this.#ip;
  }
  get loopback(): boolean {
    return isLoopback(this.#ip);
  }
  get maxScriptBytes(): number {
    return this.#deps.maxScriptBytes;
  }
  secure(): boolean {
    return this.#secure;
  }
  async send(bytes: Buffer): Promise<void> {
    const s = this.#socket;
    if (s.destroyed || !s.writable) return;
    s.write(bytes);
    if (s.writableLength > M.maxQueuedOutputBytes) {
      this.#log.info({ ip: this.#ip, reason: 'output-not-read' }, 'managesieve hangup');
      this.#raw.destroy();
    }
  }
  startTls(): Promise<void> {
    return this.#startTls();
  }

  start(): void {
    this.#log.info({ ip: this.#ip, tls: this.#secure }, 'managesieve connect');
    this.#attach(this.#socket);
    // RFC 5804 §1.7: the greeting is the capability list.
    void this.send(this.#session.capability());
  }

  /** The server is stopping: BYE now, or once the command in progress is complete. */
  shutdown(): void {
    this.#closing = true;
    if (!this.#running && !this.#framer.busy) this.#hangUp('shutdown', 'Server shutting down');
  }

  #newFramer(): CommandFramer {
    return new CommandFramer({
      maxLineBytes: M.maxLineBytes,
      maxTokens: M.maxArguments + 1,
      literalLimit: () => this.#session.literalLimit(),
      literalSlack: M.preauthLiteralBytes,
    });
  }

  #attach(socket: net.Socket): void {
    socket.on('data', this.#onData);
    socket.on('close', this.#onClose);
    socket.on('error', this.#onError);
    socket.on('timeout', this.#onTimeout);
  }

  #enqueue(chunk: Buffer): void {
    if (this.#hungUp) {
      this.#afterBye += chunk.length;
      if (this.#afterBye > LIMITS.imap.maxBytesAfterBye) this.#raw.destroy();
      return;
    }
    this.#framer.push(chunk);
    if (!this.#running) void this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    this.#socket.pause();
    try {
      for (;;) {
        if (this.#hungUp || this.#raw.destroyed) return;
        const ev = this.#framer.next();
        if (ev === null) break;
        this.#completed++;
        if (ev.kind === 'error') {
          if (ev.fatal) {
            if (ev.code) await this.send(response('NO', ev.code, ev.text));
            this.#hangUp('protocol', ev.code ? 'Connection closed' : ev.text);
            return;
          }
          if ((await this.#session.refuse(ev.text)) === 'close') return this.#hangUp('protocol');
          continue;
        }
        const wasAuthenticated = this.#session.authenticated;
        const after = await this.#session.handle(ev.tokens);
        if (!wasAuthenticated && this.#session.authenticated) this.#loggedIn();
        if (wasAuthenticated && !this.#session.authenticated) this.#loggedOut();
        if (after === 'close') {
          this.#hangUp(this.#session.state.kind === 'logout' ? 'logout' : 'protocol');
          return;
        }
      }
    } catch (e) {
      this.#log.error({ err: errorMessage(e) }, 'managesieve connection error');
      this.#raw.destroy();
      return;
    } finally {
      this.#running = false;
    }
    if (this.#closing && !this.#framer.busy) {
      this.#hangUp('shutdown', 'Server shutting down');
      return;
    }
    // The deadline of a started command runs from its start, not from its last bytes (a client
    // trickling a literal is cut off); a command completed since the timer was set restarts it.
    const progressed = this.#completed !== this.#completedAtTimer;
    if (this.#commandTimer && (progressed || !this.#framer.busy)) {
      clearTimeout(this.#commandTimer);
      this.#commandTimer = null;
    }
    if (this.#framer.busy && !this.#commandTimer) {
      this.#completedAtTimer = this.#completed;
      this.#commandTimer = setTimeout(
        () => this.#hangUp('command-timeout', 'Command took too long'),
        this.#deps.commandTimeoutMs,
      );
    }
    this.#socket.resume();
  }

  #loggedIn(): void {
    if (this.#loginTimer) clearTimeout(this.#loginTimer);
    this.#loginTimer = null;
    this.#socket.setTimeout(this.#deps.idleTimeoutMs);
  }

  /** After UNAUTHENTICATE (RFC 5804 §2.14.1): the login deadline again. */
  #loggedOut(): void {
    this.#socket.setTimeout(0);
    this.#loginTimer = setTimeout(
      () => this.#hangUp('login-timeout', 'Took too long to log in'),
      this.#deps.loginTimeoutMs,
    );
  }

  async #startTls(): Promise<void> {
    const plain = this.#socket;
    plain.off('data', this.#onData);
    plain.off('timeout', this.#onTimeout);
    // RFC 5804 §2.2 (as RFC 3207 §4.2): nothing the client sent before the handshake is kept.
    this.#framer.discard();
    this.#framer = this.#newFramer();
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: this.#deps.context() });
    watchTls('managesieve', secure);
    const ok = await new Promise<boolean>((resolve) => {
      secure.once('secure', () => resolve(true));
      secure.once('error', () => resolve(false));
      secure.once('close', () => resolve(false));
    });
    if (!ok) {
      this.#raw.destroy();
      return;
    }
    this.#socket = secure;
    this.#secure = true;
    this.#attach(secure);
    secure.pause(); // resumed when the command is done (#run)
    plain.resume();
  }

  /** Says BYE (when `text` is given), ends the connection and closes it after a short linger
   *  whatever the client does. */
  #hangUp(reason: HangUp, text?: string): void {
    if (this.#hungUp || this.#done) return;
    this.#hungUp = true;
    this.#clearTimers();
    // A stable line for fail2ban (docs/security.md): address first, then the reason.
    if (reason !== 'logout')
      this.#log.info({ ip: this.#ip, reason, ...(text ? { bye: text } : {}) }, 'managesieve hangup');
    if (reason === 'protocol') this.#deps.offences?.offence(this.#ip, 'protocol');
    this.#lingerTimer = setTimeout(() => this.#raw.destroy(), M.closeLingerMs);
    const socket = this.#socket;
    if (text && socket.writable) socket.end(response('BYE', null, text));
    else if (!socket.destroyed) socket.end();
    // Read and drop what still comes, so the client's close is seen.
    socket.resume();
  }

  #clearTimers(): void {
    for (const t of [this.#commandTimer, this.#loginTimer, this.#lingerTimer]) if (t) clearTimeout(t);
    this.#commandTimer = this.#loginTimer = this.#lingerTimer = null;
  }

  #closed(): void {
    // After STARTTLS both the plain and the TLS socket report 'close': clean up once.
    if (this.#done) return;
    this.#done = true;
    this.#clearTimers();
    const st = this.#session.state;
    this.#log.info(
      {
        ip: this.#ip,
        tls: this.#secure,
        ...(st.kind === 'authenticated' ? { user: st.account } : {}),
        commands: this.#completed,
        duration_ms: Date.now() - this.#started,
      },
      'managesieve disconnect',
    );
  }
}
