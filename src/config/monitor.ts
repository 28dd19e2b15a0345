// [monitor]: the blocklist monitor (defense/blocklist-monitor.ts, docs/spam.md "Blocklist
// monitoring"). Its own file so the sections of issue #15 merge without touching each other.

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';
import { parseDuration } from './duration.ts';

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = parseDuration(v);
  if (n === null || n <= 0) {
    ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use e.g. "1h", "30m")` });
    return z.NEVER;
  }
  return n;
});

export const monitorSection = z
  .strictObject({
    /** DNS blocklist zones our outbound addresses ([server] public_addresses) are checked
     *  against, e.g. ["bl.spamcop.net", "b.barracudacentral.org"]; empty (the default): no
     *  monitoring. Spamhaus (zen.spamhaus.org) answers queries from public resolvers with
     *  127.255.255.254 (refused): use it through your own resolver or a DQS key zone. */
    dnsbl: z.array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'not a DNS zone')).default([]),
    /** Time between two rounds of look-ups (each jittered by up to 10%); the first round runs
     *  shortly after start. */
    interval: duration.default(LIMITS.monitor.defaultIntervalMs),
    /** Who is told of a new listing; empty (the default): postmaster@ of the first domain. */
    notify: z
      .string()
      .regex(/^$|^[^\s@<>]+@[A-Za-z0-9.-]+$/, 'not an email address')
      .default(''),
  })
  .prefault({});
