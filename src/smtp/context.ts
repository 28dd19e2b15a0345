// What the parts of the SMTP service share: its dependencies and the state of a connection.

import type { Authenticator } from '../auth/authenticator.ts';
import type { Config } from '../config/schema.ts';
import type { ConnectionSlots, ErrorMemory } from '../core/connection-limits.ts';
import type { AccountId } from '../core/ids.ts';
import type { Logger } from '../core/log.ts';
import type { RateLimitName } from '../defense/rate-limits.ts';
import type { Greylister, NetworkAccess, OffenceSink } from '../defense/types.ts';
import type { Directory, Principal } from '../directory/types.ts';
import type { SpamScanner } from '../filter/rspamd.ts';
import type { Hygiene } from '../hygiene/pipeline.ts';
import type { DkimSigner } from '../hygiene/sign.ts';
import type { Dispatcher, DispatchRecipient } from '../queue/dispatch.ts';
import type { SrsForwarding } from '../srs/forwarding.ts';
import type { MailStore } from '../store/types.ts';
import type { TlsManager } from '../tls/certs.ts';
import type { MailDsn, RcptDsn } from './dsn-params.ts';
import { SmtpReplyError } from './replies.ts';

export type SmtpRole = 'inbound' | 'submission';

export interface SmtpDeps {
  readonly role: SmtpRole;
  readonly config: Config;
  readonly directory: Directory;
  readonly store: MailStore;
  readonly dispatcher: Pick<Dispatcher, 'dispatch'>;
  readonly tls: Pick<TlsManager, 'current' | 'onChange'>;
  readonly log: Logger;
  /** Reverse DNS for Received headers; null disables the lookup. */
  readonly resolver: ((ip: string) => Promise<readonly string[]>) | null;
  /** The login path (submission), shared with IMAP so both count the same attempts. */
  readonly authenticator?: Authenticator;
  /** Inbound checks (DNSBL, SPF, DKIM, DMARC); port 25 only. */
  readonly hygiene?: Hygiene;
  /** DKIM signing of submitted mail. */
  readonly signer?: DkimSigner;
  /** The spam filter (rspamd, [spam]); absent when off. */
  readonly spam?: SpamScanner;
  /** Greylisting, also what rspamd's "greylist" action asks (docs/spam.md). */
  readonly greylist?: Greylister;
  /** Connection slots shared with other workers; the service counts its own when absent. */
  readonly slots?: ConnectionSlots;
  /** Clients slowed for errors, shared with other workers; the service remembers its own when absent. */
  readonly errorMemory?: ErrorMemory;
  /** The IP allow and deny lists and the bans (defense/access.ts), asked at accept. */
  readonly access?: NetworkAccess;
  /** Offences that count towards a ban (defense/bans.ts). */
  readonly offences?: OffenceSink;
  /** Connection rate at accept (defense/rate-limits.ts; in a thread, asked of the main thread):
   *  the limit a new connection from `ip` is over, or null. */
  readonly connectionRate?: (ip: string) => Promise<string | null>;
  /** SRS ([srs] enabled): bounces to our SRS addresses are reversed at RCPT. */
  readonly srs?: Pick<SrsForwarding, 'isOurs' | 'reverse'>;
  /** Messages and recipients per authenticated user (submission). */
  readonly userRate?: {
    message(user: string, ip: string): Promise<RateLimitName | null>;
    recipient(user: string, ip: string): Promise<RateLimitName | null>;
  };
}

/** What the policy (service.ts, accept/) knows of a session: plain data of our connection. */
export interface SmtpSession {
  /** The connection id (`conn` in the logs). */
  readonly id: string;
  readonly remoteAddress: string;
  readonly remotePort: number;
  readonly localPort: number;
  /** The HELO/EHLO argument; '' before it. */
  readonly helo: string;
  /** The session opened with EHLO (not HELO). */
  readonly ehlo: boolean;
  readonly secure: boolean;
  /** The TLS protocol and cipher once secure. */
  readonly tlsInfo: { readonly version: string; readonly cipher: string } | null;
  /** The authenticated account (submission). */
  readonly user: string | null;
  /** The reverse-path of the transaction ('' for <>), null outside a transaction. */
  readonly mailFrom: string | null;
  /** MAIL carried SMTPUTF8 (RFC 6531). */
  readonly smtpUtf8: boolean;
  /** MAIL's DSN parameters (RFC 3461 §4.3, §4.4), null outside a transaction. */
  readonly dsn: MailDsn | null;
  /** The client's host name by reverse DNS (for Received:), null when unknown. */
  clientHostname(): Promise<string | null>;
}

/** What this service knows about a connection's current mail transaction. */
export interface Transaction {
  /** Normalised recipient address -> local accounts it delivers to. */
  readonly recipients: Map<string, readonly AccountId[]>;
  /** Remote addresses (submission recipients, inbound alias forwards, SRS bounces sent on),
   *  deduplicated; forwarded ones carry the forwarding domain (their sender is rewritten). */
  readonly remote: Map<string, DispatchRecipient>;
  /** RCPT commands accepted, repeated addresses included: max_recipients bounds this. */
  accepted: number;
  /** RCPT's NOTIFY and ORCPT (RFC 3461 §4.1, §4.2) by the recipient's key, when given. */
  readonly dsn: Map<string, RcptDsn>;
}

export interface ConnState {
  readonly log: Logger;
  txn: Transaction;
  inData: boolean;
  principal: Principal | null;
  /** A recipient was accepted in this session (unknown ones after it are not a probe). */
  hadRecipient: boolean;
}

export const newTxn = (): Transaction => ({ recipients: new Map(), remote: new Map(), accepted: 0, dsn: new Map() });

export function isReply(e: unknown): e is SmtpReplyError {
  return e instanceof SmtpReplyError;
}
