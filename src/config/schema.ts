// The configuration schema: every key, its default and its documentation line, in one place
// (design.md convention 7). docs/configuration.md is written from this file. Key names are a
// public contract: rename nothing without a migration.

import { isIPv4, isIPv6 } from 'node:net';
import { hostname } from 'node:os';
import { z } from 'zod';
import { LIMITS } from '../core/limits.ts';
import { arcSection } from './arc.ts';
import { ban } from './ban.ts';
import { clusterSection } from './cluster.ts';
import { databaseSection } from './database.ts';
import { dmarcReportsSection } from './dmarc-reports.ts';
import { duration, listenAddress, positiveInt, size } from './fields.ts';
import { greylistSection } from './greylist.ts';
import { jmapSection } from './jmap.ts';
import { managesieveSection } from './managesieve.ts';
import { milterSection } from './milter.ts';
import { monitorSection } from './monitor.ts';
import { mtaStsOutboundSection } from './mta-sts-outbound.ts';
import { rateLimitsSection } from './rate-limits.ts';
import { sieveSection } from './sieve.ts';
import { spamSection } from './spam.ts';
import { srsSection } from './srs.ts';
import { tlsReportsSection } from './tls-reports.ts';

export { parseListen } from './fields.ts';

/** What to do with a message that fails a check: refuse it at end of DATA, file it in Junk, or
 *  deliver it normally (the Authentication-Results header still tells). */
const action = z.enum(['reject', 'junk', 'accept']);
const hygieneActions = {
  /** DMARC fails and the domain's policy is p=reject (RFC 7489 §6.6.3). */
  dmarc_reject: action.default('reject'),
  /** DMARC fails and the domain's policy is p=quarantine. */
  dmarc_quarantine: action.default('junk'),
  /** SPF "fail" (-all) for a domain that publishes no DMARC policy. */
  spf_fail: action.default('junk'),
};
const hygieneActionOverrides = {
  dmarc_reject: action.optional(),
  dmarc_quarantine: action.optional(),
  spf_fail: action.optional(),
};

/** "192.0.2.0/24" or "2001:db8::/32" (a bare address is a /32 or /128). */
export function parseCidr(s: string): { address: string; prefix: number; family: 'ipv4' | 'ipv6' } | null {
  const m = /^([0-9a-fA-F:.]+)(?:\/(\d{1,3}))?$/.exec(s.trim());
  if (!m) return null;
  const address = m[1] ?? '';
  const family = isIPv4(address) ? 'ipv4' : isIPv6(address) ? 'ipv6' : null;
  if (!family) return null;
  const max = family === 'ipv4' ? 32 : 128;
  const prefix = m[2] === undefined ? max : Number(m[2]);
  if (prefix > max) return null;
  return { address, prefix, family };
}

/** "host:port" or "[v6]:port" of a remote server. */
export function parseHostPort(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([A-Za-z0-9.-]+)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port < 1 || port > 65535) return null;
  return { host: m[1] ?? m[2] ?? '', port };
}

