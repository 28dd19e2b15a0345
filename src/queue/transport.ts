// One delivery attempt: the queued recipients of one message at one domain, to the hosts of
// its route, in one SMTP transaction (nodemailer's SMTPConnection: PIPELINING, SMTPUTF8, SIZE).
//
// RFC 5321 §5.1 / §4.2: hosts are tried in order while a host cannot take the message at all
// (connection refused or dropped, timeout, greeting or EHLO refused). Once a host answers the
// transaction, its answers decide: per recipient at RCPT, then for every accepted recipient at
// the end of DATA. 2xx = sent, 5xx = failed, 4xx = deferred. Anything unexpected is deferred:
// an attempt never turns a doubt into a bounce.
//
// TLS: with mx_tls = "opportunistic", STARTTLS is used when offered, without certificate
// checks (RFC 7435; Postfix "may"); if the TLS handshake itself fails the same address is
// tried once more in plaintext, as Postfix does. The relay has its own, stricter policy.

import { isIP, type Socket } from 'node:net';
import type { Readable } from 'node:stream';
import type { TLSSocket } from 'node:tls';
import SMTPConnection from 'nodemailer/lib/smtp-connection';
import { errorMessage } from '../core/errors.ts';
import { oneLine } from '../core/text.ts';
import type { RouteHost } from './route.ts';

export interface TransportOptions {
  /** Our EHLO name. */
  readonly hostname: string;
  readonly connectTimeout: number;
  readonly timeout: number;
  readonly tls: 'opportunistic' | 'none' | 'starttls' | 'implicit';
  /** Verify certificates (relay only). */
  readonly verifyTls: boolean;
  readonly auth: { readonly user: string; readonly pass: string } | null;
  /** Trusted CAs replacing Node's defaults (MTA-STS with [mta_sts_outbound] ca_file). */
  readonly ca?: readonly string[];
  /** The TLS outcome is judged for the MX name (MTA-STS testing): a cached connection serves
   *  only the name it was made for. verifyTls implies it. */
  readonly nameBound?: boolean;
  /** RFC 8461 §4.2 asks for TLS 1.2 or later under a policy. */
  readonly minVersion?: 'TLSv1' | 'TLSv1.2';
}

export interface AttemptEnvelope {
  readonly sender: string;
  readonly recipients: readonly string[];
  readonly size: number;
  /** The message needs SMTPUTF8 (RFC 6531 §3.4): a host that does not offer it fails every
   *  recipient with 5.6.7 before MAIL, instead of receiving it. */
  readonly smtputf8: boolean;
  /** RFC 3461 parameters passed on when the host offers DSN (§5.2, §5.3): RET and ENVID of the
   *  message, NOTIFY and ORCPT shared by every recipient of this transaction. */
  readonly envid: string | null;
  readonly ret?: 'FULL' | 'HDRS' | null;
  readonly notify?: string | null;
  readonly orcpt?: string | null;
  readonly open: () => Readable;
}

export type Verdict = 'sent' | 'failed' | 'deferred';

export interface RecipientResult {
  readonly address: string;
  readonly verdict: Verdict;
  /** The server's reply ("550 5.1.1 ...") or our description of what went wrong. */
  readonly reply: string;
  /** Enhanced status code for DSNs: from the reply when it has one, else derived. */
  readonly status: string;
  /** Set by the runner: the host of this recipient's transaction offered DSN (AttemptResult.dsn). */
  readonly viaDsn?: boolean;
}

export interface AttemptResult {
  readonly results: readonly RecipientResult[];
  /** The host that answered the transaction, "name [address]", or the last one tried. */
  readonly host: string | null;
  readonly hostName: string | null;
  readonly tls: boolean;
  /** TLS with a certificate that chains to a trusted CA and is valid for the host's name
   *  (checked even when not required: MTA-STS testing mode reports it). */
  readonly tlsAuthorized: boolean;
  /** One line per host tried, for the log. */
  readonly tried: readonly { host: string; error: string }[];
  /** The host that answered offered DSN (RFC 3461): it reports on from here; without it a
   *  recipient that asked NOTIFY=SUCCESS gets our "relayed" notice (§6.2.1.1). */
  readonly dsn: boolean;
  /** The TLS outcome of each new connection this attempt made (a cached one is not a new
   *  session), for TLS reporting (RFC 8460, reports/tlsrpt-record.ts). Empty with tls "none". */
  readonly sessions: readonly TlsSession[];
}

