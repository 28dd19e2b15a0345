// Authentication and roles of the admin API: Bearer tokens (admin/access.ts), the self-service
// login (POST /api/v1/login, through the Authenticator: the same path, throttling and log lines
// as IMAP and submission), GET /api/v1/me, and the role checks every route makes.
//
// Bad tokens are throttled per client address with the login throttle (auth/throttle.ts: slowed
// down, an attacking address refused with 429) and logged like IMAP's failures, so the same
// fail2ban filter matches them (docs/security.md):
//   msg "auth failed" info service "http", ip, user (the token id, or "(token)"), reason "token"

import { setTimeout as sleep } from 'node:timers/promises';
import { createRoute, z } from '@hono/zod-openapi';
import type { Context, MiddlewareHandler } from 'hono';
import { formatRole, type Role } from '../admin/access.ts';
import { formatAddress, normalizeDomain, parseAddress } from '../core/address.ts';
import { peerAddress } from '../core/ip.ts';
import {
  type ApiApp,
  type ApiDeps,
  type ApiEnv,
  type Caller,
  json,
  jsonBody,
  PROBLEMS,
  Problem,
  SECURITY,
} from './common.ts';

/** Session tokens of POST /api/v1/login live this long. */
export const SESSION_MS = 12 * 60 * 60 * 1000;
const BEARER = /^Bearer ([!-~]{1,200})$/;
const TOKEN_ID = /^arc_([0-9a-f]{16})_/;

export function clientIp(c: Context<ApiEnv>): string {
  // No socket when the app is asked in-process (app.request: the OpenAPI document for docs/).
  return peerAddress(c.env?.incoming?.socket.remoteAddress);
}

/** Authenticates every /api/v1/ request but the login; sets `caller`. */
export function bearer(deps: ApiDeps): MiddlewareHandler<ApiEnv> {
  return async (c, next) => {
    const throttle = deps.authenticator.throttle;
    const ip = c.get('ip');
    if (c.req.path === '/api/v1/login') return next();
    const header = c.req.header('authorization');
    if (header === undefined) throw new Problem(401, 'unauthorized', 'an Authorization: Bearer token is needed');
    const m = BEARER.exec(header);
    // Verified first (cheap, constant time): a valid token is never slowed down by failures
    // of others behind the same address; failures are slowed and, past the limit, refused.
    const token = m ? await deps.access.verify(m[1] as string) : null;
    if (!token) {
      const user = (m && TOKEN_ID.exec(m[1] as string)?.[1]) ?? '(token)';
      const gate = throttle.gate(ip, null);
      if (gate.kind === 'refuse') {
        deps.log.warn({ service: 'http', ip, user, failures: gate.pairFailures }, 'auth refused');
        throw new Problem(429, 'throttled', 'too many failed authentications from this address; try later');
      }
      if (gate.waitMs > 0) {
        deps.log.debug({ service: 'http', ip, user, delay_ms: gate.waitMs }, 'auth delayed');
        await sleep(gate.waitMs);
      }
      throttle.failed(ip, null);
      deps.log.info({ service: 'http', ip, user, reason: 'token' }, 'auth failed');
      throw new Problem(401, 'unauthorized', 'the token is not valid (unknown, revoked or expired)');
    }
    // A user's token (a session, or user:ADDR) ends with the user: deleted or disabled, it is
    // refused at once, as its IMAP login would be.
    if (token.role.kind === 'user' && !(await deps.ops.getUser(token.role.user))?.enabled) {
      throw new Problem(401, 'unauthorized', 'the user of this token is disabled or gone');
    }
    const caller: Caller = {
      role: token.role,
      tokenId: token.id,
      actor: token.kind === 'session' && token.role.kind === 'user' ? token.role.user : token.name || token.id,
    };
    c.set('caller', caller);
    return next();
  };
}

/** What a route touches: everything (admin only), one domain, or one user (`self`: a user may
 *  do it to their own record). */
export type Scope =
  | { readonly admin: true }
  | { readonly domain: string }
  | { readonly user: string; readonly self?: boolean };

