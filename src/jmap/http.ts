// The JMAP HTTP resources (RFC 8620) on the [http] listeners, taken from node:http by
// web/server.ts (like /api/): GET /.well-known/jmap (the session, §2), POST /jmap/api (§3),
// POST /jmap/upload/{accountId} and GET /jmap/download/{accountId}/{blobId}/{name} (§6.1,
// §6.2), GET /jmap/eventsource (§7.3). Every request is authenticated (auth.ts); plain HTTP is
// answered from this machine only. CORS is open (`Access-Control-Allow-Origin: *`, preflight
// answered): credentials travel in the Authorization header, never in cookies, so a web client
// on another origin may use them (RFC 8620 §8.5 and as JMAP servers do).
// Bounds: API bodies to maxSizeRequest before parsing (413 + limit problem), uploads to
// maxSizeUpload while they arrive; maxConcurrentRequests and maxConcurrentUpload per account
// (429 + limit problem); event streams per account (LIMITS.jmap.maxEventSources).

import type { IncomingMessage, ServerResponse } from 'node:http';
import type { TLSSocket } from 'node:tls';
import { errorMessage } from '../core/errors.ts';
import { readBody } from '../core/http-body.ts';
import type { AccountId } from '../core/ids.ts';
import { isLoopback, peerAddress } from '../core/ip.ts';
import { LIMITS } from '../core/limits.ts';
import type { Logger } from '../core/log.ts';
import { jmapCalls, jmapRefused } from '../core/metrics.ts';
import { type AuthResult, authenticate, challenge, type JmapAuthDeps } from './auth.ts';
import type { BlobStore } from './blob-store.ts';
import { type Problem, problem } from './core/errors.ts';
import { type CoreLimits, type MethodRegistry, processRequest } from './core/registry.ts';
import { parseRequest } from './core/request.ts';
import { type PushHub, parseEventSourceQuery, streamEvents } from './push.ts';
import { accountIdOf, buildSession } from './session.ts';

export interface JmapHttpDeps {
  readonly registry: MethodRegistry;
  readonly limits: CoreLimits;
  readonly auth: JmapAuthDeps;
  readonly blobs: BlobStore;
  readonly hub: PushHub;
  readonly log: Logger;
  /** [jmap] base_url; empty: from the request's Host. */
  readonly baseUrl: string;
  readonly hostname: string;
  /** Clients answered over plain HTTP (default: this machine). */
  readonly plainClient?: (ip: string) => boolean;
}

const CORS: Record<string, string> = {
  'access-control-allow-origin': '*',
  'access-control-allow-methods': 'GET, POST, OPTIONS',
  'access-control-allow-headers': 'Authorization, Content-Type, Accept, Last-Event-ID',
  'access-control-max-age': '86400',
};

/** True for the paths this module answers. */
export function isJmapPath(url: string): boolean {
  return url === '/.well-known/jmap' || url.startsWith('/.well-known/jmap?') || url.startsWith('/jmap/');
}

class Slots {
  readonly #counts = new Map<string, number>();
  take(key: string, max: number): boolean {
    const n = this.#counts.get(key) ?? 0;
    if (n >= max) return false;
    this.#counts.set(key, n + 1);
    return true;
  }
  give(key: string): void {
    const n = (this.#counts.get(key) ?? 1) - 1;
    if (n <= 0) this.#counts.delete(key);
    else this.#counts.set(key, n);
  }
}

export class JmapHttp {
  readonly #deps: JmapHttpDeps;
  readonly #requests = new Slots();
  readonly #uploads = new Slots();
  readonly #streams = new Slots();

  constructor(deps: JmapHttpDeps) {
    this.#deps = deps;
  }

