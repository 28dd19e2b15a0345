// Sending an Email for EmailSubmission/set create (RFC 8621 §7.5): the message's bytes read from
// the store, its authors and envelope checked against what the account may send as
// (forbiddenFrom, forbiddenMailFrom), Bcc: removed from the copy that is sent (§7.5: the
// server MUST remove it), DKIM-signed like submission signs (smtp/accept/sign.ts: by the From:
// domain, over our trace field and the message) and handed to the Dispatcher: local
// recipients get their copy at once (through their Sieve), remote ones are queued.
//
// The DSN extension through the envelope's parameters (RFC 8621 §7: "DSN" in
// submissionExtensions): RET and ENVID on mailFrom, NOTIFY and ORCPT on each rcptTo, checked by
// the parser of SMTP's (smtp/dsn-params.ts, RFC 3461 §4) and honoured the same way: kept with the
// queued parts, passed on to a next hop that offers DSN, a "delivered" notice for a local
// recipient that asked SUCCESS.

import { Readable } from 'node:stream';
import { formatAddress, parseAddress } from '../../core/address.ts';
import { type AccountId, newId } from '../../core/ids.ts';
import { LIMITS } from '../../core/limits.ts';
import { type Directory, principalOf } from '../../directory/types.ts';
import type { DispatchRecipient, DispatchRequest, DispatchResult, ScheduleRequest } from '../../queue/dispatch.ts';
import type { DsnRet, QueueId } from '../../queue/types.ts';
import { NO_RCPT_DSN, notifies, parseMailDsn, parseRcptDsn, type RcptDsn } from '../../smtp/dsn-params.ts';
import { addressesIn, authorAddresses, type HeaderField, headerFields } from '../../smtp/submission.ts';
import { localReceivedHeader, traceText } from '../../smtp/trace.ts';
import type { Mailboxes } from '../../store/mailboxes.ts';
import { bufferMessage } from '../../store/spool.ts';
import type { DeliveryTarget } from '../../store/types.ts';
import { SetFailure } from '../core/errors.ts';

export interface SendDeps {
  readonly accounts: Mailboxes;
  readonly directory: Pick<Directory, 'maySendAs' | 'resolveRecipient'>;
  readonly dispatch: (req: DispatchRequest) => Promise<DispatchResult>;
  /** Queues a delayed send (Dispatcher.schedule). */
  readonly schedule: (req: ScheduleRequest) => Promise<QueueId>;
  /** DKIM-Signature fields for a message from `domain` ('' without a key); null: no signing. */
  readonly sign: ((domain: string, message: Readable) => Promise<string>) | null;
  readonly hostname: string;
  /** Submission's messages and recipients per user (defense/rate-limits.ts RateLimits); the
   *  HTTP client's address is not known here: '' (no exemption by network). */
  readonly rate?: {
    message(user: string, ip: string): Promise<string | null>;
    recipient(user: string, ip: string): Promise<string | null>;
  };
}

export interface Envelope {
  readonly mailFrom: { readonly email: string; readonly parameters: Record<string, string | null> | null };
  readonly rcptTo: readonly { readonly email: string; readonly parameters: Record<string, string | null> | null }[];
}

export type Delivered = 'queued' | 'yes' | 'no' | 'unknown';
export interface DeliveryStatus {
  smtpReply: string;
  delivered: Delivered;
  displayed: 'unknown';
}

export interface Sent {
  readonly envelope: Envelope;
  /** §7 deliveryStatus: per recipient, as known when it was handed over. */
  readonly deliveryStatus: Record<string, DeliveryStatus>;
  /** The queue entries made (the scheduled one for a delayed send). */
  readonly queueIds: readonly QueueId[];
  /** deliveryStatus key -> the addresses queued for it (submission-track.ts follows them). */
  readonly queued: Record<string, string[]>;
}

/** How a submission is handed over: `tag` marks its queue entries; with `releaseAt` it is
 *  scheduled (delayed send) instead of dispatched now. */
