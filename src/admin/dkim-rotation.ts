// DKIM key rotation (RFC 6376 §3.1 selectors; M3AAWG's advice: rotate, publish the new record
// first, keep the old one published a while): one operation for the CLI and the API.
//   1. rotate: for every algorithm that signs now, a new key under a new selector
//      ("{[dkim] selector}-{YYYYMMDD}", then "-2", "-3"... when taken), kept pending: it does not
//      sign yet, so no receiver sees a signature whose record is not in DNS;
//   2. the operator publishes the new records (`arcline dkim list` / the API show them);
//   3. activate: refused while the record is not found in DNS (unless forced); then the new key
//      signs and the old key of that algorithm is retired (kept aside, hygiene/dkim-keys.ts).
//      `advanceRotations` does it by itself (a timer, or the leader task in a cluster) for every
//      pending key whose record is found;
//   4. after the grace (default 7 days) the retired key is deleted: `dkim list` says its record
//      may be removed (docs/hygiene.md "Rotating a key").

import { ArclineError, isArclineError } from '../core/errors.ts';
import {
  type DkimAlgorithm,
  type DkimKey,
  type DkimKeys,
  dkimRecordName,
  dkimTxtValue,
  type RetiredDkimKey,
} from '../hygiene/dkim-keys.ts';

export interface RotationDeps {
  readonly dkim: DkimKeys;
  readonly defaults: { readonly selector: string; readonly algorithm: DkimAlgorithm };
  /** Whether a TXT record with this value is published at this name now (null: the lookup
   *  failed), through the configured resolvers. */
  readonly published: (name: string, value: string) => Promise<boolean | null>;
}

/** The first selector of `base`, `base-2`, `base-3`... that no key of the domain (signing or
 *  pending) uses. */
export async function freeSelector(dkim: DkimKeys, domain: string, base: string): Promise<string> {
  const used = new Set([...(await dkim.keys(domain)), ...(await dkim.pendingKeys(domain))].map((k) => k.selector));
  let selector = base;
  for (let n = 2; used.has(selector); n++) selector = `${base}-${n}`;
  return selector;
}

export interface RotateOptions {
  /** Only this algorithm (default: every algorithm that signs now, or the configured one). */
  readonly algorithm?: DkimAlgorithm;
  /** How long the retired key's record stays published (default DEFAULT_GRACE_MS). */
  readonly graceMs?: number;
}

/** Step 1: the pending keys made (one per algorithm that signs now, or the default one). */
export async function rotateDkim(
  deps: RotationDeps,
  domain: string,
  opts: RotateOptions = {},
  now = new Date(),
): Promise<readonly DkimKey[]> {
  const active = await deps.dkim.keys(domain);
  const algorithms = opts.algorithm
    ? [opts.algorithm]
    : active.length > 0
      ? [...new Set(active.map((k) => k.algorithm))]
      : [deps.defaults.algorithm];
  const base = `${deps.defaults.selector}-${now.toISOString().slice(0, 10).replace(/-/g, '')}`;
  const made: DkimKey[] = [];
  for (const algorithm of algorithms) {
    // Each key made is pending by the next round, so the next algorithm gets the next name.
    const selector = await freeSelector(deps.dkim, domain, base);
    made.push(
      await deps.dkim.generate(domain, {
        selector,
        algorithm,
        pending: true,
        ...(opts.graceMs === undefined ? {} : { graceMs: opts.graceMs }),
      }),
    );
  }
  return made;
}

/** Step 3: the pending key of `selector` signs; returns where the retired keys went. */
export async function activateDkim(
  deps: RotationDeps,
  domain: string,
  selector: string,
  opts: { force?: boolean } = {},
): Promise<{ key: DkimKey; retired: string | null }> {
  const key = (await deps.dkim.pendingKeys(domain)).find((k) => k.selector === selector.toLowerCase());
  if (!key) throw new ArclineError('NOT_FOUND', `${domain} has no pending DKIM key with selector ${selector}`);
  if (!opts.force) {
    const name = dkimRecordName(key);
    const found = await deps.published(name, dkimTxtValue(key));
    if (found !== true) {
      throw new ArclineError(
        'CONFLICT',
        `the DKIM record ${name} is ${found === null ? 'not resolvable now' : 'not published yet'}: publish it first (or force)`,
      );
    }
  }
  return { key, retired: await deps.dkim.activate(domain, key.selector) };
}

export interface RotationRound {
  readonly activated: readonly DkimKey[];
  readonly expired: readonly RetiredDkimKey[];
}

/**
 * Steps 3 and 4 without the operator, for the periodic task: every pending key whose record is
 * published now (the same TXT value at its name; a failed lookup waits for the next round) is
 * activated, and retired keys past their grace are deleted. One domain's failure does not stop
 * the others'; the caller logs what came back.
 */
export async function advanceRotations(
  deps: RotationDeps,
  domains: readonly string[],
  now = new Date(),
): Promise<RotationRound> {
  const activated: DkimKey[] = [];
  const expired: RetiredDkimKey[] = [];
  for (const domain of domains) {
    for (const key of await deps.dkim.pendingKeys(domain)) {
      if ((await deps.published(dkimRecordName(key), dkimTxtValue(key))) !== true) continue;
      try {
        await deps.dkim.activate(domain, key.selector, now);
        activated.push(key);
      } catch (e) {
        // Activated (or removed) meanwhile by the operator: nothing left to do for it.
        if (!(isArclineError(e) && e.code === 'NOT_FOUND')) throw e;
      }
    }
    expired.push(...(await deps.dkim.expireRetired(domain, now)));
  }
  return { activated, expired };
}
