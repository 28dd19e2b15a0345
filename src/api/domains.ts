// /api/v1/domains: domains, their catch-all, their DKIM keys and the DNS records they need (with
// whether each is published now, looked up through the configured resolvers).

import { z } from '@hono/zod-openapi';
import { freeSelector } from '../admin/dkim-rotation.ts';
import { parseDuration } from '../config/duration.ts';
import { ArclineError } from '../core/errors.ts';
import type { DomainInfo } from '../directory/types.ts';
import { lookupRecord, parseZoneLine } from '../dns/published.ts';
import { type DkimKey, dkimTxtValue } from '../hygiene/dkim-keys.ts';
import { dnsRecords } from '../hygiene/dns-records.ts';
import { authorize, roleDomain } from './auth.ts';
import {
  Address,
  type ApiApp,
  type ApiDeps,
  DomainParam,
  json,
  jsonBody,
  ListQuery,
  listOf,
  NO_CONTENT,
  page,
  removeIfThere,
  secured,
} from './common.ts';

const Domain = z
  .object({ name: z.string(), users: z.number().int(), aliases: z.number().int(), catchAll: z.string().nullable() })
  .openapi('Domain');
const DnsRecord = z
  .object({
    name: z.string(),
    type: z.string(),
    value: z.string(),
    purpose: z.string(),
    published: z.boolean().nullable(),
    found: z.array(z.string()),
  })
  .openapi('DnsRecord');
const CheckResult = z
  .object({
    domain: z.string().nullable().openapi({ description: "null for the server's checks" }),
    check: z
      .string()
      .openapi({ description: 'addresses, fcrdns, dnsbl, tls, mx, spf, dkim, dmarc, mta-sts or tls-rpt' }),
    status: z.enum(['pass', 'warn', 'fail']),
    message: z.string(),
    fix: z.array(z.string()).openapi({ description: 'zone lines to publish, or what to change' }),
  })
  .openapi('CheckResult');
const CheckReport = z
  .object({
    version: z.literal(1),
    hostname: z.string(),
    addresses: z.array(z.string()),
    domains: z.array(z.string()),
    status: z.enum(['pass', 'warn', 'fail']),
    exit: z.number().int().openapi({ description: "arcline check's exit status: 0 pass, 3 warnings only, 1 failures" }),
    checks: z.array(CheckResult),
  })
  .openapi('CheckReport');
const Dkim = z
  .object({
    selector: z.string(),
    algorithm: z.enum(['rsa', 'ed25519']),
    created: z.string().openapi({ format: 'date-time' }),
    record: z.string(),
    /** active: signs; pending: made by a rotation, signs once activated. */
    state: z.enum(['active', 'pending']),
  })
  .openapi('DkimKey');
/** A JSON body the client may leave out (c.req.valid('json') is then undefined). */
const optionalBody = <T extends z.ZodType>(schema: T) => ({ content: { 'application/json': { schema } } });
const DkimAlgorithmField = z.enum(['rsa', 'ed25519']).optional();

const DkimParam = DomainParam.extend({
  selector: z
    .string()
    .min(1)
    .max(243)
    .openapi({ param: { name: 'selector', in: 'path' } }),
});

const item = (d: DomainInfo) => ({ name: d.name as string, users: d.users, aliases: d.aliases, catchAll: d.catchAll });
const dkimItem = (k: DkimKey, state: 'active' | 'pending' = 'active') => ({
  selector: k.selector,
  algorithm: k.algorithm,
  created: k.created.toISOString(),
  record: dkimTxtValue(k),
  state,
});
const tags = ['domains'];

