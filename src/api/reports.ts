// GET /api/v1/reports/tls and /api/v1/reports/dmarc: the reports other operators sent to a
// mailbox of ours, summed as `arcline reports` prints them (docs/delivery.md "TLS reporting"
// and "DMARC aggregate reports"): TLS reports (RFC 8460) per reporting organisation and policy
// domain, DMARC aggregate reports (RFC 7489 §7.2) per organisation, policy domain and source
// IP. `?mailbox=` (default postmaster@ of the first domain) and `?days=` (default 7). Who may
// read: admins, readonly, the mailbox's domain admins and its user (the mailbox is theirs).

import { z } from '@hono/zod-openapi';
import { summarize } from '../reports/dmarc-summary.ts';
import { summarise } from '../reports/tlsrpt-parse.ts';
import { authorize } from './auth.ts';
import { type ApiApp, type ApiDeps, json, secured } from './common.ts';

const Query = z.strictObject({
  mailbox: z
    .string()
    .min(3)
    .max(320)
    .optional()
    .openapi({ description: 'The mailbox the reports were sent to; default postmaster@ of the first domain' }),
  days: z.coerce.number().int().min(1).max(3660).default(7).openapi({ description: 'Received in the last N days (7)' }),
});
const count = z.number().int();
const head = { mailbox: z.string(), days: count, reports: count, unreadable: count };

const TlsSummary = z
  .object({
    ...head,
    rows: z.array(
      z.object({
        organization: z.string(),
        domain: z.string().openapi({ description: 'The policy domain (ours)' }),
        reports: count,
        successes: count,
        failures: count,
        byResult: z
          .record(z.string(), count)
          .openapi({ description: 'Failed sessions by result type (RFC 8460 §4.4)' }),
      }),
    ),
  })
  .openapi('TlsReportSummary');

const DmarcSummary = z
  .object({
    ...head,
    rows: z.array(
      z.object({
        org: z.string(),
        domain: z.string().openapi({ description: 'The policy domain (ours)' }),
        sourceIp: z.string(),
        messages: count,
        pass: count,
        fail: count,
        none: count,
        quarantine: count,
        reject: count,
      }),
    ),
  })
  .openapi('DmarcReportSummary');

const tags = ['reports'];

export function reportRoutes(app: ApiApp, deps: ApiDeps): void {
  /** The mailbox asked for, once the caller may read it. */
  const mailbox = async (c: Parameters<typeof authorize>[0], address: string | undefined) => {
    const box = await deps.received.mailbox(address);
    authorize(c, { user: box.address, self: true }, false);
    return box;
  };
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/reports/tls',
      tags,
      summary: 'TLS reports (RFC 8460) received, per reporting organisation and policy domain',
      request: { query: Query },
      responses: { 200: json(TlsSummary, 'TLS reports received') },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const box = await mailbox(c, q.mailbox);
      const { reports, unreadable } = await deps.received.tls(box.account, q.days);
      const rows = summarise(reports).map((r) => ({ ...r, byResult: { ...r.byResult } }));
      return c.json({ mailbox: box.address, days: q.days, reports: reports.length, unreadable, rows }, 200);
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/reports/dmarc',
      tags,
      summary: 'DMARC aggregate reports (RFC 7489) received, per organisation, policy domain and source IP',
      request: { query: Query },
      responses: { 200: json(DmarcSummary, 'DMARC aggregate reports received') },
    }),
    async (c) => {
      const q = c.req.valid('query');
      const box = await mailbox(c, q.mailbox);
      const { reports, unreadable } = await deps.received.dmarc(box.account, q.days);
      const rows = summarize(reports, Math.floor(Date.now() / 1000) - q.days * 86_400);
      return c.json({ mailbox: box.address, days: q.days, reports: reports.length, unreadable, rows }, 200);
    },
  );
}
