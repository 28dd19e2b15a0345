// Sieve vacation (RFC 5230, RFC 6131 :seconds): whether a reply is sent, and the reply itself.
// Pure: the caller (delivery) brings the message's fields, the envelope and our addresses,
// keeps the response-tracking state under vacationStateKey() for the action's period (RFC 5230
// §4.2) and sends the reply with the null reverse path (VACATION_ENVELOPE_FROM).
//
// The rules are RFC 5230 §4.5-4.6 with RFC 3834 §2, and the checks Pigeonhole makes (Dovecot's
// sieve_vacation): no reply to the null sender, to system or list senders (MAILER-DAEMON,
// LISTSERV, majordomo, owner-*, *-request), to automatic messages (Auto-Submitted other than
// "no"), to list mail (RFC 2369, RFC 2919 List-* fields; Precedence bulk/list/junk), to our own
// addresses, nor to a message where none of our addresses is in To, Cc, Bcc or Resent-*.
// Header values are taken as SieveMessage has them (unfolded, encoded words decoded); every
// scan is a plain loop, linear in its input (no regular expression on message text).

import { createHash, randomBytes } from 'node:crypto';
import { formatAddress, parseAddress, splitDetail } from '../core/address.ts';
import { LIMITS } from '../core/limits.ts';
import { encodedWords, quotedPrintable } from '../core/mime-encode.ts';
import { oneLine } from '../core/text.ts';
import type { SieveMessage } from './run-types.ts';

type Fields = SieveMessage['headers'];

/** RFC 5230 §5.1: "The SMTP MAIL FROM address of the message envelope SHOULD be set to <>"
 *  (also RFC 3834 §3.1.6: no bounce of an automatic reply goes back to anyone). */
export const VACATION_ENVELOPE_FROM = '';

export interface VacationInput {
  /** The message's header fields (SieveMessage.headers). */
  readonly headers: Fields;
  /** The envelope sender (MAIL FROM), '' for the null sender. */
  readonly envelopeFrom: string;
  /** Our addresses for this recipient (SieveContext.ownAddresses: its address and aliases). */
  readonly ownAddresses: readonly string[];
  /** The action's :addresses (RFC 5230 §4.5), more addresses of the user. */
  readonly addresses: readonly string[];
}

export type VacationSkip =
  /** RFC 5230 §4.6, RFC 3834 §2: the null reverse path. */
  | 'null-sender'
  /** The envelope sender is not an address a reply could go to. */
  | 'invalid-sender'
  /** MAILER-DAEMON, LISTSERV, majordomo, owner-*, *-request (RFC 5230 §4.6; Pigeonhole). */
  | 'system-sender'
  /** The sender is one of our own addresses (no reply to oneself; Pigeonhole). */
  | 'own-sender'
  /** RFC 5230 §4.6, RFC 3834 §2: Auto-Submitted with a value other than "no". */
  | 'auto-submitted'
  /** RFC 5230 §4.6: a List-* field of RFC 2369 or List-Id of RFC 2919. */
  | 'mailing-list'
  /** Precedence: bulk, list or junk (a convention of list servers, in no standard; Pigeonhole and
   *  the Unix vacation program honour it). */
  | 'precedence'
  /** RFC 5230 §4.5: none of our addresses in To, Cc, Bcc, Resent-To, Resent-Cc, Resent-Bcc. */
  | 'not-addressed';

export type VacationDecision =
  | { readonly reply: true /** The address the reply goes to (normalised). */; readonly to: string }
  | { readonly reply: false; readonly why: VacationSkip };

const LIST_FIELDS = new Set([
  'list-id', // RFC 2919
  'list-help', // RFC 2369 §3.1-3.6
  'list-subscribe',
  'list-unsubscribe',
  'list-post',
  'list-owner',
  'list-archive',
]);
const RECIPIENT_FIELDS = new Set(['to', 'cc', 'bcc', 'resent-to', 'resent-cc', 'resent-bcc']);
const SYSTEM_LOCALS = new Set(['mailer-daemon', 'listserv', 'majordomo']);

/** Whether to reply (RFC 5230 §4.5-4.6), with the reason when not; checked in Pigeonhole's
 *  order, the cheap envelope checks first. */