export interface SendOptions {
  readonly tag: string;
  readonly releaseAt: number | null;
}

/** The message's bytes (its first copy), or null when the email is not in the account. */
export async function readEmail(accounts: Mailboxes, account: AccountId, emailId: string): Promise<Buffer | null> {
  const [located] = await accounts.locate(account, [emailId]);
  const copy = located?.copies[0];
  if (!copy) return null;
  const box = await accounts.open(account, copy.mailbox);
  try {
    const body = await box.openMessage(copy.uid);
    if (!body) return null;
    try {
      const buf = Buffer.alloc(body.size);
      let at = 0;
      while (at < body.size) {
        const { bytesRead } = await body.read(buf, at, body.size - at, at);
        if (bytesRead === 0) break;
        at += bytesRead;
      }
      return buf.subarray(0, at);
    } finally {
      await body.close();
    }
  } finally {
    accounts.release(account, box);
  }
}

/** The header block (with its final CRLF) and where the body starts. */
function splitHead(msg: Buffer): { head: Buffer; body: Buffer } {
  const end = msg.indexOf('\r\n\r\n');
  if (end < 0) return { head: Buffer.concat([msg, Buffer.from('\r\n')]), body: Buffer.from('\r\n') };
  return { head: msg.subarray(0, end + 2), body: msg.subarray(end + 2) };
}

/** The header block without its Bcc: fields (and their folded lines). */
export function withoutBcc(head: Buffer): Buffer {
  const out: string[] = [];
  let skipping = false;
  for (const line of head.toString('utf8').split('\r\n')) {
    if (line.startsWith(' ') || line.startsWith('\t')) {
      if (!skipping) out.push(line);
      continue;
    }
    skipping = /^bcc[ \t]*:/i.test(line);
    if (!skipping) out.push(line);
  }
  return Buffer.from(out.join('\r\n'), 'utf8');
}

const bare = (email: string) => ({ email, parameters: null });

/** RFC 8621 §7: a parameter's value comes without its xtext encoding; encoded again (RFC 3461
 *  §4: "+" and "=", and anything outside "!" to "~", as "+HH" of its UTF-8 octets) so that SMTP's
 *  parser checks it alike. Names are matched without case. */
function asEsmtp(params: Record<string, string | null> | null): { name: string; value: string | null }[] {
  return Object.entries(params ?? {}).map(([name, value]) => ({
    name: name.toUpperCase(),
    value: value === null ? null : xtext(value),
  }));
}

function xtext(v: string): string {
  let out = '';
  for (const b of Buffer.from(v, 'utf8')) {
    out +=
      b < 0x21 || b > 0x7e || b === 0x2b || b === 0x3d
        ? `+${b.toString(16).toUpperCase().padStart(2, '0')}`
        : String.fromCharCode(b);
  }
  return out;
}

/** The envelope's DSN parameters, or invalidProperties naming the one that is malformed. */
function envelopeDsn(envelope: Envelope): {
  ret: DsnRet | null;
  envid: string | null;
  rcpts: Map<string, RcptDsn>;
} {
  const bad = (name: string) =>
    new SetFailure('invalidProperties', `envelope parameter ${name} is malformed`, ['envelope']);
  const mail = parseMailDsn(asEsmtp(envelope.mailFrom.parameters));
  if (!mail.ok) throw bad(mail.name);
  const rcpts = new Map<string, RcptDsn>();
  for (const r of envelope.rcptTo) {
    if (r.parameters === null) continue;
    const p = parseRcptDsn(asEsmtp(r.parameters));
    if (!p.ok) throw bad(p.name);
    rcpts.set(r.email, p.value);
  }
  return { ret: mail.value.ret, envid: mail.value.envid, rcpts };
}

