// Delivery status notifications (bounces and delay warnings) as RFC 3464 messages:
//   multipart/report; report-type=delivery-status (RFC 6522)
//     1. text/plain: what happened, for people
//     2. message/delivery-status: per-message and per-recipient fields, for programs (RFC 3464 §2)
//     3. text/rfc822-headers: the original header block (RFC 6522 §4); the whole message
//        (message/rfc822) only when the sender asked RET=FULL for a failure (RFC 3461 §4.3)
// Pure: bytes in, bytes out, CRLF throughout. Everything taken from a remote server (reply
// texts) or a sender is untrusted: control characters become spaces, so no field can end early
// and start another. UTF-8 addresses are kept as they are; the RFC 6533 global DSN form
// (message/global-delivery-status) is out of scope and not produced.
// Every line we write stays under 998 octets (RFC 5322 §2.1.1; RFC 5321 §4.5.3.1.6 for the
// SMTP hop): header and delivery-status fields are folded at spaces (RFC 5322 §2.2.3), and so
// are the per-recipient lines of the text part; diagnostics are capped at 1000 characters first.
// Part 3 is the original header block as received, only its line ends normalized.

import { randomBytes } from 'node:crypto';
import { oneLine as line } from '../core/text.ts';
import { rfc5322Date } from '../smtp/trace.ts';

const oneLine = (s: string, max = MAX_DIAGNOSTIC) => line(s, max);

export interface DsnRecipient {
  /** Final recipient, e.g. 'bob@remote.test'. */
  readonly address: string;
  /** ORCPT as given ('rfc822;Bob@Remote.test'); a bare address gets the rfc822 type. */
  readonly originalRecipient?: string | null;
  readonly action: 'failed' | 'delayed' | 'delivered' | 'relayed';
  /** Enhanced status code (RFC 3463), e.g. '5.1.1'. */
  readonly status: string;
  /** Host name of the server that answered. */
  readonly remoteMta?: string | null;
  /** The server's reply or our description of the problem. */
  readonly diagnostic?: string | null;
  readonly lastAttempt?: Date | null;
  /** Only for 'delayed'. */
  readonly willRetryUntil?: Date | null;
}

export interface DsnInput {
  readonly reportingMta: string;
  readonly from: string;
  /** The original envelope sender: the notice's recipient. */
  readonly to: string;
  /** Message-ID of the notice, without <>. */
  readonly messageId: string;
  readonly date: Date;
  readonly arrivalDate: Date;
  readonly queueId: string;
  readonly envelopeId?: string | null;
  readonly recipients: readonly DsnRecipient[];
  /** Header block of the original message, with or without its empty line; with
   *  `fullMessage`, the whole message. */
  readonly originalHeaders: Buffer;
  /** RFC 3461 §4.3 RET=FULL: part 3 is the whole message (message/rfc822, RFC 3464 §2). */
  readonly fullMessage?: boolean;
  /** Fixed boundary for tests; random otherwise. */
  readonly boundary?: string;
}

const MAX_DIAGNOSTIC = 1000;
/** Fold lines longer than this (RFC 5322 §2.1.1: SHOULD be no more than 78 characters). */
const SOFT_LINE = 78;
/** No physical line may reach this (RFC 5322 §2.1.1: MUST be no more than 998); margin kept. */
const HARD_LINE = 900;

/** Splits a word with no spaces into pieces of at most HARD_LINE octets, on code point boundaries. */
function chunks(word: string): string[] {
  const out: string[] = [];
  let cur = '';
  for (const ch of word) {
    if (cur !== '' && Buffer.byteLength(cur + ch) > HARD_LINE) {
      out.push(cur);
      cur = '';
    }
    cur += ch;
  }
  out.push(cur);
  return out;
}

/**
 * One header field (no CR/LF inside) as physical lines joined by CRLF. Folds before a space, so
 * unfolding gives the value back unchanged (RFC 5322 §2.2.3); no continuation line is only
 * white space (§3.2.2). A single word too long for one line is cut with an added space: only a
 * pathological reply text can get there, and it stays readable.
 */
