// /api/v1/tokens (admin; readonly may list): API tokens, shown once at creation, stored hashed
// (admin/access.ts); the same rules as `arcline token`.

import { z } from '@hono/zod-openapi';
import { checkRoleTarget, formatRole, parseRole } from '../admin/access.ts';
import { authorize } from './auth.ts';
import { type ApiApp, type ApiDeps, json, jsonBody, ListQuery, listOf, NO_CONTENT, page, secured } from './common.ts';

const Token = z
  .object({
    id: z.string(),
    name: z.string(),
    role: z.string().openapi({ example: 'domain:example.org' }),
    created: z.string().openapi({ format: 'date-time' }),
    lastUsed: z.string().nullable().openapi({ format: 'date-time' }),
  })
  .openapi('Token');
const tags = ['tokens'];

export function tokenRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/tokens',
      tags,
      summary: 'API tokens (never their secrets)',
      request: { query: ListQuery },
      responses: { 200: json(listOf(Token, 'TokenList'), 'Tokens') },
    }),
    async (c) => {
      authorize(c, { admin: true }, false);
      const all = (await deps.access.list()).map((t) => ({
        id: t.id,
        name: t.name,
        role: formatRole(t.role),
        created: t.created.toISOString(),
        lastUsed: t.lastUsed?.toISOString() ?? null,
      }));
      return c.json(
        page(
          all,
          (t) => t.id,
          c.req.valid('query'),
          (t) => [t.id, t.name, t.role],
        ),
        200,
      );
    },
  );
  app.openapi(
    secured({
      method: 'post',
      path: '/api/v1/tokens',
      tags,
      summary: 'Create a token; the answer is the only time it is shown',
      request: {
        body: jsonBody(
          z.strictObject({
            role: z.string().min(1).max(330).openapi({ example: 'domain:example.org' }),
            name: z.string().max(100).optional(),
          }),
        ),
      },
      responses: {
        201: json(z.object({ id: z.string(), token: z.string() }).openapi('NewToken'), 'Created'),
      },
    }),
    async (c) => {
      authorize(c, { admin: true }, true);
      const body = c.req.valid('json');
      const role = parseRole(body.role);
      await checkRoleTarget(role, deps.ops);
      const t = await deps.access.create({ role, ...(body.name !== undefined ? { name: body.name } : {}) });
      return c.json({ id: t.id, token: t.token }, 201);
    },
  );
  app.openapi(
    secured({
      method: 'delete',
      path: '/api/v1/tokens/{id}',
      tags,
      summary: 'Revoke a token (204, also when absent)',
      request: {
        params: z.object({
          id: z
            .string()
            .min(1)
            .max(64)
            .openapi({ param: { name: 'id', in: 'path' } }),
        }),
      },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      authorize(c, { admin: true }, true);
      await deps.access.delete(c.req.valid('param').id);
      return c.body(null, 204);
    },
  );
}