  /** Answers one request (web/server.ts calls it for isJmapPath URLs). */
  handle(req: IncomingMessage, res: ServerResponse): void {
    this.#handle(req, res).catch((e: unknown) => {
      this.#deps.log.error({ err: errorMessage(e), path: req.url?.slice(0, 200) }, 'jmap: request failed');
      if (!res.headersSent) send(res, 500, { 'content-type': 'text/plain' }, 'internal error\n');
      else res.destroy();
    });
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://x');
    const path = url.pathname;
    const method = req.method ?? '';
    const ip = peerAddress(req.socket.remoteAddress);
    const secure = (req.socket as TLSSocket).encrypted === true;
    if (!secure && !(this.#deps.plainClient ?? isLoopback)(ip)) {
      sendProblem(res, {
        type: 'https://arcline.dev/problems/https-required',
        status: 403,
        detail: 'JMAP is answered over HTTPS ([http] tls_listen), or over plain HTTP from this machine only',
      });
      return;
    }
    // CORS preflight (Fetch standard): no credentials are asked for.
    if (method === 'OPTIONS') {
      send(res, 204, { ...CORS, 'content-length': '0' }, '');
      return;
    }
    const route = matchRoute(method, path);
    if (route.kind === 'none') {
      send(res, route.status, { ...CORS, 'content-type': 'text/plain', ...route.headers }, route.text);
      req.resume();
      return;
    }
    const who = await authenticate(this.#deps.auth, req.headers.authorization, ip);
    if (!who.ok) {
      this.#unauthorized(res, who);
      req.resume();
      return;
    }
    const account = who.account;
    const accountId = accountIdOf(account);
    switch (route.kind) {
      case 'session':
        return sendJson(res, 200, this.#session(req, secure, account), { 'cache-control': 'no-cache, no-store' });
      case 'api':
        return this.#api(req, res, account, accountId, secure);
      case 'upload':
        return this.#upload(req, res, accountId, route.accountId);
      case 'download':
        return this.#download(res, account, accountId, route, url.searchParams);
      case 'eventsource':
        return this.#eventSource(res, account, accountId, url.searchParams);
    }
  }

  #unauthorized(res: ServerResponse, r: Extract<AuthResult, { ok: false }>): void {
    jmapRefused.inc({ kind: 'auth' });
    const headers: Record<string, string> =
      r.status === 401 ? { 'www-authenticate': challenge(this.#deps.auth.tokens !== null) } : {};
    if (r.status === 429) headers['retry-after'] = '60';
    sendProblem(res, { type: 'about:blank', status: r.status, detail: r.detail }, headers);
  }

  #session(req: IncomingMessage, secure: boolean, account: AccountId): Record<string, unknown> {
    return buildSession(this.#deps.registry, account, this.#baseUrl(req, secure));
  }

  #baseUrl(req: IncomingMessage, secure: boolean): string {
    if (this.#deps.baseUrl) return this.#deps.baseUrl;
    const host = req.headers.host;
    if (host && /^[A-Za-z0-9.-]+(?::[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](?::[0-9]{1,5})?$/.test(host))
      return `${secure ? 'https' : 'http'}://${host}`;
    return `https://${this.#deps.hostname}`;
  }

  async #api(
    req: IncomingMessage,
    res: ServerResponse,
    account: AccountId,
    accountId: string,
    secure: boolean,
  ): Promise<void> {
    const L = this.#deps.limits;
    // §3.1: "The request MUST be of type application/json"; §3.6.1 notJSON is "The content type
    // of the request was not application/json or the request did not parse as I-JSON" (notRequest
    // is for JSON that is no Request object), so any other type, or none, is notJSON.
    if (!isJsonType(req.headers['content-type'])) {
      req.resume();
      return this.#refuse(res, problem('notJSON', 400, 'the request is not of type application/json (RFC 8620 §3.1)'));
    }
    if (!this.#requests.take(account, L.maxConcurrentRequests)) {
      req.resume();
      return this.#refuse(res, problem('limit', 429, 'too many requests at once', 'maxConcurrentRequests'));
    }
    try {
      const body = await readBody(req, L.maxSizeRequest);
      if (body === 'aborted') return;
      if (body === 'too large')
        return this.#refuse(
          res,
          problem('limit', 413, `the request is larger than ${L.maxSizeRequest} bytes`, 'maxSizeRequest'),
          { connection: 'close' },
        );
      // The registry as it is now: capabilities registered after start count at once.
      const registry = this.#deps.registry;
      const capabilities = new Set(registry.capabilities().keys());
      const parsed = await parseRequest(body, { capabilities, maxCalls: L.maxCallsInRequest });
      if (!parsed.ok) return this.#refuse(res, parsed.problem);
      const session = this.#session(req, secure, account);
      const response = await processRequest(registry, parsed.request, {
        account,
        accountId,
        limits: L,
        sessionState: String(session.state),
        onCall: (name, result) => jmapCalls.inc({ method: registry.lookup(name) ? name : 'other', result }),
        onFailure: (name, e) =>
          this.#deps.log.error({ account, method: name.slice(0, 100), err: errorMessage(e) }, 'jmap: method failed'),
      });
      sendJson(res, 200, response, { 'cache-control': 'no-cache, no-store' });
    } finally {
      this.#requests.give(account);
    }
  }

  #refuse(res: ServerResponse, p: Problem, headers: Record<string, string> = {}): void {
    jmapRefused.inc({ kind: p.type.slice(p.type.lastIndexOf(':') + 1) });
    sendProblem(res, p, headers);
  }

  async #upload(req: IncomingMessage, res: ServerResponse, accountId: string, target: string): Promise<void> {
    const L = this.#deps.limits;
    if (target !== accountId) {
      req.resume();
      return sendProblem(res, { type: 'about:blank', status: 404, detail: 'no such account' });
    }
    if (Number(req.headers['content-length'] ?? 0) > L.maxSizeUpload) {
      req.resume();
      return this.#refuse(res, problem('limit', 413, `larger than ${L.maxSizeUpload} bytes`, 'maxSizeUpload'), {
        connection: 'close',
      });
    }
    if (!this.#uploads.take(accountId, L.maxConcurrentUpload)) {
      req.resume();
      return this.#refuse(res, problem('limit', 429, 'too many uploads at once', 'maxConcurrentUpload'));
    }
    try {
      const type = mediaType(req.headers['content-type']) ?? 'application/octet-stream';
      // Not destroyed when the store stops reading (too large): the 413 must still go out.
      const stored = await this.#deps.blobs.put(accountId, req.iterator({ destroyOnReturn: false }), L.maxSizeUpload);
      if (stored === 'too large') {
        req.pause();
        return this.#refuse(res, problem('limit', 413, `larger than ${L.maxSizeUpload} bytes`, 'maxSizeUpload'), {
          connection: 'close',
        });
      }
      if (stored === 'over quota') {
        req.pause();
        jmapRefused.inc({ kind: 'overQuota' });
        return sendProblem(
          res,
          {
            type: 'https://arcline.dev/problems/upload-room',
            status: 507,
            detail: 'too many unused uploads in this account; use them or let them expire (1 hour)',
          },
          { connection: 'close' },
        );
      }
      // §6.1: 201 Created with accountId, blobId, type, size.
      sendJson(res, 201, { accountId, blobId: stored.blobId, type, size: stored.size });
    } finally {
      this.#uploads.give(accountId);
    }
  }

  async #download(
    res: ServerResponse,
    account: AccountId,
    accountId: string,
    route: { accountId: string; blobId: string; name: string },
    query: URLSearchParams,
  ): Promise<void> {
    const blob = route.accountId === accountId ? await this.#deps.blobs.open(accountId, route.blobId, account) : null;
    if (!blob) return sendProblem(res, { type: 'about:blank', status: 404, detail: 'no such blob' });
    const type = mediaType(query.get('type') ?? undefined) ?? 'application/octet-stream';
    res.writeHead(200, {
      ...CORS,
      'content-type': type,
      'content-length': String(blob.size),
      'content-disposition': contentDisposition(route.name),
      // §6.2: the blob behind an id never changes.
      'cache-control': 'private, immutable, max-age=31536000',
      'x-content-type-options': 'nosniff',
    });
    const stream = blob.stream();
    stream.on('error', () => res.destroy());
    res.once('close', () => stream.destroy());
    stream.pipe(res);
  }

  #eventSource(res: ServerResponse, account: AccountId, accountId: string, query: URLSearchParams): void {
    const opts = parseEventSourceQuery(query);
    if (typeof opts === 'string') {
      sendProblem(res, { type: 'about:blank', status: 400, detail: opts });
      return;
    }
    if (!this.#streams.take(account, LIMITS.jmap.maxEventSources)) {
      sendProblem(res, { type: 'about:blank', status: 429, detail: 'too many event streams' });
      return;
    }
    res.once('close', () => this.#streams.give(account));
    streamEvents(this.#deps.hub, account, accountId, opts, res, CORS);
  }
}

