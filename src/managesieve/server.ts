// ManageSieve listeners ([managesieve] listen, STARTTLS; RFC 5804 §1.8 port 4190). The accept
// path (IP lists and bans, per-address, per-network and total limits, connection rate, linger
// of refused clients, shutdown) is IMAP's: defense/acceptor.ts. The connections: connection.ts.

import type { AddressInfo } from 'node:net';
import tls from 'node:tls';
import type { Authenticator } from '../auth/authenticator.ts';
import type { Config } from '../config/schema.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { Acceptor, REFUSAL_TEXT } from '../defense/acceptor.ts';
import { networkLimits } from '../defense/rate-limits.ts';
import type { NetworkAccess, OffenceSink } from '../defense/types.ts';
import { Networks } from '../hygiene/networks.ts';
import type { SieveScripts } from '../sieve/store-types.ts';
import type { TlsManager } from '../tls/certs.ts';
import { Connection, type ConnectionDeps } from './connection.ts';
import { response } from './wire.ts';

export interface ManageSieveDeps {
  readonly config: Config;
  readonly scripts: SieveScripts;
  readonly tls: TlsManager;
  readonly log: Logger;
  /** The login path shared with IMAP and submission (throttling counts across them). */
  readonly authenticator: Authenticator;
  readonly access?: NetworkAccess | undefined;
  readonly offences?: OffenceSink | undefined;
  readonly connectionRate?: ((ip: string) => Promise<string | null>) | undefined;
}

export class ManageSieveServer {
  readonly #acceptor: Acceptor;
  #context: tls.SecureContext;

  constructor(deps: ManageSieveDeps) {
    const { config } = deps;
    const m = config.managesieve;
    const trusted = new Networks(config.hygiene.trusted_networks);
    this.#context = tls.createSecureContext(deps.tls.current);
    deps.tls.onChange((p) => {
      this.#context = tls.createSecureContext(p);
    });
    const connectionDeps: ConnectionDeps = {
      scripts: deps.scripts,
      authenticator: deps.authenticator,
      log: deps.log,
      maxScriptBytes: config.sieve.max_script_size,
      idleTimeoutMs: m.timeout,
      loginTimeoutMs: m.login_timeout,
      commandTimeoutMs: m.command_timeout,
      context: () => this.#context,
      offences: deps.offences,
    };
    this.#acceptor = new Acceptor({
      service: 'managesieve',
      log: deps.log,
      maxPerIp: m.max_connections_per_ip,
      maxTotal: m.max_connections,
      networks: networkLimits(config.rate_limits, m.max_connections_per_ip),
      exempt: (ip) => trusted.has(ip) || deps.access?.verdict(ip).kind === 'allow',
      access: deps.access,
      connectionRate: deps.connectionRate,
      loginTimeoutMs: m.login_timeout,
      shutdownGraceMs: config.server.shutdown_grace,
      lingerMs: LIMITS.managesieve.closeLingerMs,
      maxLingering: LIMITS.imap.maxLingering,
      maxBytesAfterBye: LIMITS.imap.maxBytesAfterBye,
      context: () => this.#context,
      // RFC 5804 §1.3 TRYLATER for what passes; the bytes of one BYE line.
      bye: (refusal) => response('BYE', refusal === 'deny' ? null : 'TRYLATER', REFUSAL_TEXT[refusal]).toString('utf8'),
      begin: (socket, raw, secure, loginBy) => {
        const conn = new Connection(socket, raw, secure, connectionDeps, loginBy);
        conn.start();
        return conn;
      },
    });
  }

  listen(plain: readonly string[]): Promise<AddressInfo[]> {
    return this.#acceptor.listen(plain, []);
  }

  /** Open connections (the node's heartbeat, db/nodes.ts). */
  get connections(): number {
    return this.#acceptor.connections;
  }

  close(): Promise<void> {
    return this.#acceptor.close();
  }
}
