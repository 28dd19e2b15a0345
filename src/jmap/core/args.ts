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

/** §3.9: "In case of invalid arguments (unknown/insufficient/wrong type for data, etc.), the
 *  method MUST return an invalidArguments error": an argument not in `known`. */
export function checkKnownArgs(args: Record<string, unknown>, known: readonly string[]): void {
  const unknown = Object.keys(args).find((k) => !known.includes(k));
  if (unknown !== undefined) throw new MethodError('invalidArguments', `unknown argument ${unknown.slice(0, 100)}`);
}

/** §3.3/§5.3: an Id argument may be "#creationId", standing for the id created under that
 *  creation id earlier in this request; null when there is none. */
export function resolveId(id: string, createdIds: ReadonlyMap<string, string>): string | null {
  return id.startsWith('#') ? (createdIds.get(id.slice(1)) ?? null) : id;
}
