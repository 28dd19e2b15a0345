// Argument validation shared by the method helpers: zod schemas, failures answered
// invalidArguments (RFC 8620 §3.6.2) with the first issue.

import type { z } from 'zod';
import { MethodError } from './errors.ts';

export function parseArgs<T extends z.ZodType>(schema: T, args: Record<string, unknown>): z.infer<T> {
  const r = schema.safeParse(args);
  if (r.success) return r.data;
  const issue = r.error.issues[0];
  const where = issue?.path.join('.') || '(arguments)';
  throw new MethodError('invalidArguments', `${where}: ${issue?.message ?? 'invalid'}`);
}

/** §3.3/§5.3: an Id argument may be "#creationId", standing for the id created under that
 *  creation id earlier in this request; null when there is none. */
export function resolveId(id: string, createdIds: ReadonlyMap<string, string>): string | null {
  return id.startsWith('#') ? (createdIds.get(id.slice(1)) ?? null) : id;
}
