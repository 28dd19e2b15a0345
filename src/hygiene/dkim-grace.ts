// The end of a DKIM rotation (docs/hygiene.md "Rotating a key"): how long a retired key's DNS
// record stays published (the grace), and the retired keys as both stores (dkim-keys.ts,
// dkim-keys-pg.ts) list them.

import { readFile } from 'node:fs/promises';
import { ArclineError } from '../core/errors.ts';
import { LIMITS } from '../core/limits.ts';
import type { DkimAlgorithm, DkimKey, RetiredDkimKey } from './dkim-keys.ts';

/** How long a key retired by a rotation stays published by default (docs/hygiene.md): mail
 *  signed just before the activation may be verified days later (queues, forwarding). */
export const DEFAULT_GRACE_MS = 7 * 86_400_000;

export function retiredKey(
  domain: string,
  selector: string,
  algorithm: DkimAlgorithm,
  removableAt: Date,
  gone: boolean,
): RetiredDkimKey {
  return Object.freeze({ domain, selector, algorithm, removableAt, gone });
}

/** Retired keys by selector, those whose selector names a key in use again left out (its DNS
 *  record is that key's now: never "may be removed"). Shared with dkim-keys-pg.ts. */
export function withoutInUse(
  retired: RetiredDkimKey[],
  inUse: readonly Pick<DkimKey, 'selector'>[],
): readonly RetiredDkimKey[] {
  const used = new Set(inUse.map((k) => k.selector));
  const seen = new Set<string>();
  const out = retired.filter((k) => {
    if (used.has(k.selector) || seen.has(`${k.selector}.${k.algorithm}`)) return false;
    seen.add(`${k.selector}.${k.algorithm}`);
    return true;
  });
  out.sort((a, b) => (a.selector < b.selector ? -1 : a.selector > b.selector ? 1 : 0));
  return Object.freeze(out);
}

/** INVALID unless a whole number of ms from 0 to 365 days (a year is plenty, more is a typo). */
export function checkGrace(graceMs: number | undefined): number {
  const g = graceMs ?? DEFAULT_GRACE_MS;
  if (!Number.isSafeInteger(g) || g < 0 || g > LIMITS.dkim.maxGraceMs) {
    throw new ArclineError('INVALID', `DKIM rotation grace: 0 to ${LIMITS.dkim.maxGraceMs / 86_400_000} days`);
  }
  return g;
}

export async function readGrace(path: string): Promise<number> {
  const text = await readFile(path, 'utf8').catch(() => ''); // missing (older key): the default
  const n = Number(text.trim());
  return text.trim() !== '' && Number.isSafeInteger(n) && n >= 0 && n <= LIMITS.dkim.maxGraceMs ? n : DEFAULT_GRACE_MS;
}
