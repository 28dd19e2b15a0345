// /api/v1/users: users (create, password, quota, enable/disable, delete) and their allowlists.
// A disabled user cannot log in (IMAP, submission, this API); mail to it is still accepted.

import { z } from '@hono/zod-openapi';
import { ArclineError } from '../core/errors.ts';
import type { AccountId } from '../core/ids.ts';
import type { UserInfo } from '../directory/types.ts';
import { authorize, roleDomain } from './auth.ts';
import {
  type ApiApp,
  type ApiDeps,
  DomainListQuery,
  json,
  jsonBody,
  ListQuery,
  listOf,
  NO_CONTENT,
  Problem,
  page,
  removeIfThere,
  secured,
} from './common.ts';

const User = z
  .object({
    address: z.string(),
    quotaBytes: z.number().int().nullable(),
    usedBytes: z.number().int(),
    enabled: z.boolean(),
  })
  .openapi('User');
const UserParam = z.object({
  address: z
    .string()
    .min(3)
    .max(320)
    .openapi({ param: { name: 'address', in: 'path' }, example: 'alice@example.org' }),
});
const AllowParam = UserParam.extend({
  sender: z
    .string()
    .min(1)
    .max(320)
    .openapi({ param: { name: 'sender', in: 'path' }, example: 'news@shop.example' }),
});
const Password = z.string().min(1).max(1024);
const UserBody = z
  .strictObject({
    password: Password.optional(),
    quotaBytes: z.number().int().positive().nullable().optional(),
    enabled: z.boolean().optional(),
  })
  .openapi('UserUpdate');
const tags = ['users'];

export function userRoutes(app: ApiApp, deps: ApiDeps): void {
  const item = async (u: UserInfo) => ({
    address: u.address,
    quotaBytes: u.quotaBytes,
    usedBytes: await deps.store.usage(u.accountId as AccountId),
    enabled: u.enabled,
  });
  const existing = async (address: string): Promise<UserInfo> => {
    const u = await deps.ops.getUser(address);
    if (!u) throw new ArclineError('NOT_FOUND', `no user ${address}`);
    return u;
  };

  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/users',
      tags,
      summary: 'List users (a domain admin: its domain; a user: itself)',
      request: { query: DomainListQuery },
      responses: { 200: json(listOf(User, 'UserList'), 'Users') },
    }),
    async (c) => {
      const query = c.req.valid('query');
      const role = c.get('caller').role;
      let users: readonly UserInfo[];
      if (role.kind === 'user') {
        users = [await existing(role.user)];
      } else {
        const domain = query.domain ?? roleDomain(c) ?? undefined;
        if (domain !== undefined) authorize(c, { domain }, false);
        users = await deps.ops.listUsers(domain);
      }
      const p = page(users, (u) => u.address, query);
      return c.json({ items: await Promise.all(p.items.map(item)), next: p.next }, 200);
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/users/{address}',
      tags,
      summary: 'One user',
      request: { params: UserParam },
      responses: { 200: json(User, 'The user') },
    }),
    async (c) => {
      const { address } = c.req.valid('param');
      authorize(c, { user: address, self: true }, false);
      return c.json(await item(await existing(address)), 200);
    },
  );
  app.openapi(
    secured({
      method: 'put',
      path: '/api/v1/users/{address}',
      tags,
      summary: 'Create (201, password required) or update (200) a user',
      request: { params: UserParam, body: jsonBody(UserBody) },
      responses: { 200: json(User, 'Updated'), 201: json(User, 'Created') },
    }),
    async (c) => {
      const { address } = c.req.valid('param');
      const body = c.req.valid('json');
      authorize(c, { user: address }, true);
      const had = await deps.ops.getUser(address);
      if (!had) {
        if (body.password === undefined) {
          throw new Problem(422, 'invalid', 'a new user needs a password', [
            { field: 'password', message: 'required to create a user' },
          ]);
        }
        const u = await deps.ops.addUser(address, { password: body.password, quotaBytes: body.quotaBytes ?? null });
        if (body.enabled === false) await deps.ops.setEnabled(u.address, false);
        return c.json(await item(await existing(u.address)), 201);
      }
      if (body.password !== undefined) await deps.ops.setPassword(had.address, body.password);
      if (body.quotaBytes !== undefined) await deps.ops.setQuota(had.address, body.quotaBytes);
      if (body.enabled !== undefined) await deps.ops.setEnabled(had.address, body.enabled);
      return c.json(await item(await existing(had.address)), 200);
    },
  );
  app.openapi(
    secured({
      method: 'put',
      path: '/api/v1/users/{address}/password',
      tags,
      summary: 'Change the password (a user may change its own)',
      request: { params: UserParam, body: jsonBody(z.strictObject({ password: Password })) },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      const { address } = c.req.valid('param');
      authorize(c, { user: address, self: true }, true);
      await deps.ops.setPassword(address, c.req.valid('json').password);
      return c.body(null, 204);
    },
  );
  app.openapi(
    secured({
      method: 'delete',
      path: '/api/v1/users/{address}',
      tags,
      summary: 'Delete a user (204, also when absent); purge=true removes the Maildir too',
      request: { params: UserParam, query: z.strictObject({ purge: z.enum(['true', 'false']).default('false') }) },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      const { address } = c.req.valid('param');
      authorize(c, { user: address }, true);
      if (await deps.ops.getUser(address)) {
        await deps.ops.deleteUser(address, { purge: c.req.valid('query').purge === 'true' });
      }
      return c.body(null, 204);
    },
  );
  app.openapi(
    secured({
      method: 'get',
      path: '/api/v1/users/{address}/allow',
      tags,
      summary: "The user's allowlist (senders whose mail skips Junk filing)",
      request: { params: UserParam, query: ListQuery },
      responses: {
        200: json(listOf(z.object({ sender: z.string() }).openapi('AllowedSender'), 'AllowList'), 'Entries'),
      },
    }),
    async (c) => {
      const { address } = c.req.valid('param');
      authorize(c, { user: address, self: true }, false);
      const all = (await deps.ops.listAllowedSenders(address)).map((sender) => ({ sender }));
      return c.json(
        page(all, (e) => e.sender, c.req.valid('query')),
        200,
      );
    },
  );
  app.openapi(
    secured({
      method: 'put',
      path: '/api/v1/users/{address}/allow/{sender}',
      tags,
      summary: 'Allow a sender address or domain (idempotent)',
      request: { params: AllowParam },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      const { address, sender } = c.req.valid('param');
      authorize(c, { user: address, self: true }, true);
      await deps.ops.addAllowedSender(address, sender);
      return c.body(null, 204);
    },
  );
  app.openapi(
    secured({
      method: 'delete',
      path: '/api/v1/users/{address}/allow/{sender}',
      tags,
      summary: 'Remove a sender from the allowlist (204, also when absent)',
      request: { params: AllowParam },
      responses: { 204: NO_CONTENT },
    }),
    async (c) => {
      const { address, sender } = c.req.valid('param');
      authorize(c, { user: address, self: true }, true);
      const u = await existing(address);
      // The user exists (above): NOT_FOUND here is the entry, already absent.
      await removeIfThere(() => deps.ops.deleteAllowedSender(u.address, sender));
      return c.body(null, 204);
    },
  );
}
