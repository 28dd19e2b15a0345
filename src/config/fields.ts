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
