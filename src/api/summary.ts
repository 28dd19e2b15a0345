// GET /api/v1/summary: the dashboard's figures (admin, readonly, domain admins).

import { z } from '@hono/zod-openapi';
import type { AccountId } from '../core/ids.ts';
import { queueAttempts, smtpMessages, smtpReplies } from '../core/metrics.ts';
import { authorize } from './auth.ts';
import { type ApiApp, type ApiDeps, json, secured } from './common.ts';

const count = z.number().int();
const Summary = z
  .object({
    domains: count,
    users: count,
    aliases: count,
    queue: z.object({ total: count, deferred: count, held: count }),
    disk: z.object({ mailBytes: count }),
    since: z.string().openapi({ format: 'date-time', description: 'When the server started' }),
    smtp: z.object({ accepted: count, rejected: count }),
    delivered: count,
  })
  .openapi('Summary');

export function summaryRoutes(app: ApiApp, deps: ApiDeps): void {
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/summary',
      tags: ['summary'],
      summary: 'Counts, queue, disk use and traffic since the server started',
      responses: { 200: json(Summary, 'Summary') },
    }),
    async (c) => {
      if (c.get('caller').role.kind === 'user') authorize(c, { admin: true }, false);
      const domains = await deps.ops.listDomains();
      const users = await deps.ops.listUsers();
      let mailBytes = 0;
      for (const u of users) mailBytes += await deps.store.usage(u.accountId as AccountId);
      const queued = await deps.queue.list();
      const stats = await deps.stats();
      return c.json(
        {
          domains: domains.length,
          users: users.length,
          aliases: domains.reduce((n, d) => n + d.aliases, 0),
          queue: {
            total: queued.length,
            deferred: queued.filter((m) => !m.held && m.recipients.some((r) => r.attempts > 0 && r.state === 'queued'))
              .length,
            held: queued.filter((m) => m.held).length,
          },
          disk: { mailBytes },
          since: stats.since.toISOString(),
          smtp: { accepted: stats.accepted, rejected: stats.rejected },
          delivered: stats.delivered,
        },
        200,
      );
    },
  );
}

/** The summary's traffic figures from this process's metrics (core/metrics.ts): messages
 *  accepted by SMTP and submission (250 after DATA), messages and recipients refused for good
 *  (5xx to MAIL, RCPT, DATA or BDAT), remote deliveries. Counts since the process started. */
export function metricStats(since: Date): ApiDeps['stats'] {
  const REFUSING = new Set(['MAIL', 'RCPT', 'DATA', 'BDAT']);
  return async () => ({
    since,
    accepted: await sum(smtpMessages),
    rejected: await sum(smtpReplies, (l) => l.class === '5xx' && REFUSING.has(String(l.command))),
    delivered: await sum(queueAttempts, (l) => l.result === 'sent'),
  });
}

type Labels = Record<string, unknown>;
async function sum(
  metric: { get(): Promise<{ values: { value: number; labels: Labels }[] }> },
  match: (l: Labels) => boolean = () => true,
): Promise<number> {
  return (await metric.get()).values.filter((v) => match(v.labels)).reduce((n, v) => n + v.value, 0);
}