function fold(field: string): string {
  if (Buffer.byteLength(field) <= SOFT_LINE) return field;
  // A token is a word with the spaces before it; a line break goes only before a token, so every
  // continuation line starts with a space and has something after it.
  const tokens: string[] = [];
  for (const t of field.match(/ *[^ ]+/g) ?? []) {
    if (Buffer.byteLength(t) <= HARD_LINE) tokens.push(t);
    else tokens.push(...chunks(t.replace(/^ +/, ' ')).map((c, i) => (i === 0 ? c : ` ${c}`)));
  }
  const lines: string[] = [];
  let cur = '';
  for (const t of tokens) {
    if (cur !== '' && t.startsWith(' ') && Buffer.byteLength(cur + t) > SOFT_LINE) {
      lines.push(cur);
      cur = t;
    } else {
      cur += t;
    }
  }
  lines.push(cur);
  return lines.join('\r\n');
}

/** An address inside <...> of a header: no controls, no angle brackets. */
function bare(s: string): string {
  return oneLine(s, 320).replace(/[<>]/g, '');
}

// RFC 3464 §2.3.1: addr-type is an atom (RFC 3461 §4.2), e.g. 'rfc822;bob@x' or 'utf-8;...'.
const ADDR_TYPE = /^[A-Za-z0-9-]+;/;

function subjectOf(recipients: readonly DsnRecipient[]): string {
  if (recipients.some((r) => r.action === 'failed')) return 'Undelivered Mail Returned to Sender';
  if (recipients.every((r) => r.action === 'delayed')) return 'Delayed Mail (still being retried)';
  return 'Successful Mail Delivery Report';
}

