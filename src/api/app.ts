// The admin HTTP API v1 (docs/api.md): one hono app with @hono/zod-openapi, mounted by the web
// listeners (web/server.ts) for /api/. The zod schemas of the resource modules are the single
// source of the OpenAPI 3.1 document at /api/openapi.json.
// Every request: body at most 64 KiB (413), JSON only (415), unknown fields refused (400, the
// field named), errors as RFC 9457 problem+json; every change (any method but GET/HEAD) goes
// to the audit log with its caller, address and result.

import { OpenAPIHono } from '@hono/zod-openapi';
import type { Context } from 'hono';
import { bodyLimit } from 'hono/body-limit';
import { HTTPException } from 'hono/http-exception';
import { formatRole } from '../admin/access.ts';
import { errorMessage, isArclineError } from '../core/errors.ts';
import { aliasRoutes } from './aliases.ts';
import { auditRoutes } from './audit.ts';
import { authRoutes, bearer, clientIp } from './auth.ts';
import { type ApiApp, type ApiDeps, type ApiEnv, Problem, problemResponse } from './common.ts';
import { domainRoutes } from './domains.ts';
import { networkRoutes } from './networks.ts';
import { queueRoutes } from './queue.ts';
import { reportRoutes } from './reports.ts';
import { summaryRoutes } from './summary.ts';
import { tokenRoutes } from './tokens.ts';
import { userRoutes } from './users.ts';

export const MAX_BODY = 64 * 1024;
export const OPENAPI_PATH = '/api/openapi.json';

const ERROR_STATUS = { INVALID: 422, NOT_FOUND: 404, EXISTS: 409, CONFLICT: 409, LIMIT: 422, QUOTA: 422 } as const;

export function createApiApp(deps: ApiDeps): ApiApp {
  const app: ApiApp = new OpenAPIHono<ApiEnv>({
    // zod's verdict on params, query and body: 400 naming every wrong or unknown field.
    defaultHook: (result) => {
      if (result.success) return;
      const errors = result.error.issues.flatMap((i) => {
        const at = i.path.join('.');
        if (i.code === 'unrecognized_keys') {
          return i.keys.map((k) => ({ field: at ? `${at}.${k}` : k, message: 'unknown field' }));
        }
        return [{ field: at || result.target, message: i.message }];
      });
      throw new Problem(
        400,
        'validation',
        `invalid ${result.target}: ${errors.map((e) => e.field).join(', ')}`,
        errors,
      );
    },
  });
  app.onError((e, c) => answerError(e, c, deps));
  app.notFound((c) =>
    c.req.path.startsWith('/api/')
      ? problemResponse(new Problem(404, 'not-found', `no such resource: ${c.req.method} ${c.req.path}`))
      : c.text('not found\n', 404),
  );
  app.use(
    '/api/*',
    bodyLimit({
      maxSize: MAX_BODY,
      onError: () => {
        throw new Problem(413, 'too-large', `the body is over ${MAX_BODY} bytes`);
      },
    }),
  );
  app.use('/api/*', async (c, next) => {
    c.set('ip', clientIp(c));
    const hasBody = Number(c.req.header('content-length') ?? 0) > 0 || c.req.header('transfer-encoding') !== undefined;
    const type = (c.req.header('content-type') ?? '').split(';')[0]?.trim().toLowerCase();
    if (hasBody && type !== 'application/json') {
      throw new Problem(415, 'unsupported-media-type', 'request bodies are application/json');
    }
    await next();
    c.header('cache-control', 'no-store');
  });
  app.use('/api/v1/*', audit(deps), bearer(deps));
  app.openAPIRegistry.registerComponent('securitySchemes', 'bearer', {
    type: 'http',
    scheme: 'bearer',
    description: 'arc_<id>_<secret>: `arcline token add`, or POST /api/v1/login (12 h)',
  });
  authRoutes(app, deps);
  summaryRoutes(app, deps);
  domainRoutes(app, deps);
  userRoutes(app, deps);
  aliasRoutes(app, deps);
  queueRoutes(app, deps);
  networkRoutes(app, deps);
  tokenRoutes(app, deps);
  auditRoutes(app, deps);
  reportRoutes(app, deps);
  // Every operation gets a stable id from its method and path: getDomainsByNameDkim ...
  for (const d of app.openAPIRegistry.definitions) {
    if (d.type === 'route') d.route.operationId ??= operationId(d.route.method, d.route.path);
  }
  app.doc31(OPENAPI_PATH, {
    openapi: '3.1.0',
    info: {
      title: 'arcline admin API',
      version: '1.0.0',
      description:
        'Domains, users, aliases, DKIM, DNS records, the outbound queue, tokens, the audit log and the TLS and DMARC reports received.',
      license: { name: 'MIT', url: 'https://opensource.org/licenses/MIT' },
    },
    servers: [{ url: '/' }],
    tags: ['auth', 'summary', 'domains', 'users', 'aliases', 'queue', 'tokens', 'audit', 'reports'].map((name) => ({
      name,
      description: `${name[0]?.toUpperCase()}${name.slice(1)}`,
    })),
  });
  return app;
}

