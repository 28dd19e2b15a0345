// IMAP listeners: [imap] listen (plain, STARTTLS) and tls_listen (implicit TLS). Every TCP
// connection is counted the moment it is accepted, before any TLS handshake, against
// [imap] max_connections_per_ip (IPv6: per /64) and [imap] max_connections. A connection over a
// limit is told `* BYE ...` (after the handshake on the TLS port), what it sends is read and
// dropped (up to LIMITS.imap.maxBytesAfterBye), and it is closed after a short linger whatever it
// does; nothing is counted for it and at most LIMITS.imap.maxLingering of them wait at once
// (beyond, they are closed at once). The limits of wider client networks ([rate_limits]
// concurrent_per_network) are counted with the per-address one; the connection rate per client
// network ([rate_limits] connections_per_minute, defense/rate-limits.ts) is asked before the
// session starts, and a client over it gets `* BYE` the same way.
// The login deadline ([imap] login_timeout) starts at accept, so a TLS handshake that never
// finishes is cut off by it too. Shutdown: BYE to every client once its command in progress is
// complete, and every socket destroyed when [server] shutdown_grace has passed.
// The connections themselves: connection.ts.

import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Config } from '../config/schema.ts';
import { ConnectionCounter, type Refusal } from '../core/connection-limits.ts';
import { errorMessage } from '../core/errors.ts';
import { peerAddress } from '../core/ip.ts';
import { LIMITS } from '../core/limits.ts';
import { listenOn } from '../core/listen.ts';
import type { Logger } from '../core/log.ts';
import { accessRefused, rateLimited, watchTls } from '../core/metrics.ts';
import { networkLimits } from '../defense/rate-limits.ts';
import type { NetworkAccess, OffenceSink } from '../defense/types.ts';
import type { Directory } from '../directory/types.ts';
import { Networks } from '../hygiene/networks.ts';
import type { MessageStore } from '../store/mailboxes.ts';
import type { TlsManager } from '../tls/certs.ts';
import { authenticatedFramerLimits, Connection, type ConnectionDeps } from './connection.ts';

export interface ImapDeps {
  readonly config: Config;
  readonly directory: Directory;
  readonly store: MessageStore;
  readonly tls: TlsManager;
  readonly log: Logger;
  /** The login path shared with submission, so failed logins count alike on both. */
  readonly authenticator: Authenticator;
  /** The IP allow and deny lists and the bans (defense/access.ts), asked first at accept. */
  readonly access?: NetworkAccess;
  /** Sessions ended for protocol errors count towards a ban (defense/bans.ts). */
  readonly offences?: OffenceSink;
  /** Connection rate per client network (defense/rate-limits.ts): the limit a new connection
   *  is over, or null. */
  readonly connectionRate?: (ip: string) => Promise<string | null>;
}

/** The error listener of sockets whose errors need no action ('close' follows). */
function ignore(): void {}

const REFUSED: Record<Refusal | 'rate', string> = {
  'per-ip': 'Too many connections from your address',
  'per-network': 'Too many connections from your network, try again later',
  total: 'Too many connections, try again later',
  rate: 'Too many connections from your network, try again later',
};

export class ImapServer {
  readonly #deps: ImapDeps;
  readonly #servers: net.Server[] = [];
  /** Every accepted TCP socket until it closes, with its Connection once it has one (null for
   *  a TLS handshake or a refused socket). */
  readonly #sockets = new Map<net.Socket, Connection | null>();
  readonly #counter: ConnectionCounter;
  /** What every connection shares: built once, not per connection. */
  readonly #connectionDeps: ConnectionDeps;
  #lingering = 0;
  #closing = false;
  #context: tls.SecureContext;

