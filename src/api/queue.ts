// /api/v1/queue: the outbound queue (admin; readonly may look): list, show, retry, hold,
// release, delete. A held message is not attempted until released (queue/store.ts hold()).

import { z } from '@hono/zod-openapi';
import { ArclineError } from '../core/errors.ts';
import type { QueuedMessage, QueueId } from '../queue/types.ts';
import { authorize } from './auth.ts';
import { type ApiApp, type ApiDeps, json, ListQuery, listOf, NO_CONTENT, page, secured } from './common.ts';

const Queued = z
  .object({
    id: z.string(),
    sender: z.string(),
    recipients: z.array(
      z.object({ address: z.string(), state: z.enum(['queued', 'sent', 'failed']), lastError: z.string().nullable() }),
    ),
    attempts: z.number().int(),
    nextAttempt: z.string().nullable().openapi({ format: 'date-time' }),
    held: z.boolean(),
    created: z.string().openapi({ format: 'date-time' }),
    size: z.number().int(),
  })
  .openapi('QueuedMessage');
const IdParam = z.object({
  id: z
    .string()
    .regex(/^[A-Za-z0-9_-]{1,64}$/)
    .openapi({ param: { name: 'id', in: 'path' } }),
});
const tags = ['queue'];

export function queueItem(m: QueuedMessage) {
  const queued = m.recipients.filter((r) => r.state === 'queued');
  return {
    id: m.id as string,
    sender: m.sender,
    recipients: m.recipients.map((r) => ({ address: r.address, state: r.state, lastError: r.lastReply })),
    attempts: Math.max(0, ...m.recipients.map((r) => r.attempts)),
    nextAttempt: queued.length ? new Date(Math.min(...queued.map((r) => r.nextAttempt))).toISOString() : null,
    held: m.held,
    created: new Date(m.created).toISOString(),
    size: m.size,
  };
}

export function queueRoutes(app: ApiApp, deps: ApiDeps): void {
  const existing = async (id: string): Promise<QueuedMessage> => {
    const m = await deps.queue.get(id as QueueId);
    if (!m) throw new ArclineError('NOT_FOUND', `no queued message ${id}`);
    return m;
  };
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/queue',
      tags,
      summary: 'Messages waiting for delivery (held ones too)',
      request: { query: ListQuery },
      responses: { 200: json(listOf(Queued, 'QueueList'), 'Queue') },
    }),
    async (c) => {
      authorize(c, { admin: true }, false);
      const all = (await deps.queue.list()).map(queueItem);
      return c.json(
        page(
          all,
          (m) => m.id,
          c.req.valid('query'),
          (m) => [m.id, m.sender, ...m.recipients.map((r) => r.address)],
        ),
        200,
      );
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/queue/{id}',
      tags,
      summary: 'One queued message',
      request: { params: IdParam },
      responses: { 200: json(Queued, 'The message') },
    }),
    async (c) => {
      authorize(c, { admin: true }, false);
      return c.json(queueItem(await existing(c.req.valid('param').id)), 200);
    },
  );
  for (const action of ['retry', 'hold', 'release'] as const) {
    app.openapi(
      secured({
        method: 'post',
        path: `/api/v1/queue/{id}/${action}`,
        tags,
        summary:
          action === 'retry'
            ? 'Make its recipients due now'
            : action === 'hold'
              ? 'Keep it from delivery until released'
              : 'Release a held message',
        request: { params: IdParam },
        responses: { 200: json(Queued, 'The message') },
      }),
      async (c) => {
        authorize(c, { admin: true }, true);
        const id = (await existing(c.req.valid('param').id)).id;
        if (action === 'retry') await deps.queue.retry(id);
        else if (action === 'hold') await deps.queue.hold(id);
        else await deps.queue.release(id);
        return c.json(queueItem(await existing(id)), 200);
      },
    );
  }
  app.openapi(
    secured({
      method: 'delete',
      path: '/api/v1/queue/{id}',
      tags,
      summary: 'Delete a message without a bounce (204, also when absent)',
      request: { params: IdParam },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      authorize(c, { admin: true }, true);
      const { id } = c.req.valid('param');
      await deps.queue.drop(id as QueueId);
      return c.body(null, 204);
    },
  );
}