/** What one connection's TLS came to (RFC 8460 §4.3: a session counts as a success or a failure). */
export interface TlsSession {
  /** The MX name (receiving-mx-hostname) and address (receiving-ip). */
  readonly hostName: string;
  readonly address: string;
  /** Our address on the connection (sending-mta-ip), when it was connected. */
  readonly localAddress: string | null;
  /** TLS was negotiated (and the transaction went over it). */
  readonly tls: boolean;
  /** The certificate chains to a trusted CA and is valid for the host name. */
  readonly authorized: boolean;
  /** `starttls`: not offered, or refused; `handshake`: the TLS handshake failed (the connection
   *  then went on in plaintext, or not at all); null: neither. */
  readonly problem: 'starttls' | 'handshake' | null;
  /** node:tls's reason for not verifying the certificate (CERT_HAS_EXPIRED,
   *  ERR_TLS_CERT_ALTNAME_INVALID, DEPTH_ZERO_SELF_SIGNED_CERT ...), or the handshake's error. */
  readonly certError: string | null;
}

interface SmtpError extends Error {
  code?: string;
  /** Set by connect(): our address on the failed connection, node:tls's certificate verdict. */
  localAddress?: string | null;
  certError?: string | null;
  response?: string;
  responseCode?: number;
  command?: string;
  rejectedErrors?: SmtpError[];
  recipient?: string;
}

/** Tries the hosts in order; see the header comment. */
export async function attemptDelivery(
  hosts: readonly RouteHost[],
  env: AttemptEnvelope,
  opts: TransportOptions,
  cache?: ConnectionCache,
): Promise<AttemptResult> {
  const tried: { host: string; error: string }[] = [];
  // A connection kept open after an earlier message to one of these hosts saves the
  // connect, greeting, EHLO and TLS handshake (Postfix's connection cache).
  const cached = cache?.take(hosts, opts);
  if (cached) {
    const out = await transact(cached.c, env);
    if (out.kind === 'done') {
      finishWith(cached, out.reusable, cache);
      return {
        results: out.results,
        host: labelOf(cached.host),
        hostName: cached.host.name,
        tls: cached.c.secure,
        tlsAuthorized: authorized(cached.c),
        tried,
        dsn: offers(cached.c, 'DSN'),
        sessions: [],
      };
    }
    // The server had closed the idle connection: nothing was decided, start afresh.
    cached.c.close();
  }
  const sessions: TlsSession[] = [];
  for (const host of hosts) {
    const label = labelOf(host);
    let c: SMTPConnection;
    try {
      c = await connect(host, opts, opts.tls !== 'none');
      if (opts.tls !== 'none') sessions.push(sessionOf(host, c));
    } catch (e) {
      const err = e as SmtpError;
      if (opts.tls !== 'none' && (err.code === 'ETLS' || err.certError)) sessions.push(failedSession(host, err));
      if (err.code === 'ETLS' && opts.tls === 'opportunistic') {
        // RFC 7435 §4: a failed handshake must not stop delivery that plaintext allows.
        try {
          c = await connect(host, opts, false);
        } catch (e2) {
          tried.push({ host: label, error: describe(e2) });
          continue;
        }
      } else {
        // Even a 5xx greeting or a relay refusing our AUTH only moves on to the next host; if
        // none takes the message it is deferred, never bounced for a host's or our set-up's fault.
        tried.push({ host: label, error: describe(e) });
        continue;
      }
    }
    const conn: Pooled = { c, host, uses: 0, key: poolKey(host, opts) };
    const out = await transact(c, env);
    if (out.kind === 'lost') {
      // Dropped before any reply to our transaction: the next host may do better (§5.1).
      tried.push({ host: label, error: out.error });
      c.close();
      continue;
    }
    finishWith(conn, out.reusable, cache);
    return {
      results: out.results,
      host: label,
      hostName: host.name,
      tls: c.secure,
      tlsAuthorized: authorized(c),
      tried,
      dsn: offers(c, 'DSN'),
      sessions,
    };
  }
  const last = tried.at(-1);
  const reply = last ? `${last.host}: ${last.error}` : 'no host to try';
  return {
    results: env.recipients.map((address) => ({ address, verdict: 'deferred', reply, status: '4.4.1' })),
    host: last?.host ?? null,
    hostName: null,
    tls: false,
    tlsAuthorized: false,
    tried,
    dsn: false,
    sessions,
  };
}

