// [rate_limits]: connection, message and delivery rates (docs/spam.md "Rate limits",
// defense/rate-limits.ts). 0 turns one limit off.

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';

const D = LIMITS.defense;
const count = z.number().int().min(0);
const three = (max: number) => z.array(z.number().int().min(0).max(max)).length(3);

export const rateLimitsSection = z
  .strictObject({
    /** Apply the limits below (trusted networks are always exempt). */
    enabled: z.boolean().default(true),
    /** New connections per minute from one client network (SMTP, submission and IMAP
     *  together), for each of the three prefix lengths below; more get 421 4.7.0 / BYE. */
    connections_per_minute: z
      .array(count)
      .length(3)
      .default([...D.defaultConnectionsPerMinute]),
    /** The three IPv4 prefix lengths of the client networks (mox: 32, 26, 21). */
    ipv4_prefixes: three(32).default([...D.defaultIpv4Prefixes]),
    /** The three IPv6 prefix lengths (64, 56, 48: one site, a small and a large allocation). */
    ipv6_prefixes: three(128).default([...D.defaultIpv6Prefixes]),
    /** Simultaneous connections per service from one network of the second and of the third
     *  prefix length (the first is each service's max_connections_per_ip; a network's limit is
     *  never below it); more get 421 4.7.0. */
    concurrent_per_network: z
      .array(count)
      .length(2)
      .default([...D.defaultConcurrentPerNetwork]),
    /** Messages one authenticated user may submit per hour / per day; more get 451 4.7.1 at MAIL. */
    messages_per_hour: count.default(D.defaultMessagesPerHour),
    messages_per_day: count.default(D.defaultMessagesPerDay),
    /** Recipients one authenticated user may submit to per hour / per day; more get 451 4.7.1 at RCPT. */
    recipients_per_hour: count.default(D.defaultRecipientsPerHour),
    recipients_per_day: count.default(D.defaultRecipientsPerDay),
    /** Outbound deliveries per destination domain (or to the relay) per minute; more stay
     *  queued and are tried again within the minute (no attempt counted). */
    outbound_per_domain_per_minute: count.default(D.defaultOutboundPerDomainPerMinute),
  })
  .prefault({});
