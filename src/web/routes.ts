// What the HTTP and HTTPS listeners answer (web/server.ts), as a list of routes tried in order;
// the first that knows the path answers, everything else is 404. Only GET and HEAD are allowed
// on the paths we serve (405 otherwise), except where a route allows POST (autodiscover): the
// listener reads a request body only for the paths registered with `bodyPaths`, bounded by
// LIMITS.http.maxBodyBytes. The admin API will add its routes here.

import type { MtaStsSettings } from '../hygiene/mta-sts.ts';
import { mtaStsPolicy } from '../hygiene/mta-sts.ts';

export interface WebRequest {
  readonly method: string;
  /** The Host header without port, lower-cased; null when missing or malformed. */
  readonly host: string | null;
  /** The request target's path (no query). */
  readonly path: string;
  /** The request target's query (empty without one). */
  readonly query: URLSearchParams;
  /** The body of a POST to a path registered with `bodyPaths` (at most
   *  LIMITS.http.maxBodyBytes); null for every other request. */
  readonly body: Buffer | null;
  /** Arrived over TLS (the HTTPS listener). */
  readonly secure: boolean;
}

export interface WebResponse {
  readonly status: number;
  readonly headers?: Readonly<Record<string, string>>;
  readonly body: string;
}

/** A route answers the requests it knows, and returns null for the others. */
export type Route = (req: WebRequest) => WebResponse | null | Promise<WebResponse | null>;

export const text = (status: number, body: string, headers: Record<string, string> = {}): WebResponse => ({
  status,
  headers: { 'content-type': 'text/plain; charset=utf-8', 'cache-control': 'no-store', ...headers },
  body,
});

export const NOT_FOUND = text(404, 'not found\n');

export class Router {
  readonly #routes: Route[] = [];
  readonly #bodyPaths = new Set<string>();

  /** `bodyPaths`: the exact paths where this route takes a POST body. */
  add(route: Route, bodyPaths: readonly string[] = []): this {
    this.#routes.push(route);
    for (const p of bodyPaths) this.#bodyPaths.add(p);
    return this;
  }

  /** Whether the listener reads the body of a POST to this path (all others get null). */
  acceptsBody(path: string): boolean {
    return this.#bodyPaths.has(path);
  }

  async handle(req: WebRequest): Promise<WebResponse> {
    for (const route of this.#routes) {
      const res = await route(req);
      if (res) return res;
    }
    return NOT_FOUND;
  }
}

/** GET and HEAD only (HEAD: node:http sends the headers without the body). */
export function readOnly(req: WebRequest): WebResponse | null {
  return onlyMethods(req, ['GET', 'HEAD']);
}

/** null when the request's method is one of `allowed`, else 405 with Allow (RFC 9110 §15.5.6). */
export function onlyMethods(req: WebRequest, allowed: readonly string[]): WebResponse | null {
  return allowed.includes(req.method) ? null : text(405, 'method not allowed\n', { allow: allowed.join(', ') });
}

const ACME_PREFIX = '/.well-known/acme-challenge/';

/** RFC 8555 §8.3: http-01, `http://<name>/.well-known/acme-challenge/<token>` answers the key
 *  authorization. Tokens are base64url (§8.1); anything else is not ours. Plain HTTP only. */
export function acmeHttpRoute(challenge: (token: string) => string | null | Promise<string | null>): Route {
  return async (req) => {
    if (req.secure || !req.path.startsWith(ACME_PREFIX)) return null;
    const token = req.path.slice(ACME_PREFIX.length);
    if (token.length === 0 || token.length > 256 || !/^[A-Za-z0-9_-]+$/.test(token)) return NOT_FOUND;
    const keyAuthorization = await challenge(token);
    if (keyAuthorization === null) return NOT_FOUND;
    return readOnly(req) ?? text(200, keyAuthorization, { 'content-type': 'application/octet-stream' });
  };
}

/** RFC 8461 §3.3: the policy at `https://mta-sts.<domain>/.well-known/mta-sts.txt`, HTTPS only,
 *  for a local domain (the Host header decides), text/plain, never a redirect. */
export function mtaStsRoute(
  hostname: string,
  settings: MtaStsSettings,
  isLocalDomain: (domain: string) => Promise<boolean>,
): Route {
  const policy = mtaStsPolicy(hostname, settings);
  return async (req) => {
    if (!req.secure || req.path !== '/.well-known/mta-sts.txt') return null;
    const host = req.host;
    if (!host?.startsWith('mta-sts.') || !(await isLocalDomain(host.slice('mta-sts.'.length)))) return NOT_FOUND;
    return readOnly(req) ?? text(200, policy, { 'cache-control': 'max-age=300' });
  };
}

/** The Host header's name (RFC 9110 §7.2: uri-host [":" port]), lower-cased; null if malformed. */
export function hostOf(header: string | undefined): string | null {
  if (!header || header.length > 260) return null;
  const h = header.toLowerCase();
  const name = h.startsWith('[') ? h.slice(0, h.indexOf(']') + 1) : (h.split(':')[0] ?? '');
  if (name === '' || !/^(?:[a-z0-9.-]+|\[[0-9a-f:.]+\])$/.test(name)) return null;
  return name.endsWith('.') ? name.slice(0, -1) : name;
}

/** GET /metrics in the Prometheus text format on the HTTP listeners ([metrics] http = true);
 *  `text` is the same exposition as on [metrics] listen (admin/metrics-http.ts). */
export function metricsRoute(text: () => Promise<{ contentType: string; body: string }>): Route {
  return async (req) => {
    if (req.path !== '/metrics') return null;
    const denied = readOnly(req);
    if (denied) return denied;
    const m = await text();
    return { status: 200, headers: { 'content-type': m.contentType, 'cache-control': 'no-store' }, body: m.body };
  };
}
