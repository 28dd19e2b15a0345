// SMTP replies: every reply code + enhanced status code (RFC 3463) we send from our handlers is
// defined here, and errors are mapped to the wire in this one place (design.md convention 4).
// Reply texts never contain paths, config or internals.
// Each text starts with its enhanced code (RFC 2034 §3), sent as it is by smtp/connection.ts.

import type { Command } from './wire/command.ts';

/** A reply: what the handlers return, and throw to refuse. A plain object, not an Error: a
 *  session answers several per message, and an Error would capture a stack trace each time
 *  (measured: ~4% of the inbound profile, issue #12). `message` is the text after the code. */
export class SmtpReplyError {
  readonly responseCode: number;
  readonly message: string;
  constructor(code: number, message: string) {
    this.responseCode = code;
    this.message = message;
  }
}

export function reply(code: number, enhanced: string, text: string): SmtpReplyError {
  return new SmtpReplyError(code, `${enhanced} ${text}`);
}

/** A reply whose text is given whole (354, or a 250 text with its own enhanced code). */
export function rawReply(code: number, text: string): SmtpReplyError {
  return new SmtpReplyError(code, text);
}

/** The reply of a command that changes nothing and only gets an answer (RFC 5321: NOOP
 *  §4.1.1.9; VRFY §3.5.3, 252 when we will not say; HELP §4.1.1.8; 501 for bad arguments, 500
 *  for an unknown verb, 502 for one we know and do not offer, §4.2.4). */
export function answerOnly(c: Command): SmtpReplyError {
  switch (c.verb) {
    case 'NOOP':
      return reply(250, '2.0.0', 'Ok');
    case 'VRFY':
      return reply(252, '2.5.0', 'Cannot VRFY user, but will accept message and attempt delivery');
    case 'HELP':
      return reply(214, '2.0.0', 'See https://www.rfc-editor.org/rfc/rfc5321');
    case 'SYNTAX':
      return reply(501, '5.5.4', `Syntax: ${c.hint}`);
    case 'NOT-IMPLEMENTED':
      return reply(502, '5.5.1', `Error: ${c.name} not implemented`);
    default: // UNKNOWN (the other verbs have handlers of their own)
      return reply(500, '5.5.2', 'Error: command not recognized');
  }
}