export function vacationDecision(input: VacationInput): VacationDecision {
  if (input.envelopeFrom === '') return { reply: false, why: 'null-sender' };
  const sender = parseAddress(input.envelopeFrom);
  if (!sender) return { reply: false, why: 'invalid-sender' };
  const local = sender.local;
  if (SYSTEM_LOCALS.has(local) || local.startsWith('owner-') || local.endsWith('-request')) {
    return { reply: false, why: 'system-sender' };
  }
  const ours = ownSet([...input.ownAddresses, ...input.addresses]);
  if (isOurs(ours, formatAddress(sender))) return { reply: false, why: 'own-sender' };
  let addressed = false;
  for (const f of input.headers) {
    const name = f.name.toLowerCase();
    if (name === 'auto-submitted') {
      // RFC 3834 §5: the keyword, then optional parameters after ";".
      const keyword = f.value.split(';')[0]?.trim().toLowerCase() ?? '';
      if (keyword !== 'no') return { reply: false, why: 'auto-submitted' };
    } else if (LIST_FIELDS.has(name)) return { reply: false, why: 'mailing-list' };
    else if (name === 'precedence') {
      const v = f.value.trim().toLowerCase();
      if (v === 'bulk' || v === 'list' || v === 'junk') return { reply: false, why: 'precedence' };
    } else if (!addressed && RECIPIENT_FIELDS.has(name)) {
      addressed = addressesIn(f.value).some((a) => isOurs(ours, a));
    }
  }
  if (!addressed) return { reply: false, why: 'not-addressed' };
  return { reply: true, to: formatAddress(sender) };
}

/** The key of the response-tracking state (RFC 5230 §4.2: "the handle and the sender"): the
 *  caller records it with the time of the reply and sends no other reply for the same key
 *  within the action's period (:days or :seconds, RFC 6131). A fixed-size hash. */
export function vacationStateKey(handle: string, sender: string): string {
  const a = parseAddress(sender);
  const who = a ? formatAddress(a) : sender.toLowerCase();
  return createHash('sha256').update(`${handle}\0${who}`).digest('hex');
}

function ownSet(addresses: readonly string[]): Set<string> {
  const out = new Set<string>();
  for (const s of addresses) {
    const a = parseAddress(s);
    if (a) out.add(formatAddress(a));
  }
  return out;
}

/** An address is ours as it is or as a sub-address of ours (RFC 5233: user+detail@domain). */
function isOurs(ours: ReadonlySet<string>, address: string): boolean {
  if (ours.has(address)) return true;
  const at = address.lastIndexOf('@');
  const { base, detail } = splitDetail(address.slice(0, at));
  return detail !== null && ours.has(`${base}${address.slice(at)}`);
}

/** The addr-specs of an address-list field (RFC 5322 §3.4), normalised: quoted strings and
 *  comments (which may hold "@" and ",") are skipped, the rest split at spaces and the
 *  specials that separate addresses ("<" ">" "," ";" ":"); what holds an "@" and parses is one. */
export function addressesIn(value: string): string[] {
  const out: string[] = [];
  let token = '';
  let depth = 0;
  let quoted = false;
  const flush = () => {
    if (token.includes('@')) {
      const a = parseAddress(token);
      if (a) out.push(formatAddress(a));
    }
    token = '';
  };
  for (let i = 0; i < value.length; i++) {
    const c = value[i] as string;
    if (quoted || depth > 0) {
      if (c === '\\') i++;
      else if (quoted && c === '"') quoted = false;
      else if (!quoted && c === '(') depth++;
      else if (!quoted && c === ')') depth--;
      continue;
    }
    if (c === '"') quoted = true;
    else if (c === '(') depth = 1;
    else if (c === ' ' || c === '\t' || c === '<' || c === '>' || c === ',' || c === ';' || c === ':') flush();
    else token += c;
    if (token.length > LIMITS.srs.maxAddress) token = ''; // no address is this long
  }
  flush();
  return out;
}

export interface VacationReplyInput {
  /** The original message's header fields (SieveMessage.headers). */
  readonly headers: Fields;
  /** Where the reply goes: the original envelope sender (vacationDecision's `to`). */
  readonly to: string;
  /** The recipient's address: the reply's From when the action has no :from (RFC 5230 §5.3). */
  readonly recipient: string;
  /** The action's :from, :subject, reason and :mime (RFC 5230 §4.3, §4.4). */
  readonly from: string | null;
  readonly subject: string | null;
  readonly reason: string;
  readonly mime: boolean;
  /** Our host name, for the Message-ID. */
  readonly hostname: string;
  readonly now: Date;
}

/** The reply (RFC 5230 §5), CRLF line endings, ready to send with VACATION_ENVELOPE_FROM. */
export function buildVacationReply(input: VacationReplyInput): Buffer {
  const original = (name: string) => input.headers.find((f) => f.name.toLowerCase() === name)?.value ?? null;
  const lines: string[] = [
    `From: ${fromField(input.from, input.recipient)}`,
    `To: <${oneLine(input.to, LIMITS.srs.maxAddress)}>`, // RFC 5230 §5.4: the original sender
    `Subject: ${encodedWords(subjectOf(input.subject, original('subject')), 9)}`,
    // RFC 5322 §3.3; toUTCString is "Www, DD Mmm YYYY HH:MM:SS GMT", "GMT" an obsolete zone.
    `Date: ${input.now.toUTCString().replace(/GMT$/, '+0000')}`,
    `Message-ID: <${randomBytes(12).toString('hex')}.vacation@${oneLine(input.hostname, 255)}>`,
  ];
  // RFC 5230 §5.8 (RFC 5322 §3.6.4): In-Reply-To is the original's Message-ID, References its
  // References (or In-Reply-To) followed by it; the latest LIMITS.sieve.vacationReferences kept.
  const id = msgIds(original('message-id') ?? '')[0];
  if (id) {
    const refs = [...msgIds(original('references') ?? original('in-reply-to') ?? ''), id];
    lines.push(`In-Reply-To: ${id}`);
    lines.push(`References: ${refs.slice(-LIMITS.sieve.vacationReferences).join('\r\n ')}`);
  }
  lines.push('Auto-Submitted: auto-replied'); // RFC 5230 §5.5, RFC 3834 §3.1.7 (the field: §5)
  lines.push('MIME-Version: 1.0');
  const reason = cut(input.reason, LIMITS.sieve.vacationReasonBytes).replace(/\r\n|\r|\n/g, '\r\n');
  return Buffer.from(`${lines.join('\r\n')}\r\n${input.mime ? mimeEntity(reason) : textBody(reason)}`, 'utf8');
}

