// /api/v1/aliases: aliases of local domains, each a source and its set of destinations.

import { z } from '@hono/zod-openapi';
import { authorize, roleDomain } from './auth.ts';
import {
  Address,
  type ApiApp,
  type ApiDeps,
  DomainListQuery,
  json,
  jsonBody,
  listOf,
  NO_CONTENT,
  page,
  removeIfThere,
  secured,
} from './common.ts';

const Alias = z.object({ source: z.string(), destinations: z.array(z.string()) }).openapi('Alias');
const SourceParam = z.object({
  source: z
    .string()
    .min(3)
    .max(320)
    .openapi({ param: { name: 'source', in: 'path' }, example: 'info@example.org' }),
});
const tags = ['aliases'];

export function aliasRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/aliases',
      tags,
      summary: 'List aliases (a domain admin: its domain)',
      request: { query: DomainListQuery },
      responses: { 200: json(listOf(Alias, 'AliasList'), 'Aliases') },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const domain = query.domain ?? roleDomain(c) ?? undefined;
      authorize(c, domain === undefined ? { admin: true } : { domain }, false);
      const all = (await deps.ops.listAliases(domain)).map((a) => ({
        source: a.source,
        destinations: [...a.destinations],
      }));
      return c.json(
        page(
          all,
          (a) => a.source,
          query,
          (a) => [a.source, ...a.destinations],
        ),
        200,
      );
    },
  );
  app.openapi(
    secured({
      method: 'put',
      path: '/api/v1/aliases/{source}',
      tags,
      summary: 'Create an alias or replace its destinations',
      request: {
        params: SourceParam,
        body: jsonBody(z.strictObject({ destinations: z.array(Address).min(1).max(1000) })),
      },
      responses: { 200: json(Alias, 'The alias') },
    }),
    async (c) => {
      const { source } = c.req.valid('param');
      authorize(c, { user: source }, true);
      const a = await deps.ops.replaceAlias(source, c.req.valid('json').destinations);
      return c.json({ source: a.source, destinations: [...a.destinations] }, 200);
    },
  );
  app.openapi(
    secured({
      method: 'delete',
      path: '/api/v1/aliases/{source}',
      tags,
      summary: 'Delete an alias (204, also when absent)',
      request: { params: SourceParam },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      const { source } = c.req.valid('param');
      authorize(c, { user: source }, true);
      await removeIfThere(() => deps.ops.deleteAlias(source));
      return c.body(null, 204);
    },
  );
}
