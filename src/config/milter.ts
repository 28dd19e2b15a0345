// [[milter]]: the mail filters (Sendmail milter protocol, version 6) run at the end of DATA,
// in the order written (docs/spam.md "Milters", src/filter/milter/). Each entry names one
// milter, where it listens and which services it filters, its timeouts and what a failure
// means for the message (Postfix milter_default_action).

import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';
import { parseDuration } from './duration.ts';

/** Where a milter listens: TCP or a Unix socket. */
export type MilterAddress =
  | { readonly kind: 'inet'; readonly host: string; readonly port: number }
  | { readonly kind: 'unix'; readonly path: string };

/** "unix:/path", "inet:host:port", "inet:[v6]:port" (Postfix's spelling) or "inet:port@host"
 *  (Sendmail's, also "inet6:port@host"); null when it is none of these. */
export function parseMilterAddress(s: string): MilterAddress | null {
  if (s.startsWith('unix:') || s.startsWith('local:')) {
    const path = s.slice(s.indexOf(':') + 1);
    return path.startsWith('/') && path.length < 108 ? { kind: 'unix', path } : null;
  }
  const m =
    /^inet6?:(?:(\d{1,5})@(?:\[([0-9A-Fa-f:.]+)\]|([0-9A-Fa-f:.]+|[A-Za-z0-9.-]+))|(?:\[([0-9A-Fa-f:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5}))$/.exec(
      s,
    );
  if (!m) return null;
  const port = Number(m[1] ?? m[6]);
  const host = m[2] ?? m[3] ?? m[4] ?? m[5] ?? '';
  if (port < 1 || port > 65535 || host === '') return null;
  return { kind: 'inet', host, port };
}

const duration = z.union([z.string(), z.number()]).transform((v, ctx) => {
  const n = parseDuration(v);
  if (n === null || n === 0) {
    ctx.addIssue({ code: 'custom', message: `not a duration: ${JSON.stringify(v)} (use e.g. "30s", "5m")` });
    return z.NEVER;
  }
  return n;
});

const milter = z.strictObject({
  /** Names the milter in logs and metrics (arcline_milter_results_total{milter}). */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/, 'not a name (letters, digits, "_", ".", "-")'),
  /** "inet:127.0.0.1:8891", "inet:8891@localhost" or "unix:/run/opendkim/opendkim.sock". */
  address: z.string().transform((s, ctx) => {
    const a = parseMilterAddress(s);
    if (!a) {
      ctx.addIssue({ code: 'custom', message: 'not a milter address (use "inet:host:port" or "unix:/path")' });
      return z.NEVER;
    }
    return a;
  }),
  /** The services whose messages it filters: "smtp" (port 25) and/or "submission". */
  services: z
    .array(z.enum(['smtp', 'submission']))
    .min(1)
    .default(['smtp', 'submission']),
  /** Time to connect and negotiate (Postfix milter_connect_timeout). */
  connect_timeout: duration.default(LIMITS.milter.defaultConnectTimeoutMs),
  /** Time for each reply before the end of the message (Postfix milter_command_timeout). */
  command_timeout: duration.default(LIMITS.milter.defaultCommandTimeoutMs),
  /** Time for the end-of-message reply and its modifications; each SMFIR_PROGRESS restarts it
   *  (Postfix milter_content_timeout). */
  eom_timeout: duration.default(LIMITS.milter.defaultEomTimeoutMs),
  /** What an unreachable, slow or broken milter means for the message: "accept" (skip this
   *  milter), "tempfail" (451 4.7.1, the sender retries) or "reject" (550 5.7.1). */
  on_failure: z.enum(['accept', 'tempfail', 'reject']).default('tempfail'),
  /** Macros sent at connect besides ours, e.g. { "{daemon_name}" = "ORIGINATING" }; a name
   *  we send too is replaced by this value. */
  macros: z
    .record(
      z.string().regex(/^(?:[A-Za-z_]|\{[A-Za-z0-9_]{1,62}\})$/, 'not a macro name ("j" or "{name}")'),
      z.string(),
    )
    .default({}),
});

export type MilterConfig = z.output<typeof milter>;

export const milterSection = z
  .array(milter)
  .max(LIMITS.milter.maxMilters)
  .default([])
  .refine((list) => new Set(list.map((m) => m.name)).size === list.length, { message: 'milter names must be unique' });