export const configSchema = z
  .object({
    /** Our host name: SMTP banner, EHLO name, Received headers. */
    hostname: z
      .string()
      .regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'not a host name')
      .default(() => hostname()),
    log: z
      .strictObject({
        /** trace, debug, info, warn, error or fatal. */
        level: z.enum(['trace', 'debug', 'info', 'warn', 'error', 'fatal']).default('info'),
        /** json (one object per line), pretty (coloured, for a terminal), or auto (pretty on a TTY). */
        format: z.enum(['json', 'pretty', 'auto']).default('auto'),
        /** Access lines (docs/logging.md): "all" (SMTP transactions, IMAP sessions and commands,
         *  HTTP requests), "sessions" (all but the line per IMAP command) or "off". */
        access: z.enum(['all', 'sessions', 'off']).default('all'),
        /** Ship the log to a syslog receiver as RFC 5424 with octet counting (RFC 6587 §3.4.1),
         *  "tcp://host:port" or "tls://host:port" (RFC 5425); empty (the default): no shipping. */
        syslog: z
          .string()
          .regex(
            /^$|^(tcp|tls):\/\/(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+):[0-9]{1,5}$/,
            'not tcp://host:port or tls://host:port',
          )
          .default(''),
        /** Lines held for the syslog receiver (and the OTLP collector, each its own) while it is
         *  slow or away; past it they are dropped (arcline_log_dropped_total). */
        ship_buffer: positiveInt.default(10000),
        /** tls:// only: PEM file of the CA that signed the receiver's certificate; empty: the
         *  system's CAs. The receiver's name is checked against the URL's host. */
        syslog_ca: z.string().default(''),
        /** Ship the log to an OpenTelemetry logs endpoint, OTLP/HTTP JSON, e.g.
         *  "http://127.0.0.1:4318/v1/logs"; empty (the default): no shipping. */
        otlp: z
          .string()
          .regex(/^$|^https?:\/\/[^\s]+$/, 'not an http(s) URL')
          .default(''),
      })
      .prefault({}),
    storage: z
      .strictObject({
        /** Maildir root: mail of user@domain lives in {maildir}/{domain}/{user}/. */
        maildir: z.string().min(1).default('./data/mail'),
        /** State directory: database, queue spool, generated keys and certificates. */
        state: z.string().min(1).default('./data/state'),
      })
      .prefault({}),
    smtp: z
      .strictObject({
        /** Inbound MX listeners (port 25 in production); [] disables inbound SMTP. */
        listen: z.array(listenAddress).default(['127.0.0.1:2525']),
        /** Largest message accepted (SIZE, RFC 1870); larger ones get 552 5.3.4. */
        max_message_size: size.default(LIMITS.smtp.defaultMaxMessageSize),
        /** Recipients per message; more get 452 4.5.3 (RFC 5321 §4.5.3.1.8 asks for >= 100). */
        max_recipients: positiveInt.default(LIMITS.smtp.defaultMaxRecipients),
        /** Simultaneous inbound connections in total. */
        max_connections: positiveInt.default(LIMITS.smtp.defaultMaxConnections),
        /** Simultaneous inbound connections from one IP address (IPv6: per /64). */
        max_connections_per_ip: positiveInt.default(LIMITS.smtp.defaultMaxConnectionsPerIp),
        /** Idle time allowed between commands (RFC 5321 §4.5.3.2 suggests 5 minutes), and the
         *  deadline of one whole command line from its first byte (and of a TLS handshake). */
        timeout: duration.default(LIMITS.smtp.defaultSocketTimeoutMs),
        /** Slowest DATA accepted, in bytes per second: a message must arrive within
         *  timeout + size / min_data_rate (Postfix smtpd_min_data_rate); slower gets 421. */
        min_data_rate: positiveInt.default(LIMITS.smtp.defaultMinDataRate),
        /** Longest connection; then 421 (a DATA in progress may finish first). Also for submission. */
        max_session_time: duration.default(LIMITS.smtp.defaultMaxSessionMs),
        /** Largest header block of a message (port 25 and submission); larger gets 552 5.3.4. */
        max_header_size: size.default(LIMITS.smtp.defaultMaxHeaderSize),
        /** Errors (refused recipients, bad commands) after which every reply waits error_delay
         *  more per error (Postfix smtpd_soft_error_limit). Also for submission. */
        soft_error_limit: positiveInt.default(LIMITS.smtp.defaultSoftErrorLimit),
        /** Errors after which the session is closed with 421 (Postfix smtpd_hard_error_limit). */
        hard_error_limit: positiveInt.default(LIMITS.smtp.defaultHardErrorLimit),
        /** Delay per error beyond soft_error_limit (Postfix smtpd_error_sleep_time). */
        error_delay: duration.default(LIMITS.smtp.defaultErrorDelayMs),
        /** Pause before the 220 greeting; a client that talks first gets 421 (pre-greet test,
         *  as Postfix postscreen). 0 (the default, as Postfix smtpd) greets at once. */
        greeting_delay: duration.default(0),
        /** Look up the client's host name (reverse DNS) for the Received header. */
        reverse_lookup: z.boolean().default(true),
        /** Threads that serve inbound SMTP, each on its own SO_REUSEPORT socket of the same
         *  addresses (docs/architecture.md §8): "auto" is cores - 2 (none on 2 cores); 0 serves
         *  it in the main thread. Submission always runs in the main thread. */
        threads: z.union([z.literal('auto'), z.number().int().min(0).max(LIMITS.smtp.maxThreads)]).default('auto'),
      })
      .prefault({})
      .refine((s) => s.soft_error_limit <= s.hard_error_limit, {
        message: 'soft_error_limit must not exceed hard_error_limit',
      }),
    submission: z
      .strictObject({
        /** Submission with STARTTLS (587 in production); AUTH is offered only after STARTTLS. */
        listen: z.array(listenAddress).default(['127.0.0.1:2587']),
        /** Submission with implicit TLS (465 in production, RFC 8314). */
        tls_listen: z.array(listenAddress).default(['127.0.0.1:2465']),
        /** Simultaneous submission connections from one IP address (IPv6: per /64). */
        max_connections_per_ip: positiveInt.default(LIMITS.submission.defaultMaxConnectionsPerIp),
        /** Largest message a user may send; larger ones get 552 5.3.4. */
        max_message_size: size.default(LIMITS.smtp.defaultMaxMessageSize),
        /** A client must have authenticated this long after connecting, whatever it sends; then 421. */
        login_timeout: duration.default(LIMITS.submission.defaultLoginTimeoutMs),
      })
      .prefault({}),
    delivery: z
      .strictObject({
        /** Port of remote MX hosts. 25 on the internet; tests point it at their own servers. */
        port: z.number().int().min(1).max(65535).default(25),
        /** Send everything through this smarthost ("host:port") instead of the MX hosts,
         *  for hosts whose outbound port 25 is blocked. Empty: deliver directly. */
        relay: z
          .string()
          .refine((s) => s === '' || parseHostPort(s) !== null, { message: 'not "host:port"' })
          .default(''),
        /** TLS to the relay: "starttls" (required), "implicit" (port 465) or "none". */
        relay_tls: z.enum(['starttls', 'implicit', 'none']).default('starttls'),
        /** Verify the relay's certificate against the system CAs (turn off only for tests). */
        relay_verify_tls: z.boolean().default(true),
        /** User name for AUTH at the relay; empty: no AUTH. */
        relay_username: z.string().default(''),
        /** File holding the relay password (first line), kept out of the config file. */
        relay_password_file: z.string().default(''),
        /** TLS to MX hosts: "opportunistic" (STARTTLS when offered, RFC 7435; certificates are
         *  not verified, as in Postfix's "may") or "none". */
        mx_tls: z.enum(['opportunistic', 'none']).default('opportunistic'),
        /** Also use IPv6 addresses of MX hosts (IPv4 addresses are tried first). */
        ipv6: z.boolean().default(true),
        /** Waits between attempts after a temporary failure; the last one repeats. */
        retry_schedule: z.array(duration).min(1).prefault(['1m', '5m', '15m', '30m', '1h', '2h', '4h']),
        /** A message still undelivered after this long is bounced (RFC 5321 §4.5.4.1: 4-5 days). */
        max_lifetime: duration.prefault('5d'),
        /** Tell the sender once that a message is delayed after this long; 0 never. */
        delay_warning: duration.prefault('4h'),
        /** Deliveries in flight at once, in total. */
        max_connections: positiveInt.default(LIMITS.queue.defaultMaxConnections),
        /** Deliveries in flight at once to one destination domain (or to the relay). */
        max_connections_per_domain: positiveInt.default(LIMITS.queue.defaultMaxConnectionsPerDomain),
        /** Time to establish a TCP connection to a remote host. */
        connect_timeout: duration.prefault('30s'),
        /** Time to wait for any reply of a remote server (RFC 5321 §4.5.3.2: minutes). */
        timeout: duration.prefault('5m'),
      })
      .prefault({})
      .refine((d) => d.relay_password_file === '' || d.relay_username !== '', {
        message: 'relay_password_file needs relay_username',
      }),
    imap: z
      .strictObject({
        /** IMAP with STARTTLS (143 in production). */
        listen: z.array(listenAddress).default(['127.0.0.1:2143']),
        /** IMAP with implicit TLS (993 in production). */
        tls_listen: z.array(listenAddress).default(['127.0.0.1:2993']),
        /** Simultaneous IMAP connections from one IP address (IPv6: per /64). */
        max_connections_per_ip: positiveInt.default(LIMITS.imap.defaultMaxConnectionsPerIp),
        /** Simultaneous IMAP connections in total; more get BYE and are closed. */
        max_connections: positiveInt.default(LIMITS.imap.defaultMaxConnections),
        /** Idle time before autologout, once logged in; RFC 9051 §5.4 requires at least 30 minutes. */
        timeout: duration.default(LIMITS.imap.defaultAutologoutMs),
        /** Time from connect to a successful login, whatever the client sends (TLS handshake
         *  included); then BYE and close. Also bounds idling before login. */
        login_timeout: duration.default(LIMITS.imap.defaultLoginTimeoutMs),
        /** Time a started command (its line and literals) may take to arrive; literal bytes
         *  arriving at min_data_rate or faster extend it. IDLE is not a command in progress. */
        command_timeout: duration.default(LIMITS.imap.defaultCommandTimeoutMs),
        /** Bytes per second a literal (an APPEND message) must arrive at, on average, to keep
         *  extending command_timeout (Postfix smtpd_min_data_rate). */
        min_data_rate: size.pipe(positiveInt).default(LIMITS.imap.defaultMinDataRate),
      })
      .prefault({}),
    tls: z
      .strictObject({
        /** PEM certificate chain. Without cert and key a self-signed pair is made in {state}/tls/. */
        cert: z.string().min(1).optional(),
        /** PEM private key matching `cert`. */
        key: z.string().min(1).optional(),
      })
      .prefault({})
      .refine((t) => (t.cert === undefined) === (t.key === undefined), {
        message: 'cert and key must be given together',
      }),
    dns: z
      .strictObject({
        /** Resolvers as "ip" or "ip:port"; empty means the system resolvers. */
        servers: z.array(z.string()).default([]),
        /** Longest time an answer of the mail checks (SPF, DKIM, DMARC) is cached; A/AAAA use
         *  their own TTL when shorter. 0 turns the cache off. */
        cache_max_ttl: duration.prefault('5m'),
      })
      .prefault({}),
    auth: z
      .strictObject({
        /** Scheme of new password hashes: argon2id (RFC 9106 §4 second recommended option:
         *  64 MiB, 3 passes, 4 lanes; ~60 ms) or bcrypt (cost below). Stored hashes of every
         *  supported scheme keep verifying whatever this says. */
        password_scheme: z.enum(['argon2id', 'bcrypt']).default('argon2id'),
        /** bcrypt cost of new hashes when password_scheme = "bcrypt" (2^cost rounds; 12 takes
         *  ~220 ms natively). */
        bcrypt_cost: z.number().int().min(4).max(LIMITS.auth.maxBcryptCost).default(12),
        /** Clients in these networks (CIDR) are never slowed down or refused for failed logins
         *  (a webmail or proxy that logs in for many users). Empty by default. */
        trusted_networks: z
          .array(z.string().refine((c) => parseCidr(c) !== null, { message: 'not a CIDR network' }))
          .default([]),
        /** A failed login is answered this long after its verification began (as Dovecot's
         *  auth_failure_delay), which also hides how long the verification took (unknown user,
         *  old hash scheme); not for trusted networks. */
        failure_delay: duration.default(LIMITS.auth.defaultFailureDelayMs),
        /** Failed logins count against the client address and the pair (address, account) for
         *  this long after the last one. */
        failure_window: duration.default(LIMITS.auth.defaultFailureWindowMs),
        /** Longest wait before answering a login from an address and account that failed
         *  before (the delay doubles per failure from 0.5 s). */
        max_delay: duration.default(LIMITS.auth.defaultMaxPairDelayMs),
        /** Longest wait an address's failures add to the logins of other accounts from it
         *  (a household behind one NAT address is slowed, never locked out). */
        max_address_delay: duration.default(LIMITS.auth.defaultMaxAddressDelayMs),
        /** Verified credentials kept (one per account), so a reconnecting client costs no hash. */
        cache_size: z.number().int().min(0).default(LIMITS.auth.defaultCacheSize),
        /** How long a verified credential is kept; 0 turns the cache off. */
        cache_ttl: duration.default(LIMITS.auth.defaultCacheTtlMs),
        /** Password verifications waiting for a hashing thread; more get a temporary failure. */
        max_pending: positiveInt.default(LIMITS.auth.defaultMaxPendingVerifications),
        /** Password verifications run at once (off the event loop); 0: one per CPU core. */
        hash_concurrency: z.number().int().min(0).default(0),
      })
      .prefault({}),
    dkim: z
      .strictObject({
        /** Selector of the keys `arcline domain add` makes (the DNS name is {selector}._domainkey.{domain}). */
        selector: z
          .string()
          .regex(/^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/, 'not a selector (letters, digits, "-")')
          .default('arcline'),
        /** Algorithm of the keys `arcline domain add` makes: rsa (RSA-2048, verified everywhere) or ed25519 (RFC 8463). */
        algorithm: z.enum(['rsa', 'ed25519']).default('rsa'),
        /** Sign mail sent through submission with every key of the From: domain. */
        sign: z.boolean().default(true),
        /** How often rotation keys are looked up in DNS (activated once published) and retired
         *  keys past their grace deleted (docs/hygiene.md "Rotating a key"). */
        rotation_check: duration.default(LIMITS.dkim.defaultRotationCheckMs),
      })
      .prefault({}),
    hygiene: z
      .strictObject({
        /** Clients in these networks (CIDR, e.g. "192.0.2.0/24", "2001:db8::/32") skip every
         *  inbound check. Empty by default: loopback is checked like everyone else. */
        trusted_networks: z
          .array(z.string().refine((c) => parseCidr(c) !== null, { message: 'not a CIDR network' }))
          .default([]),
        /** DNS blocklist zones checked at connection, e.g. ["zen.spamhaus.org"]; none by default. */
        dnsbl: z.array(z.string().regex(/^[A-Za-z0-9.-]+$/, 'not a DNS zone')).default([]),
        /** Pause before refusing a listed client (slows down spam bots, as postscreen). */
        dnsbl_delay: duration.prefault('2s'),
        ...hygieneActions,
        /** authserv-id of our Authentication-Results header (RFC 8601 §2.5); empty: the hostname. */
        authserv_id: z
          .string()
          .regex(/^[A-Za-z0-9.-]*$/, 'not a host name')
          .default(''),
        /** Per recipient domain overrides of the three actions above. */
        domains: z.record(z.string(), z.strictObject(hygieneActionOverrides)).default({}),
      })
      .prefault({}),
    spam: spamSection({ size, duration }),
    greylist: greylistSection,
    srs: srsSection,
    /** [arc]: ARC sealing of forwarded mail (config/arc.ts). */
    arc: arcSection,
    /** [mta_sts_outbound]: MTA-STS policies of the domains we deliver to (config/mta-sts-outbound.ts). */
    mta_sts_outbound: mtaStsOutboundSection,
    /** [tls_reports]: TLS reporting, RFC 8460 (config/tls-reports.ts). */
    tls_reports: tlsReportsSection,
    database: databaseSection,
    cluster: clusterSection,
    rate_limits: rateLimitsSection,
    sieve: sieveSection,
    managesieve: managesieveSection,
    jmap: jmapSection,
    metrics: z
      .strictObject({
        /** Prometheus endpoint (GET /metrics), e.g. ["127.0.0.1:9425"]; [] (the default) is off. */
        listen: z.array(listenAddress).default([]),
        /** Serve GET /metrics on the [http] listeners too (as anyone who reaches them may read
         *  it, keep those private or leave this off). */
        http: z.boolean().default(false),
      })
      .prefault({}),
    http: z
      .strictObject({
        /** Plain HTTP listeners (80 in production): ACME http-01, autoconfig, health. [] turns it off. */
        listen: z.array(listenAddress).default(['127.0.0.1:8080']),
        /** HTTPS listeners (443 in production): MTA-STS, ACME tls-alpn-01, autoconfig, health. [] turns it off. */
        tls_listen: z.array(listenAddress).default(['127.0.0.1:8443']),
        /** Simultaneous HTTP and HTTPS connections in total (each listener counts its own). */
        max_connections: positiveInt.default(LIMITS.http.defaultMaxConnections),
        /** Time for a request (TLS handshake and headers included); then the connection is closed. */
        timeout: duration.default(LIMITS.http.defaultRequestTimeoutMs),
      })
      .prefault({}),
    acme: z
      .strictObject({
        /** ACME directory (RFC 8555 §7.1.1), e.g. "https://acme-v02.api.letsencrypt.org/directory".
         *  Empty (the default): no ACME. Excludes [tls] cert/key. */
        directory_url: z
          .string()
          .refine((s) => s === '' || /^https?:\/\/[^\s]+$/.test(s), { message: 'not an http(s) URL' })
          .default(''),
        /** Contact address given to the CA (expiry notices); empty: none. */
        email: z
          .string()
          .regex(/^$|^[^\s@]+@[A-Za-z0-9.-]+$/, 'not an email address')
          .default(''),
        /** More names for the certificate, besides the hostname and mta-sts./autoconfig. of every domain. */
        domains: z.array(z.string().regex(/^[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'not a host name')).default([]),
        /** Renew this long before expiry (a third of the lifetime for certificates shorter than 3x this). */
        renew_before: duration.prefault('30d'),
        /** Challenge types in order of preference: "tls-alpn-01" (RFC 8737, on [http] tls_listen,
         *  port 443) and "http-01" (RFC 8555 §8.3, on [http] listen, port 80). */
        challenges: z
          .array(z.enum(['tls-alpn-01', 'http-01']))
          .min(1)
          .default(['tls-alpn-01', 'http-01']),
        /** How often the certificate and the names it needs are checked (with up to 10% jitter). */
        check_interval: duration.prefault('12h'),
        /** First wait after a failed request; it doubles per failure up to check_interval. */
        retry_initial: duration.prefault('1m'),
      })
      .prefault({}),
    mta_sts: z
      .strictObject({
        /** Policy mode (RFC 8461 §5): "none", "testing" (report only) or "enforce". */
        mode: z.enum(['none', 'testing', 'enforce']).default('testing'),
        /** How long senders cache the policy (RFC 8461 §3.2 max_age; at most 31557600 s). */
        max_age: duration.prefault('7d').refine((ms) => ms >= 1000 && ms <= 31_557_600_000, {
          message: 'max_age must be between 1s and 365.25d',
        }),
        /** MX names besides the hostname, e.g. "backup-mx.example.net" or "*.example.net". */
        mx: z.array(z.string().regex(/^(\*\.)?[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?$/, 'not an MX name')).default([]),
      })
      .prefault({}),
    ban,
    /** [[milter]]: mail filters at the end of DATA, in order (config/milter.ts). */
    milter: milterSection,
    server: z
      .strictObject({
        /** On SIGTERM/SIGINT, how long transactions in flight may take before they get 421. */
        shutdown_grace: duration.default(LIMITS.lifecycle.defaultShutdownGraceMs),
        /** Account to run as: started as root, the server binds its ports, then becomes this
         *  user for good; the CLI run as root becomes it before touching data. Empty: stay as
         *  started (and `serve` refuses to run as root). */
        user: z.string().default(''),
        /** Group to run as with `user`; empty: the user's primary group. */
        group: z.string().default(''),
        /** Let `serve` run as root without `user` (a warning is logged); `serve --allow-root`
         *  does the same. For development only. */
        allow_root: z.boolean().default(false),
        /** Our addresses on the internet, the ones outbound mail leaves from: `arcline check`
         *  tests them against SPF, reverse DNS and blocklists, as does the blocklist monitor.
         *  Empty (the default): the A and AAAA addresses of hostname. */
        public_addresses: z
          .array(z.string().refine((a) => isIPv4(a) || isIPv6(a), { message: 'not an IP address' }))
          .default([]),
      })
      .prefault({}),
    monitor: monitorSection,
    dmarc_reports: dmarcReportsSection,
  })
  .strict()
  .refine((c) => c.acme.directory_url === '' || c.tls.cert === undefined, {
    message: '[acme] directory_url and [tls] cert/key exclude each other: remove one (docs/acme.md)',
    path: ['acme', 'directory_url'],
  })
  .refine(
    (c) =>
      c.acme.directory_url === '' ||
      c.acme.challenges.every((t) => (t === 'http-01' ? c.http.listen : c.http.tls_listen).length > 0),
    {
      message: 'every challenge type needs its listener: http-01 [http] listen, tls-alpn-01 [http] tls_listen',
      path: ['acme', 'challenges'],
    },
  );

export type Config = z.output<typeof configSchema>;
