// [ban]: automatic bans of client networks for repeated offences (docs/spam.md "Auto-ban").

import { z } from 'zod';
import { duration, positiveInt } from './fields.ts';

export const ban = z
  .strictObject({
    /** Ban networks for repeated offences (the IP allow and deny lists work either way). */
    enabled: z.boolean().default(true),
    /** Offences count within this period from the first one. */
    window: duration.prefault('10m'),
    /** Failed logins (IMAP, submission, the admin API) from one network within `window`. */
    auth_failures: positiveInt.default(10),
    /** Sessions ended for protocol abuse (SMTP hard error limit, IMAP protocol errors). */
    protocol_errors: positiveInt.default(5),
    /** Recipients refused as unknown on port 25 (a dictionary attack). */
    unknown_recipients: positiveInt.default(20),
    /** Length of a first ban; each further ban of the network doubles it. */
    first_duration: duration.prefault('15m'),
    /** Longest ban. */
    max_duration: duration.prefault('7d'),
    /** A network's ban level is remembered this long after its ban expired. */
    memory: duration.prefault('30d'),
    /** A network an owner logged in from within this period is never banned. */
    known_client_age: duration.prefault('30d'),
  })
  .prefault({})
  .refine((b) => b.first_duration <= b.max_duration, { message: 'first_duration must not exceed max_duration' });