/** Throws 403 unless the caller's role may do this. `write`: anything but a read. */
export function authorize(c: Context<ApiEnv>, scope: Scope, write: boolean): Caller {
  const caller = c.get('caller');
  if (!allowed(caller.role, scope, write)) {
    throw new Problem(403, 'forbidden', `the role ${formatRole(caller.role)} may not do this`);
  }
  return caller;
}

function allowed(role: Role, scope: Scope, write: boolean): boolean {
  switch (role.kind) {
    case 'admin':
      return true;
    case 'readonly':
      return !write;
    case 'domain':
      if ('admin' in scope) return false;
      if ('domain' in scope) return normalizeDomain(scope.domain) === role.domain;
      return domainOf(scope.user) === role.domain;
    case 'user':
      return 'user' in scope && scope.self === true && canonical(scope.user) === role.user;
  }
}

/** The domain a role is limited to (domain admins), for filtering lists; null: not limited. */
export function roleDomain(c: Context<ApiEnv>): string | null {
  const r = c.get('caller').role;
  return r.kind === 'domain' ? r.domain : null;
}

function canonical(address: string): string | null {
  const a = parseAddress(address);
  return a ? formatAddress(a) : null;
}

export function domainOf(address: string): string | null {
  const a = parseAddress(address);
  return a ? (a.domain as string) : null;
}

const Login = z
  .strictObject({ username: z.string().min(1).max(320), password: z.string().min(1).max(1024) })
  .openapi('LoginRequest');
const Session = z
  .object({
    token: z.string(),
    role: z.literal('user'),
    user: z.string(),
    expiresAt: z.string().openapi({ format: 'date-time' }),
  })
  .openapi('Session');
const Me = z
  .object({
    role: z.enum(['admin', 'domain', 'user', 'readonly']),
    domain: z.string().nullable(),
    user: z.string().nullable(),
    tokenId: z.string(),
  })
  .openapi('Me');

export function authRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/login',
      tags: ['auth'],
      summary: 'Log in with a user password; returns a 12 h session token (role user)',
      security: [],
      request: { body: jsonBody(Login) },
      responses: { 200: json(Session, 'Session token'), ...PROBLEMS },
    }),
    async (c) => {
      const { username, password } = c.req.valid('json');
      const r = await deps.authenticator.login({ service: 'http', ip: c.get('ip'), username, password });
      if (!r.ok) {
        if (r.reason === 'throttled') throw new Problem(429, 'throttled', 'too many failed logins; try later');
        if (r.reason === 'busy') throw new Problem(503, 'busy', 'too many logins at once; try again');
        throw new Problem(401, 'unauthorized', 'wrong user name or password');
      }
      const user = r.principal.accountId as string;
      const t = await deps.access.create({
        role: { kind: 'user', user },
        name: 'session',
        kind: 'session',
        ttlMs: SESSION_MS,
      });
      return c.json({ token: t.token, role: 'user' as const, user, expiresAt: (t.expires as Date).toISOString() }, 200);
    },
  );
  app.openapi(
    createRoute({
      method: 'post',
      path: '/api/v1/logout',
      tags: ['auth'],
      summary: 'Ends the calling login session (204); an API token is left as it is (arcline token del)',
      security: SECURITY,
      responses: { 204: { description: 'Done' }, ...PROBLEMS },
    }),
    async (c) => {
      const { tokenId } = c.get('caller');
      if (await deps.access.isSession(tokenId)) await deps.access.delete(tokenId);
      return c.body(null, 204);
    },
  );
  app.openapi(
    createRoute({
      method: 'get',
      path: '/api/v1/me',
      tags: ['auth'],
      summary: 'The caller: role, its domain or user, token id',
      security: SECURITY,
      responses: { 200: json(Me, 'The caller'), ...PROBLEMS },
    }),
    (c) => {
      const { role, tokenId } = c.get('caller');
      return c.json(
        {
          role: role.kind,
          domain: role.kind === 'domain' ? role.domain : null,
          user: role.kind === 'user' ? role.user : null,
          tokenId,
        },
        200,
      );
    },
  );
}