type Route =
  | { kind: 'session' | 'api' | 'eventsource' }
  | { kind: 'upload'; accountId: string }
  | { kind: 'download'; accountId: string; blobId: string; name: string }
  | { kind: 'none'; status: number; text: string; headers: Record<string, string> };

function matchRoute(method: string, path: string): Route {
  const only = (allowed: string, r: Route): Route =>
    method === allowed || (allowed === 'GET' && method === 'HEAD')
      ? r
      : { kind: 'none', status: 405, text: 'method not allowed\n', headers: { allow: `${allowed}, OPTIONS` } };
  if (path === '/.well-known/jmap') return only('GET', { kind: 'session' });
  if (path === '/jmap/api' || path === '/jmap/api/') return only('POST', { kind: 'api' });
  if (path === '/jmap/eventsource') return only('GET', { kind: 'eventsource' });
  const parts = path.split('/');
  if (parts[2] === 'upload' && parts.length === 4) return only('POST', { kind: 'upload', accountId: parts[3] ?? '' });
  if (parts[2] === 'download' && parts.length === 6) {
    let name: string;
    try {
      name = decodeURIComponent(parts[5] ?? '');
    } catch {
      name = 'blob';
    }
    return only('GET', { kind: 'download', accountId: parts[3] ?? '', blobId: parts[4] ?? '', name });
  }
  return { kind: 'none', status: 404, text: 'not found\n', headers: {} };
}

