// The [spam] section (issue #15, docs/spam.md "rspamd"): the rspamd scan at the end of DATA.
// Its own file so the sections of issue #15 merge without touching each other; schema.ts hands
// in its size and duration parsers (one definition of each, no import cycle).

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';

type Parsed = z.ZodType<number, string | number>;

/** A Settings-ID of rspamd's settings module (docs: rspamd.com/doc/configuration/settings.html). */
const settingsId = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{0,64}$/, 'not a settings id (letters, digits, "_", ".", "-")')
  .default('');

export function spamSection(p: { readonly size: Parsed; readonly duration: Parsed }) {
  return z
    .strictObject({
      /** rspamd's normal worker, e.g. "http://127.0.0.1:11333" (the message is POSTed to
       *  /checkv2 under it). Empty (the default): no spam scanning. */
      rspamd_url: z
        .string()
        .refine((s) => s === '' || /^http:\/\/[^\s/?#]+(\/[^\s?#]*)?$/.test(s), {
          message: 'not an http:// URL (rspamd speaks plain HTTP; keep it on loopback or a private network)',
        })
        .default(''),
      /** Time for one scan, sending the message included; then the failure policy applies. */
      timeout: p.duration.default(LIMITS.spam.defaultTimeoutMs),
      /** When rspamd cannot be reached, times out or answers nonsense: "accept" delivers the
       *  message unscanned (a warning is logged), "tempfail" answers 451 4.7.1 so the sender
       *  retries later. */
      failure: z.enum(['accept', 'tempfail']).default('accept'),
      /** Larger messages are not scanned (spam is small; rspamd's own limit is 50 MB). */
      max_size: p.size.default(LIMITS.spam.defaultMaxSize),
      /** Also scan mail of authenticated users (submission), sent with rspamd's User header. */
      scan_submission: z.boolean().default(true),
      /** Settings-ID sent with mail received on port 25; empty: none. */
      settings_id: settingsId,
      /** Settings-ID sent with submitted mail; empty: none. */
      submission_settings_id: settingsId,
      /** Add X-Spam-Status (score, threshold and symbols) to every scanned message of port 25. */
      status_header: z.boolean().default(true),
    })
    .prefault({});
}
