// The Request object of RFC 8620 §3.3 and its processing (§3.5, §3.7): parsed with zod; each
// method call has its result references resolved, runs through the registry's handler, and
// answers with its response (or an "error" response, §3.6.2), in order. Pure of I/O: handlers
// do the work.

import { z } from 'zod';
import { MethodError, type Problem, problem } from './errors.ts';
import { evaluatePointer } from './pointer.ts';

/** §1.2 Id: 1-255 octets of URL-safe base64 characters. */
export const idSchema = z.string().regex(/^[A-Za-z0-9_-]{1,255}$/, 'not an Id');

const invocation = z.tuple([z.string().min(1).max(255), z.record(z.string(), z.unknown()), z.string().max(255)]);

export const requestSchema = z.object({
  using: z.array(z.string().max(255)).max(64),
  methodCalls: z.array(invocation),
  createdIds: z.record(z.string().max(255), idSchema).optional(),
});

export type JmapRequest = z.infer<typeof requestSchema>;
export type Invocation = [name: string, args: Record<string, unknown>, callId: string];

export interface JmapResponse {
  methodResponses: Invocation[];
  createdIds?: Record<string, string>;
  sessionState: string;
}

const UTF8 = new TextDecoder('utf-8', { fatal: true });

/** The request, or the §3.6.1 problem that answers it. `body` is the raw body (bounded by
 *  the caller to maxSizeRequest). */
export function parseRequest(
  body: Buffer,
  opts: { capabilities: ReadonlySet<string>; maxCalls: number },
): { ok: true; request: JmapRequest } | { ok: false; problem: Problem } {
  let json: unknown;
  try {
    // §3.1 I-JSON (RFC 7493 §2.1): UTF-8, so invalid UTF-8 is notJSON rather than replaced.
    json = JSON.parse(UTF8.decode(body));
  } catch {
    return { ok: false, problem: problem('notJSON', 400, 'the request body is not JSON (RFC 8259, UTF-8)') };
  }
  const r = requestSchema.safeParse(json);
  if (!r.success) {
    const where = r.error.issues[0]?.path.join('.') ?? '';
    return {
      ok: false,
      problem: problem(
        'notRequest',
        400,
        `the body is not a JMAP Request object (RFC 8620 §3.3) at ${where || '(top)'}`,
      ),
    };
  }
  for (const u of r.data.using) {
    if (!opts.capabilities.has(u))
      return { ok: false, problem: problem('unknownCapability', 400, `unknown capability ${JSON.stringify(u)}`) };
  }
  if (r.data.methodCalls.length > opts.maxCalls)
    return {
      ok: false,
      problem: problem('limit', 400, `more than ${opts.maxCalls} method calls`, 'maxCallsInRequest'),
    };
  return { ok: true, request: r.data };
}

const resultReference = z.strictObject({
  resultOf: z.string(),
  name: z.string(),
  path: z.string(),
});

/** §3.7: replaces every "#arg" by the value its ResultReference points to in an earlier
 *  response of this request. Both "arg" and "#arg" → invalidArguments; a reference that does
 *  not resolve → invalidResultReference. */
export function resolveReferences(
  args: Record<string, unknown>,
  earlier: readonly Invocation[],
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(args)) {
    if (!key.startsWith('#')) {
      out[key] = value;
      continue;
    }
    const name = key.slice(1);
    if (Object.hasOwn(args, name))
      throw new MethodError('invalidArguments', `both ${JSON.stringify(name)} and ${JSON.stringify(key)} given`);
    const ref = resultReference.safeParse(value);
    if (!ref.success) throw new MethodError('invalidResultReference', `${key} is not a ResultReference`);
    const { resultOf, name: refName, path } = ref.data;
    // "the first response with a method call id identical to the resultOf property".
    const source = earlier.find((r) => r[2] === resultOf);
    if (!source) throw new MethodError('invalidResultReference', `no earlier response with call id ${resultOf}`);
    if (source[0] !== refName)
      throw new MethodError('invalidResultReference', `response ${resultOf} is ${source[0]}, not ${refName}`);
    const v = evaluatePointer(source[1], path);
    if (v === undefined) throw new MethodError('invalidResultReference', `path ${path} does not resolve`);
    out[name] = v;
  }
  return out;
}