/** The TLS outcome of a connection made: without TLS, STARTTLS was not offered or was refused
 *  (opportunistic TLS goes on in plaintext then). */
function sessionOf(host: RouteHost, c: SMTPConnection): TlsSession {
  const socket = c._socket as (TLSSocket & { authorizationError?: unknown }) | undefined;
  const certError = c.secure && socket?.authorizationError ? String(socket.authorizationError) : null;
  return {
    hostName: host.name,
    address: host.address,
    localAddress: socket?.localAddress ?? null,
    tls: c.secure,
    authorized: authorized(c),
    problem: c.secure ? null : 'starttls',
    certError,
  };
}

/** A connection that failed for TLS (ETLS): STARTTLS refused, or the handshake failed. */
function failedSession(host: RouteHost, err: SmtpError): TlsSession {
  const refused = err.command === 'STARTTLS' && Boolean(err.response);
  return {
    hostName: host.name,
    address: host.address,
    localAddress: err.localAddress ?? null,
    tls: false,
    authorized: false,
    problem: refused ? 'starttls' : 'handshake',
    certError: refused ? null : (err.certError ?? oneLine(errorMessage(err), 200)),
  };
}

/** Whether the connection's TLS certificate was verified (node:tls sets `authorized` after the
 *  handshake whether or not rejectUnauthorized was asked). */
function authorized(c: SMTPConnection): boolean {
  return c.secure && (c._socket as { authorized?: boolean } | undefined)?.authorized === true;
}

/** Whether the server's EHLO listed an extension (nodemailer keeps them, unexported). */
function offers(c: SMTPConnection, ext: 'DSN' | 'SMTPUTF8'): boolean {
  const list = (c as unknown as { _supportedExtensions?: string[] })._supportedExtensions;
  return list?.includes(ext) === true;
}

function labelOf(host: RouteHost): string {
  return host.name === host.address ? `[${host.address}]` : `${host.name} [${host.address}]`;
}

function finishWith(conn: Pooled, reusable: boolean, cache: ConnectionCache | undefined): void {
  conn.uses++;
  if (reusable && cache?.put(conn)) return;
  conn.c.quit();
  setTimeout(() => conn.c.close(), 1000).unref();
}

interface Pooled {
  readonly c: SMTPConnection;
  /** The host it was found under: the same address may serve several MX names. */
  host: RouteHost;
  readonly key: string;
  uses: number;
}

function poolKey(host: RouteHost, opts: TransportOptions): string {
  // A verified connection was verified for one name (MTA-STS, RFC 8461 §4.2): it serves that name only.
  const name = opts.verifyTls || opts.nameBound ? host.name : '';
  return `${host.address}|${host.port}|${opts.tls}|${name}|${opts.ca ? 'ca' : ''}|${opts.auth?.user ?? ''}`;
}

/** Idle connections after a successful transaction, per remote address, for a short while. */
export class ConnectionCache {
  readonly #idle = new Map<string, { conn: Pooled; timer: NodeJS.Timeout }[]>();
  readonly #idleMs: number;
  readonly #maxUses: number;
  readonly #maxIdle: number;
  #size = 0;

  constructor(opts: { idleMs: number; maxUses: number; maxIdle: number }) {
    this.#idleMs = opts.idleMs;
    this.#maxUses = opts.maxUses;
    this.#maxIdle = opts.maxIdle;
  }

  take(hosts: readonly RouteHost[], opts: TransportOptions): Pooled | null {
    for (const h of hosts) {
      const list = this.#idle.get(poolKey(h, opts));
      const entry = list?.pop();
      if (!entry) continue;
      if (list?.length === 0) this.#idle.delete(entry.conn.key);
      this.#size--;
      clearTimeout(entry.timer);
      entry.conn.c.removeAllListeners('end');
      entry.conn.host = h;
      return entry.conn;
    }
    return null;
  }

