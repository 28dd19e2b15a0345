// Every protocol and storage limit in one place (design.md convention 7). Values that an
// operator may change are defaults for config keys; the rest are hard bounds.

export const LIMITS = {
  smtp: {
    /** RFC 5321 §4.5.3.1.4 says 512 octets for a command line; extensions (SIZE, SMTPUTF8,
     *  BODY, ORCPT ...) lengthen MAIL/RCPT, so we allow 4 KiB like Postfix's line_length_limit
     *  rounding and reply 500 beyond it. */
    maxCommandLength: 4096,
    /** RFC 3461 §4.4: ENVID is at most 100 characters; §4.2: ORCPT at most 500. */
    maxEnvidLength: 100,
    maxOrcptLength: 500,
    /** RET=FULL (RFC 3461 §4.3): a failure notice returns the whole message up to this size;
     *  a larger one is returned as its header block only (§6.2.1.4 leaves the choice to us). */
    maxReturnedMessageBytes: 1024 * 1024,
    /** Most inbound SMTP threads ([smtp] threads). */
    maxThreads: 64,
    /** V8 young generation of each SMTP thread, MB (3 x the main thread's 4 MB semi-space). */
    threadYoungGenerationMb: 12,
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
    /** Command lines a pipelining client may send ahead (RFC 2920) before the server stops
     *  reading until it has answered them: bytes held unanswered. */
    maxPipelinedBytes: 64 * 1024,
    /** Replies a client has not read (ours and the socket's buffer) before we stop taking its
     *  commands until it reads (smtp/connection.ts). */
    maxUnreadReplyBytes: 64 * 1024,
    /** DATA bytes read from the socket and not yet taken by the spool before the server stops
     *  reading (a slow disk slows the client, memory stays bounded). */
    dataQueueBytes: 1024 * 1024,
    /** The reverse lookup of a client's address (Received: header) waits at most this long. */
    reverseLookupMs: 5000,
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
    /** A job claimed from the shared (PostgreSQL) queue is leased this long; the runner renews
     *  it every third of that while it delivers. A node that dies leaves its jobs to the others
     *  after at most this (docs/cluster.md). Longer than any one attempt's silence. */
    leaseMs: 120 * 1000,
    /** Candidates a claim looks at per job it may take (the rest are busy destinations). */
    claimScanFactor: 4,
    /** A spool file of another node without a row is removed by recovery only past this age
     *  (that node may be between writing the file and committing the row). */
    orphanFileAgeMs: 24 * 3600 * 1000,
    /** Scheduled messages (FUTURERELEASE, JMAP delayed send) released per look at the queue. */
    maxReleasesPerTick: 16,
    /** The shared queue's sweep (leader task `queue-sweep`, docs/cluster.md): old orphan spool
     *  files of any node, events never collected. */
    sweepMs: 3600 * 1000,
    /** Queue events waiting for a node that queued the message (queue_event) are dropped after
     *  this: that node has not run for a week. */
    eventRetentionMs: 7 * 24 * 3600 * 1000,
    /** Queue events a node collects per read. */
    eventsPerRead: 500,
  },
  /** ManageSieve (RFC 5804, src/managesieve/, [managesieve]). */
  managesieve: {
    /** A client keeps one connection (Roundcube: one per request, closed at once). */
    defaultMaxConnectionsPerIp: 20,
    defaultMaxConnections: 200,
    /** From connect to a successful login, TLS handshake included. */
    defaultLoginTimeoutMs: 60 * 1000,
    /** Idle time between commands once logged in (Pigeonhole: 30 minutes). */
    defaultIdleTimeoutMs: 30 * 60 * 1000,
    /** [managesieve] command_timeout default: a started command (its line and literals) must
     *  arrive within this from its first byte (a 1 MiB script at 17 KiB/s). */
    defaultCommandTimeoutMs: 60 * 1000,
    /** One line of a command outside literals. */
    maxLineBytes: 8 * 1024,
    /** A literal before login (an AUTHENTICATE response, a LOGIN password): SASL PLAIN of the
     *  longest user name and password, base64. */
    preauthLiteralBytes: 8 * 1024,
    /** Arguments of one command (PUTSCRIPT has 2; AUTHENTICATE 2). */
    maxArguments: 4,
    /** Errors (unknown or malformed commands, failed logins) before BYE. */
    maxErrors: 10,
    /** Output queued for a client that does not read it. */
    maxQueuedOutputBytes: 2 * 1024 * 1024,
    /** After BYE, how long the client gets to read it before we close. */
    closeLingerMs: 2000,
  },
  imap: {
    /** Thunderbird opens up to 5 per account, several accounts per household share an address. */
    defaultMaxConnectionsPerIp: 50,
    /** All IMAP connections together (both listeners); each holds a file descriptor. */
    defaultMaxConnections: 1000,
    /** RFC 9051 §5.4: the autologout timer must be at least 30 minutes. */
    defaultAutologoutMs: 30 * 60 * 1000,
    /** From connect to a successful login, whatever the client sends (Dovecot: 3 minutes). */
    defaultLoginTimeoutMs: 60 * 1000,
    /** Time one command (its line and literals) may take to arrive, beyond what its literal
     *  bytes earn at the minimum data rate. */
    defaultCommandTimeoutMs: 60 * 1000,
    /** Bytes per second a literal must keep up on average (Postfix smtpd_min_data_rate: 500). */
    defaultMinDataRate: 1024,
    /** One line of a command (Dovecot imap_max_line_length is 64 KiB too). */
    maxLineBytes: 64 * 1024,
    /** Before login, everything of one command: its lines and all its literals (LOGIN with
     *  literal user name and password, ID). */
    preauthCommandBytes: 64 * 1024,
    /** One literal that is not an APPEND message (a search string, a password). */
    maxLiteralBytes: 256 * 1024,
    /** Literals in one command. */
    maxLiterals: 1000,
    /** APPEND messages larger than this are spooled as they arrive instead of collected. */
    streamAppendAbove: 64 * 1024,
    /** After login, the bytes one command holds in memory: lines, collected literals and the
     *  spooled messages small enough to stay in memory (the store spills larger ones to disk). */
    commandMemoryBytes: 2 * 1024 * 1024,
    /** All literals of one command together (MULTIAPPEND), in memory or spooled; at least the
     *  APPEND limit. */
    commandLiteralBytes: 256 * 1024 * 1024,
    /** Output queued for a client that does not read it (IDLE updates pile up); past this the
     *  connection is closed. */
    maxQueuedOutputBytes: 4 * 1024 * 1024,
    /** After BYE, how long the client gets to read it and close before we close. */
    closeLingerMs: 2000,
    /** After BYE, what the client may still send (read and dropped, so its close is seen);
     *  more, and the connection is closed at once. */
    maxBytesAfterBye: 64 * 1024,
    /** Refused connections waiting to read their BYE; beyond this a refused one is closed at once. */
    maxLingering: 512,
    /** Search keys in one SEARCH command (each criterion, NOT, OR and parenthesised list counts
     *  one): clients send a few dozen; every key is evaluated for every message, and the parsed
     *  keys are held in memory (BAD [LIMIT] beyond it). */
    maxSearchKeys: 1000,
    /** A command or store operation that works through many messages (SEARCH, FETCH 1:*, a
     *  100,000-message SELECT or index rebuild: core/slice.ts) yields to the event loop after
     *  this much work (ms), so one user's command never stalls other clients; with ten such
     *  commands at once, the event loop's p99 delay stays near this. */
    commandSliceMs: 5,
    /** MIME structure of a message (BODYSTRUCTURE, part sections, SEARCH, the base64 conversion
     *  of binary parts at APPEND): multiparts and message/rfc822 nested deeper than this are
     *  treated as opaque leaves ... */
    maxMimeDepth: 20,
    /** ... and at most this many body parts of one message are looked at. */
    maxMimeParts: 10_000,
    /** The base64 conversion of binary parts at APPEND: a part (or message) whose header block is
     *  larger than this is stored as sent (as [smtp] max_header_size by default; mime/structure.ts
     *  keeps as much of a header for BODYSTRUCTURE). Bounds what the conversion of a streamed
     *  message holds in memory. */
    maxMimeHeaderBytes: 256 * 1024,
  },
  /** JMAP's Email representation (src/jmap/mail/, RFC 8621 §4). */
  jmapMail: {
    /** Decoded octets of one body value read at most, whatever maxBodyValueBytes asks (more is
     *  isTruncated). */
    maxBodyValueBytes: 16 * 1024 * 1024,
    /** Characters of a preview (RFC 8621 §4.1.4: up to 256). */
    previewChars: 256,
    /** Raw octets of each text part read for the preview. */
    previewReadBytes: 64 * 1024,
    /** A built message (Email/set create, Email/import of a create): its total size. */
    maxBuiltMessageBytes: 64 * 1024 * 1024,
    /** Body parts of one created message and their nesting. */
    maxBuiltParts: 256,
    maxBuiltDepth: 10,
    /** Characters of a subject or preview a search snippet holds. */
    maxSnippetChars: 256,
    /** Search terms a snippet marks. */
    maxSnippetTerms: 32,
    /** Account journal entries Email/changes reads after a state; more is
     *  cannotCalculateChanges (the client resynchronises). */
    maxChangesScan: 20_000,
    /** Emails an Email/query that the indexes cannot answer (filters other than inMailbox,
     *  sorts other than receivedAt and size) looks at; beyond, the query is unsupportedFilter. */
    maxQueryScan: 20_000,
    /** Emails whose text an Email/query text filter (text, from, subject, body...) reads
     *  message by message: those the full-text index (store/search/) has not indexed yet, or
     *  every email when it cannot answer (a header condition, an account still being indexed);
     *  beyond, the query is unsupportedFilter. */
    maxTextScan: 2_000,
    /** Result ids of one Email/query (a limit above it is lowered, RFC 8620 §5.5). */
    maxQueryLimit: 1_000,
  },
  mailboxes: {
    /** Maildir++ keeps a folder as one directory entry ".<modified UTF-7 name>", and a file name
     *  is at most 255 octets (NAME_MAX), so the encoded name is at most 254 octets (NO [LIMIT]). */
    maxEncodedNameBytes: 254,
    /** A wire name longer than this is refused before it is decoded (no stored name can be). */
    maxWireNameLength: 1024,
    /** Hierarchy levels of a new name ("a.b.c" has 3); deeper CREATE/RENAME gets NO [LIMIT]. */
    maxDepth: 32,
    /** Mailboxes (folders) per account besides INBOX; CREATE beyond gets NO [LIMIT]. */
    maxPerAccount: 10_000,
    /** LIST/LSUB: characters of reference + pattern, and patterns of one LIST-EXTENDED
     *  command (RFC 5258 §3) in all; beyond them NO [LIMIT]. */
    maxPatternLength: 1000,
    maxListPatterns: 32,
    /** A LIST or LSUB yields to the event loop after this much matching work (ms), so one
     *  account with thousands of folders never stalls the other clients. */
    listSliceMs: 10,
  },
  store: {
    /** Messages up to this size are spooled in memory; larger ones spill to a temp file. */
    spoolMemoryBytes: 1024 * 1024,
    /** Bytes of a message's header block read for threading (Message-ID, In-Reply-To,
     *  References, Subject; mime/thread-key.ts), read 16 KiB at a time up to the blank line: a
     *  field beyond is not seen (the default [smtp] max_header_size). */
    threadHeaderBytes: 256 * 1024,
    /** The PostgreSQL index (store/index/postgres.ts) reads the header blocks of messages it is
     *  given without their threading fields before its transaction, this many files at once. */
    threadHeaderReads: 8,
    /** Outside changes to a subscribed Maildir (store/maildir/watch.ts): a refresh starts this
     *  long after the first fs.watch event of a burst (later events join it), so a burst of
     *  deliveries costs one reconcile and IDLE clients still hear of it well within 1 s. */
    watchDebounceMs: 50,
    /** When fs.watch cannot be used (ENOSPC: inotify limit, EMFILE, no notifications on the file
     *  system) a subscribed mailbox is refreshed this often instead. */
    watchPollMs: 1000,
    /** Names of our own pending renames remembered per watched directory (their events are not
     *  outside changes); past this the memory is cleared (a missed one costs one listing). */
    watchExpectMax: 10_000,
    /** A watched directory is not relisted after our own renames for this long after its last
     *  full listing (fs.watch reports outside changes); then its mtime decides again, so an
     *  event the kernel dropped (inotify queue overflow) is made up for within this time. */
    watchTrustMs: 60_000,
    /** On a shared index (a cluster, docs/cluster.md "Mailboxes across nodes") a subscribed
     *  mailbox does not watch its files (no inotify across NFS clients): other nodes' changes
     *  arrive by NOTIFY (a lost listening session makes every view catch up when it is back),
     *  and as a last fallback it catches up with the journal this often (one query when
     *  nothing changed; a node with 10,000 IDLE sessions on distinct mailboxes asks ~330/s). */
    clusterPollMs: 30_000,
    /** ... and lists its new/ and cur/ in full this often (a subscribed mailbox), to find files
     *  another program put there or a node that died left unindexed. */
    clusterRescanMs: 300_000,
    /** Flags given with a delivery (Sieve imap4flags, fileinto :flags; store/names.ts
     *  deliveryFlags): at most this many are kept, each at most this long; the rest dropped. */
    maxDeliveryFlags: 64,
    maxKeywordLength: 128,
    /** Dovecot's dotlock on dovecot-keywords (maildir/flags.ts addKeywords): waited for this long
     *  at most; a lock file older than the stale age is left over from a crash and removed. */
    keywordLockWaitMs: 10_000,
    keywordLockStaleMs: 30_000,
  },
  /** The full-text index of the emails (store/search/, {state}/mailsearch.db; docs/jmap-email.md
   *  "Search"). */
  search: {
    /** Characters of decoded body text indexed per message (its text/* parts, HTML as text);
     *  the rest of a longer body is not searchable. */
    maxTextChars: 1024 * 1024,
    /** Words and phrases of one text condition; a condition with more is answered by the
     *  bounded scan instead. A longer word is cut to this many characters (a prefix). */
    maxTerms: 32,
    maxTermChars: 128,
    /** The indexer writes this many messages (or maxBatchChars of text) per transaction. */
    batchMessages: 200,
    maxBatchChars: 16 * 1024 * 1024,
    /** A change of an account is indexed this long after it (changes meanwhile join it). */
    debounceMs: 500,
    /** After each batch the indexer pauses this many times the batch's own time, so that it
     *  takes at most 1/(1+n) of the main thread from delivery and the protocols. */
    pauseFactor: 3,
    /** Journal entries the indexer reads at once, and the not-yet-indexed tail a query scans
     *  at most (more: the query is answered by the bounded scan). */
    journalPage: 5_000,
  },
  directory: {
    /** Alias chains deeper than this are a configuration loop. */
    maxAliasDepth: 10,
    /** Expansion of one address may not produce more targets than this. */
    maxAliasTargets: 1000,
    maxLocalPartLength: 64, // RFC 5321 §4.5.3.1.1
    maxDomainLength: 255, // RFC 5321 §4.5.3.1.2
    /** Entries of the directory's lookup cache (rows and recipient expansions, a few hundred
     *  bytes each); checked against PRAGMA data_version (at most once per freshnessMs). */
    cacheEntries: 10_000,
    /** The directory cache asks SQLite whether another connection committed (PRAGMA
     *  data_version) at most once per this many milliseconds. */
    freshnessMs: 1,
    /** PostgreSQL (directory/pg-snapshot.ts): the in-memory copy of the directory is reloaded
     *  whole this often, a safety net behind the NOTIFY of every change. */
    pgFullReloadMs: 5 * 60_000,
    /** The LISTEN connection is checked (SELECT 1) this often; an answer slower than
     *  pgListenTimeoutMs counts as a lost connection (reconnect, then a full reload). */
    pgListenCheckMs: 30_000,
    pgListenTimeoutMs: 10_000,
    /** Reconnecting the LISTEN connection: first pause, doubled up to the second. */
    pgReconnectMinMs: 250,
    pgReconnectMaxMs: 30_000,
    /** sync() waits this long for the NOTIFY of the latest change before reloading everything. */
    pgSyncWaitMs: 2000,
  },
  auth: {
    /** Longest login name looked at (RFC 5321 §4.5.3.1.1-2: 64 + 1 + 255 octets); longer ones
     *  are refused before any lookup. */
    maxUsernameBytes: 320,
    /** Longest password verified. RFC 4616 §2 asks for at least 255 octets; SHA-512-crypt's cost
     *  grows with the password's length, so a 64 KB "password" is refused before hashing. */
    maxPasswordBytes: 1024,
    /** Stored-hash parameters verified at most (higher ones, imported, would let one login
     *  take minutes or gigabytes): bcrypt cost, SHA-512-crypt rounds, Argon2 memory (KiB),
     *  passes and lanes. */
    maxBcryptCost: 15,
    maxSha512Rounds: 1_000_000,
    maxArgon2MemoryKib: 256 * 1024,
    maxArgon2Time: 16,
    maxArgon2Parallelism: 16,
    /** New Argon2id hashes: RFC 9106 §4, second recommended option (64 MiB, 3 passes, 4 lanes). */
    argon2: { memoryCost: 64 * 1024, timeCost: 3, parallelism: 4 },
    /** Verifications waiting for a hashing slot; past this a login gets a temporary failure
     *  (under a storm: refuse, never queue without end). */
    defaultMaxPendingVerifications: 256,
    /** Verified-credential cache (as Dovecot's auth_cache_size / auth_cache_ttl). */
    defaultCacheSize: 10_000,
    defaultCacheTtlMs: 60 * 60 * 1000,
    /** Every failed login is answered this late (Dovecot's auth_failure_delay, 2 s). */
    defaultFailureDelayMs: 2000,
    /** Failed logins count against the client address and the pair (address, account) for this
     *  long after the last failure. */
    defaultFailureWindowMs: 15 * 60 * 1000,
    /** Penalty of the n-th failure: firstDelay * 2^(n-1), capped per pair and per address
     *  (Dovecot's auth penalty grows 2 s .. 15 s). */
    firstDelayMs: 500,
    defaultMaxPairDelayMs: 30_000,
    defaultMaxAddressDelayMs: 15_000,
    /** A pair whose queued attempts would wait longer than this is refused at once. */
    pairQueueFactor: 2,
    /** A pair that logged in successfully skips the address's penalty for this long. */
    knownGoodMs: 7 * 24 * 60 * 60 * 1000,
    /** Throttling state kept (pairs + addresses); the oldest entries go first. */
    maxThrottleEntries: 50_000,
  },
  http: {
    defaultMaxConnections: 256,
    defaultRequestTimeoutMs: 10_000,
    /** Largest request header block (node:http maxHeaderSize). */
    maxHeaderSize: 8192,
    /** Longest ClientHello read before the TLS handshake is handed over (tls/client-hello.ts):
     *  a record header and a 16 KiB record, plus one more record for a fragmented hello. */
    maxClientHelloBytes: 2 * (5 + 16_384),
    /** Largest request body, read only where a route takes one (autodiscover POST): 413 above. */
    maxBodyBytes: 64 * 1024,
    /** A readiness answer (/healthz/ready) is reused this long, so a storm of probes costs one
     *  round of checks per interval; each check gives up after checkTimeoutMs. */
    healthCacheMs: 1000,
    healthCheckTimeoutMs: 2000,
  },
  spam: {
    /** [spam] timeout: rspamd's own task_timeout is 8 s; a scan rarely takes 1 s. */
    defaultTimeoutMs: 15_000,
    /** [spam] max_size: ZoneMTA's rspamd plugin default; spam is small, and a large message
     *  costs rspamd time and memory for little. */
    defaultMaxSize: 2 * 1024 * 1024,
    /** rspamd's JSON reply (symbols with their options; typically a few KiB); a longer one is a
     *  failure. Parsed on the event loop, so kept small. */
    maxReplyBytes: 256 * 1024,
    /** Headers rspamd may ask us to add (milter.add_headers) and the length of each value. */
    maxAddedHeaders: 32,
    maxAddedHeaderBytes: 8192,
    /** Headers rspamd may ask us to remove (milter.remove_headers). */
    maxRemovedHeaders: 32,
    /** Symbols listed in X-Spam-Status, and the length of rspamd's SMTP message we repeat. */
    maxStatusSymbols: 100,
    maxReplyTextBytes: 200,
    /** A rewritten Subject longer than this is cut (RFC 5322 §2.1.1: 998 per line). */
    maxSubjectBytes: 900,
  },
  acme: {
    /** One ACME certificate request (account, order, challenges, finalize) may take this long. */
    requestTimeoutMs: 5 * 60_000,
    /** One HTTP request to the CA. */
    httpTimeoutMs: 30_000,
    /** Backoff of acme-client's polls for a valid status. */
    pollMinMs: 250,
    pollMaxMs: 10_000,
    pollAttempts: 12,
    /** A pending challenge answer in the shared store (docs/cluster.md "ACME and the blocklist
     *  monitor across nodes") is served for this long at most: past the request's own bound, so
     *  an order in flight never loses its answers, and an order whose leader died leaves none
     *  behind for long. */
    challengeTtlMs: 10 * 60_000,
    /** Pending challenge rows read by a node at once (an order has a few names). */
    maxPendingChallenges: 1000,
    /** Every node compares its certificate with the shared store's this often, in case a
     *  notification of a renewal was lost (the LISTEN session was away). */
    certificateCheckMs: 5 * 60_000,
  },
  milter: {
    /** Largest packet read from a milter (its 4-byte length): libmilter sends body chunks of at
     *  most 65535 bytes (MILTER_CHUNK_SIZE in mfdef.h) and 1 MiB only with SMFIP_MDS_1M, which
     *  we never offer; a longer length is a broken or hostile peer and ends the session. */
    maxPacketBytes: 1024 * 1024,
    /** Body chunks we send (SMFIC_BODY), as libmilter's MILTER_CHUNK_SIZE. */
    bodyChunkBytes: 65_535,
    /** Defaults of the per-milter timeouts, as Postfix's milter_connect_timeout,
     *  milter_command_timeout and milter_content_timeout. */
    defaultConnectTimeoutMs: 30_000,
    defaultCommandTimeoutMs: 30_000,
    defaultEomTimeoutMs: 300_000,
    /** SMFIR_PROGRESS restarts eom_timeout, but the end of message never takes longer than this
     *  in all (the client waits for our reply to its final dot: RFC 5321 §4.5.3.2.6, 10 min). */
    maxEomMs: 480_000,
    /** Header edits and quarantines one milter may send for one message (each change of a field
     *  looks through the header: bounded work), and progress replies; more ends the session as
     *  a failure. A replacement body is bounded by the message size limit instead. */
    maxModifications: 1000,
    maxProgress: 1000,
    /** How much larger than [smtp] max_header_size the header block may grow by milters' edits. */
    maxHeaderGrowthBytes: 256 * 1024,
    /** Longest header name, SMTP reply text and quarantine reason accepted from a milter. */
    maxNameBytes: 256,
    maxReplyBytes: 2048,
    /** [[milter]] entries. */
    maxMilters: 16,
  },
  defense: {
    /** Client networks whose offences are counted at once (least recently seen dropped). */
    maxOffenceEntries: 100_000,
    /** How often forgotten bans and old owner logins are swept from defense.db. */
    sweepMs: 60 * 60 * 1000,
    /** An owner's login from a network is written at most this often. */
    loginWriteMs: 60 * 60 * 1000,
    /** How often each thread asks defense.db whether the lists or bans changed. */
    pollMs: 1000,
    /** Greylisting (docs/spam.md): postgrey's defaults, but max age 35 days (postgrey: 35 in
     *  its later versions) and the client network as the key's first part. */
    greylistDefaultDelayMs: 300_000,
    greylistDefaultRetryWindowMs: 2 * 86_400_000,
    greylistDefaultMaxAgeMs: 35 * 86_400_000,
    greylistDefaultAutoAllowAfter: 5,
    /** A client network's passes count at most once per this, so one message to many
     *  recipients is one pass towards auto_allow_after. */
    greylistPassIntervalMs: 60_000,
    /** Expired rows are deleted this often (and once at start). */
    greylistSweepIntervalMs: 3_600_000,
    /** The operator's allowlist file is looked at (mtime) at most this often. */
    greylistAllowlistCheckMs: 5_000,
    /** Bounds of an allowlist file: bytes, entries, length of one regular expression. */
    greylistAllowlistMaxBytes: 1024 * 1024,
    greylistAllowlistMaxEntries: 20_000,
    greylistAllowlistMaxPattern: 200,
    /** The client's verified reverse name (for the allowlist's host names): how long its
     *  look-up may take (then: no name), how long and for how many clients it is remembered. */
    greylistNameLookupMs: 3000,
    greylistNameCacheMs: 300_000,
    greylistNameCacheEntries: 10_000,
    /** Longest sender or recipient kept in a greylist key (RFC 5321 §4.5.3.1.3: 256). */
    greylistMaxAddress: 320,
    /** Rate limits (docs/spam.md): connections per minute per client network at three prefix
     *  lengths, as mox (/32, /26, /21: 300, 900, 2700), IPv6 at /64, /56, /48. */
    defaultConnectionsPerMinute: [300, 900, 2700] as readonly number[],
    defaultIpv4Prefixes: [32, 26, 21] as readonly number[],
    defaultIpv6Prefixes: [64, 56, 48] as readonly number[],
    /** Simultaneous connections from the second and third network ([rate_limits]
     *  concurrent_per_network); the first is each service's max_connections_per_ip. */
    defaultConcurrentPerNetwork: [100, 300] as readonly number[],
    /** Per authenticated user (submission). A leaked password sends at most this much. */
    defaultMessagesPerHour: 500,
    defaultMessagesPerDay: 2000,
    defaultRecipientsPerHour: 2000,
    defaultRecipientsPerDay: 10_000,
    /** Outbound deliveries per destination domain per minute. */
    defaultOutboundPerDomainPerMinute: 600,
  },
  dkim: {
    /** PostgreSQL (hygiene/dkim-keys-pg.ts): a node re-reads a domain's signing keys when its
     *  copy is older than this (a key activated or removed on another node signs, or stops
     *  signing, here this much later at most; its DNS record outlives that by days). */
    pgCacheMs: 5000,
    /** Longest grace a DKIM rotation accepts for the old key's record (`--grace`). */
    maxGraceMs: 365 * 86_400_000,
    /** How often pending rotation keys are looked up in DNS (and activated once published) and
     *  retired keys past their grace deleted, unless [dkim] rotation_check says otherwise. */
    defaultRotationCheckMs: 3_600_000,
  },
  lifecycle: {
    defaultShutdownGraceMs: 15_000,
    /** Entries of the state directory and of the Maildir root (domains) whose owner is checked
     *  at start; the whole tree is `arcline fix-permissions`'s job. */
    maxOwnershipCheckEntries: 10_000,
  },
  check: {
    /** `arcline check`: one DNS query (node:dns timeout; it tries twice). */
    dnsTimeoutMs: 5000,
    /** One TLS probe of a listener (connect, greeting, STARTTLS, handshake) or policy fetch. */
    probeTimeoutMs: 10_000,
    /** Bytes read from a listener's greeting and replies, and of a served MTA-STS policy. */
    maxReplyBytes: 64 * 1024,
    /** DNSBL look-ups of one address in one zone (A and TXT together). */
    dnsblTimeoutMs: 5000,
    /** Domains checked at once by `arcline check` without arguments. */
    concurrentDomains: 8,
  },
  /** DMARC aggregate reports (RFC 7489 §7, src/reports/dmarc-*.ts, docs/delivery.md). */
  dmarcReports: {
    /** Characters of a DMARC record read for its tags (a TXT record of several strings). */
    maxRecordChars: 4096,
    /** rua URIs of one record that are sent to (RFC 7489 §6.2 sets no number; mox takes all). */
    maxRua: 10,
    /** Evaluations are counted in memory and written to the store this often (and at stop). */
    flushMs: 5_000,
    /** Rows written in one transaction at a flush (the event loop runs between two). */
    writeChunkRows: 1000,
    /** An inbound SMTP thread posts its rows to the main thread this often (no I/O). */
    threadFlushMs: 1_000,
    /** Distinct rows kept in memory between two flushes; more are dropped (and logged). */
    maxPendingRows: 50_000,
    /** Rows of one policy domain and day in a report: a flood of forged sources stays bounded. */
    maxRowsPerReport: 10_000,
    /** DKIM signatures of one message kept in its row. */
    maxDkimPerRow: 8,
    /** [dmarc_reports] interval default: how often the task looks for a complete day to send. */
    defaultIntervalMs: 15 * 60_000,
    /** A UTC day is reported this long after its end at the earliest (the recorders' last
     *  rows of the day are written by then: flushMs, and threadFlushMs before it). */
    dayGraceMs: 60_000,
    /** Days of rows kept when they could not be sent (the store's rows older than this go). */
    keepDays: 7,
    /** Received reports (dmarc-parse.ts): compressed attachment, inflated XML, zip entries,
     *  records read, nesting of elements. */
    maxAttachmentBytes: 10 * 1024 * 1024,
    maxXmlBytes: 20 * 1024 * 1024,
    maxZipEntries: 16,
    maxRecords: 100_000,
    maxDepth: 16,
    /** Messages of a mailbox the CLI reads at most. */
    maxMessages: 10_000,
  },
  monitor: {
    /** [monitor] interval: DNSBLs update listings within minutes, delistings take hours. */
    defaultIntervalMs: 60 * 60_000,
    /** The first round runs this long after start, or after the interval when shorter. */
    firstRunDelayMs: 30_000,
    /** Each wait is the interval plus or minus this fraction, so servers do not ask together. */
    jitter: 0.1,
    /** Listings remembered in {state}/blocklist.json (addresses x zones). */
    maxRemembered: 10_000,
  },
  /** Sieve scripts (RFC 5228, src/sieve/): hard bounds of the pure front end. Pigeonhole's
   *  defaults as anchor: sieve_max_script_size 1M, 32 levels of block and of test nesting. */
  sieve: {
    maxScriptBytes: 1024 * 1024,
    /** Octets of a script name (RFC 5804 §1.6 sets none; Pigeonhole: 256 characters). */
    maxScriptNameBytes: 1024,
    /** [sieve] max_scripts default (Pigeonhole sieve_quota_max_scripts; 0 there is unlimited). */
    defaultMaxScripts: 100,
    /** [sieve] max_storage default: all of an account's scripts. */
    defaultMaxStorageBytes: 10 * 1024 * 1024,
    /** Distinct redirect addresses of one run (Pigeonhole sieve_max_redirects); announced by
     *  ManageSieve as MAXREDIRECTS (RFC 5804 §1.7), enforced by the interpreter. */
    maxRedirects: 4,
    /** How often delivery's vacation and duplicate state is swept of ended entries. */
    stateSweepMs: 3_600_000,
    maxNesting: 32,
    /** Commands plus tests of one script. */
    maxNodes: 20_000,
    /** Characters of one string (quoted or text:). */
    maxStringLength: 256 * 1024,
    /** Strings of one string list. */
    maxStringListLength: 4096,
    /** Arguments of one command or test. */
    maxArguments: 64,
    /** Errors reported for one script (the rest are counted, not listed). */
    maxErrors: 50,
    /** Vacation replies (sieve/vacation.ts): characters of the Subject written (a longer one is
     *  cut), message ids carried into References (the latest kept, RFC 5322 §3.6.4), and
     *  octets of the reason (the body, or the :mime entity). */
    vacationSubjectChars: 256,
    vacationReferences: 20,
    vacationReasonBytes: 64 * 1024,
    // The interpreter (src/sieve/interpret/). Exceeding one is a run-time error: the message
    // is kept (implicit keep), as Pigeonhole does.
    /** Commands and tests executed in one run, includes counted. */
    maxSteps: 100_000,
    /** Pigeonhole sieve_max_actions: actions of one run (duplicates merged). */
    maxActions: 32,
    /** Pigeonhole sieve_variables_max_scope_size: variables of one scope. */
    maxVariables: 255,
    /** Pigeonhole sieve_variables_max_variable_size: bytes of one variable value (longer values
     *  are cut at a character boundary). */
    maxVariableSize: 4096,
    /** RFC 5229 §3.2: match variables ${0}..${9}. */
    maxMatchVariables: 10,
    /** Octets compared by all tests of one run plus the text variable expansion produced (a
     *  hostile pattern against a long value is cut off as a run-time error, never a stall);
     *  one expanded string is bounded by maxStringLength. */
    maxMatchWork: 20_000_000,
    /** Octets of the message the `body` test reads (RFC 5173); the rest is not seen. */
    maxBodyBytes: 1024 * 1024,
    /** MIME parts and nesting the `body` test walks. */
    maxMimeParts: 256,
    maxMimeDepth: 16,
    /** Pigeonhole sieve_include_max_nesting_depth and sieve_include_max_includes. */
    maxIncludeDepth: 10,
    maxIncludes: 255,
    /** Pigeonhole sieve_vacation_min_period / default_period (RFC 5230 §4.1, RFC 6131);
     *  sieve_vacation_max_period 0 = no maximum. */
    vacationMinSeconds: 86_400,
    vacationDefaultSeconds: 7 * 86_400,
    /** Pigeonhole sieve_duplicate_default_period / max_period (RFC 7352 §3). */
    duplicateDefaultSeconds: 14 * 86_400,
    duplicateMaxSeconds: 7 * 86_400,
  },
  mtaSts: {
    /** RFC 8461 §3.3: senders may limit the policy body; 64 KiB is the RFC's example. */
    maxPolicyBytes: 64 * 1024,
    /** A failed fetch with no usable cached policy is not tried again for this long (RFC 8461
     *  §3.3: "rate-limit the frequency of attempts"); delivery goes on as without a policy. */
    failedFetchRetryMs: 5 * 60_000,
    /** A cached policy in use is fetched again in the background after this long (or half its
     *  max_age, if shorter), with the same id: kept fresh while mail flows (RFC 8461 §10.2). */
    refreshAfterMs: 24 * 3600_000,
    /** Policies kept (memory and {state}/mta-sts-policies.json); the nearest expiries go first. */
    maxCachedPolicies: 10_000,
  },
  tlsReports: {
    /** TLS reporting (RFC 8460, reports/tlsrpt-*.ts): counters kept in memory this long before
     *  they are added to the store (one write per flush, not one per connection). */
    flushMs: 5_000,
    /** Distinct counters held between two flushes; more are dropped (and logged). */
    maxPending: 20_000,
    /** Counter rows of one day read for the reports; the rest are left out (and logged). */
    maxRowsPerDay: 200_000,
    /** Days of counters kept in the store (a day is reported once, the next day). */
    keepDays: 14,
    /** Past days still reported after a pause of the server (older ones are skipped). */
    maxCatchUpDays: 3,
    /** A day is reported once it has been over this long (every node's counters flushed). */
    settleMs: 60_000,
    /** Default [tls_reports] check_interval: how often the task looks for a day to report. */
    defaultCheckIntervalMs: 3_600_000,
    /** RFC 8460 §3: a `_smtp._tls` TXT record longer than this is not used. */
    maxRecordBytes: 4096,
    /** rua URIs used per domain (the rest ignored). */
    maxRua: 5,
    /** HTTPS delivery (§5.4): the whole POST, and the answer read (then dropped). */
    httpsTimeoutMs: 60_000,
    maxHttpsResponseBytes: 64 * 1024,
    /** Received reports (the CLI): the gzip output, the JSON's size and nesting. */
    maxReportBytes: 8 * 1024 * 1024,
    maxJsonDepth: 16,
    /** Messages of the mailbox looked at by `arcline reports tls` (the newest). */
    maxMessagesScanned: 5_000,
  },
  srs: {
    /** Mail::SRS's $SRSHASHLENGTH: base64 characters of the HMAC-SHA1 we write (24 bits). */
    hashLength: 4,
    /** Mail::SRS's HashMin: the shortest hash prefix accepted when reversing. */
    hashMin: 4,
    /** Mail::SRS's $SRSMAXAGE: days an SRS0 time stamp stays valid (the day written counts as 0). */
    defaultMaxAgeDays: 21,
    /** Two base32 characters of days: the time stamp cycles every 1024 days. */
    timestampSlots: 1024,
    /** RFC 5321 §4.5.3.1.1: the original sender's local part we rewrite. SRS local parts
     *  themselves routinely exceed it (Mail::SRS, "the 64 billion character question"). */
    maxLocalPart: 64,
    /** RFC 5321 §4.5.3.1.3 path (256) rounded up to RFC 3696's 320: longest address read or made. */
    maxAddress: 320,
    /** Secrets read from {state}/srs.secret (the current one and the older ones still accepted). */
    maxSecrets: 16,
    /** Bytes of {state}/srs.secret read. */
    maxSecretFileBytes: 16 * 1024,
  },
  /** JMAP (RFC 8620, src/jmap/, [jmap]): the defaults of the session's core capability. */
  jmap: {
    /** maxSizeUpload: one blob (an attachment); above it 413 with a limit problem. */
    defaultMaxSizeUpload: 50 * 1024 * 1024,
    /** maxConcurrentUpload per account. */
    defaultMaxConcurrentUpload: 4,
    /** maxSizeRequest: the body of one API request, refused before it is parsed. */
    defaultMaxSizeRequest: 10 * 1024 * 1024,
    /** maxConcurrentRequests per account (API requests being processed at once). */
    defaultMaxConcurrentRequests: 4,
    /** maxCallsInRequest (RFC 8620 §2 suggests at least 16). */
    defaultMaxCallsInRequest: 64,
    /** maxObjectsInGet / maxObjectsInSet (RFC 8620 §2 recommends at least 500). */
    defaultMaxObjectsInGet: 500,
    defaultMaxObjectsInSet: 500,
    /** Hard bound of a JSON pointer (result reference path, patch path): tokens. */
    maxPointerTokens: 32,
    /** Deepest nesting of arrays and objects in an API request (a deeper one is notJSON before
     *  it is built): room for filters of maxFilterDepth and bodyStructure of maxBuiltDepth. */
    maxJsonDepth: 64,
    /** Hard bound of a FilterOperator tree's depth (/query). */
    maxFilterDepth: 16,
    /** An uploaded blob not referenced by an object is removed after this long (RFC 8620 §6.1). */
    blobExpiryMs: 60 * 60 * 1000,
    /** How often expired blobs are looked for. */
    blobSweepMs: 5 * 60 * 1000,
    /** Uploads not (yet) referenced by an object, per account: at most this many bytes and
     *  files until they expire or are used, so uploads cannot fill the disk within the hour
     *  (507 with an over-quota problem beyond). */
    maxPendingUploadBytes: 1024 * 1024 * 1024,
    maxPendingUploads: 1000,
    /** EventSource ping: the interval a client asks for is clamped to [min, max] seconds
     *  (RFC 8620 §7.3: the server may choose a minimum). 0 asks for no pings. */
    minPingSeconds: 1,
    maxPingSeconds: 300,
    /** EventSource connections per account. */
    maxEventSources: 8,
    /** PushSubscription objects per account, and how long one lives at most (RFC 8620 §7.2:
     *  the server may shorten the expires the client asks for). */
    maxPushSubscriptions: 16,
    maxPushExpiryMs: 7 * 24 * 3600_000,
    /** EmailSubmission delayed send (RFC 8621 §7, RFC 4865 FUTURERELEASE): [jmap]
     *  max_delayed_send by default (the session's maxDelayedSend) and its bound. */
    defaultMaxDelayedSendMs: 7 * 24 * 3600_000,
    maxMaxDelayedSendMs: 366 * 24 * 3600_000,
    /** A push POST (verification or StateChange) gives up after this long. */
    pushTimeoutMs: 10_000,
    /** Longest Authorization header value read (Basic credentials, Bearer token). */
    maxAuthorizationBytes: 1024,
    /** Mail capability (RFC 8621 §1.3.1) maxSizeMailboxName: UTF-8 octets of one Mailbox name
     *  (one level; the whole IMAP name is also bounded by LIMITS.mailboxes). */
    maxSizeMailboxName: 200,
    /** A store change is pushed (StateChange) this long after it, so a burst (a COPY of many
     *  messages, a delivery to several folders) makes one event. */
    pushDebounceMs: 5,
  },
  /** The JMAP objects outside the mail store ({state}/jmap.db, src/jmapstate/, RFC 8621 §6-§8). */
  jmapState: {
    /** Change log rows kept per account and type; an older sinceState -> cannotCalculateChanges. */
    maxChanges: 10_000,
    /** Identities per account (its addresses plus the ones it creates). */
    maxIdentities: 100,
    /** Identity name / signatures, VacationResponse subject / bodies: characters. */
    maxNameChars: 256,
    maxSignatureChars: 64 * 1024,
    maxVacationBodyChars: 64 * 1024,
    /** EmailSubmission: recipients of one envelope. */
    maxSubmissionRecipients: 100,
  },
  /** Sieve at delivery (src/queue/sieve-filter.ts, [sieve]). Pigeonhole's defaults as anchor. */
  sieveDelivery: {
    /** sieve_vacation_min_period: 1 day. */
    vacationMinPeriodMs: 24 * 3600_000,
    /** sieve_vacation_max_period: 0, none (Pigeonhole's default). */
    vacationMaxPeriodMs: 0,
    /** Compiled scripts kept in memory (by account and content hash). */
    compiledCache: 1000,
    /** Bytes of the header block a script sees (the SMTP header limit is lower). */
    maxHeaderBytes: 1024 * 1024,
  },
  /** Several nodes on one PostgreSQL (issue #18, docs/cluster.md): change notifications
   *  (db/notify.ts), leader tasks (db/leader.ts), node heartbeats (db/nodes.ts, [cluster]). */
  cluster: {
    /** Notifications arriving within this long of the first are dispatched together: one call
     *  per account with its highest MODSEQ, one per distinct payload of other channels. */
    notifyCoalesceMs: 5,
    /** A mail-change payload ("<modseq> <account>") longer than this is dropped unread
     *  (an address is at most 320 bytes; PostgreSQL's own bound is 8,000). */
    maxMailPayloadBytes: 400,
    /** The longest payload of other channels published or dispatched (PostgreSQL: < 8,000). */
    maxPayloadBytes: 7999,
    /** Distinct payloads of other channels held between two dispatches; more are dropped and
     *  the onResync hooks run after the dispatch instead. */
    maxPendingPayloads: 1000,
    /** First wait before reconnecting a lost listening connection; doubles per failure (with
     *  jitter) up to reconnectMaxMs. */
    reconnectInitialMs: 100,
    reconnectMaxMs: 5000,
    /** The listening connection answers a SELECT 1 this often, within pingTimeoutMs, or it is
     *  dropped and made again (a peer gone without a FIN is noticed in seconds, not hours). */
    listenPingMs: 10_000,
    pingTimeoutMs: 5000,
    /** [cluster] heartbeat_interval and leader_interval defaults. */
    defaultHeartbeatMs: 5000,
    defaultLeaderIntervalMs: 10_000,
    /** A node is alive while its last heartbeat is at most this many of its intervals old. */
    aliveIntervals: 3,
    /** Rows of nodes not seen for this long are removed by the heartbeats of the others. */
    forgetNodeMs: 7 * 24 * 3600_000,
    /** Characters of a node name ([cluster] node_name, ARCLINE_NODE, --node). */
    maxNodeName: 63,
    /** A leader task's run is given this long to end after its signal fires at stop(). */
    leaderStopGraceMs: 10_000,
    /** JMAP push across nodes (jmap/push-relay.ts): a payload {node, account, changed} longer
     *  than this is dropped unread; it carries at most pushRelayMaxTypes types, each name and
     *  state at most pushRelayMaxToken characters (ours are counters: a few digits). */
    maxPushRelayPayloadBytes: 4000,
    pushRelayMaxTypes: 16,
    pushRelayMaxToken: 64,
    /** Accounts whose publishes wait to be sent while one NOTIFY is on its way (each keeps only
     *  its newest state per type); past this, new ones are dropped (a late refetch, no more). */
    maxPendingPushRelays: 1000,
  },
} as const;