/** A recipient with the NOTIFY and ORCPT its rcptTo asked for (none: left out). */
function withDsn(address: string, dsn: RcptDsn, forwardedVia?: string): DispatchRecipient {
  return {
    address,
    ...(dsn.notify !== null ? { notify: dsn.notify } : {}),
    ...(dsn.orcpt !== null ? { orcpt: dsn.orcpt } : {}),
    ...(forwardedVia !== undefined ? { forwardedVia } : {}),
  };
}

/** §7.5: the envelope from the message when the client sent none: mailFrom from Sender:, else
 *  From:; rcptTo the addresses of To:, Cc: and Bcc:, deduplicated. */
export function envelopeOf(fields: readonly HeaderField[]): Envelope | null {
  const from = addressesIn(fields, 'sender')[0] ?? addressesIn(fields, 'from')[0];
  if (from === undefined) return null;
  const rcpts = new Set<string>();
  for (const name of ['to', 'cc', 'bcc']) for (const a of addressesIn(fields, name)) rcpts.add(a);
  return { mailFrom: bare(from), rcptTo: [...rcpts].map(bare) };
}

async function mayUse(d: SendDeps, account: AccountId, address: string): Promise<boolean> {
  const a = parseAddress(address);
  return a !== null && (await d.directory.maySendAs(principalOf(account), a));
}