function operationId(method: string, path: string): string {
  const words = path
    .replace(/^\/api\/v1\//, '')
    .split('/')
    .map((w) => (w.startsWith('{') ? `By-${w.slice(1, -1)}` : w));
  return method + words.map((w) => w.replace(/(^|-)([a-z])/gi, (_, _d, c: string) => c.toUpperCase())).join('');
}

/** The OpenAPI document as served, pretty-printed (docs/openapi.json is this: scripts/openapi.ts
 *  writes it, test/api/openapi.test.ts checks it). Routes only keep their deps, so none are needed. */
export async function openApiText(): Promise<string> {
  const app = createApiApp({} as ApiDeps);
  const doc = (await (await app.request(OPENAPI_PATH)).json()) as unknown;
  return `${JSON.stringify(doc, null, 2)}\n`;
}

function answerError(e: Error, c: Context<ApiEnv>, deps: ApiDeps): Response {
  if (e instanceof Problem) {
    return problemResponse(e, e.status === 401 ? { 'www-authenticate': 'Bearer realm="arcline"' } : {});
  }
  if (isArclineError(e) && e.code in ERROR_STATUS) {
    const status = ERROR_STATUS[e.code as keyof typeof ERROR_STATUS];
    const kind = status === 404 ? 'not-found' : status === 409 ? 'conflict' : 'invalid';
    return problemResponse(new Problem(status, kind, e.message));
  }
  if (e instanceof HTTPException && e.status < 500) {
    return problemResponse(new Problem(e.status, 'bad-request', e.message || 'bad request'));
  }
  deps.log.error({ err: errorMessage(e), path: c.req.path }, 'api: request failed');
  return problemResponse(new Problem(500, 'internal', 'the request failed; see the server log'));
}

/** Records every change (not GET/HEAD) after it ran, with its result. */
function audit(deps: ApiDeps) {
  return async (c: Context<ApiEnv>, next: () => Promise<void>) => {
    await next();
    if (c.req.method === 'GET' || c.req.method === 'HEAD' || c.req.path === '/api/v1/login') return;
    const caller = c.get('caller');
    const rest = c.req.path.slice('/api/v1/'.length).split('/');
    let target: string;
    try {
      target = rest.slice(1).map(decodeURIComponent).join('/');
    } catch {
      target = rest.slice(1).join('/');
    }
    try {
      await deps.access.audit({
        actor: caller?.actor ?? '-',
        role: caller ? formatRole(caller.role) : '-',
        from: c.get('ip') ?? '-',
        action: `${c.req.method} ${rest[0] ?? ''}`,
        target: target.slice(0, 500),
        result: String(c.res.status),
      });
    } catch (e) {
      deps.log.error({ err: errorMessage(e) }, 'api: audit write failed');
    }
  };
}
