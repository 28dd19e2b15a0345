// Every protocol and storage limit in one place (design.md convention 7). Values that an
// operator may change are defaults for config keys; the rest are hard bounds.

export const LIMITS = {
  smtp: {
    /** RFC 5321 §4.5.3.1.4 says 512 octets for a command line; extensions (SIZE, SMTPUTF8,
     *  BODY, ORCPT ...) lengthen MAIL/RCPT, so we allow 4 KiB like Postfix's line_length_limit
     *  rounding and reply 500 beyond it. */
    maxCommandLength: 4096,
    /** RFC 5321 §4.5.3.1.8: at least 100 recipients must be accepted. */
    defaultMaxRecipients: 100,
    defaultMaxMessageSize: 50 * 1024 * 1024,
    /** RFC 5321 §4.5.3.2.7: the server should wait 5 minutes for the next command. */
    defaultSocketTimeoutMs: 5 * 60 * 1000,
    defaultMaxConnections: 1000,
    defaultMaxConnectionsPerIp: 20,
    /** Commands before a completed transaction, like smtp-server's unauthenticated limit. */
    maxCommandsWithoutMail: 40,
    /** Header block read for submission checks (From:, Message-ID:); RFC 5322 sets no limit,
     *  real messages stay far below. */
    maxHeaderBlock: 256 * 1024,
    /** Received: headers beyond which a message is taken to be looping (Postfix hopcount_limit). */
    maxHops: 50,
  },
  submission: {
    /** Several devices of a household behind one NAT address. */
    defaultMaxConnectionsPerIp: 20,
  },
  queue: {
    defaultMaxConnections: 20,
    /** Postfix uses 20 per destination; big providers throttle busy senders, so we stay lower. */
    defaultMaxConnectionsPerDomain: 5,
    /** Recipients of one domain sent in one transaction (RFC 5321 §4.5.3.1.8: servers take 100). */
    maxRecipientsPerTransaction: 100,
    /** MX host addresses tried in one attempt (Postfix smtp_mx_address_limit). */
    maxAddressesPerAttempt: 5,
    /** How often the runner looks at the queue table for work it was not told about
     *  (`arcline queue retry` from another process). */
    pollIntervalMs: 1000,
    /** An open connection is kept this long after a message for the next one to the same host
     *  (Postfix smtp_connection_cache_time_limit), at most this many messages per connection
     *  (smtp_connection_reuse_count_limit), and this many idle connections in all. */
    connectionIdleMs: 2000,
    connectionMaxUses: 100,
    maxIdleConnections: 100,
  },
  imap: {
    /** Thunderbird opens up to 5 per account, several accounts per household share an address. */
    defaultMaxConnectionsPerIp: 50,
    /** RFC 9051 §5.4: the autologout timer must be at least 30 minutes. */
    defaultAutologoutMs: 30 * 60 * 1000,
  },
  store: {
    /** Messages up to this size are spooled in memory; larger ones spill to a temp file. */
    spoolMemoryBytes: 1024 * 1024,
  },
  directory: {
    /** Alias chains deeper than this are a configuration loop. */
    maxAliasDepth: 10,
    /** Expansion of one address may not produce more targets than this. */
    maxAliasTargets: 1000,
    maxLocalPartLength: 64, // RFC 5321 §4.5.3.1.1
    maxDomainLength: 255, // RFC 5321 §4.5.3.1.2
  },
  lifecycle: {
    defaultShutdownGraceMs: 15_000,
    /** Entries of the state directory and of the Maildir root (domains) whose owner is checked
     *  at start; the whole tree is `arcline fix-permissions`'s job. */
    maxOwnershipCheckEntries: 10_000,
  },
} as const;