/** Whether a Content-Type is application/json (any case, with parameters such as charset, as
 *  browsers and jmap-jam send: RFC 9110 §8.3.1). */
function isJsonType(v: string | undefined): boolean {
  return v !== undefined && /^application\/json\s*(?:;|$)/i.test(v.trim());
}

/** A media type "type/subtype" (parameters kept when plain), or null. */
function mediaType(v: string | undefined): string | null {
  if (!v || v.length > 200) return null;
  return /^[A-Za-z0-9!#$&^_.+-]+\/[A-Za-z0-9!#$&^_.+-]+(?:\s*;\s*[A-Za-z0-9_.-]+=(?:[A-Za-z0-9_.+-]+|"[^"\\\r\n]*"))*$/.test(
    v,
  )
    ? v
    : null;
}

/** RFC 6266 attachment with an ASCII fallback and the UTF-8 name in filename* (RFC 8187). */
export function contentDisposition(name: string): string {
  const clean = name.replace(/[\p{Cc}]/gu, '').slice(0, 255) || 'blob';
  const ascii = clean.replace(/[^\x20-\x7e]|["\\]/g, '_');
  const encoded = encodeURIComponent(clean).replace(/['()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
  return `attachment; filename="${ascii}"; filename*=UTF-8''${encoded}`;
}

function send(res: ServerResponse, status: number, headers: Record<string, string>, body: string | Buffer): void {
  res.writeHead(status, { ...headers, 'content-length': String(Buffer.byteLength(body)) }).end(body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, headers: Record<string, string> = {}): void {
  send(res, status, { ...CORS, 'content-type': 'application/json', ...headers }, JSON.stringify(value));
}

/** RFC 7807 problem details (RFC 8620 §3.6.1). */
function sendProblem(res: ServerResponse, p: Problem, headers: Record<string, string> = {}): void {
  send(res, p.status, { ...CORS, 'content-type': 'application/problem+json', ...headers }, JSON.stringify(p));
}
