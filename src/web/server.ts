// The HTTP ([http] listen, port 80) and HTTPS ([http] tls_listen, port 443) listeners. One
// node:http server answers both through the router (web/routes.ts); each listener is a plain TCP
// server that bounds its connections and hands sockets over:
//   - HTTP: straight to node:http.
//   - HTTPS: first the ClientHello is read (tls/client-hello.ts, bounded in bytes and time) and
//     put back, then the socket is wrapped in TLS with the context that handshake is owed:
//       ALPN offers "acme-tls/1" -> the tls-alpn-01 challenge certificate for the SNI name, if a
//         validation of that name is pending, else the connection is closed (RFC 8737 §3: the
//         challenge certificate only in such a handshake, and such a handshake never gets
//         the ordinary certificate or application data);
//       anything else -> the server's certificate (TlsManager, followed across reloads), ALPN
//         http/1.1, then node:http.
//     Why not Node's SNICallback/ALPNCallback: SNICallback picks the secure context (the
//     certificate) from the server name alone, without the ALPN list, and ALPNCallback can only
//     pick a protocol, not a certificate; neither can make the choice depend on both. Reading the
//     hello first makes it exact, and costs one bounded parse per connection.
// Requests: /api/ goes to the admin API (api/app.ts, a hono app through @hono/node-server's
// request listener) when configured; /.well-known/jmap and /jmap/ to JMAP (jmap/http.ts, which
// reads its own bodies within [jmap] limits) when enabled; everything else, untouched (the body not read), to the
// router of `Route` functions (web/routes.ts).
// Bounds: connections per listener ([http] max_connections), header size (LIMITS.http), and one
// deadline ([http] timeout) for the handshake, the headers and the request (body included).
// A body is read only for a POST to a path the router takes one on (Router.acceptsBody), up to
// LIMITS.http.maxBodyBytes (413 above, by Content-Length or as it arrives); other bodies are
// never buffered.