  /** Keeps a connection; false when it should be closed instead. */
  put(conn: Pooled): boolean {
    if (this.#idleMs <= 0 || conn.uses >= this.#maxUses || this.#size >= this.#maxIdle) return false;
    const list = this.#idle.get(conn.key) ?? [];
    const entry = {
      conn,
      timer: setTimeout(() => this.#evict(conn, true), this.#idleMs),
    };
    entry.timer.unref();
    // A server that closes an idle connection takes it out of the cache at once.
    conn.c.once('end', () => this.#evict(conn, false));
    list.push(entry);
    this.#idle.set(conn.key, list);
    this.#size++;
    return true;
  }

  #evict(conn: Pooled, quit: boolean): void {
    const list = this.#idle.get(conn.key);
    const i = list?.findIndex((e) => e.conn === conn) ?? -1;
    if (!list || i < 0) return;
    clearTimeout(list[i]?.timer);
    list.splice(i, 1);
    if (list.length === 0) this.#idle.delete(conn.key);
    this.#size--;
    if (quit) conn.c.quit();
    setTimeout(() => conn.c.close(), 1000).unref();
  }

  closeAll(): void {
    for (const list of [...this.#idle.values()]) for (const e of [...list]) this.#evict(e.conn, true);
  }
}

function connect(host: RouteHost, opts: TransportOptions, useTls: boolean): Promise<SMTPConnection> {
  const implicit = opts.tls === 'implicit';
  // SNI carries host names only (RFC 6066 §3): a relay or MX given as an address literal gets no
  // servername (Node warns, DEP0123, and a peer could not match it anyway).
  const servername = isIP(host.name) === 0 ? host.name : undefined;
  const c = new SMTPConnection({
    host: host.address,
    port: host.port,
    name: opts.hostname,
    secure: implicit,
    servername,
    ignoreTLS: !useTls,
    requireTLS: opts.tls === 'starttls',
    opportunisticTLS: opts.tls === 'opportunistic',
    tls: {
      rejectUnauthorized: opts.verifyTls,
      servername,
      minVersion: opts.minVersion ?? 'TLSv1',
      ...(opts.ca ? { ca: [...opts.ca] } : {}),
    },
    connectionTimeout: opts.connectTimeout,
    greetingTimeout: opts.timeout,
    socketTimeout: opts.timeout,
    logger: false,
  });
  return new Promise<SMTPConnection>((resolve, reject) => {
    let settled = false;
    let local: string | null = null;
    const fail = (e: unknown) => {
      if (settled) return;
      settled = true;
      // For TLS reporting: our address, and why node:tls refused the certificate (set on the
      // TLS socket before it is destroyed).
      const err = e as SmtpError;
      const tlsSocket = c._socket as { authorizationError?: unknown } | undefined;
      if (err && typeof err === 'object') {
        err.localAddress = local;
        err.certError = tlsSocket?.authorizationError ? String(tlsSocket.authorizationError) : null;
      }
      c.close();
      reject(e);
    };
    c.once('error', fail);
    c.connect((err) => {
      if (err) return fail(err);
      if (!opts.auth) {
        settled = true;
        c.on('error', () => {}); // later errors arrive through send()'s callback
        return resolve(c);
      }
      c.login({ user: opts.auth.user, pass: opts.auth.pass }, (loginErr) => {
        if (loginErr) return fail(loginErr);
        settled = true;
        c.on('error', () => {});
        resolve(c);
      });
    });
    // Our address, read once the socket is connected (nodemailer makes the socket after a turn
    // or two: the host name is resolved first); a failed TLS socket no longer knows it.
    const grab = (turns: number) => {
      const raw = c._socket as Socket | null | undefined;
      if (!raw) {
        if (turns > 0 && !settled) setImmediate(() => grab(turns - 1));
        return;
      }
      if (!raw.connecting) local = raw.localAddress ?? null;
      else raw.once('connect', () => (local = raw.localAddress ?? null));
    };
    grab(20);
  });
}

type Transacted =
  | { readonly kind: 'done'; readonly results: RecipientResult[]; readonly reusable: boolean }
  /** The connection failed before the server answered anything of this transaction. */
  | { readonly kind: 'lost'; readonly error: string };

const CONNECTION_ERRORS = new Set(['ECONNECTION', 'ESOCKET', 'ETIMEDOUT', 'EPROTOCOL']);

function transact(c: SMTPConnection, env: AttemptEnvelope): Promise<Transacted> {
  if (env.smtputf8 && !offers(c, 'SMTPUTF8')) {
    // RFC 6531 §3.4: a message that needs SMTPUTF8 is not sent to a server without it; the
    // sender hears it as 5.6.7 (RFC 6531 §3.6.2 / RFC 3463 "conversion required but not
    // supported"). Nothing was sent, so the connection stays good for other messages.
    const reply = '550 5.6.7 the next hop does not offer SMTPUTF8 (RFC 6531), which this message needs';
    const results = env.recipients.map((address) => ({ address, verdict: 'failed' as const, reply, status: '5.6.7' }));
    return Promise.resolve({ kind: 'done', results, reusable: true });
  }
  return new Promise<Transacted>((resolve) => {
    const body = env.open();
    // nodemailer writes these only when the server offers DSN (RFC 3461 §5.2: relayed on).
    const dsn = {
      ...(env.envid ? { envid: env.envid } : {}),
      ...(env.ret ? { ret: env.ret } : {}),
      ...(env.notify ? { notify: env.notify } : {}),
      ...(env.orcpt ? { orcpt: env.orcpt } : {}),
    };
    const envelope = {
      from: env.sender,
      to: [...env.recipients],
      size: env.size,
      use8BitMime: true,
      ...(Object.keys(dsn).length > 0 ? { dsn } : {}),
    };
    // Did the server send anything at all during this transaction?
    let answered = false;
    const socket = c._socket;
    const onData = () => {
      answered = true;
    };
    if (socket) socket.once('data', onData);
    c.send(envelope, body, (err, info) => {
      if (socket) socket.off('data', onData);
      body.destroy();
      if (!err) {
        const rejected = new Map((info.rejectedErrors ?? []).map((e) => [e.recipient ?? '', e as SmtpError]));
        const results = env.recipients.map((address) => {
          const r = rejected.get(address);
          return r ? fromReply(address, r) : sent(address, info.response);
        });
        resolve({ kind: 'done', results, reusable: true });
        return;
      }
      const e = err as SmtpError;
      // Only when the server said nothing at all to this transaction is it certain that nothing
      // was accepted, so the message may go elsewhere now without any risk of a duplicate.
      if (e.responseCode === undefined && CONNECTION_ERRORS.has(e.code ?? '') && !answered) {
        return resolve({ kind: 'lost', error: describe(e) });
      }
      const perRcpt = new Map((e.rejectedErrors ?? []).map((r) => [r.recipient ?? '', r]));
      const results = env.recipients.map((address) => {
        const r = perRcpt.get(address);
        if (r) return fromReply(address, r);
        return fromReply(address, e);
      });
      resolve({ kind: 'done', results, reusable: false });
    });
  });
}

function sent(address: string, response: string): RecipientResult {
  return { address, verdict: 'sent', reply: clean(response), status: statusOf(response, 2) };
}

/** Maps a reply (or an error without one) to a verdict. */
function fromReply(address: string, e: SmtpError): RecipientResult {
  const code = e.responseCode;
  if (code === undefined || !e.response) {
    return { address, verdict: 'deferred', reply: describe(e), status: '4.4.2' };
  }
  const reply = clean(e.response);
  if (code >= 500 && code < 600) return { address, verdict: 'failed', reply, status: statusOf(reply, 5) };
  return { address, verdict: 'deferred', reply, status: statusOf(reply, 4) };
}

/** The enhanced status code of a reply (RFC 3463), or a generic one of its class. */
export function statusOf(reply: string, cls: 2 | 4 | 5): string {
  const m = /^\d{3}[ -]([245])\.(\d{1,3})\.(\d{1,3})\b/.exec(reply);
  if (m && Number(m[1]) === cls) return `${m[1]}.${m[2]}.${m[3]}`;
  return `${cls}.0.0`;
}

function clean(s: string): string {
  return oneLine(s, 1000);
}

function describe(e: unknown): string {
  const err = e as SmtpError;
  // A refused STARTTLS says so: the reply alone ("500 unknown command") would not (MTA-STS
  // tells a missing STARTTLS from other failures by it).
  if (err?.response && err.command === 'STARTTLS') return clean(`STARTTLS refused: ${err.response}`);
  if (err?.response) return clean(err.response);
  const m = errorMessage(e);
  return clean(err?.code ? `${err.code}: ${m}` : m);
}
