// What every module of the admin HTTP API shares: its environment (the caller, their address),
// its dependencies, RFC 9457 problem answers, the list envelope with its opaque cursor, and the
// zod schemas reused across resources (the single source of the OpenAPI document).

import type { HttpBindings } from '@hono/node-server';
import { createRoute, type OpenAPIHono, type RouteConfig, z } from '@hono/zod-openapi';
import type { AdminAccess, Role } from '../admin/access.ts';
import type { AdminOps } from '../admin/operations.ts';
import type { Authenticator } from '../auth/authenticator.ts';
import type { CheckReport } from '../check/report.ts';
import { isArclineError } from '../core/errors.ts';
import type { Logger } from '../core/log.ts';
import type { DefenseStore } from '../defense/store.ts';
import type { DnsLookups } from '../dns/published.ts';
import type { DkimAlgorithm, DkimKeys } from '../hygiene/dkim-keys.ts';
import type { MtaStsSettings } from '../hygiene/mta-sts.ts';
import type { QueueBackend } from '../queue/types.ts';
import type { ReceivedReports } from '../reports/received.ts';
import type { MailStore } from '../store/types.ts';

/** The caller of a request, once authenticated. */
export interface Caller {
  readonly role: Role;
  readonly tokenId: string;
  /** For the audit log: the token's name (or id), or the user of a session. */
  readonly actor: string;
}

export interface ApiEnv {
  Bindings: HttpBindings;
  Variables: { caller: Caller; ip: string };
}

/** TXT, MX, SRV and CNAME lookups through the configured resolvers (node:dns/promises Resolver). */

export interface ApiDeps {
  readonly ops: AdminOps;
  readonly store: Pick<MailStore, 'usage'>;
  readonly dkim: DkimKeys;
  readonly dkimDefaults: { readonly selector: string; readonly algorithm: DkimAlgorithm };
  readonly queue: QueueBackend;
  readonly access: AdminAccess;
  /** IP allow and deny lists and bans (defense/store.ts). */
  readonly defense: DefenseStore;
  readonly authenticator: Authenticator;
  readonly log: Logger;
  readonly hostname: string;
  readonly mtaSts: MtaStsSettings;
  readonly dns: DnsLookups;
  /** `arcline check` of one domain (check/report.ts runChecks), with the server's checks. */
  readonly check: (domain: string) => Promise<CheckReport>;
  /** The reports other operators sent to a mailbox of ours (reports/received.ts). */
  readonly received: ReceivedReports;
  /** Counters for the summary (process start, SMTP messages, deliveries). */
  readonly stats: () => Promise<{ since: Date; accepted: number; rejected: number; delivered: number }>;
}

export type ApiApp = OpenAPIHono<ApiEnv>;

/** An error answered as problem+json (RFC 9457); thrown anywhere, turned into a reply by app.ts. */
export class Problem extends Error {
  readonly status: number;
  readonly kind: string;
  readonly errors: readonly { field: string; message: string }[] | undefined;
  constructor(status: number, kind: string, detail: string, errors?: readonly { field: string; message: string }[]) {
    super(detail);
    this.status = status;
    this.kind = kind;
    this.errors = errors;
  }
}

const TITLES: Record<number, string> = {
  400: 'Bad request',
  401: 'Unauthorized',
  403: 'Forbidden',
  404: 'Not found',
  409: 'Conflict',
  413: 'Content too large',
  415: 'Unsupported media type',
  422: 'Unprocessable content',
  429: 'Too many requests',
  500: 'Internal error',
  503: 'Service unavailable',
};

export function problemResponse(p: Problem, extraHeaders: Record<string, string> = {}): Response {
  const body = {
    type: `https://arcline.dev/problems/${p.kind}`,
    title: TITLES[p.status] ?? 'Error',
    status: p.status,
    detail: p.message,
    ...(p.errors ? { errors: p.errors } : {}),
  };
  return new Response(JSON.stringify(body), {
    status: p.status,
    headers: { 'content-type': 'application/problem+json', 'cache-control': 'no-store', ...extraHeaders },
  });
}

