// Trace stage: our Received: field (RFC 5321 §4.4) and, per local account, the prefix of its
// copy. Pure (the date and the reverse DNS name are inputs). Order on each copy (RFC 8601 §5,
// RFC 7208 §9.1): Return-Path, Delivered-To, our Authentication-Results and Received-SPF, our
// Received, then the Message-ID/Date submission added. "for" only with a single recipient
// (smtp/trace.ts: one copy never reveals the others, Bcc).

import type { AccountId } from '../../core/ids.ts';
import type { DeliveryTarget } from '../../store/types.ts';
import type { SmtpSession, Transaction } from '../context.ts';
import { protocolName, receivedHeader, traceText } from '../trace.ts';

export function received(
  session: SmtpSession,
  txn: Transaction,
  o: {
    readonly byHost: string;
    readonly id: string;
    readonly rdns: string | null;
    readonly auth: boolean;
    readonly date: Date;
  },
): string {
  let single: string | null = null;
  if (txn.recipients.size + txn.remote.size === 1) {
    for (const k of txn.recipients.keys()) single = k;
    for (const k of txn.remote.keys()) single = k;
  }
  return receivedHeader({
    helo: session.helo || 'unknown',
    clientHostname: o.rdns,
    clientIp: session.remoteAddress,
    byHost: o.byHost,
    // RFC 3848 / RFC 6531 §4.3
    protocol: protocolName({ ehlo: session.ehlo, tls: session.secure, utf8: session.smtpUtf8, auth: o.auth }),
    id: o.id,
    tls: session.secure ? session.tlsInfo : null,
    forRecipient: single,
    date: o.date,
  });
}

/** One target per distinct local account, each with its own trace prefix (one buffer); the
 *  Junk folder where the checks said so. */
export function targets(
  accounts: ReadonlySet<AccountId>,
  t: {
    readonly returnPath: string;
    readonly trace: string;
    readonly added: string;
    readonly junk: ReadonlySet<AccountId>;
  },
): DeliveryTarget[] {
  const out: DeliveryTarget[] = [];
  for (const account of accounts) {
    const prefix = Buffer.from(
      traceText({ returnPath: t.returnPath, deliveredTo: account, received: t.trace }) + t.added,
      'utf8',
    );
    out.push(t.junk.has(account) ? { account, mailbox: 'Junk', prefix } : { account, prefix });
  }
  return out;
}