/** Sends `emailId` for `account`; SetFailure for what §7.5 names. */
export async function sendEmail(
  d: SendDeps,
  account: AccountId,
  emailId: string,
  given: Envelope | null,
  opts: SendOptions,
): Promise<Sent> {
  const msg = await readEmail(d.accounts, account, emailId);
  if (!msg) throw new SetFailure('invalidProperties', `no email ${emailId}`, ['emailId']);
  const { head, body } = splitHead(msg);
  const fields = headerFields(head);
  // §7.5 forbiddenFrom: every author address (From:, Sender:, Resent-*) must be the user's, as
  // submission requires (smtp/submission.ts authorAddresses).
  const authors = authorAddresses(fields);
  if (!authors.ok) throw new SetFailure('invalidEmail', `the message's From: is not usable (${authors.reason})`);
  for (const a of authors.authors)
    if (!(await mayUse(d, account, a))) throw new SetFailure('forbiddenFrom', `you may not send as ${a}`);
  const envelope = given ?? envelopeOf(fields);
  if (!envelope) throw new SetFailure('invalidEmail', 'the message has no From:');
  if (!(await mayUse(d, account, envelope.mailFrom.email)))
    throw new SetFailure('forbiddenMailFrom', `you may not use ${envelope.mailFrom.email} as the envelope sender`);
  if (envelope.rcptTo.length === 0) throw new SetFailure('noRecipients', 'no recipients');
  if (envelope.rcptTo.length > LIMITS.jmapState.maxSubmissionRecipients)
    throw new SetFailure('tooManyRecipients', `at most ${LIMITS.jmapState.maxSubmissionRecipients} recipients`);

  const dsn = envelopeDsn(envelope);
  const notifyDelivered: { address: string; orcpt: string | null }[] = [];
  const local = new Set<AccountId>();
  const remote: DispatchRecipient[] = [];
  const status: Sent['deliveryStatus'] = {};
  const queued: Record<string, string[]> = {};
  const all: DispatchRecipient[] = [];
  const invalid: string[] = [];
  for (const r of envelope.rcptTo) {
    const addr = parseAddress(r.email);
    const res = addr ? await d.directory.resolveRecipient(addr) : null;
    if (!addr || !res || res.kind === 'unknown-user') {
      invalid.push(r.email);
      continue;
    }
    const rd = dsn.rcpts.get(r.email) ?? NO_RCPT_DSN;
    all.push(withDsn(formatAddress(addr), rd));
    if (opts.releaseAt !== null) {
      // Routed at release (Dispatcher.releaseScheduled); followed as the address itself till then.
      if (res.kind === 'unknown-domain' || res.remote.length > 0) remote.push(withDsn(formatAddress(addr), rd));
      queued[r.email] = [formatAddress(addr)];
      status[r.email] = { smtpReply: '250 2.0.0 Held for later delivery', delivered: 'queued', displayed: 'unknown' };
      continue;
    }
    if (res.kind === 'unknown-domain') {
      remote.push(withDsn(formatAddress(addr), rd));
      queued[r.email] = [formatAddress(addr)];
      status[r.email] = { smtpReply: '250 2.0.0 Queued', delivered: 'queued', displayed: 'unknown' };
      continue;
    }
    for (const a of res.accounts) local.add(a);
    if (res.accounts.length > 0 && notifies(rd.notify, 'SUCCESS'))
      notifyDelivered.push({ address: formatAddress(addr), orcpt: rd.orcpt });
    for (const a of res.remote) remote.push(withDsn(formatAddress(a), rd, addr.domain));
    if (res.remote.length > 0) queued[r.email] = res.remote.map((a) => formatAddress(a));
    status[r.email] =
      res.remote.length > 0
        ? { smtpReply: '250 2.0.0 Queued', delivered: 'queued', displayed: 'unknown' }
        : { smtpReply: '250 2.1.5 Delivered', delivered: 'yes', displayed: 'unknown' };
  }
  // §7.5 invalidRecipients: addresses that do not parse or local ones with no such user.
  if (invalid.length > 0) throw new SetFailure('invalidRecipients', `no such recipient: ${invalid.join(', ')}`);

  // Submission's rate limits (docs/spam.md "Rate limits"), counted as SMTP counts them: one
  // message, then each recipient.
  if (d.rate) {
    const over =
      (await d.rate.message(account, '')) ??
      (await firstOver(envelope.rcptTo.length, () => d.rate?.recipient(account, '')));
    if (over) throw new SetFailure('rateLimit', `too many messages or recipients from this account (${over})`);
  }
  const logId = newId('m');
  const sent = Buffer.concat([withoutBcc(head), Buffer.from('\r\n'), body.subarray(2)]);
  const received = localReceivedHeader({ byHost: d.hostname, id: logId, date: new Date() });
  let signatures = '';
  const domain = parseAddress(addressesIn(fields, 'from')[0] ?? '')?.domain;
  if (d.sign && domain && remote.length > 0)
    signatures = await d.sign(domain, Readable.from([Buffer.from(received), sent]));
  const targets: DeliveryTarget[] = [...local].map((account) => ({
    account,
    prefix: Buffer.from(
      traceText({ returnPath: envelope.mailFrom.email, deliveredTo: account, received }) + signatures,
      'utf8',
    ),
  }));
  const message = bufferMessage(sent);
  const smtputf8 = head.some((b) => b >= 0x80);
  if (opts.releaseAt !== null) {
    try {
      const id = await d.schedule({
        sender: envelope.mailFrom.email,
        recipients: all,
        prefix: Buffer.from(received + signatures, 'utf8'),
        message,
        logId,
        authUser: account,
        smtputf8,
        tag: opts.tag,
        releaseAt: opts.releaseAt,
        ret: dsn.ret,
        envid: dsn.envid,
      });
      return { envelope, deliveryStatus: status, queueIds: [id], queued };
    } finally {
      await message.dispose();
    }
  }
  let queueIds: readonly QueueId[];
  try {
    ({ queueIds } = await d.dispatch({
      sender: envelope.mailFrom.email,
      local: targets,
      remote,
      remotePrefix: Buffer.from(received + signatures, 'utf8'),
      message,
      origin: 'submission',
      logId,
      authUser: account,
      smtputf8,
      tag: opts.tag,
      ret: dsn.ret,
      envid: dsn.envid,
      notifyDelivered,
    }));
  } finally {
    await message.dispose();
  }
  return { envelope, deliveryStatus: status, queueIds, queued };
}

async function firstOver(n: number, one: () => Promise<string | null> | undefined): Promise<string | null> {
  for (let i = 0; i < n; i++) {
    const over = await one();
    if (over) return over;
  }
  return null;
}
