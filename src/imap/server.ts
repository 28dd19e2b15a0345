// IMAP listeners and connections: [imap] listen (plain, STARTTLS) and tls_listen (implicit TLS).
// Each connection: bytes -> CommandFramer -> Session, processed one event at a time with the
// socket paused meanwhile (backpressure; one slow client never blocks another). No timers per
// connection beyond the socket's own idle timeout ([imap] timeout, RFC 9051 §5.4 autologout).

import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { createDeflateRaw, createInflateRaw } from 'node:zlib';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Config } from '../config/schema.ts';
import { ConnectionCounter } from '../core/connection-limits.ts';
import { CrlfNormalizer } from '../core/crlf.ts';
import { errorMessage } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { listenOn } from '../core/listen.ts';
import type { Logger } from '../core/log.ts';
import type { Directory } from '../directory/types.ts';
import type { MaildirStore } from '../store/maildir/index.ts';
import type { SpooledMessage, SpoolWriter } from '../store/types.ts';
import type { TlsManager } from '../tls/certs.ts';
import { Output } from './output.ts';
import { Session } from './session.ts';
import { CommandFramer, DEFAULT_FRAMER_LIMITS, type FramerEvent } from './wire/framer.ts';

export interface ImapDeps {
  readonly config: Config;
  readonly directory: Directory;
  readonly store: MaildirStore;
  readonly tls: TlsManager;
  readonly log: Logger;
  /** The login path shared with submission, so failed logins count alike on both. */
  readonly authenticator: Authenticator;
}

export class ImapServer {
  readonly #deps: ImapDeps;
  readonly #servers: net.Server[] = [];
  readonly #sockets = new Set<net.Socket>();
  readonly #perIp: ConnectionCounter;
  #context: tls.SecureContext;

  constructor(deps: ImapDeps) {
    this.#deps = deps;
    this.#perIp = new ConnectionCounter(deps.config.imap.max_connections_per_ip);
    this.#context = tls.createSecureContext(deps.tls.current);
    deps.tls.onChange((p) => {
      this.#context = tls.createSecureContext(p);
    });
  }

  async listen(plain: readonly string[], implicit: readonly string[]): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const [addrs, secure] of [
      [plain, false],
      [implicit, true],
    ] as const) {
      for (const a of addrs) {
        const server = secure ? this.#tlsServer() : net.createServer((s) => this.#accept(s, false));
        this.#servers.push(server);
        bound.push(await listenOn(server, a));
        server.on('error', (err) => this.#deps.log.error({ err: errorMessage(err) }, 'imap listener error'));
      }
    }
    return bound;
  }

  /** Implicit TLS (993): the current pair, swapped on SIGHUP without dropping connections. */
  #tlsServer(): tls.Server {
    const server = tls.createServer({ ...this.#deps.tls.current }, (s) => this.#accept(s, true));
    this.#deps.tls.onChange((p) => server.setSecureContext({ ...p }));
    return server;
  }

  #accept(socket: net.Socket, secure: boolean): void {
    const ip = socket.remoteAddress ?? '';
    socket.on('error', () => {});
    if (!this.#perIp.acquire(ip)) {
      socket.end('* BYE Too many connections from your address\r\n');
      return;
    }
    this.#sockets.add(socket);
    socket.once('close', () => {
      this.#sockets.delete(socket);
      this.#perIp.release(ip);
    });
    new Connection(socket, secure, this.#deps, () => this.#context).start();
  }

  /** Stops listening and says BYE to every client. */
  async close(): Promise<void> {
    // A listener only reports closed once its connections are gone: end those first.
    const closed = this.#servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    for (const s of this.#sockets) {
      s.end('* BYE Server shutting down\r\n');
      setTimeout(() => s.destroy(), 1000).unref();
    }
    await Promise.all(closed);
  }
}

class Connection {
  #socket: net.Socket;
  #secure: boolean;
  readonly #deps: ImapDeps;
  readonly #log: Logger;
  readonly #out: Output;
  #framer: CommandFramer;
  readonly #session: Session;
  readonly #queue: Buffer[] = [];
  #running = false;
  /** Set by STARTTLS: everything read before the upgrade is discarded. */
  #upgraded = false;
  readonly #spools = new Map<number, { writer: SpoolWriter; crlf: CrlfNormalizer }>();
  readonly #spooled = new Map<number, Promise<SpooledMessage>>();
  readonly #onData = (chunk: Buffer) => this.#enqueue(chunk);
  /** Set by COMPRESS: the events of the chunk being handled are stale. */
  #switched = false;
  #done = false;

