// JSON Pointer (RFC 6901) as JMAP uses it: result references with the "*" array extension
// (RFC 8620 §3.7) and PatchObject paths (§5.3). Pure, bounded (LIMITS.jmap.maxPointerTokens).

import { LIMITS } from '../../core/limits.ts';

/** The reference tokens of a pointer ("" is the whole document), or null if malformed. */
export function pointerTokens(pointer: string): string[] | null {
  if (pointer === '') return [];
  if (!pointer.startsWith('/')) return null;
  const raw = pointer.slice(1).split('/');
  if (raw.length > LIMITS.jmap.maxPointerTokens) return null;
  const out: string[] = [];
  for (const t of raw) {
    // "~" must be followed by 0 or 1 (RFC 6901 §3); ~1 first, then ~0 (§4).
    if (/~(?![01])/.test(t)) return null;
    out.push(t.replaceAll('~1', '/').replaceAll('~0', '~'));
  }
  return out;
}

const ABSENT = Symbol('absent');

/** RFC 8620 §3.7: evaluates `pointer` against `doc`; "*" on an array applies the rest to each
 *  item, and where those results are arrays they are flattened into one. undefined: the path
 *  does not exist. */
export function evaluatePointer(doc: unknown, pointer: string): unknown {
  const tokens = pointerTokens(pointer);
  if (tokens === null) return undefined;
  const v = walk(doc, tokens, 0);
  return v === ABSENT ? undefined : v;
}

function walk(value: unknown, tokens: readonly string[], i: number): unknown {
  if (i === tokens.length) return value;
  const t = tokens[i] as string;
  if (Array.isArray(value)) {
    if (t === '*') {
      const out: unknown[] = [];
      for (const item of value) {
        const r = walk(item, tokens, i + 1);
        if (r === ABSENT) return ABSENT;
        if (Array.isArray(r)) out.push(...r);
        else out.push(r);
      }
      return out;
    }
    if (!/^(?:0|[1-9][0-9]{0,8})$/.test(t)) return ABSENT;
    const n = Number(t);
    return n < value.length ? walk(value[n], tokens, i + 1) : ABSENT;
  }
  if (typeof value === 'object' && value !== null && Object.hasOwn(value, t))
    return walk((value as Record<string, unknown>)[t], tokens, i + 1);
  return ABSENT;
}

export type PatchResult = { ok: true; value: Record<string, unknown> } | { ok: false; description: string };

/** RFC 8620 §5.3 PatchObject: each key a JSON pointer (implicitly rooted, no leading "/") into
 *  `object`, each value the new value (null: remove / reset to default). The parent of every
 *  path must exist; no path may be a prefix of another; "*" is not allowed. Returns a new object
 *  (the input is not changed). */
export function applyPatch(object: Record<string, unknown>, patch: Record<string, unknown>): PatchResult {
  const paths = Object.keys(patch);
  const split: [string[], unknown][] = [];
  for (const p of paths) {
    const tokens = pointerTokens(`/${p}`);
    // "__proto__" would set the result's prototype instead of a property: no JMAP property
    // has that name.
    if (tokens === null || tokens.includes('*') || tokens.includes('__proto__') || tokens.length === 0)
      return { ok: false, description: `invalid patch path ${JSON.stringify(p)}` };
    split.push([tokens, patch[p]]);
  }
  const inside = nestedPatchPath(paths);
  if (inside !== null) return { ok: false, description: `patch path ${JSON.stringify(inside)} is inside another` };
  const result = structuredClone(object);
  for (const [tokens, value] of split) {
    let parent: unknown = result;
    for (const t of tokens.slice(0, -1)) {
      if (typeof parent !== 'object' || parent === null || Array.isArray(parent) || !Object.hasOwn(parent, t))
        return { ok: false, description: `patch path /${tokens.join('/')}: no such parent` };
      parent = (parent as Record<string, unknown>)[t];
    }
    if (typeof parent !== 'object' || parent === null || Array.isArray(parent))
      return { ok: false, description: `patch path /${tokens.join('/')}: parent is not an object` };
    const key = tokens[tokens.length - 1] as string;
    if (value === null) delete (parent as Record<string, unknown>)[key];
    else (parent as Record<string, unknown>)[key] = value;
  }
  return { ok: true, value: result };
}

/** §5.3: "a patch MUST NOT have two properties where one is the prefix of the other": the first
 *  path inside another one of `paths`, or null. Each path's own prefixes (at its "/"s) are
 *  looked up: sorting alone misses "a" before "a/c" when "a-b" sorts between them. */
export function nestedPatchPath(paths: readonly string[]): string | null {
  const all = new Set(paths);
  for (const p of paths)
    for (let i = p.indexOf('/'); i >= 0; i = p.indexOf('/', i + 1)) if (all.has(p.slice(0, i))) return p;
  return null;
}