import { createServer as createHttpServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import net, { type AddressInfo } from 'node:net';
import tls from 'node:tls';
import { getRequestListener } from '@hono/node-server';
import { errorMessage } from '../core/errors.ts';
import { readBody } from '../core/http-body.ts';
import { isLoopback, peerAddress } from '../core/ip.ts';
import { LIMITS } from '../core/limits.ts';
import { listenOn } from '../core/listen.ts';
import type { Logger } from '../core/log.ts';
import { accessRefused, watchTls } from '../core/metrics.ts';
import type { NetworkAccess } from '../defense/types.ts';
import { isJmapPath } from '../jmap/http.ts';
import type { TlsManager } from '../tls/certs.ts';
import { parseClientHello } from '../tls/client-hello.ts';
import { logAccess } from './access.ts';
import { hostOf, type Router, text, type WebResponse } from './routes.ts';

export interface WebDeps {
  readonly log: Logger;
  readonly tls: Pick<TlsManager, 'current' | 'onChange'>;
  readonly router: Router;
  /** JMAP (jmap/http.ts), for /.well-known/jmap and /jmap/; none: 404 from the router. */
  readonly jmap?: { handle(req: IncomingMessage, res: ServerResponse): void } | null;
  /** The admin API (api/app.ts), for /api/; none: 404 from the router. */
  readonly api?: { fetch: Parameters<typeof getRequestListener>[0] } | null;
  /** Where the access line of each request goes (web/access.ts); absent: none. */
  readonly accessLog?: Logger | null;
  /** tls-alpn-01 certificates by name (tls/acme-serve.ts: read from the ACME store, which may
   *  be a database away); null without ACME. */
  readonly alpnChallenge: ((name: string) => tls.SecureContext | null | Promise<tls.SecureContext | null>) | null;
  readonly maxConnections: number;
  readonly timeoutMs: number;
  /** Clients the API answers over plain HTTP (default: this machine, core/ip.ts isLoopback). */
  readonly plainApiClient?: (ip: string) => boolean;
  /** The IP allow and deny lists and the bans (defense/access.ts), asked first at accept. */
  readonly access?: NetworkAccess;
}

/** What a client refused by the deny list or a ban reads on plain HTTP (no handshake on HTTPS). */
const REFUSED_BODY = 'your address may not connect here\n';
const REFUSED_HTTP = `HTTP/1.1 403 Forbidden\r\nconnection: close\r\ncontent-type: text/plain\r\ncontent-length: ${Buffer.byteLength(REFUSED_BODY)}\r\n\r\n${REFUSED_BODY}`;

const ACME_TLS_ALPN = 'acme-tls/1';

export class WebServer {
  readonly #deps: WebDeps;
  readonly #http: Server;
  readonly #listeners: net.Server[] = [];
  #context: tls.SecureContext;
  readonly #unsubscribe: () => void;

  constructor(deps: WebDeps) {
    this.#deps = deps;
    this.#context = tls.createSecureContext(deps.tls.current);
    this.#unsubscribe = deps.tls.onChange((p) => {
      this.#context = tls.createSecureContext(p);
    });
    // @hono/node-server puts its lighter Request/Response (subclasses of Node's) in globalThis
    // when the listener is made; with that turned off hono's 204 answers fail on Node 24.
    const api = deps.api ? getRequestListener(deps.api.fetch) : null;
    this.#http = createHttpServer(
      {
        maxHeaderSize: LIMITS.http.maxHeaderSize,
        headersTimeout: deps.timeoutMs,
        requestTimeout: deps.timeoutMs,
        keepAliveTimeout: Math.min(5000, deps.timeoutMs),
        connectionsCheckingInterval: Math.min(1000, deps.timeoutMs),
      },
      (req, res) => {
        if (api && req.url?.startsWith('/api/')) {
          logAccess(deps.accessLog ?? null, req, res);
          // Bearer tokens and passwords never cross the network in clear: over plain HTTP the
          // API answers this machine only (an ssh tunnel, a local proxy); elsewhere HTTPS.
          const secure = (req.socket as tls.TLSSocket).encrypted === true;
          if (!secure && !(deps.plainApiClient ?? isLoopback)(peerAddress(req.socket.remoteAddress)))
            httpsRequired(res);
          else void api(req, res);
        } else if (deps.jmap && isJmapPath(req.url ?? '')) {
          logAccess(deps.accessLog ?? null, req, res);
          deps.jmap.handle(req, res);
        } else this.#request(req, res);
      },
    );
    this.#http.timeout = deps.timeoutMs;
    // No 'clientError' listener: node:http then answers 400, 408 or 431 and closes.
  }

  /** Binds the plain and the TLS listeners; resolves with their addresses, plain first. */
  async listen(plain: readonly string[], secure: readonly string[]): Promise<AddressInfo[]> {
    const bound: AddressInfo[] = [];
    for (const [addrs, tlsPort, onSocket] of [
      [plain, false, (s: net.Socket) => this.#http.emit('connection', s)],
      [secure, true, (s: net.Socket) => this.#tlsConnection(s)],
    ] as const) {
      for (const a of addrs) {
        const server = net.createServer((s) => {
          if (!this.#refused(s, tlsPort)) onSocket(s);
        });
        server.maxConnections = this.#deps.maxConnections;
        this.#listeners.push(server);
        bound.push(await listenOn(server, a));
      }
    }
    return bound;
  }

  /** The deny list or a ban refuses the client of `s`: told so on plain HTTP, closed at once
   *  on HTTPS. */
  #refused(s: net.Socket, secure: boolean): boolean {
    const v = this.#deps.access?.verdict(peerAddress(s.remoteAddress));
    if (!v || (v.kind !== 'deny' && v.kind !== 'banned')) return false;
    accessRefused.inc({ service: 'http', reason: v.kind });
    s.on('error', () => s.destroy());
    if (secure) s.destroy();
    else {
      s.end(REFUSED_HTTP);
      setTimeout(() => s.destroy(), LIMITS.imap.closeLingerMs).unref();
    }
    return true;
  }

  #request(req: IncomingMessage, res: ServerResponse): void {
    logAccess(this.#deps.accessLog ?? null, req, res);
    const url = req.url ?? '';
    const q = url.indexOf('?');
    const path = q < 0 ? url : url.slice(0, q);
    const method = req.method ?? '';
    const answer = (r: WebResponse) =>
      res.writeHead(r.status, { ...r.headers, 'content-length': Buffer.byteLength(r.body) }).end(r.body);
    const route = (body: Buffer | null) =>
      this.#deps.router
        .handle({
          method,
          host: hostOf(req.headers.host),
          path,
          query: new URLSearchParams(q < 0 ? '' : url.slice(q + 1)),
          body,
          secure: (req.socket as tls.TLSSocket).encrypted === true,
        })
        .then(answer, (e: unknown) => {
          this.#deps.log.error({ err: errorMessage(e), path }, 'http: request failed');
          res.writeHead(500).end();
        });
    if (method !== 'POST' || !this.#deps.router.acceptsBody(path)) {
      void route(null);
      return;
    }
    void readBody(req, LIMITS.http.maxBodyBytes).then((body) => {
      if (body === 'too large') answer(text(413, 'request body too large\n', { connection: 'close' }));
      else if (body !== 'aborted') void route(body);
    });
  }

  #tlsConnection(socket: net.Socket): void {
    const max = LIMITS.http.maxClientHelloBytes;
    const chunks: Buffer[] = [];
    let length = 0;
    socket.setTimeout(this.#deps.timeoutMs, () => socket.destroy());
    socket.on('error', () => socket.destroy());
    const onData = (chunk: Buffer) => {
      chunks.push(chunk);
      length += chunk.length;
      const seen = Buffer.concat(chunks, length);
      const hello = parseClientHello(seen, max);
      if (hello.kind === 'more') return;
      socket.off('data', onData);
      socket.pause();
      if (hello.kind === 'invalid') {
        socket.destroy();
        return;
      }
      socket.unshift(seen);
      if (hello.alpn.includes(ACME_TLS_ALPN)) {
        // The socket stays paused (its deadline running) while the answer is looked up.
        const name = hello.serverName;
        void Promise.resolve(name ? this.#deps.alpnChallenge?.(name) : null).then(
          (context) => this.#alpnAnswer(socket, name, context ?? null),
          () => socket.destroy(),
        );
        return;
      }
      const t = new tls.TLSSocket(socket, {
        isServer: true,
        secureContext: this.#context,
        ALPNProtocols: ['http/1.1'],
      });
      watchTls('http', t);
      t.on('error', () => t.destroy());
      this.#http.emit('connection', t);
    };
    socket.on('data', onData);
  }

  /** RFC 8737 §3: the challenge certificate in an acme-tls/1 handshake, then close; no
   *  pending validation of that name: the connection is closed. */
  #alpnAnswer(socket: net.Socket, name: string | null, context: tls.SecureContext | null): void {
    if (!context || socket.destroyed) {
      socket.destroy();
      return;
    }
    const t = new tls.TLSSocket(socket, { isServer: true, secureContext: context, ALPNProtocols: [ACME_TLS_ALPN] });
    t.on('secure', () => t.end());
    t.on('error', () => t.destroy());
    this.#deps.log.debug({ name }, 'tls-alpn-01: challenge certificate served');
  }

  async close(): Promise<void> {
    this.#unsubscribe();
    this.#http.closeAllConnections();
    await Promise.all(this.#listeners.map((s) => new Promise<void>((r) => s.close(() => r()))));
    this.#http.close();
  }
}

/** RFC 9457 answer to an API request over plain HTTP from another machine. */
function httpsRequired(res: ServerResponse): void {
  const body = JSON.stringify({
    type: 'https://arcline.dev/problems/https-required',
    title: 'HTTPS required',
    status: 403,
    detail: 'the admin API answers over HTTPS ([http] tls_listen), or over plain HTTP from this machine only',
  });
  res
    .writeHead(403, { 'content-type': 'application/problem+json', 'content-length': Buffer.byteLength(body) })
    .end(body);
}
