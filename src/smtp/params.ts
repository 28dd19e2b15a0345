// The ESMTP parameters of MAIL and RCPT that we offer, checked before the policy runs. Pure.
// RFC 5321 §4.1.1.11: parameters we do not offer get 555; a malformed value of one we offer
// gets 501 (REPLIES.badParameter).

import { type MailDsn, parseMailDsn, parseRcptDsn, type RcptDsn } from './dsn-params.ts';
import { REPLIES, type SmtpReplyError } from './replies.ts';
import { type EsmtpParam, isDigits } from './wire/command.ts';

/** MAIL: SIZE (RFC 1870), BODY (RFC 6152), SMTPUTF8 (RFC 6531), RET and ENVID (RFC 3461). */
export function mailParams(
  params: readonly EsmtpParam[],
  maxMessageSize: number,
): SmtpReplyError | { readonly utf8: boolean; readonly dsn: MailDsn } {
  let utf8 = false;
  for (const p of params) {
    if (p.name === 'SIZE') {
      // RFC 1870 §6: a declared size over the limit is refused at once.
      if (p.value === null || !isDigits(p.value, 20)) return REPLIES.badParameter(p.name);
      if (Number(p.value) > maxMessageSize) return REPLIES.tooBig(maxMessageSize);
    } else if (p.name === 'BODY') {
      // RFC 6152: 7BIT and 8BITMIME; BINARYMIME (RFC 3030) is not offered.
      const v = p.value?.toUpperCase();
      if (v !== '7BIT' && v !== '8BITMIME') return REPLIES.badParameter(p.name);
    } else if (p.name === 'SMTPUTF8') {
      if (p.value !== null) return REPLIES.badParameter(p.name); // RFC 6531 §3.4
      utf8 = true;
    } else if (p.name !== 'RET' && p.name !== 'ENVID') return REPLIES.unsupportedParameter(p.name);
  }
  // RFC 3461 §4.3, §4.4: RET and ENVID, strictly (dsn-params.ts)
  const dsn = parseMailDsn(params);
  return dsn.ok ? { utf8, dsn: dsn.value } : REPLIES.badParameter(dsn.name);
}

/** RCPT: NOTIFY and ORCPT (RFC 3461 §4.1, §4.2); any other parameter is not offered. */
export function rcptParams(params: readonly EsmtpParam[]): SmtpReplyError | RcptDsn {
  const other = params.find((p) => p.name !== 'NOTIFY' && p.name !== 'ORCPT');
  if (other) return REPLIES.unsupportedParameter(other.name);
  const dsn = parseRcptDsn(params);
  return dsn.ok ? dsn.value : REPLIES.badParameter(dsn.name);
}
