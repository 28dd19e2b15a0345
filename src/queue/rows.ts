// The row shapes both queue backends store (SQLite store.ts, PostgreSQL postgres.ts) and their
// mapping to the seam's types (types.ts). Flags are small integers in both databases:
// held 0 eligible, 1 not yet acknowledged (removed by the recovery of the node that queued it),
// 2 held by the operator; smtputf8 and delay_notified 0 or 1.

import type {
  DsnRet,
  OutboundMessage,
  QueuedMessage,
  QueuedRecipient,
  QueueId,
  QueueOrigin,
  RecipientState,
} from './types.ts';

export interface MessageRow {
  id: string;
  held: number;
  sender: string;
  created: number;
  size: number;
  origin: string;
  log_id: string;
  smtputf8: number;
  auth_user: string | null;
  envid: string | null;
  tag: string | null;
  /** A scheduled message's release time (ms), 0 for an ordinary entry. */
  release_at: number;
  /** RFC 3461 RET: 'FULL', 'HDRS' or null. */
  ret: string | null;
}

export interface RecipientRow {
  message_id: string;
  address: string;
  domain: string;
  orcpt: string | null;
  /** RFC 3461 NOTIFY (types.ts OutboundRecipient.notify). */
  notify: string | null;
  state: string;
  attempts: number;
  next_attempt: number;
  last_attempt: number | null;
  last_reply: string | null;
  last_host: string | null;
  delay_notified: number;
}

export function toRecipient(r: RecipientRow): QueuedRecipient {
  return {
    address: r.address,
    domain: r.domain,
    orcpt: r.orcpt,
    notify: r.notify ?? null,
    state: r.state as RecipientState,
    attempts: r.attempts,
    nextAttempt: r.next_attempt,
    lastAttempt: r.last_attempt,
    lastReply: r.last_reply,
    lastHost: r.last_host,
    delayNotified: r.delay_notified === 1,
  };
}

export function toMessage(row: MessageRow, recipients: readonly RecipientRow[]): QueuedMessage {
  return {
    id: row.id as QueueId,
    sender: row.sender,
    created: row.created,
    size: row.size,
    origin: row.origin as QueueOrigin,
    logId: row.log_id,
    smtputf8: row.smtputf8 === 1,
    authUser: row.auth_user,
    envid: row.envid,
    ret: row.ret === 'FULL' || row.ret === 'HDRS' ? (row.ret as DsnRet) : null,
    held: row.held === 2,
    tag: row.tag,
    releaseAt: row.release_at,
    recipients: recipients.map(toRecipient),
  };
}

export function domainOf(address: string): string {
  return address.slice(address.lastIndexOf('@') + 1).toLowerCase();
}

/** Replies are kept to this many characters. */
export const MAX_REPLY = 1000;

/** The values of a new message row after its id: sender, created, size, held, origin, log_id,
 *  smtputf8, auth_user, envid, tag, release_at, ret (the column order of both backends' INSERT). */
export function messageValues(m: OutboundMessage, now: number, size: number): (string | number | null)[] {
  return [
    m.sender,
    now,
    size,
    m.hold ? 1 : 0,
    m.origin,
    m.logId,
    m.smtputf8 ? 1 : 0,
    m.authUser ?? null,
    m.envid ?? null,
    m.tag ?? null,
    m.releaseAt ?? 0,
    m.ret ?? null,
  ];
}
