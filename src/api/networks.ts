// /api/v1/networks and /api/v1/bans (admin; readonly may read): the IP allow and deny lists and
// the automatic bans, through the same operations as `arcline ip` / `arcline ban`
// (admin/networks.ts). A network is addressed as /networks/{address}/{prefix}, so that PUT and
// DELETE are idempotent on a path (a CIDR's "/" is a path separator anyway).

import { z } from '@hono/zod-openapi';
import { deleteNetwork, explain, liftBan, putNetwork } from '../admin/networks.ts';
import { authorize } from './auth.ts';
import { type ApiApp, type ApiDeps, json, jsonBody, ListQuery, listOf, NO_CONTENT, page, secured } from './common.ts';

const ListName = z.enum(['allow', 'deny']);
const NetworkEntry = z
  .object({
    cidr: z.string().openapi({ example: '192.0.2.0/24' }),
    list: ListName,
    comment: z.string(),
    created: z.string().openapi({ format: 'date-time' }),
    createdBy: z.string().openapi({ description: 'cli, or the API caller that added it' }),
  })
  .openapi('NetworkEntry');
const Ban = z
  .object({
    network: z.string().openapi({ example: '198.51.100.7/32', description: 'An IPv4 address or an IPv6 /64' }),
    offence: z.enum(['auth', 'protocol', 'unknown-recipient']),
    detail: z.string().openapi({ example: '10 failed logins in 42 s' }),
    banned: z.string().openapi({ format: 'date-time' }),
    expires: z.string().openapi({ format: 'date-time' }),
    level: z.number().int().openapi({ description: '1 for a first ban; each further ban doubles the period' }),
  })
  .openapi('Ban');
const NetworkParam = z.object({
  address: z
    .string()
    .min(2)
    .max(45)
    .openapi({ param: { name: 'address', in: 'path' }, example: '192.0.2.0' }),
  prefix: z
    .string()
    .regex(/^\d{1,3}$/, 'a prefix length')
    .openapi({ param: { name: 'prefix', in: 'path' }, example: '24' }),
});
const AddressParam = z.object({
  address: z
    .string()
    .min(2)
    .max(45)
    .openapi({ param: { name: 'address', in: 'path' }, example: '198.51.100.7' }),
});
const Explanation = z
  .object({
    ip: z.string(),
    verdict: z.enum(['allow', 'deny', 'banned', 'open']),
    entries: z.array(NetworkEntry),
    ban: Ban.nullable(),
  })
  .openapi('NetworkExplanation');
const tags = ['networks'];

const entry = (e: { cidr: string; list: 'allow' | 'deny'; comment: string; created: number; createdBy: string }) => ({
  ...e,
  created: new Date(e.created).toISOString(),
});
const ban = (b: {
  network: string;
  offence: string;
  detail: string;
  banned: number;
  expires: number;
  level: number;
}) => ({
  ...b,
  offence: b.offence as z.infer<typeof Ban>['offence'],
  banned: new Date(b.banned).toISOString(),
  expires: new Date(b.expires).toISOString(),
});

export function networkRoutes(app: ApiApp, deps: ApiDeps): void {
  const store = deps.defense;
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/networks',
      tags,
      summary: 'List the IP allow and deny lists',
      request: { query: ListQuery.extend({ list: ListName.optional() }) },
      responses: { 200: json(listOf(NetworkEntry, 'NetworkList'), 'Networks') },
    }),
    async (c) => {
      authorize(c, { admin: true }, false);
      const query = c.req.valid('query');
      const all = (await store.networks()).filter((e) => query.list === undefined || e.list === query.list).map(entry);
      return c.json(
        page(
          all,
          (e) => e.cidr,
          query,
          (e) => [e.cidr, e.comment],
        ),
        200,
      );
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/networks/explain',
      tags,
      summary: 'What a connection from an address meets: allow, deny, banned or open, and why',
      request: { query: z.strictObject({ ip: z.string().min(2).max(45) }) },
      responses: { 200: json(Explanation, 'The verdict and the entries and ban behind it') },
    }),
    async (c) => {
      authorize(c, { admin: true }, false);
      const x = await explain(store, c.req.valid('query').ip);
      return c.json(
        { ip: x.ip, verdict: x.verdict, entries: x.entries.map(entry), ban: x.ban ? ban(x.ban) : null },
        200,
      );
    },
  );
  app.openapi(
    secured({
      method: 'put',
      path: '/api/v1/networks/{address}/{prefix}',
      tags,
      summary: 'Put a network on the allow or deny list (moves it from the other one)',
      request: {
        params: NetworkParam,
        body: jsonBody(z.strictObject({ list: ListName, comment: z.string().max(200).optional() })),
      },
      responses: { 200: json(NetworkEntry, 'The entry') },
    }),
    async (c) => {
      const caller = authorize(c, { admin: true }, true);
      const { address, prefix } = c.req.valid('param');
      const body = c.req.valid('json');
      const { entry: e } = await putNetwork(store, `${address}/${prefix}`, body.list, {
        ...(body.comment !== undefined ? { comment: body.comment } : {}),
        by: caller.actor,
      });
      return c.json(entry(e), 200);
    },
  );
  app.openapi(
    secured({
      method: 'delete',
      path: '/api/v1/networks/{address}/{prefix}',
      tags,
      summary: 'Remove a network from its list (204, also when absent)',
      request: { params: NetworkParam },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      authorize(c, { admin: true }, true);
      const { address, prefix } = c.req.valid('param');
      await deleteNetwork(store, `${address}/${prefix}`, true);
      return c.body(null, 204);
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/bans',
      tags,
      summary: 'Bans in force (automatic, for repeated offences)',
      request: { query: ListQuery },
      responses: { 200: json(listOf(Ban, 'BanList'), 'Bans') },
    }),
    async (c) => {
      authorize(c, { admin: true }, false);
      const all = (await store.bans()).map(ban);
      return c.json(
        page(
          all,
          (b) => b.network,
          c.req.valid('query'),
          (b) => [b.network, b.offence, b.detail],
        ),
        200,
      );
    },
  );
  app.openapi(
    secured({
      method: 'delete',
      path: '/api/v1/bans/{address}',
      tags,
      summary: "Lift the ban of an address's network and forget its level (204, also when not banned)",
      request: { params: AddressParam },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      authorize(c, { admin: true }, true);
      await liftBan(store, c.req.valid('param').address, true);
      return c.body(null, 204);
    },
  );
}
