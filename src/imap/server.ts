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
// The accept path is shared with ManageSieve: defense/acceptor.ts. The connections themselves:
// connection.ts.

import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Config } from '../config/schema.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { Acceptor, type AcceptRefusal, REFUSAL_TEXT } from '../defense/acceptor.ts';
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

// RFC 5530 UNAVAILABLE for a ban.
const REFUSED: Record<AcceptRefusal, string> = {
  ...REFUSAL_TEXT,
  banned: `[UNAVAILABLE] ${REFUSAL_TEXT.banned}`,
};

export class ImapServer {
  readonly #acceptor: Acceptor;
  /** What every connection shares: built once, not per connection. */
  readonly #connectionDeps: ConnectionDeps;
  #context: tls.SecureContext;

  constructor(deps: ImapDeps) {
    const trusted = new Networks(deps.config.hygiene.trusted_networks);
    this.#context = tls.createSecureContext(deps.tls.current);
    deps.tls.onChange((p) => {
      this.#context = tls.createSecureContext(p);
    });
    this.#connectionDeps = {
      ...deps,
      context: () => this.#context,
      authenticatedLimits: authenticatedFramerLimits(deps.config.smtp.max_message_size),
    };
    const { imap } = deps.config;
    this.#acceptor = new Acceptor({
      service: 'imap',
      log: deps.log,
      maxPerIp: imap.max_connections_per_ip,
      maxTotal: imap.max_connections,
      networks: networkLimits(deps.config.rate_limits, imap.max_connections_per_ip),
      exempt: (ip) => trusted.has(ip) || deps.access?.verdict(ip).kind === 'allow',
      access: deps.access,
      connectionRate: deps.connectionRate,
      loginTimeoutMs: imap.login_timeout,
      shutdownGraceMs: deps.config.server.shutdown_grace,
      lingerMs: LIMITS.imap.closeLingerMs,
      maxLingering: LIMITS.imap.maxLingering,
      maxBytesAfterBye: LIMITS.imap.maxBytesAfterBye,
      context: () => this.#context,
      bye: (refusal) => `* BYE ${REFUSED[refusal]}\r\n`,
      begin: (socket, raw, secure, loginBy) => {
        const conn = new Connection(socket, raw, secure, this.#connectionDeps, loginBy);
        conn.start();
        return conn;
      },
    });
  }

  listen(plain: readonly string[], implicit: readonly string[]): Promise<AddressInfo[]> {
    return this.#acceptor.listen(plain, implicit);
  }

  /** Stops listening, says BYE to every client once its command in progress is complete, and
   *  closes whatever is left when [server] shutdown_grace has passed. */
  /** Open connections (the node's heartbeat, db/nodes.ts). */
  get connections(): number {
    return this.#acceptor.connections;
  }

  close(): Promise<void> {
    return this.#acceptor.close();
  }
}
