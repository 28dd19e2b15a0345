// What every acceptance stage returns (docs/architecture.md §3): continue, with whatever the
// stage found, or refuse with the SMTP reply and the log line that says why. Stages are small
// modules with one job, pure where the decision needs no lookup (as maddy's checks and
// modifiers); the runners (pipeline.ts for DATA, service.ts for MAIL and RCPT) send the reply
// and write the log line, so a stage never logs or touches the wire itself.
//
// Continuing costs no allocation where the stage has nothing to hand on (CONTINUE is shared);
// refusals are rare and may allocate.

import type { Logger } from '../../core/log.ts';
import type { SmtpReplyError } from '../replies.ts';

export interface Refusal {
  readonly kind: 'refuse';
  readonly reply: SmtpReplyError;
  /** The log line for this refusal; null: not logged (plain syntax errors the client sees). */
  readonly level: 'info' | 'warn' | null;
  readonly event: string;
  readonly fields: Readonly<Record<string, unknown>> | null;
}

export type Continue<T = unknown> = { readonly kind: 'continue' } & T;
export type Decision<T = unknown> = Continue<T> | Refusal;

export const CONTINUE: Continue = Object.freeze({ kind: 'continue' as const });

export function refuse(
  reply: SmtpReplyError,
  level: Refusal['level'] = null,
  event = '',
  fields: Refusal['fields'] = null,
): Refusal {
  return { kind: 'refuse', reply, level, event, fields };
}

/** Writes the refusal's log line and gives back its reply. */
export function refusalReply(log: Logger, r: Refusal): SmtpReplyError {
  if (r.level !== null) {
    if (r.fields) log[r.level](r.fields, r.event);
    else log[r.level](r.event);
  }
  return r.reply;
}
