// GET /api/v1/audit (admin, readonly): every change made through the API or `arcline token`,
// newest first: who (token name or id, or the user of a session), role, from (client address),
// what (action and target), result (HTTP status), when.

import { z } from '@hono/zod-openapi';
import { authorize } from './auth.ts';
import { type ApiApp, type ApiDeps, json, ListQuery, listOf, Problem, secured } from './common.ts';

const Entry = z
  .object({
    time: z.string().openapi({ format: 'date-time' }),
    actor: z.string(),
    role: z.string(),
    from: z.string(),
    action: z.string(),
    target: z.string(),
    result: z.string(),
  })
  .openapi('AuditEntry');

export function auditRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/audit',
      tags: ['audit'],
      summary: 'The audit log, newest first',
      request: { query: ListQuery },
      responses: { 200: json(listOf(Entry, 'AuditList'), 'Entries') },
    }),
    async (c) => {
      const role = c.get('caller').role.kind;
      if (role !== 'admin' && role !== 'readonly') authorize(c, { admin: true }, false);
      const { limit, cursor, q } = c.req.valid('query');
      let before: number | undefined;
      if (cursor !== undefined) {
        before = Number(Buffer.from(cursor, 'base64url').toString('utf8'));
        if (!Number.isSafeInteger(before) || before <= 0) {
          throw new Problem(400, 'invalid-cursor', 'the cursor is not one this server gave', [
            { field: 'cursor', message: 'invalid cursor' },
          ]);
        }
      }
      const rows = await deps.access.auditLog({ limit: limit + 1, ...(before ? { before } : {}), ...(q ? { q } : {}) });
      const items = rows.slice(0, limit);
      const last = items[items.length - 1];
      return c.json(
        {
          items: items.map(({ seq: _, time, ...e }) => ({ time: time.toISOString(), ...e })),
          next: rows.length > limit && last ? Buffer.from(String(last.seq)).toString('base64url') : null,
        },
        200,
      );
    },
  );
}
