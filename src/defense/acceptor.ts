// What every listener of a login protocol (IMAP, ManageSieve) does with a new TCP connection
// before its protocol starts, in one place (docs/architecture.md §3, "what the gate asks at
// accept"): the IP deny list and bans first (NetworkAccess), then the per-address, per-network
// and total limits (ConnectionCounter), then the connection rate per client network; only then
// the TLS handshake (implicit TLS ports) and the session. Every TCP connection is counted the
// moment it is accepted, before any handshake. A connection refused is told BYE in its
// protocol's words (after the handshake on a TLS port; a denied or banned client gets no
// handshake at all), what it sends is read and dropped up to a bound, and it is closed after a
// short linger whatever it does; at most `maxLingering` of them wait at once. The login
// deadline starts at accept, so a handshake that never finishes is cut off by it. Shutdown:
// each session is asked to end (BYE once its command in progress is complete), and every
// socket is destroyed when the grace period has passed.

import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { NetworkLimit } from '../core/connection-limits.ts';
import { ConnectionCounter, type Refusal } from '../core/connection-limits.ts';
import { errorMessage } from '../core/errors.ts';
import { peerAddress } from '../core/ip.ts';
import { listenOn } from '../core/listen.ts';
import type { Logger } from '../core/log.ts';
import { accessRefused, rateLimited, watchTls } from '../core/metrics.ts';
import type { NetworkAccess } from './types.ts';

/** A session the acceptor started: asked to end at shutdown. */
export interface Accepted {
  shutdown(): void;
}

export type AcceptRefusal = Refusal | 'rate' | 'deny' | 'banned';

/** What a refused client is told, in every protocol's goodbye. */
export const REFUSAL_TEXT: Readonly<Record<AcceptRefusal, string>> = {
  'per-ip': 'Too many connections from your address',
  'per-network': 'Too many connections from your network, try again later',
  total: 'Too many connections, try again later',
  rate: 'Too many connections from your network, try again later',
  deny: 'Access denied',
  banned: 'Temporarily banned for abuse, try again later',
};

export interface AcceptorOptions {
  /** The metrics and log label: imap | managesieve. */
  readonly service: 'imap' | 'managesieve';
  readonly log: Logger;
  readonly maxPerIp: number;
  readonly maxTotal: number;
  /** Concurrency of wider client networks ([rate_limits] concurrent_per_network). */
  readonly networks: readonly NetworkLimit[];
  /** Not counted against the limits (trusted networks, the IP allow list). */
  readonly exempt: (ip: string) => boolean;
  readonly access?: NetworkAccess | undefined;
  /** Connection rate per client network: the limit a new connection is over, or null. */
  readonly connectionRate?: ((ip: string) => Promise<string | null>) | undefined;
  readonly loginTimeoutMs: number;
  readonly shutdownGraceMs: number;
  readonly lingerMs: number;
  readonly maxLingering: number;
  readonly maxBytesAfterBye: number;
  /** The certificate now (implicit TLS ports). */
  readonly context: () => tls.SecureContext;
  /** The protocol's goodbye line for a refused connection (with its CRLF). */
  readonly bye: (refusal: AcceptRefusal) => string;
  /** Starts the protocol on an admitted connection: `socket` (TLS on an implicit TLS port) over
   *  `raw`; `loginBy` is the login deadline (ms since the epoch). */
  readonly begin: (socket: net.Socket, raw: net.Socket, secure: boolean, loginBy: number) => Accepted;
}

/** The error listener of sockets whose errors need no action ('close' follows). */
function ignore(): void {}

export class Acceptor {
  readonly #o: AcceptorOptions;
  readonly #servers: net.Server[] = [];
  /** Every accepted TCP socket until it closes, with its session once it has one (null for a
   *  TLS handshake or a refused socket). */
  readonly #sockets = new Map<net.Socket, Accepted | null>();
  readonly #counter: ConnectionCounter;
  #lingering = 0;
  #closing = false;

  constructor(o: AcceptorOptions) {
    this.#o = o;
    this.#counter = new ConnectionCounter(o.maxPerIp, o.maxTotal, o.networks, o.exempt);
  }

