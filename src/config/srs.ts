// [srs]: the Sender Rewriting Scheme of forwarded mail (docs/srs.md, srs/forwarding.ts).

import { z } from 'zod';
import { normalizeDomain } from '../core/address.ts';
import { LIMITS } from '../core/limits.ts';
import { duration } from './fields.ts';

const DAY_MS = 86_400_000;

export const srsSection = z
  .strictObject({
    /** Rewrite the envelope sender of mail we forward to other servers (aliases and catch-alls
     *  pointing outside) and accept bounces to those addresses. */
    enabled: z.boolean().default(true),
    /** The domain SRS addresses are made under; it must receive mail here (its MX points to us)
     *  and its SPF record must name our outbound addresses. Empty (the default): the domain of
     *  the alias that forwarded, which is one of ours. */
    domain: z
      .string()
      .transform((s, ctx) => {
        if (s === '') return '';
        const d = normalizeDomain(s);
        if (d === null) {
          ctx.addIssue({ code: 'custom', message: `not a domain name: ${JSON.stringify(s)}` });
          return z.NEVER;
        }
        return d as string;
      })
      .default(''),
    /** How long an SRS address we made is accepted for a bounce, in whole days (Mail::SRS MaxAge). */
    max_age: duration
      .refine((ms) => ms % DAY_MS === 0 && ms >= DAY_MS && ms < LIMITS.srs.timestampSlots * DAY_MS, {
        message: `a whole number of days from "1d" to "${LIMITS.srs.timestampSlots - 1}d"`,
      })
      .prefault(`${LIMITS.srs.defaultMaxAgeDays}d`),
  })
  .prefault({});