export const REPLIES = {
  // RCPT (RFC 5321 §3.6.2: we are no open relay)
  relayDenied: () => reply(550, '5.7.1', 'Relay access denied'),
  userUnknown: () => reply(550, '5.1.1', 'Recipient address rejected: user unknown'),
  badRecipientSyntax: () => reply(501, '5.1.3', 'Bad recipient address syntax'),
  // A bounce to an SRS address of ours (accept/srs.ts has the RFC 3463 reasoning).
  srsForged: () => reply(550, '5.7.1', 'Recipient address rejected: invalid SRS address'),
  srsExpired: () => reply(550, '5.7.1', 'Recipient address rejected: SRS address expired'),
  srsMalformed: () => reply(550, '5.1.1', 'Recipient address rejected: malformed SRS address'),
  badSenderSyntax: () => reply(501, '5.1.7', 'Bad sender address syntax'),
  // RFC 5321 §4.5.3.1.10: too many recipients is a temporary 452, the client sends the rest later.
  tooManyRecipients: () => reply(452, '4.5.3', 'Too many recipients'),
  // RFC 5321 §4.1.1.11: parameters we do not support or cannot parse.
  unsupportedParameter: (name: string) => reply(555, '5.5.4', `Unsupported parameter ${name.slice(0, 32)}`),
  badParameter: (name: string) => reply(501, '5.5.4', `Invalid value for parameter ${name.slice(0, 32)}`),
  // RFC 6531 §3.5: a UTF-8 address needs the SMTPUTF8 parameter on MAIL.
  utf8NeedsSmtputf8: () => reply(553, '5.6.7', 'Non-ASCII address requires SMTPUTF8'),
  // Submission (RFC 4954 §6, RFC 6409 §6.1)
  authRequired: () => reply(530, '5.7.0', 'Authentication required'),
  authFailed: () => reply(535, '5.7.8', 'Authentication credentials invalid'),
  authBlocked: () => reply(454, '4.7.0', 'Too many failed authentications, try again later'),
  senderNotOwned: () => reply(553, '5.7.1', 'Sender address not owned by the authenticated user'),
  fromNotOwned: () => reply(553, '5.7.1', 'From: header address not owned by the authenticated user'),
  badFromHeader: () => reply(550, '5.6.0', 'Message must have exactly one From: header with an address'),
  authorFieldsTooLong: () => reply(550, '5.6.0', 'From:, Sender: and Resent- fields are too long'),
  // Inbound policy. RFC 5321 §3.1: 554 at connection means no service for this client.
  dnsblListed: (ip: string, zone: string, reason: string | null) =>
    reply(554, '5.7.1', `Service unavailable; client [${ip}] blocked using ${zone}${reason ? `; ${reason}` : ''}`),
  // IP deny list and bans (defense/, docs/spam.md): refused before the greeting (RFC 5321 §3.1).
  denied: (ip: string) => reply(554, '5.7.1', `Service unavailable; client [${ip}] is not allowed to connect`),
  // A ban ends: the client is told to come back later (421, §3.8), not that its mail is refused.
  banned: (ip: string, until: number) =>
    reply(421, '4.7.1', `Client [${ip}] temporarily banned for abuse until ${new Date(until).toISOString()}`),
  // Connection limits
  tooManyConnectionsFromIp: () => reply(421, '4.7.0', 'Too many connections from your address, try again later'),
  tooManyConnections: () => reply(421, '4.3.2', 'Too many connections, try again later'),
  // Rate limits (defense/rate-limits.ts, docs/spam.md): stable texts a sender's log can match.
  connectionRate: () => reply(421, '4.7.0', 'Too many connections from your network, try again later'),
  messageRate: () => reply(451, '4.7.1', 'Too many messages from this account, try again later'),
  recipientRate: () => reply(451, '4.7.1', 'Too many recipients from this account, try again later'),
  // RFC 6647 §2.1: greylisting answers with a temporary failure that a real MTA retries.
  greylisted: () => reply(451, '4.7.1', 'Greylisted, please try again later'),
  // Deadlines (gate.ts): RFC 5321 §4.5.3.2 lets a server close a connection that takes too long;
  // 421 (§3.8) tells the client to try again later.
  commandTimeout: () => reply(421, '4.4.2', 'Timeout: command not completed in time, closing connection'),
  dataTimeout: () => reply(421, '4.4.2', 'Timeout: message data too slow, closing connection'),
  sessionTimeout: () => reply(421, '4.4.2', 'Session time limit reached, closing connection'),
  loginTimeout: () => reply(421, '4.7.0', 'Authentication not completed in time, closing connection'),
  // Postfix smtpd_hard_error_limit.
  tooManyErrors: () => reply(421, '4.7.0', 'Too many errors, closing connection'),
  shuttingDown: () => reply(421, '4.3.2', 'Service shutting down, try again later'),
  // DATA
  // RFC 5321 §2.3.8: CR and LF may only appear together as CRLF. A bare one is how SMTP
  // smuggling hides a second message, so we refuse the message (Postfix smtpd_forbid_bare_newline).
  bareNewline: () => reply(554, '5.6.0', 'Message contains bare CR or LF characters; use CRLF line endings'),
  // RFC 5322 §2.2, §3.5: no NUL in a message (see line-endings.ts).
  nulByte: () => reply(554, '5.6.0', 'Message contains NUL characters'),
  // [smtp] max_header_size: the whole header is read for the checks, so it is bounded.
  headerTooBig: (limit: number) => reply(552, '5.3.4', `Message header size exceeds fixed limit of ${limit} bytes`),
  // RFC 5321 §6.3: loop detection by counting Received: fields.
  tooManyHops: () => reply(554, '5.4.6', 'Too many hops: mail forwarding loop'),
  // RFC 3463: 5.2.2 mailbox full (RFC 9208 §5 quota on delivery).
  mailboxFull: () => reply(552, '5.2.2', 'Mailbox full: the recipient is over quota'),
  tooBig: (limit: number) => reply(552, '5.3.4', `Message size exceeds fixed limit of ${limit} bytes`),
  // [[milter]] verdicts without a reply of their own (and on_failure); RFC 3463 5.7.1: refused
  // by policy.
  milterReject: () => reply(550, '5.7.1', 'Message rejected by a content filter'),
  milterTempfail: () => reply(451, '4.7.1', 'Message deferred by a content filter, try again later'),
  // The spam filter (rspamd, docs/spam.md): a reject is permanent (RFC 3463 5.7.1, delivery
  // not authorized), its soft reject and an unreachable filter under [spam] failure = "tempfail"
  // are temporary (4.7.1); greylisting asks the sender to retry (RFC 6647 §2.1).
  spamRejected: (text: string | null) => reply(550, '5.7.1', `Message rejected as spam${text ? `: ${text}` : ''}`),
  spamDeferred: (text: string | null) =>
    reply(451, '4.7.1', `Message deferred by the spam filter, try again later${text ? `: ${text}` : ''}`),
  spamFilterUnavailable: () => reply(451, '4.7.1', 'Spam filter unavailable, try again later'),
  // Unexpected failures are temporary: the sender retries, nothing is lost.
  localError: () => reply(451, '4.3.0', 'Temporary local problem, please try again later'),
} as const;

export function accepted(id: string): string {
  return `2.0.0 Ok: message ${id} delivered`;
}

/** 250 for a message with remote recipients: durable in the queue, delivery follows. */
export function queued(id: string): string {
  return `2.0.0 Ok: queued as ${id}`;
}