  async listen(plain: readonly string[], implicit: readonly string[]): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const [addrs, secure] of [
      [plain, false],
      [implicit, true],
    ] as const) {
      for (const a of addrs) {
        // Implicit TLS too is a plain TCP listener: the socket is counted (and refused) before
        // its handshake, which runs under our login deadline (#admitted).
        // No Nagle: a reply written in two parts must not wait for the client's delayed ACK of
        // the first (40 ms on Linux) before the second.
        const server = net.createServer({ noDelay: true }, (s) => this.#accept(s, secure));
        this.#servers.push(server);
        bound.push(await listenOn(server, a));
        server.on('error', (err) => this.#o.log.error({ err: errorMessage(err) }, `${this.#o.service} listener error`));
      }
    }
    return bound;
  }

  // Per connection, only what it needs: one 'close' listener for all the bookkeeping, listeners
  // that are shared functions, no `once` wrappers (an idle connection holds them for hours).
  #accept(raw: net.Socket, implicit: boolean): void {
    if (this.#closing) {
      raw.on('error', ignore);
      raw.destroy();
      return;
    }
    const ip = peerAddress(raw.remoteAddress);
    const v = this.#o.access?.verdict(ip);
    if (v && (v.kind === 'deny' || v.kind === 'banned')) {
      accessRefused.inc({ service: this.#o.service, reason: v.kind });
      raw.on('error', ignore);
      // No TLS handshake for a refused client (the CPU an attacker wants us to spend): on the
      // TLS port it is closed at once, on the plain one told why.
      if (implicit) {
        raw.destroy();
        return;
      }
      this.#track(raw, ip, false);
      this.#refuse(raw, raw, false, ip, v.kind);
      return;
    }
    const refusal = this.#counter.admit(ip);
    this.#track(raw, ip, refusal === null);
    // A plain connection gets its own error listener (from its session, synchronously below).
    if (implicit || refusal !== null) raw.on('error', ignore);
    // Implicit TLS: the current pair, swapped on SIGHUP without dropping connections.
    const socket = implicit ? new tls.TLSSocket(raw, { isServer: true, secureContext: this.#o.context() }) : raw;
    if (implicit) {
      socket.on('error', ignore);
      watchTls(this.#o.service, socket as tls.TLSSocket);
    }
    if (refusal !== null) {
      this.#refuse(raw, socket, implicit, ip, refusal);
      return;
    }
    // The IP allow list skips the rate limits (docs/spam.md).
    const rate = v?.kind === 'allow' ? undefined : this.#o.connectionRate;
    if (rate) {
      // Asked while the socket waits (paused; the TLS handshake waits for it too).
      rate(ip).then(
        (limit) => this.#admitted(raw, socket, implicit, ip, limit === null ? null : 'rate'),
        () => this.#admitted(raw, socket, implicit, ip, null),
      );
      return;
    }
    this.#admitted(raw, socket, implicit, ip, null);
  }

  #admitted(raw: net.Socket, socket: net.Socket, implicit: boolean, ip: string, refusal: 'rate' | null): void {
    if (raw.destroyed) return;
    if (refusal !== null) {
      this.#refuse(raw, socket, implicit, ip, refusal);
      return;
    }
    const loginBy = Date.now() + this.#o.loginTimeoutMs;
    if (!implicit) {
      this.#begin(socket, raw, false, loginBy);
      return;
    }
    const handshake = setTimeout(() => raw.destroy(), this.#o.loginTimeoutMs);
    const settled = () => clearTimeout(handshake);
    raw.once('close', settled);
    socket.once('secure', () => {
      settled();
      raw.off('close', settled);
      if (!raw.destroyed) this.#begin(socket, raw, true, loginBy);
    });
  }

  /** Remembers an accepted socket until it closes; `counted`: admitted by the counter. */
  #track(raw: net.Socket, ip: string, counted: boolean): void {
    this.#sockets.set(raw, null);
    raw.on('close', () => {
      this.#sockets.delete(raw);
      if (counted) this.#counter.release(ip);
    });
  }

  #begin(socket: net.Socket, raw: net.Socket, secure: boolean, loginBy: number): void {
    const session = this.#o.begin(socket, raw, secure, loginBy);
    this.#sockets.set(raw, session);
    if (this.#closing) session.shutdown();
  }

  /** BYE (once TLS is up on the TLS port), then closed after a short linger whatever the
   *  client does; what it sends meanwhile is read and dropped, up to a bound. */
  #refuse(raw: net.Socket, socket: net.Socket, implicit: boolean, ip: string, refusal: AcceptRefusal): void {
    this.#o.log.info({ ip, reason: refusal }, `${this.#o.service} connection refused`);
    if (refusal === 'per-network') rateLimited.inc({ limit: 'concurrent_network' });
    if (this.#lingering >= this.#o.maxLingering) {
      raw.destroy();
      return;
    }
    this.#lingering++;
    const linger = setTimeout(() => raw.destroy(), this.#o.lingerMs);
    raw.once('close', () => {
      this.#lingering--;
      clearTimeout(linger);
    });
    const bye = () => socket.end(this.#o.bye(refusal));
    if (implicit) socket.once('secure', bye);
    else bye();
    let dropped = 0;
    socket.on('data', (d: Buffer) => {
      dropped += d.length;
      if (dropped > this.#o.maxBytesAfterBye) raw.destroy();
    });
  }

  /** Stops listening, asks every session to end, and closes whatever is left when the grace
   *  period has passed. */
  /** Sockets accepted and not yet closed (the node's heartbeat counts them, db/nodes.ts). */
  get connections(): number {
    return this.#sockets.size;
  }

  async close(): Promise<void> {
    this.#closing = true;
    // A listener only reports closed once its connections are gone.
    const closed = this.#servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    // Handshakes and refused connections have nothing to finish.
    for (const [s, session] of this.#sockets) {
      if (session) session.shutdown();
      else s.destroy();
    }
    const deadline = setTimeout(() => {
      for (const s of this.#sockets.keys()) s.destroy();
    }, this.#o.shutdownGraceMs);
    try {
      await Promise.all(closed);
    } finally {
      clearTimeout(deadline);
    }
  }
}
