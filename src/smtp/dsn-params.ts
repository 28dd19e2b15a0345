// The DSN extension's parameters (RFC 3461 §4), parsed strictly: MAIL's RET and ENVID, RCPT's
// NOTIFY and ORCPT. Pure. A malformed value is refused with 501 5.5.4 (§4: "syntax error in
// parameters"), a repeated parameter too (§4.1 - §4.4: each "MUST NOT" appear more than once);
// the caller answers 555 for parameters we do not know. Values are kept as the client sent
// decoded from xtext: reported decoded (RFC 3464 §2.2.1, §2.3.1) and encoded again by the
// transport (nodemailer) when passed on.

import { LIMITS } from '../core/limits.ts';
import type { DsnRet } from '../queue/types.ts';
import type { EsmtpParam } from './wire/command.ts';

export type { DsnRet };

/** RFC 3461 §4.1: NEVER alone, or a non-empty set of SUCCESS, FAILURE, DELAY. */
export type DsnNotify = 'NEVER' | readonly ('SUCCESS' | 'FAILURE' | 'DELAY')[];

export interface MailDsn {
  readonly ret: DsnRet | null;
  /** Decoded ENVID. */
  readonly envid: string | null;
}

export interface RcptDsn {
  /** NOTIFY as the normalised text of the queue ('NEVER' or e.g. 'SUCCESS,FAILURE'). */
  readonly notify: string | null;
  /** ORCPT decoded, "addr-type;address" (addr-type as sent). */
  readonly orcpt: string | null;
}

/** A RCPT without NOTIFY or ORCPT. */
export const NO_RCPT_DSN: RcptDsn = { notify: null, orcpt: null };

export type Parsed<T> = { readonly ok: true; readonly value: T } | { readonly ok: false; readonly name: string };

/** RFC 3461 §4: xtext = *( xchar / hexchar ); xchar is "!" to "~" but "+" and "=";
 *  hexchar is "+" and two upper-case hex digits. Null when it is not xtext. */
export function decodeXtext(s: string): string | null {
  const bytes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c === 0x2b) {
      const h = s.slice(i + 1, i + 3);
      if (!/^[0-9A-F]{2}$/.test(h)) return null;
      bytes.push(Number.parseInt(h, 16));
      i += 2;
    } else if (c < 0x21 || c > 0x7e || c === 0x3d) {
      return null;
    } else {
      bytes.push(c);
    }
  }
  // Encoded octets of UTF-8 (an ORCPT of a UTF-8 address) read back as UTF-8.
  return Buffer.from(bytes).toString('utf8');
}

/** The values of the named parameters among `params`, each at most once and with a value
 *  (RFC 3461 §4.1 - §4.4), or the name of the first one that is not. */
function pick(params: readonly EsmtpParam[], names: readonly string[]): Map<string, string> | string {
  const out = new Map<string, string>();
  for (const p of params) {
    if (!names.includes(p.name)) continue;
    if (out.has(p.name) || p.value === null) return p.name;
    out.set(p.name, p.value);
  }
  return out;
}

/** Each value checked by its function (null: malformed), in the order of `checks`. */
function parse<T extends Record<string, string | null>>(
  params: readonly EsmtpParam[],
  checks: { readonly [K in keyof T & string]: [string, (v: string) => T[K] | null] },
): Parsed<T> {
  const entries = Object.entries(checks) as [keyof T & string, [string, (v: string) => string | null]][];
  const values = pick(
    params,
    entries.map(([, [name]]) => name),
  );
  if (typeof values === 'string') return { ok: false, name: values };
  const out: Record<string, string | null> = {};
  for (const [key, [name, check]] of entries) {
    const raw = values.get(name);
    if (raw === undefined) {
      out[key] = null;
      continue;
    }
    const v = check(raw);
    if (v === null) return { ok: false, name };
    out[key] = v;
  }
  return { ok: true, value: out as T };
}

/** §4.3: "FULL" / "HDRS", case-insensitive like every ESMTP value keyword. */
function ret(v: string): DsnRet | null {
  const u = v.toUpperCase();
  return u === 'FULL' || u === 'HDRS' ? u : null;
}

/** §4.4: at most 100 characters (of the encoded form), printable ASCII once decoded. */
function envid(v: string): string | null {
  if (v.length > LIMITS.smtp.maxEnvidLength) return null;
  const d = decodeXtext(v);
  return d === null || d === '' || !/^[\x20-\x7e]+$/.test(d) ? null : d;
}

const NOTIFY_WORDS = ['SUCCESS', 'FAILURE', 'DELAY'];

/** §4.1: "NEVER" / 1#( "SUCCESS" / "FAILURE" / "DELAY" ), NEVER alone, none twice; one order
 *  whatever the client's, so the stored text compares equal. */
function notify(v: string): string | null {
  const words = v.toUpperCase().split(',');
  if (words.length === 1 && words[0] === 'NEVER') return 'NEVER';
  if (words.some((w) => !NOTIFY_WORDS.includes(w)) || new Set(words).size !== words.length) return null;
  return NOTIFY_WORDS.filter((w) => words.includes(w)).join(',');
}

/** §4.2: addr-type ";" xtext, at most 500 characters; addr-type is an atom (RFC 5322). The
 *  address is for people and reports: no control characters once decoded. */
function orcpt(v: string): string | null {
  if (v.length > LIMITS.smtp.maxOrcptLength) return null;
  const semi = v.indexOf(';');
  const type = v.slice(0, semi);
  if (semi <= 0 || !/^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+$/.test(type)) return null;
  const d = decodeXtext(v.slice(semi + 1));
  return d === null || d === '' || hasControl(d) ? null : `${type};${d}`;
}

/** MAIL's RET and ENVID among `params`; other parameters are left to the caller. */
export function parseMailDsn(params: readonly EsmtpParam[]): Parsed<MailDsn> {
  return parse<{ ret: DsnRet | null; envid: string | null }>(params, { ret: ['RET', ret], envid: ['ENVID', envid] });
}

/** RCPT's NOTIFY and ORCPT among `params`. */
export function parseRcptDsn(params: readonly EsmtpParam[]): Parsed<RcptDsn> {
  return parse<{ notify: string | null; orcpt: string | null }>(params, {
    notify: ['NOTIFY', notify],
    orcpt: ['ORCPT', orcpt],
  });
}

/** Whether a recipient's NOTIFY (the queue's text; null: the default FAILURE,DELAY of §4.1)
 *  asks for this kind of notice. */
export function notifies(notify: string | null, kind: 'SUCCESS' | 'FAILURE' | 'DELAY'): boolean {
  if (notify === null) return kind !== 'SUCCESS';
  return notify.split(',').includes(kind);
}

function hasControl(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
