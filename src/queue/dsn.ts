// Delivery status notifications (bounces and delay warnings) as RFC 3464 messages:
//   multipart/report; report-type=delivery-status (RFC 6522)
//     1. text/plain: what happened, for people
//     2. message/delivery-status: per-message and per-recipient fields, for programs (RFC 3464 §2)
//     3. text/rfc822-headers: the original header block (RFC 6522 §4), never the body
// Pure: bytes in, bytes out, CRLF throughout. Everything taken from a remote server (reply
// texts) or a sender is untrusted: control characters become spaces, so no field can end early
// and start another. UTF-8 addresses are kept as they are; the RFC 6533 global DSN form
// (message/global-delivery-status) is not produced yet.

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
  /** Header block of the original message, with or without its empty line. */
  readonly originalHeaders: Buffer;
  /** Fixed boundary for tests; random otherwise. */
  readonly boundary?: string;
}

const MAX_DIAGNOSTIC = 1000;

/** An address inside <...> of a header: no controls, no angle brackets. */
function bare(s: string): string {
  return oneLine(s, 320).replace(/[<>]/g, '');
}

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
  } else {
    lines.push('Your message was delivered to the recipients listed below.');
  }
  lines.push('', `Queue id: ${oneLine(input.queueId, 64)}`, '');
  for (const r of input.recipients) {
    const why = r.diagnostic ? oneLine(r.diagnostic) : `status ${oneLine(r.status, 16)}`;
    lines.push(`<${bare(r.address)}>: ${why}`);
  }
  return `${lines.join('\r\n')}\r\n`;
}

/** RFC 3464 §2.2 per-message fields, then §2.3 per-recipient blocks, separated by empty lines. */
function deliveryStatus(input: DsnInput): string {
  const blocks: string[][] = [];
  const msg = [`Reporting-MTA: dns; ${bare(input.reportingMta)}`];
  if (input.envelopeId) msg.push(`Original-Envelope-Id: ${oneLine(input.envelopeId, 100)}`);
  msg.push(`Arrival-Date: ${rfc5322Date(input.arrivalDate)}`);
  blocks.push(msg);
  for (const r of input.recipients) {
    const b: string[] = [];
    if (r.originalRecipient) {
      const o = oneLine(r.originalRecipient, 500);
      b.push(`Original-Recipient: ${o.includes(';') ? o : `rfc822;${o}`}`);
    }
    b.push(`Final-Recipient: rfc822; ${bare(r.address)}`);
    b.push(`Action: ${r.action}`);
    b.push(`Status: ${/^[245]\.\d{1,3}\.\d{1,3}$/.test(r.status) ? r.status : `${r.action === 'failed' ? 5 : 4}.0.0`}`);
    if (r.remoteMta) b.push(`Remote-MTA: dns; ${bare(r.remoteMta)}`);
    if (r.diagnostic) b.push(`Diagnostic-Code: smtp; ${oneLine(r.diagnostic)}`);
    if (r.lastAttempt) b.push(`Last-Attempt-Date: ${rfc5322Date(r.lastAttempt)}`);
    if (r.willRetryUntil) b.push(`Will-Retry-Until: ${rfc5322Date(r.willRetryUntil)}`);
    blocks.push(b);
  }
  return `${blocks.map((b) => b.join('\r\n')).join('\r\n\r\n')}\r\n`;
}

/** The original header block with CRLF line ends and no trailing empty line. */
function headerBlock(raw: Buffer): Buffer {
  const text = raw.toString('latin1').replace(/\r?\n|\r/g, '\r\n');
  const trimmed = text.replace(/(\r\n)+$/, '');
  return Buffer.from(trimmed === '' ? '' : `${trimmed}\r\n`, 'latin1');
}

export function buildDsn(input: DsnInput): Buffer {
  const boundary = input.boundary ?? `=_arcline_dsn_${randomBytes(12).toString('hex')}`;
  const head = [
    `From: Mail Delivery System <${bare(input.from)}>`,
    `To: <${bare(input.to)}>`,
    `Subject: ${subjectOf(input.recipients)}`,
    `Date: ${rfc5322Date(input.date)}`,
    `Message-ID: <${bare(input.messageId)}>`,
    'Auto-Submitted: auto-replied', // RFC 3834 §5: no auto-responder answers this
    'MIME-Version: 1.0',
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
    Buffer.from(`\r\n--${boundary}\r\nContent-Type: text/rfc822-headers\r\n\r\n`, 'utf8'),
    headerBlock(input.originalHeaders),
    Buffer.from(`\r\n--${boundary}--\r\n`, 'utf8'),
  ]);
}