/** RFC 5230 §5.2: the :subject, else "Auto: " and the original subject, else a fixed one. */
function subjectOf(subject: string | null, original: string | null): string {
  const s = subject ?? (original !== null && original.trim() !== '' ? `Auto: ${original.trim()}` : 'Automated reply');
  return oneLine(s, LIMITS.sieve.vacationSubjectChars);
}

/** RFC 5230 §4.3, §5.3: the :from ("addr" or "Name <addr>") when it holds an address, else the
 *  recipient's. A display name that is not plain ASCII is written as encoded words. */
function fromField(from: string | null, recipient: string): string {
  const fallback = parseAddress(recipient);
  const own = fallback ? formatAddress(fallback) : oneLine(recipient, LIMITS.srs.maxAddress);
  if (from === null) return `<${own}>`;
  const text = oneLine(from, 1000);
  const lt = text.lastIndexOf('<');
  const gt = text.lastIndexOf('>');
  const addrText = lt >= 0 && gt > lt ? text.slice(lt + 1, gt) : text;
  const addr = parseAddress(addrText.trim());
  if (!addr) return `<${own}>`;
  let name = lt > 0 ? text.slice(0, lt).trim() : '';
  if (name.startsWith('"') && name.endsWith('"') && name.length >= 2) name = name.slice(1, -1);
  if (name === '') return `<${formatAddress(addr)}>`;
  const display = /^[\x20-\x7e]*$/.test(name) ? `"${name.replace(/["\\]/g, '\\$&')}"` : encodedWords(name, 6);
  return `${display} <${formatAddress(addr)}>`;
}

/** The msg-ids ("<...>") in a field, in order, each without spaces and bounded. */
function msgIds(value: string): string[] {
  const out: string[] = [];
  let at = value.indexOf('<');
  while (at >= 0) {
    const end = value.indexOf('>', at);
    if (end < 0) break;
    const id = value.slice(at, end + 1);
    if (id.length > 2 && id.length <= 998 && /^<[\x21-\x7e]+>$/.test(id)) out.push(id);
    at = value.indexOf('<', end);
  }
  return out;
}

/** A text/plain UTF-8 body: 7bit when it is ASCII in short lines, quoted-printable otherwise. */
function textBody(reason: string): string {
  const plain = /^[\x20-\x7e\r\n\t]*$/.test(reason) && reason.split('\r\n').every((l) => l.length <= 998);
  return (
    [
      'Content-Type: text/plain; charset=utf-8',
      `Content-Transfer-Encoding: ${plain ? '7bit' : 'quoted-printable'}`,
      '',
      plain ? reason : quotedPrintable(reason),
    ].join('\r\n') + (reason.endsWith('\r\n') || reason === '' ? '' : '\r\n')
  );
}

/** RFC 5230 §4.4 :mime: the reason is a MIME entity (its header fields, a blank line, its body)
 *  and becomes the reply's content. Only its Content-* fields are kept: a script cannot add
 *  recipients or other fields through it. Without a blank line it is all body, as text. */
function mimeEntity(reason: string): string {
  const split = reason.startsWith('\r\n') ? 0 : reason.indexOf('\r\n\r\n');
  if (split < 0) return textBody(reason);
  const head = reason.slice(0, split).split('\r\n');
  const body = reason.slice(split + (split === 0 ? 2 : 4));
  const kept: string[] = [];
  let keeping = false;
  for (const line of head) {
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (keeping) kept.push(line); // folded continuation of the field before
      continue;
    }
    keeping = line.toLowerCase().startsWith('content-');
    if (keeping) kept.push(line);
  }
  if (!kept.some((l) => l.toLowerCase().startsWith('content-type:')))
    kept.unshift('Content-Type: text/plain; charset=utf-8');
  return `${kept.join('\r\n')}\r\n\r\n${body}`;
}

/** At most `max` octets of UTF-8, cut at a character boundary. */
function cut(s: string, max: number): string {
  if (Buffer.byteLength(s) <= max) return s;
  return Buffer.from(s)
    .subarray(0, max)
    .toString('utf8')
    .replace(/\uFFFD$/, '');
}
