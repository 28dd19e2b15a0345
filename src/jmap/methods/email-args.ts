// The arguments Email/get (RFC 8621 §4.2) has beyond the standard /get ones, which Email/parse
// (§4.9) takes too: checked with zod (wrong types: invalidArguments, RFC 8620 §3.9).

import { z } from 'zod';
import { parseArgs } from '../core/args.ts';

const getExtra = z.object({
  properties: z.array(z.string().max(256)).max(256).nullable().optional(),
  bodyProperties: z.array(z.string().max(256)).max(256).nullable().optional(),
  fetchTextBodyValues: z.boolean().default(false),
  fetchHTMLBodyValues: z.boolean().default(false),
  fetchAllBodyValues: z.boolean().default(false),
  // §4.2: an UnsignedInt, 0 (the default) for no truncation.
  maxBodyValueBytes: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).optional(),
});

/** Email/get's own arguments, which Email/parse takes too (§4.9). */
export const BODY_ARGS = Object.keys(getExtra.shape);

/** Email/get's own arguments (§4.2) checked; Email/parse (§4.9) takes the same. */
export function parseBodyArgs(args: Record<string, unknown>): z.infer<typeof getExtra> {
  return parseArgs(getExtra, Object.fromEntries(Object.entries(args).filter(([k]) => k in getExtra.shape)));
}