  constructor(deps: ImapDeps) {
    this.#deps = deps;
    const trusted = new Networks(deps.config.hygiene.trusted_networks);
    this.#counter = new ConnectionCounter(
      deps.config.imap.max_connections_per_ip,
      deps.config.imap.max_connections,
      networkLimits(deps.config.rate_limits, deps.config.imap.max_connections_per_ip),
      (ip) => trusted.has(ip) || deps.access?.verdict(ip).kind === 'allow',
    );
    this.#context = tls.createSecureContext(deps.tls.current);
    deps.tls.onChange((p) => {
      this.#context = tls.createSecureContext(p);
    });
    this.#connectionDeps = {
      ...deps,
      context: () => this.#context,
      authenticatedLimits: authenticatedFramerLimits(deps.config.smtp.max_message_size),
    };
  }

  async listen(plain: readonly string[], implicit: readonly string[]): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const [addrs, secure] of [
      [plain, false],
      [implicit, true],
    ] as const) {
      for (const a of addrs) {
        // Implicit TLS too is a plain TCP listener: the socket is counted (and refused) before
        // its handshake, which runs under our login deadline (#accept).
        // No Nagle: a reply written in two parts (untagged lines, then the tagged one) must not
        // wait for the client's delayed ACK of the first (40 ms on Linux) before the second.
        const server = net.createServer({ noDelay: true }, (s) => this.#accept(s, secure));
        this.#servers.push(server);
        bound.push(await listenOn(server, a));
        server.on('error', (err) => this.#deps.log.error({ err: errorMessage(err) }, 'imap listener error'));
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
    const v = this.#deps.access?.verdict(ip);
    if (v && (v.kind === 'deny' || v.kind === 'banned')) {
      accessRefused.inc({ service: 'imap', reason: v.kind });
      raw.on('error', ignore);
      // No TLS handshake for a refused client (the CPU an attacker wants us to spend): on the
      // TLS port it is closed at once, on the plain one told why (RFC 5530 UNAVAILABLE for a ban).
      if (implicit) {
        raw.destroy();
        return;
      }
      this.#track(raw, ip, false);
      const text = v.kind === 'deny' ? 'Access denied' : '[UNAVAILABLE] Temporarily banned for abuse, try again later';
      this.#refuse(raw, raw, false, ip, v.kind, text);
      return;
    }
    const refusal = this.#counter.admit(ip);
    this.#track(raw, ip, refusal === null);
    // A plain connection gets its own error listener (Connection, synchronously below).
    if (implicit || refusal !== null) raw.on('error', ignore);
    // Implicit TLS (993): the current pair, swapped on SIGHUP without dropping connections.
    const socket = implicit ? new tls.TLSSocket(raw, { isServer: true, secureContext: this.#context }) : raw;
    if (implicit) {
      socket.on('error', ignore);
      watchTls('imap', socket as tls.TLSSocket);
    }
    if (refusal !== null) {
      this.#refuse(raw, socket, implicit, ip, refusal, REFUSED[refusal]);
      return;
    }
    // The IP allow list skips the rate limits (docs/spam.md).
    const rate = v?.kind === 'allow' ? undefined : this.#deps.connectionRate;
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
      this.#refuse(raw, socket, implicit, ip, refusal, REFUSED[refusal]);
      return;
    }
    const loginBy = Date.now() + this.#deps.config.imap.login_timeout;
    if (!implicit) {
      this.#begin(socket, raw, false, loginBy);
      return;
    }
    const handshake = setTimeout(() => raw.destroy(), this.#deps.config.imap.login_timeout);
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
    const conn = new Connection(socket, raw, secure, this.#connectionDeps, loginBy);
    this.#sockets.set(raw, conn);
    conn.start();
    if (this.#closing) conn.shutdown();
  }

  /** BYE (once TLS is up on the TLS port), then closed after a short linger whatever the
   *  client does; what it sends meanwhile is read and dropped, up to a bound. */
  #refuse(
    raw: net.Socket,
    socket: net.Socket,
    implicit: boolean,
    ip: string,
    refusal: Refusal | 'rate' | 'deny' | 'banned',
    text: string,
  ): void {
    this.#deps.log.info({ ip, reason: refusal }, 'imap connection refused');
    if (refusal === 'per-network') rateLimited.inc({ limit: 'concurrent_network' });
    if (this.#lingering >= LIMITS.imap.maxLingering) {
      raw.destroy();
      return;
    }
    this.#lingering++;
    const linger = setTimeout(() => raw.destroy(), LIMITS.imap.closeLingerMs);
    raw.once('close', () => {
      this.#lingering--;
      clearTimeout(linger);
    });
    const bye = () => socket.end(`* BYE ${text}\r\n`);
    if (implicit) socket.once('secure', bye);
    else bye();
    let dropped = 0;
    socket.on('data', (d: Buffer) => {
      dropped += d.length;
      if (dropped > LIMITS.imap.maxBytesAfterBye) raw.destroy();
    });
  }

  /** Stops listening, says BYE to every client once its command in progress is complete, and
   *  closes whatever is left when [server] shutdown_grace has passed. */
  async close(): Promise<void> {
    this.#closing = true;
    // A listener only reports closed once its connections are gone.
    const closed = this.#servers.map((s) => new Promise<void>((r) => s.close(() => r())));
    // Handshakes and refused connections have nothing to finish.
    for (const [s, conn] of this.#sockets) {
      if (conn) conn.shutdown();
      else s.destroy();
    }
    const deadline = setTimeout(() => {
      for (const s of this.#sockets.keys()) s.destroy();
    }, this.#deps.config.server.shutdown_grace);
    try {
      await Promise.all(closed);
    } finally {
      clearTimeout(deadline);
    }
  }
}