export const ProblemSchema = z
  .object({
    type: z.string(),
    title: z.string(),
    status: z.number().int(),
    detail: z.string(),
    errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  })
  .openapi('Problem');

const problemContent = { 'application/problem+json': { schema: ProblemSchema } };
/** The error answers every authenticated route may give. */
export const PROBLEMS = {
  400: { description: 'Invalid input', content: problemContent },
  401: { description: 'No or bad token', content: problemContent },
  403: { description: 'Not allowed for this role', content: problemContent },
  404: { description: 'Not found', content: problemContent },
  409: { description: 'Conflict', content: problemContent },
  413: { description: 'Body over 64 KiB', content: problemContent },
  415: { description: 'Not JSON', content: problemContent },
  422: { description: 'Semantically invalid', content: problemContent },
  429: { description: 'Too many failed authentications', content: problemContent },
} as const;

export const json = <T extends z.ZodType>(schema: T, description: string) => ({
  description,
  content: { 'application/json': { schema } },
});

export const jsonBody = <T extends z.ZodType>(schema: T) => ({
  required: true,
  content: { 'application/json': { schema } },
});

export const NO_CONTENT = { description: 'Done' } as const;
export const SECURITY = [{ bearer: [] }];

/** A route behind the Bearer token, with every problem answer documented. */
export function secured<R extends Omit<RouteConfig, 'security'>>(r: R) {
  return createRoute({ ...r, security: SECURITY, responses: { ...r.responses, ...PROBLEMS } });
}

/** Idempotent DELETE: runs `remove`, taking "it is not there" (NOT_FOUND) as done. */
export async function removeIfThere(remove: () => Promise<unknown>): Promise<void> {
  try {
    await remove();
  } catch (e) {
    if (!isArclineError(e, 'NOT_FOUND')) throw e;
  }
}

export const ListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100).openapi({ description: '1..500, default 100' }),
  cursor: z.string().max(512).optional().openapi({ description: 'Opaque, from `next` of the previous page' }),
  q: z.string().max(200).optional().openapi({ description: 'Substring filter (case-insensitive)' }),
});

/** A list that may be narrowed to one domain (`?domain=`). */
export const DomainListQuery = ListQuery.extend({ domain: z.string().min(1).max(253).optional() });

export const listOf = <T extends z.ZodType>(item: T, name: string) =>
  z.object({ items: z.array(item), next: z.string().nullable() }).openapi(name);

/** One page of `items` (sorted by `key`, unique): those after the cursor that contain `q` in
 *  one of `text(item)`. The cursor is the last key of the page, base64url: opaque to clients. */
export function page<T>(
  items: readonly T[],
  key: (t: T) => string,
  query: { limit: number; cursor?: string | undefined; q?: string | undefined },
  text: (t: T) => readonly string[] = (t) => [key(t)],
): { items: T[]; next: string | null } {
  let after: string | null = null;
  if (query.cursor !== undefined) {
    after = Buffer.from(query.cursor, 'base64url').toString('utf8');
    if (after === '' || Buffer.from(after).toString('base64url') !== query.cursor) {
      throw new Problem(400, 'invalid-cursor', 'the cursor is not one this server gave', [
        { field: 'cursor', message: 'invalid cursor' },
      ]);
    }
  }
  const needle = query.q?.toLowerCase();
  const sorted = [...items].sort((a, b) => (key(a) < key(b) ? -1 : key(a) > key(b) ? 1 : 0));
  const out: T[] = [];
  for (const t of sorted) {
    if (after !== null && key(t) <= after) continue;
    if (needle && !text(t).some((s) => s.toLowerCase().includes(needle))) continue;
    if (out.length === query.limit) {
      return { items: out, next: Buffer.from(key(out[out.length - 1] as T)).toString('base64url') };
    }
    out.push(t);
  }
  return { items: out, next: null };
}

export const Address = z.string().min(3).max(320).openapi({ example: 'alice@example.org' });
export const DomainParam = z.object({
  name: z
    .string()
    .min(1)
    .max(253)
    .openapi({ param: { name: 'name', in: 'path' }, example: 'example.org' }),
});