function humanText(input: DsnInput): string {
  const failed = input.recipients.filter((r) => r.action === 'failed');
  const delayed = input.recipients.filter((r) => r.action === 'delayed');
  const lines: string[] = [`This is the mail system at host ${bare(input.reportingMta)}.`, ''];
  if (failed.length > 0) {
    lines.push(
      "I'm sorry to have to inform you that your message could not",
      'be delivered to one or more recipients. It is attached below.',
      '',
      'For further assistance, please send mail to postmaster.',
      '',
      'If you do so, please include this problem report. You can',
      'delete your own text from the attached returned message.',
    );
  } else if (delayed.length > 0) {
    const until = delayed[0]?.willRetryUntil;
    lines.push(
      '####################################################################',
      '# THIS IS A WARNING ONLY.  YOU DO NOT NEED TO RESEND YOUR MESSAGE. #',
      '####################################################################',
      '',
      'Your message could not be delivered yet. The mail system will keep',
      until ? `trying until ${rfc5322Date(until)}.` : 'trying for a while.',
    );
  } else if (input.recipients.every((r) => r.action === 'relayed')) {
    // RFC 3461 §6.2.1.1: the next hop does not report further; this is the last notice.
    lines.push(
      'Your message was relayed to the recipients listed below, to a mail system',
      'that does not send delivery notices: no further notice will come.',
    );
  } else {
    lines.push('Your message was delivered to the recipients listed below.');
  }
  lines.push('', `Queue id: ${oneLine(input.queueId, 64)}`, '');
  for (const r of input.recipients) {
    const why = r.diagnostic ? oneLine(r.diagnostic) : `status ${oneLine(r.status, 16)}`;
    lines.push(fold(`<${bare(r.address)}>: ${why}`));
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** RFC 3464 §2.2 per-message fields, then §2.3 per-recipient blocks, separated by empty lines. */
function deliveryStatus(input: DsnInput): string {
  const blocks: string[][] = [];
  const msg = [`Reporting-MTA: dns; ${bare(input.reportingMta)}`]; // RFC 3464 §2.2.2
  if (input.envelopeId) msg.push(`Original-Envelope-Id: ${oneLine(input.envelopeId, 100)}`); // RFC 3464 §2.2.1
  msg.push(`Arrival-Date: ${rfc5322Date(input.arrivalDate)}`); // RFC 3464 §2.2.5
  blocks.push(msg);
  for (const r of input.recipients) {
    const b: string[] = [];
    if (r.originalRecipient) {
      const o = oneLine(r.originalRecipient, 500);
      b.push(`Original-Recipient: ${ADDR_TYPE.test(o) ? o : `rfc822;${o}`}`); // RFC 3464 §2.3.1
    }
    b.push(`Final-Recipient: rfc822; ${bare(r.address)}`); // RFC 3464 §2.3.2
    b.push(`Action: ${r.action}`); // RFC 3464 §2.3.3
    // RFC 3464 §2.3.4, RFC 3463 §2: class.subject.detail; anything else becomes a generic code
    b.push(`Status: ${/^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status) ? r.status : `${r.action === 'failed' ? 5 : 4}.0.0`}`);
    if (r.remoteMta) b.push(`Remote-MTA: dns; ${bare(r.remoteMta)}`); // RFC 3464 §2.3.5
    if (r.diagnostic) b.push(`Diagnostic-Code: smtp; ${oneLine(r.diagnostic)}`); // RFC 3464 §2.3.6
    if (r.lastAttempt) b.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttempt)}`); // RFC 3464 §2.3.7
    if (r.willRetryUntil) b.push(`Will-Retry-Until: ${rfc5322Date(r.willRetryUntil)}`); // RFC 3464 §2.3.9
    blocks.push(b);
  }
  // RFC 3464 §2.1: the per-message group, then one group per recipient, separated by empty lines
  return `${blocks.map((b) => b.map(fold).join('\r\n')).join('\r\n\r\n')}\r\n`;
}

/** RFC 6522 §4: the original header block with CRLF line ends and no trailing empty line. */
function headerBlock(raw: Buffer): Buffer {
  const text = raw.toString('latin1').replace(/\r?\n|\r/g, '\r\n');
  const trimmed = text.replace(/(\r\n)+$/, '');
  return Buffer.from(trimmed === '' ? '' : `${trimmed}\r\n`, 'latin1');
}

/** RET=FULL: the message as queued (CRLF already), ending with a line end before the boundary. */
function wholeMessage(raw: Buffer): Buffer {
  if (raw.length === 0 || raw.subarray(-2).equals(Buffer.from('\r\n'))) return raw;
  return Buffer.concat([raw, Buffer.from('\r\n')]);
}

export function buildDsn(input: DsnInput): Buffer {
  const boundary = input.boundary ?? `=_arcline_dsn_${randomBytes(12).toString('hex')}`;
  const head = [
    fold(`From: Mail Delivery System <${bare(input.from)}>`),
    fold(`To: <${bare(input.to)}>`),
    `Subject: ${subjectOf(input.recipients)}`,
    `Date: ${rfc5322Date(input.date)}`, // RFC 5322 §3.6.1
    fold(`Message-ID: <${bare(input.messageId)}>`),
    'Auto-Submitted: auto-replied', // RFC 3834 §5: no auto-responder answers this
    'MIME-Version: 1.0',
    // RFC 6522 §3: multipart/report with report-type=delivery-status (RFC 3464 §2)
    `Content-Type: multipart/report; report-type=delivery-status;\r\n\tboundary="${boundary}"`,
    '',
    'This is a MIME-encapsulated message.',
    '',
  ].join('\r\n');
  const part = (type: string, body: string) =>
    `--${boundary}\r\nContent-Type: ${type}\r\n${type.startsWith('text/plain') ? 'Content-Transfer-Encoding: 8bit\r\n' : ''}\r\n${body}`;
  return Buffer.concat([
    Buffer.from(head, 'utf8'),
    Buffer.from('\r\n', 'utf8'),
    Buffer.from(part('text/plain; charset=utf-8', humanText(input)), 'utf8'),
    Buffer.from('\r\n', 'utf8'),
    Buffer.from(part('message/delivery-status', deliveryStatus(input)), 'utf8'),
    Buffer.from(
      `\r\n--${boundary}\r\nContent-Type: ${input.fullMessage ? 'message/rfc822' : 'text/rfc822-headers'}\r\n\r\n`,
      'utf8',
    ),
    input.fullMessage ? wholeMessage(input.originalHeaders) : headerBlock(input.originalHeaders),
    Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8'),
  ]);
}
