// Field types the config sections share (schema.ts and the sections in their own files).

import { z } from 'zod';
import { parseSize } from '../core/size.ts';
import { parseDuration } from './duration.ts';

/** A string or number read by `parse` (sizes, durations); the error says what is expected. */
function parsedWith(parse: (v: string | number) => number | null, what: string, examples: string) {
  return z.union([z.string(), z.number()]).transform((v, ctx) => {
    const n = parse(v);
    if (n === null) {
      ctx.addIssue({ code: 'custom', message: `not a ${what}: ${JSON.stringify(v)} (use e.g. ${examples})` });
      return z.NEVER;
    }
    return n;
  });
}

export const size = parsedWith(parseSize, 'size', '"50MB", "512KB"');
export const duration = parsedWith(parseDuration, 'duration', '"30s", "5m"');
export const positiveInt = z.number().int().positive();

/** "host:port", "[v6]:port" or ":port"; port 0 picks a free port (tests). */
export const listenAddress = z.string().refine((s) => parseListen(s) !== null, {
  message: 'not a listen address (use "127.0.0.1:25", "[::1]:25" or ":25")',
});

export function parseListen(s: string): { host: string; port: number } | null {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^[\]:]*)):(\d{1,5})$/.exec(s);
  if (!m) return null;
  const port = Number(m[3]);
  if (port > 65535) return null;
  const host = m[1] ?? m[2] ?? '';
  return { host: host === '' ? '::' : host, port };
}
