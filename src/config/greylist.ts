// [greylist]: greylisting of port 25 (docs/spam.md "Greylisting", defense/greylist.ts).

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';
import { parseDuration } from './duration.ts';

const D = LIMITS.defense;

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = parseDuration(v);
  if (n === null) {
    ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use e.g. "5m", "2d")` });
    return z.NEVER;
  }
  return n;
});

export const greylistSection = z
  .strictObject({
    /** Greylist port 25 (RFC 6647): the first message of an unknown (client network, sender,
     *  recipient) gets 451 4.7.1 and is accepted when retried after `delay`. Off by default:
     *  it delays first mail by minutes; turn it on when spam gets past the other checks. */
    enabled: z.boolean().default(false),
    /** Shortest wait before a retry is accepted (postgrey --delay). */
    delay: duration.default(D.greylistDefaultDelayMs),
    /** A first attempt not retried within this long starts over (postgrey --retry-window). */
    retry_window: duration.default(D.greylistDefaultRetryWindowMs),
    /** Entries not seen for this long are forgotten (postgrey --max-age). */
    max_age: duration.default(D.greylistDefaultMaxAgeMs),
    /** A client network whose mail passed greylisting this many times is no longer greylisted
     *  (postgrey --auto-whitelist-clients); 0 turns this off. */
    auto_allow_after: z.number().int().min(0).default(D.greylistDefaultAutoAllowAfter),
    /** The operator's allowlist (postgrey whitelist_clients format), added to the one shipped
     *  with arcline; re-read when it changes. Empty: the shipped one only. */
    allowlist_file: z.string().default(''),
  })
  .prefault({});
