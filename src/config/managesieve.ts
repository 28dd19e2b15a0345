// [managesieve]: the ManageSieve listener (RFC 5804, managesieve/, docs/sieve.md "ManageSieve").

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';
import { duration, listenAddress, positiveInt } from './fields.ts';

const M = LIMITS.managesieve;

export const managesieveSection = z
  .strictObject({
    /** ManageSieve with STARTTLS (4190 in production, RFC 5804 §1.8). [] turns it off. */
    listen: z.array(listenAddress).default(['127.0.0.1:4190']),
    /** Simultaneous connections from one IP address (IPv6: per /64). */
    max_connections_per_ip: positiveInt.default(M.defaultMaxConnectionsPerIp),
    /** Simultaneous connections in total; more are told BYE and closed. */
    max_connections: positiveInt.default(M.defaultMaxConnections),
    /** Time from connect to a successful login, whatever the client sends. */
    login_timeout: duration.default(M.defaultLoginTimeoutMs),
    /** Idle time between commands once logged in; then BYE. */
    timeout: duration.default(M.defaultIdleTimeoutMs),
    /** Time a started command (its line and literals: a whole script) may take to arrive,
     *  from its first byte; then BYE. */
    command_timeout: duration.default(M.defaultCommandTimeoutMs),
  })
  .prefault({});