  constructor(socket: net.Socket, secure: boolean, deps: ImapDeps, context: () => tls.SecureContext) {
    this.#socket = socket;
    this.#secure = secure;
    this.#deps = deps;
    this.#framer = new CommandFramer({ ...DEFAULT_FRAMER_LIMITS, maxAppend: deps.config.smtp.max_message_size });
    this.#log = deps.log.child({ conn: newId('c') });
    this.#out = new Output(socket);
    const ip = socket.remoteAddress ?? '';
    this.#session = new Session({
      directory: deps.directory,
      store: deps.store,
      authenticator: deps.authenticator,
      log: this.#log,
      hostname: deps.config.hostname,
      appendLimit: deps.config.smtp.max_message_size,
      send: (parts) => this.#out.send(parts),
      startTls: () => this.#startTls(context()),
      startCompress: () => this.#startCompress(),
      secure: () => this.#secure,
      remoteAddress: ip,
      loopback: ip === '::1' || ip.startsWith('127.') || ip.startsWith('::ffff:127.'),
      streamedLiteral: (index) => this.#spooled.get(index) ?? Promise.reject(new Error('no such literal')),
    });
  }

  start(): void {
    this.#log.info({ ip: this.#socket.remoteAddress, tls: this.#secure }, 'imap connect');
    this.#attach(this.#socket);
    void this.#out.line(this.#session.greeting());
  }

  #attach(socket: net.Socket): void {
    socket.setTimeout(this.#deps.config.imap.timeout, () => {
      void this.#out.line('* BYE Autologout; idle for too long').then(() => socket.end());
    });
    socket.on('data', this.#onData);
    socket.on('close', () => this.#closed());
    socket.on('error', (err) => this.#log.debug({ err: errorMessage(err) }, 'imap socket error'));
  }

  #enqueue(chunk: Buffer): void {
    this.#queue.push(chunk);
    if (!this.#running) void this.#run();
  }

  async #run(): Promise<void> {
    this.#running = true;
    this.#socket.pause();
    try {
      while (this.#queue.length > 0 && !this.#socket.destroyed) {
        const events = this.#framer.push(this.#queue.shift() as Buffer);
        for (const ev of events) {
          await this.#event(ev);
          if (this.#upgraded || this.#switched || this.#socket.destroyed) break;
        }
        // After COMPRESS the rest of that chunk was parsed as plain text: drop those events;
        // what follows arrives inflated through the new framer.
        this.#switched = false;
        if (this.#upgraded) {
          this.#queue.length = 0; // RFC 9051 §6.2.1: nothing sent before TLS survives it
          this.#upgraded = false;
        }
      }
    } catch (e) {
      this.#log.error({ err: errorMessage(e) }, 'imap connection failed');
      this.#socket.destroy();
    } finally {
      this.#running = false;
      if (!this.#socket.destroyed) this.#socket.resume();
    }
  }

  async #event(ev: FramerEvent): Promise<void> {
    switch (ev.type) {
      case 'continue':
        return this.#out.line('+ Ready for literal data');
      case 'literal-data': {
        // A streamed APPEND message: spooled with CRLF line endings, like SMTP mail.
        let sp = this.#spools.get(ev.index);
        if (!sp) {
          sp = { writer: this.#deps.store.createSpool(), crlf: new CrlfNormalizer() };
          this.#spools.set(ev.index, sp);
        }
        await sp.writer.write(sp.crlf.push(ev.chunk));
        if (ev.end) {
          await sp.writer.write(sp.crlf.end());
          this.#spooled.set(ev.index, sp.writer.finish());
        }
        return;
      }
      case 'error': {
        const code = ev.code ? `[${ev.code}] ` : '';
        if (ev.fatal) {
          await this.#out.line(`* BYE ${ev.text}`);
          this.#socket.end();
          return;
        }
        return this.#out.line(`${ev.tag ?? '*'} ${ev.code ? 'NO' : 'BAD'} ${code}${ev.text}`);
      }
      case 'command':
        try {
          await this.#session.handle(ev.frame);
        } finally {
          await this.#releaseSpools();
        }
        if (this.#session.state.kind === 'logout') this.#socket.end();
        return;
    }
  }

  async #releaseSpools(): Promise<void> {
    for (const sp of this.#spools.values()) await sp.writer.abort();
    for (const p of this.#spooled.values()) await p.then((m) => m.dispose()).catch(() => {});
    this.#spools.clear();
    this.#spooled.clear();
  }

  async #startTls(context: tls.SecureContext): Promise<void> {
    const plain = this.#socket;
    plain.off('data', this.#onData);
    plain.setTimeout(0);
    this.#upgraded = true;
    this.#framer = new CommandFramer({ ...DEFAULT_FRAMER_LIMITS, maxAppend: this.#deps.config.smtp.max_message_size });
    const secure = new tls.TLSSocket(plain, { isServer: true, secureContext: context });
    await new Promise<void>((resolve) => {
      secure.once('secure', resolve);
      secure.once('error', () => resolve());
      secure.once('close', () => resolve());
    });
    this.#socket = secure;
    this.#secure = true;
    this.#out.replaceSocket(secure);
    this.#attach(secure);
    plain.resume();
  }

  /** RFC 4978: raw DEFLATE both ways from the next byte on. The client's compressed bytes are
   *  inflated before the framer; our output is deflated and flushed after each response. */
  async #startCompress(): Promise<void> {
    const socket = this.#socket;
    const inflate = createInflateRaw();
    const deflate = createDeflateRaw({ level: 6 });
    socket.off('data', this.#onData);
    socket.on('data', (d: Buffer) => inflate.write(d));
    inflate.on('data', this.#onData);
    const fail = (err: Error) => {
      this.#log.info({ err: errorMessage(err) }, 'imap compression error');
      socket.destroy();
    };
    inflate.on('error', fail);
    deflate.on('error', fail);
    deflate.pipe(socket);
    this.#out.compress(deflate);
    this.#framer = new CommandFramer({ ...DEFAULT_FRAMER_LIMITS, maxAppend: this.#deps.config.smtp.max_message_size });
    this.#switched = true;
    // Bytes the client sent after COMPRESS and that were already read are compressed too.
    const pending = this.#queue.splice(0);
    for (const chunk of pending) inflate.write(chunk);
  }

  #closed(): void {
    // After STARTTLS both the plain and the TLS socket report 'close': clean up once.
    if (this.#done) return;
    this.#done = true;
    this.#session.leave();
    void this.#releaseSpools();
    this.#log.info('imap disconnect');
  }
}
