// [sieve]: the quotas of stored Sieve scripts (sieve/sqlite-store.ts; ManageSieve and the CLI)
// and Sieve filtering at delivery (docs/sieve.md, src/queue/sieve-filter.ts).

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';
import { duration, size } from './fields.ts';

const S = LIMITS.sieveDelivery;

export const sieveSection = z
  .strictObject({
    /** Scripts one account may keep (Pigeonhole sieve_quota_max_scripts); 0: unlimited. */
    max_scripts: z.number().int().min(0).default(LIMITS.sieve.defaultMaxScripts),
    /** Largest script (Pigeonhole sieve_max_script_size); at most 1 MiB, the parser's bound. */
    max_script_size: size
      .pipe(z.number().int().positive().max(LIMITS.sieve.maxScriptBytes))
      .default(LIMITS.sieve.maxScriptBytes),
    /** All of an account's scripts together (Pigeonhole sieve_quota_max_storage); 0: unlimited. */
    max_storage: size.pipe(z.number().int().min(0)).default(LIMITS.sieve.defaultMaxStorageBytes),
    /** Run each user's active Sieve script (and the `before` script) at delivery. */
    enabled: z.boolean().default(true),
    /** A script run before every user's own (Pigeonhole's sieve_before), e.g. to file spam
     *  into Junk; its path is read when the server starts. Empty: none. */
    before: z.string().default(''),
    /** The directory of the scripts `include :global "name"` reads (RFC 6609 §3.1), as
     *  `{dir}/{name}.sieve`. Empty: :global includes find nothing. */
    global_dir: z.string().default(''),
    /** Vacation (RFC 5230, RFC 6131): the shortest period between two replies to one sender
     *  (Pigeonhole's sieve_vacation_min_period, 1 day). */
    vacation_min_period: duration.default(S.vacationMinPeriodMs),
    /** The longest period a script may ask for (Pigeonhole's sieve_vacation_max_period; 0, the
     *  default: no bound). A script naming no period gets 7 days (RFC 5230 §4.1). */
    vacation_max_period: duration.default(S.vacationMaxPeriodMs),
  })
  .prefault({})
  .refine((s) => s.vacation_max_period === 0 || s.vacation_max_period >= s.vacation_min_period, {
    message: 'vacation_max_period must be 0 or at least vacation_min_period',
  });
