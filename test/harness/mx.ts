// A remote mail server for tests: a real smtp-server on a loopback address, standing in for
// another organisation's MX. It records every transaction it accepts and answers each RCPT and
// each end of DATA as the test says, so tests can script 4xx, 5xx and per-recipient outcomes.

import type { AddressInfo } from 'node:net';
import { SMTPServer, type SMTPServerSession } from 'smtp-server';
import { generateSelfSigned, type TlsPair } from '../../src/tls/certs.ts';
import { installSmtpServerPatches } from './smtp-server-greeting.ts';

let pairOnce: Promise<TlsPair> | null = null;

export interface ReceivedMail {
  readonly from: string;
  readonly to: string[];
  readonly data: Buffer;
  readonly secure: boolean;
  readonly helo: string;
  readonly user: string | undefined;
  /** MAIL's RET and ENVID as the sink parsed them (only with `dsn: true`). */
  readonly dsn?: { readonly ret?: string | null; readonly envid?: string | null };
  /** Each RCPT's NOTIFY and ORCPT (only with `dsn: true`), by address. */
  readonly rcptDsn: Record<string, { readonly notify?: string[]; readonly orcpt?: string }>;
}

/** A reply to give instead of accepting: e.g. { code: 550, message: '5.1.1 No such user' }. */
export interface Refusal {
  readonly code: number;
  readonly message: string;
}

export interface FakeMxOptions {
  readonly host?: string;
  readonly port?: number;
  /** Decides a RCPT: null accepts. */
  readonly onRcpt?: (address: string, session: SMTPServerSession) => Refusal | null;
  /** Decides the end of DATA: null accepts. */
  readonly onData?: (mail: ReceivedMail) => Refusal | null;
  /** Offer STARTTLS (default true). */
  readonly starttls?: boolean;
  /** Require AUTH (a smarthost): user -> password. */
  readonly users?: Record<string, string>;
  /** Implicit TLS (port 465 style). */
  readonly secure?: boolean;
  /** Wait this long before answering the end of DATA (slow servers, concurrency tests). */
  readonly dataDelayMs?: number;
  /** Close connections idle this long (smtp-server's socketTimeout). */
  readonly idleTimeoutMs?: number;
  /** The certificate to offer (default: one self-signed for mx.remote.test). */
  readonly tls?: TlsPair;
  /** Offer SMTPUTF8 (default true). */
  readonly smtputf8?: boolean;
  /** Offer DSN (RFC 3461; default false) and record its parameters. */
  readonly dsn?: boolean;
}

export interface FakeMx {
  readonly host: string;
  readonly port: number;
  readonly mails: ReceivedMail[];
  /** Every RCPT seen, accepted or not. */
  readonly rcpts: string[];
  connections: number;
  /** Most connections open at the same time so far. */
  readonly maxOpen: number;
  /** Resolves when `n` mails have been accepted in total. */
  waitFor(n: number, timeoutMs?: number): Promise<ReceivedMail[]>;
  close(): Promise<void>;
}

function refusal(r: Refusal): Error & { responseCode: number } {
  const e = new Error(r.message) as Error & { responseCode: number };
  e.responseCode = r.code;
  return e;
}

export async function startFakeMx(opts: FakeMxOptions = {}): Promise<FakeMx> {
  const mails: ReceivedMail[] = [];
  const rcpts: string[] = [];
  const waiters: { n: number; resolve: () => void }[] = [];
  pairOnce ??= generateSelfSigned('mx.remote.test');
  const pair = opts.tls ?? (await pairOnce);
  const state = { connections: 0, open: 0, maxOpen: 0 };
  installSmtpServerPatches(); // greets at once (greetingDelay below), not after 100 ms
  const server = new SMTPServer({
    // @ts-expect-error greetingDelay is the option of our smtp-server patch
    greetingDelay: 0,
    key: pair.key,
    cert: pair.cert,
    secure: opts.secure ?? false,
    hideSTARTTLS: opts.starttls === false,
    hideSMTPUTF8: opts.smtputf8 === false,
    hideDSN: opts.dsn !== true,
    authOptional: !opts.users,
    authMethods: ['PLAIN', 'LOGIN'],
    // starttls: false is a server without TLS at all: STARTTLS is refused even when sent unasked.
    disabledCommands: [...(opts.users ? [] : ['AUTH']), ...(opts.starttls === false ? ['STARTTLS'] : [])],
    onAuth: (auth, _session, cb) => {
      if (opts.users && opts.users[auth.username ?? ''] === auth.password) return cb(null, { user: auth.username });
      cb(refusal({ code: 535, message: 'Authentication failed' }));
    },
    logger: false,
    disableReverseLookup: true,
    size: 100 * 1024 * 1024,
    ...(opts.idleTimeoutMs ? { socketTimeout: opts.idleTimeoutMs } : {}),
    onConnect: (_s, cb) => {
      state.connections++;
      state.open++;
      state.maxOpen = Math.max(state.maxOpen, state.open);
      cb();
    },
    onClose: () => {
      state.open--;
    },
    onRcptTo: (address, session, cb) => {
      rcpts.push(address.address);
      const r = opts.onRcpt?.(address.address, session) ?? null;
      cb(r ? refusal(r) : undefined);
    },
    onData: (stream, session, cb) => {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const mail: ReceivedMail = {
          from: session.envelope.mailFrom ? session.envelope.mailFrom.address : '',
          to: session.envelope.rcptTo.map((r) => r.address),
          data: Buffer.concat(chunks),
          secure: session.secure,
          helo: session.hostNameAppearsAs,
          user: session.user as string | undefined,
          ...(session.envelope.dsn ? { dsn: session.envelope.dsn } : {}),
          rcptDsn: Object.fromEntries(
            session.envelope.rcptTo.map((r) => [
              r.address,
              (r as { dsn?: { notify?: string[]; orcpt?: string } }).dsn ?? {},
            ]),
          ),
        };
        const finish = () => {
          const r = opts.onData?.(mail) ?? null;
          if (r) return cb(refusal(r));
          mails.push(mail);
          for (const w of [...waiters]) {
            if (mails.length >= w.n) {
              waiters.splice(waiters.indexOf(w), 1);
              w.resolve();
            }
          }
          cb(null, 'Ok: queued');
        };
        if (opts.dataDelayMs) setTimeout(finish, opts.dataDelayMs);
        else finish();
      });
    },
  });
  server.on('error', () => {});
  const host = opts.host ?? '127.0.0.1';
  await new Promise<void>((resolve, reject) => {
    server.server.once('error', reject);
    server.listen(opts.port ?? 0, host, () => resolve());
  });
  const port = (server.server.address() as AddressInfo).port;
  return {
    host,
    port,
    mails,
    rcpts,
    get connections() {
      return state.connections;
    },
    set connections(v: number) {
      state.connections = v;
    },
    get maxOpen() {
      return state.maxOpen;
    },
    waitFor(n, timeoutMs = 10_000) {
      if (mails.length >= n) return Promise.resolve(mails);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(
          () => reject(new Error(`fake MX: ${mails.length} of ${n} mails after ${timeoutMs} ms`)),
          timeoutMs,
        );
        waiters.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve(mails);
          },
        });
      });
    },
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
