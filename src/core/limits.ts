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
    /** Header block of a message ([smtp] max_header_size): RFC 5322 sets no limit; a larger
     *  one is refused with 552 5.3.4, like Exchange Online's 256 KB header limit. Every field
     *  of a header within the limit is read (submission sender checks, loop count). */
    defaultMaxHeaderSize: 256 * 1024,
    /** From:, Sender:, Resent-From: and Resent-Sender: together; real ones take a few hundred
     *  bytes. Longer author fields are not parsed (submission refuses the message with 550
     *  5.6.0): parsing an address list takes time in proportion to its length. */
    maxAuthorFieldBytes: 16 * 1024,
    /** [smtp] min_data_rate: a whole DATA must arrive within timeout + received/rate seconds
     *  (Postfix smtpd_min_data_rate, 500 bytes/s). */
    defaultMinDataRate: 500,
    /** [smtp] max_session_time: one connection, however busy, ends after this long (a DATA in
     *  progress may finish first). Real peers quit after minutes (Postfix reuses a connection
     *  for at most 300 s). */
    defaultMaxSessionMs: 60 * 60 * 1000,
    /** [smtp] soft_error_limit / hard_error_limit / error_delay: after soft errors every reply
     *  of the session waits error_delay x (errors - soft + 1); at hard errors the session gets
     *  421 (Postfix smtpd_soft_error_limit 10, smtpd_hard_error_limit 20, smtpd_error_sleep_time 1s). */
    defaultSoftErrorLimit: 10,
    defaultHardErrorLimit: 20,
    defaultErrorDelayMs: 1000,
    /** "452 Too many recipients" replies that are not counted as errors (Postfix
     *  smtpd_recipient_overshoot_limit): a big list server is cut into transactions, not
     *  disconnected. */
    recipientOvershootLimit: 1000,
    /** A client address (IPv4, IPv6 /64) with a session past the soft error limit is
     *  remembered this long on port 25: its next sessions start at the soft limit (slowed), so
     *  reconnecting does not start afresh. */
    errorMemoryMs: 10 * 60 * 1000,
    /** Client addresses remembered so (oldest forgotten first). */
    errorMemoryEntries: 10_000,
    /** A TLS handshake (implicit TLS, or after STARTTLS) must complete within [smtp] timeout,
     *  and never take longer than this. */
    maxTlsHandshakeMs: 60 * 1000,
    /** A connection refused at accept (too many connections) gets its 421 and this long to
     *  close its side before its socket is destroyed. */
    refusalLingerMs: 2000,
    /** How often deadlines (command line, DATA, session, login, handshake) are checked. */
    deadlineSweepMs: 250,
    /** Received: headers beyond which a message is taken to be looping (Postfix hopcount_limit). */
    maxHops: 50,
  },
  submission: {
    /** Several devices of a household behind one NAT address. */
    defaultMaxConnectionsPerIp: 20,
    /** [submission] login_timeout: a client must have authenticated this long after it
     *  connected, whatever it sends (Dovecot gives 3 minutes; a mail client needs seconds). */
    defaultLoginTimeoutMs: 60 * 1000,
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
  },
} as const;
