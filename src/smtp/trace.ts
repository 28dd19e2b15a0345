// Trace headers added to each delivered copy (RFC 5321 §4.4, RFC 5322 §3.6.7):
//   Return-Path: <envelope sender>        (RFC 5321 §4.4: added at final delivery)
//   Delivered-To: <account address>       (per copy; used for loop detection, like Postfix)
//   Received: from HELO (rDNS [IP]) by US with PROTOCOL id ID [for <rcpt>]; DATE
// Protocol names per RFC 3848 / RFC 6531 §4.3 (ESMTP, ESMTPS, UTF8SMTP, UTF8SMTPS, SMTP).
// "for" is added only when the message has a single recipient, so one copy never reveals the
// other recipients (Bcc). Everything the client supplied is sanitised: no header injection.

export interface ReceivedInfo {
  readonly helo: string;
  readonly clientHostname: string | null;
  readonly clientIp: string;
  readonly byHost: string;
  readonly protocol: string;
  readonly id: string;
  readonly tls: { readonly version: string; readonly cipher: string } | null;
  readonly forRecipient: string | null;
  readonly date: Date;
}

/** Printable ASCII only, no spaces or specials that could end a comment or token; bounded. */
function token(s: string, max = 255): string {
  const clean = s.replace(/[^\x21-\x7e]|[()\\;]/g, '?').slice(0, max);
  return clean === '' ? 'unknown' : clean;
}

/** An address for a header: control characters removed; UTF-8 is allowed (RFC 6532). */
function headerAddress(s: string): string {
  // biome-ignore lint/suspicious/noControlCharactersInRegex: removing control characters is the point
  return s.replace(/[\x00-\x1f\x7f<>]/g, '').slice(0, 512);
}

/** RFC 5322 §3.3 date-time, e.g. "Tue, 24 Nov 2026 02:21:41 +0000". */
export function rfc5322Date(d: Date): string {
  const days = ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'];
  const months = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
  const p = (n: number) => String(n).padStart(2, '0');
  return `${days[d.getUTCDay()]}, ${d.getUTCDate()} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

export function receivedHeader(r: ReceivedInfo): string {
  const rdns = r.clientHostname ? `${token(r.clientHostname)} ` : '';
  const ip = r.clientIp.includes(':') ? `IPv6:${r.clientIp}` : r.clientIp;
  let h = `Received: from ${token(r.helo)} (${rdns}[${token(ip)}])\r\n\tby ${r.byHost} (arcline) with ${r.protocol} id ${r.id}`;
  if (r.tls) h += `\r\n\t(using ${token(r.tls.version, 32)} with cipher ${token(r.tls.cipher, 128)})`;
  if (r.forRecipient) h += `\r\n\tfor <${headerAddress(r.forRecipient)}>`;
  return `${h};\r\n\t${rfc5322Date(r.date)}\r\n`;
}

export interface TraceOptions {
  readonly returnPath: string;
  readonly deliveredTo: string;
  readonly received: string;
}

/** Return-Path and Delivered-To, then `received` (our trace fields), as text. */
export function traceText(opts: TraceOptions): string {
  return `Return-Path: <${headerAddress(opts.returnPath)}>\r\nDelivered-To: ${headerAddress(opts.deliveredTo)}\r\n${opts.received}`;
}

export function traceHeaders(opts: TraceOptions): Buffer {
  return Buffer.from(traceText(opts), 'utf8');
}

/** RFC 3848 / RFC 6531 §4.3 "with" protocol name: ESMTP, ESMTPS, ESMTPA, ESMTPSA, UTF8SMTP... */
export function protocolName(o: {
  readonly ehlo: boolean;
  readonly tls: boolean;
  readonly utf8: boolean;
  readonly auth?: boolean;
}): string {
  if (!o.ehlo) return 'SMTP';
  return `${o.utf8 ? 'UTF8SMTP' : 'ESMTP'}${o.tls ? 'S' : ''}${o.auth ? 'A' : ''}`;
}

/** A Received header for mail we make ourselves (bounces): no client part. */
export function localReceivedHeader(r: { readonly byHost: string; readonly id: string; readonly date: Date }): string {
  return `Received: by ${r.byHost} (arcline) id ${r.id};\r\n\t${rfc5322Date(r.date)}\r\n`;
}