export function domainRoutes(app: ApiApp, deps: ApiDeps): void {
  const find = async (name: string): Promise<DomainInfo | null> => {
    const n = name.toLowerCase().replace(/\.$/, '');
    return (await deps.ops.listDomains()).find((d) => d.name === n) ?? null;
  };
  const existing = async (name: string): Promise<DomainInfo> => {
    const d = await find(name);
    if (!d) throw new ArclineError('NOT_FOUND', `no domain ${name}`);
    return d;
  };

  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/domains',
      tags,
      summary: 'List domains (a domain admin sees its own)',
      request: { query: ListQuery },
      responses: { 200: json(listOf(Domain, 'DomainList'), 'Domains') },
    }),
    async (c) => {
      const only = roleDomain(c);
      if (c.get('caller').role.kind === 'user') authorize(c, { admin: true }, false);
      const all = (await deps.ops.listDomains()).filter((d) => only === null || d.name === only).map(item);
      return c.json(
        page(all, (d) => d.name, c.req.valid('query')),
        200,
      );
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/domains/{name}',
      tags,
      summary: 'One domain',
      request: { params: DomainParam },
      responses: { 200: json(Domain, 'The domain') },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      authorize(c, { domain: name }, false);
      return c.json(item(await existing(name)), 200);
    },
  );
  app.openapi(
    secured({
      method: 'put',
      path: '/api/v1/domains/{name}',
      tags,
      summary: 'Create a domain (201), or 200 when it exists; body {}',
      request: { params: DomainParam, body: { content: { 'application/json': { schema: z.strictObject({}) } } } },
      responses: { 200: json(Domain, 'It existed'), 201: json(Domain, 'Created') },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      authorize(c, { admin: true }, true);
      const had = await find(name);
      if (had) return c.json(item(had), 200);
      const d = await deps.ops.addDomain(name);
      return c.json(item((await find(d.name)) ?? d), 201);
    },
  );
  app.openapi(
    secured({
      method: 'delete',
      path: '/api/v1/domains/{name}',
      tags,
      summary: 'Delete an empty domain (204, also when absent; 409 while it has users or aliases)',
      request: { params: DomainParam },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      authorize(c, { admin: true }, true);
      // The directory refuses a domain that still has users or aliases (CONFLICT: 409).
      await removeIfThere(() => deps.ops.deleteDomain(name));
      return c.body(null, 204);
    },
  );
  app.openapi(
    secured({
      method: 'put',
      path: '/api/v1/domains/{name}/catchall',
      tags,
      summary: 'Set or remove (null) the catch-all address',
      request: { params: DomainParam, body: jsonBody(z.strictObject({ target: Address.nullable() })) },
      responses: { 200: json(Domain, 'The domain') },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      authorize(c, { domain: name }, true);
      await deps.ops.setCatchAll(name, c.req.valid('json').target);
      return c.json(item(await existing(name)), 200);
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/domains/{name}/dns',
      tags,
      summary: 'The DNS records the domain needs, and whether each is published now',
      request: { params: DomainParam },
      responses: { 200: json(z.object({ records: z.array(DnsRecord) }), 'Records') },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      authorize(c, { domain: name }, false);
      const d = await existing(name);
      const lines = dnsRecords({
        domain: d.name,
        hostname: deps.hostname,
        // Pending keys too: their records are the ones to publish before activation.
        keys: [...(await deps.dkim.keys(d.name)), ...(await deps.dkim.pendingKeys(d.name))],
        mtaSts: deps.mtaSts,
      });
      const wanted = lines.map(parseZoneLine).filter((r) => r !== null);
      const records = await Promise.all(wanted.map((r) => lookupRecord(deps.dns, r)));
      return c.json({ records }, 200);
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/domains/{name}/check',
      tags,
      summary: 'The deliverability self-check of the domain and the server (`arcline check DOMAIN --json`)',
      request: { params: DomainParam },
      responses: { 200: json(CheckReport, 'Every check with its status and fix') },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      authorize(c, { domain: name }, false);
      const d = await existing(name);
      const r = await deps.check(d.name);
      return c.json(
        {
          ...r,
          addresses: [...r.addresses],
          domains: [...r.domains],
          checks: r.checks.map((x) => ({ ...x, fix: [...x.fix] })),
        },
        200,
      );
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/domains/{name}/dkim',
      tags,
      summary: 'DKIM keys of the domain, with their DNS record value',
      request: { params: DomainParam },
      responses: { 200: json(listOf(Dkim, 'DkimKeyList'), 'Keys') },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      authorize(c, { domain: name }, false);
      const d = await existing(name);
      const active = (await deps.dkim.keys(d.name)).map((k) => dkimItem(k));
      const pending = (await deps.dkim.pendingKeys(d.name)).map((k) => dkimItem(k, 'pending'));
      return c.json({ items: [...active, ...pending], next: null }, 200);
    },
  );
  app.openapi(
    secured({
      method: 'post',
      path: '/api/v1/domains/{name}/dkim',
      tags,
      summary:
        'Generate a DKIM key (without a selector: [dkim] selector, or the next free "-2", "-3" form of it; [dkim] algorithm unless given); 409 if the selector exists',
      request: {
        params: DomainParam,
        body: optionalBody(
          z.strictObject({ selector: z.string().min(1).max(243).optional(), algorithm: DkimAlgorithmField }),
        ),
      },
      responses: { 201: json(Dkim, 'The new key') },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      authorize(c, { domain: name }, true);
      const d = await existing(name);
      const body = c.req.valid('json') ?? {};
      const key = await deps.dkim.generate(d.name, {
        // Without a selector asked for: [dkim] selector, or its next free "-2", "-3" form.
        selector: body.selector ?? (await freeSelector(deps.dkim, d.name, deps.dkimDefaults.selector)),
        algorithm: body.algorithm ?? deps.dkimDefaults.algorithm,
      });
      return c.json(dkimItem(key), 201);
    },
  );
  app.openapi(
    secured({
      method: 'post',
      path: '/api/v1/domains/{name}/dkim/rotate',
      tags,
      summary:
        'Start a rotation: a new pending key (new selector) for each algorithm that signs now (or `algorithm`); it signs once its record is found in DNS (the periodic check, or activate); the old key is deleted `grace` after (default "7d", docs/hygiene.md)',
      request: {
        params: DomainParam,
        body: optionalBody(
          z.strictObject({
            algorithm: DkimAlgorithmField,
            grace: z
              .string()
              .max(20)
              .refine((v) => parseDuration(v) !== null, 'a duration such as "7d" or "36h"')
              .optional(),
          }),
        ),
      },
      responses: { 201: json(listOf(Dkim, 'DkimPendingKeys'), 'The pending keys') },
    }),
    async (c) => {
      const { name } = c.req.valid('param');
      authorize(c, { domain: name }, true);
      const d = await existing(name);
      const body = c.req.valid('json') ?? {};
      const graceMs = body.grace === undefined ? null : parseDuration(body.grace);
      const made = await deps.ops.rotateDkim(d.name, {
        ...(body.algorithm ? { algorithm: body.algorithm } : {}),
        ...(graceMs === null ? {} : { graceMs }),
      });
      return c.json({ items: made.map((k) => dkimItem(k, 'pending')), next: null }, 201);
    },
  );
  app.openapi(
    secured({
      method: 'post',
      path: '/api/v1/domains/{name}/dkim/{selector}/activate',
      tags,
      summary:
        'End a rotation: the pending key signs and the old key of its algorithm is retired; 409 while its record is not found in DNS (unless force)',
      request: {
        params: DkimParam,
        body: {
          content: { 'application/json': { schema: z.strictObject({ force: z.boolean().optional() }) } },
        },
      },
      responses: { 200: json(Dkim, 'The key, now signing') },
    }),
    async (c) => {
      const { name, selector } = c.req.valid('param');
      authorize(c, { domain: name }, true);
      const d = await existing(name);
      const body = c.req.valid('json') ?? {};
      const { key } = await deps.ops.activateDkim(d.name, selector, { force: body.force === true });
      return c.json(dkimItem(key), 200);
    },
  );
  app.openapi(
    secured({
      method: 'delete',
      path: '/api/v1/domains/{name}/dkim/{selector}',
      tags,
      summary: 'Delete a DKIM key (204, also when absent)',
      request: { params: DkimParam },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      const { name, selector } = c.req.valid('param');
      authorize(c, { domain: name }, true);
      const d = await existing(name);
      await removeIfThere(() => deps.dkim.remove(d.name, selector));
      return c.body(null, 204);
    },
  );
}
