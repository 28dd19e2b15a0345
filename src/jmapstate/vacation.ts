// The VacationResponse object (RFC 8621 §8.1) as JmapState keeps it, shared by the JMAP methods
// (jmap/methods/vacation.ts) and Sieve at delivery (queue/sieve-setup.ts), which answers mail
// with an enabled one through the Sieve vacation code (docs/jmap-submission.md).

import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import type { AccountId } from '../core/ids.ts';
import { LIMITS } from '../core/limits.ts';
import { quotedPrintable } from '../core/mime-encode.ts';
import type { JmapState } from './types.ts';

export const VACATION_ID = 'singleton';

/** RFC 8620 §1.4 UTCDate: "YYYY-MM-DDTHH:MM:SS[.sss]Z". */
const utcDate = z
  .string()
  .regex(/^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(\.[0-9]{1,9})?Z$/)
  .refine((s) => !Number.isNaN(Date.parse(s)));
const body = z.string().max(LIMITS.jmapState.maxVacationBodyChars).nullable();

/** §8.1: the object, as stored. */
export const vacationSchema = z.strictObject({
  id: z.literal(VACATION_ID),
  isEnabled: z.boolean(),
  fromDate: utcDate.nullable(),
  toDate: utcDate.nullable(),
  subject: z.string().max(LIMITS.jmapState.maxNameChars).nullable(),
  textBody: body,
  htmlBody: body,
});
export type VacationResponse = z.infer<typeof vacationSchema>;

export const DEFAULT_VACATION: VacationResponse = {
  id: VACATION_ID,
  isEnabled: false,
  fromDate: null,
  toDate: null,
  subject: null,
  textBody: null,
  htmlBody: null,
};

export async function readVacation(state: JmapState, account: AccountId): Promise<VacationResponse> {
  const v = vacationSchema.safeParse(await state.get(account, 'VacationResponse', VACATION_ID));
  return v.success ? v.data : DEFAULT_VACATION;
}

/** Whether the vacation applies at `now` (§8.1: enabled, after fromDate, before toDate). */
export function vacationActive(v: VacationResponse, now: Date): boolean {
  if (!v.isEnabled) return false;
  if (v.fromDate !== null && now.getTime() < Date.parse(v.fromDate)) return false;
  if (v.toDate !== null && now.getTime() >= Date.parse(v.toDate)) return false;
  return true;
}

/** The Sieve vacation action (src/sieve/run-types.ts) the vacation is sent as: the reply
 *  period is the [sieve] minimum (`seconds`), the handle changes with the vacation's start
 *  (a new absence answers each sender anew), the body is textBody, or when htmlBody is set a
 *  MIME entity (RFC 5230 §4.4 :mime) of text/html or multipart/alternative. */
export function vacationAction(
  v: VacationResponse,
  seconds: number,
): {
  readonly kind: 'vacation';
  readonly to: string;
  readonly seconds: number;
  readonly subject: string | null;
  readonly from: null;
  readonly reason: string;
  readonly mime: boolean;
  readonly handle: string;
} {
  const base = {
    kind: 'vacation' as const,
    to: '',
    seconds,
    subject: v.subject,
    from: null,
    handle: `jmap-vacation:${v.fromDate ?? ''}`,
  };
  if (v.htmlBody === null) return { ...base, reason: v.textBody ?? '', mime: false };
  const html = `Content-Type: text/html; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${quotedPrintable(v.htmlBody)}`;
  if (v.textBody === null) return { ...base, reason: html, mime: true };
  const boundary = `=_vacation_${randomBytes(9).toString('base64url')}`;
  const text = `Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n${quotedPrintable(v.textBody)}`;
  return {
    ...base,
    mime: true,
    reason:
      `Content-Type: multipart/alternative; boundary="${boundary}"\r\n\r\n` +
      `--${boundary}\r\n${text}\r\n--${boundary}\r\n${html}\r\n--${boundary}--\r\n`,
  };
}
