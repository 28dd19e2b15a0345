// [mta_sts_outbound]: MTA-STS when we send (RFC 8461 §5; docs/delivery.md "MTA-STS"). The
// section [mta_sts] is the policy we serve for our own domains; this one is how we honour the
// policies of the domains we deliver to (queue/mta-sts.ts).

import { z } from 'zod';
import { duration } from './fields.ts';

export const mtaStsOutboundSection = z
  .strictObject({
    /** Look up, cache and apply the MTA-STS policies of destination domains (RFC 8461 intends
     *  every sender to). Mail through [delivery] relay is not concerned: the relay delivers. */
    enabled: z.boolean().default(true),
    /** The whole HTTPS fetch of one policy, connection included (RFC 8461 §3.3). */
    fetch_timeout: duration.prefault('60s'),
    /** PEM file of CAs trusted besides the system's, for policy hosts and MX certificates (a
     *  private PKI, tests); relative to the config file. Empty: the system's CAs only. */
    ca_file: z.string().default(''),
    /** Port of the policy hosts. RFC 8461 §3.3 says 443; other values are for tests. */
    policy_port: z.number().int().min(1).max(65535).default(443),
  })
  .prefault({});
