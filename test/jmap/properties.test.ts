// Properties of the pure JMAP core on arbitrary input: the request parser answers every body
// (a request or a §3.6.1 problem, never an exception), pointers never throw and escape
// round-trips, PatchObjects never change their input, result references throw only
// MethodErrors, and queryChanges always replays the old list into the new one.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import fc from 'fast-check';
import { MethodError } from '../../src/jmap/core/errors.ts';
import { applyPatch, evaluatePointer } from '../../src/jmap/core/pointer.ts';
import { queryChanges } from '../../src/jmap/core/query.ts';
import { CORE_CAPABILITY } from '../../src/jmap/core/registry.ts';
import { parseRequest, resolveReferences } from '../../src/jmap/core/request.ts';

const json = fc.jsonValue({ maxDepth: 4 });

test('parseRequest answers any body with a request or a problem', async () => {
  const caps = new Set([CORE_CAPABILITY]);
  await fc.assert(
    fc.asyncProperty(
      fc.oneof(
        fc.uint8Array({ maxLength: 200 }).map(Buffer.from),
        json.map((v) => Buffer.from(JSON.stringify(v))),
      ),
      async (body) => {
        const r = await parseRequest(body, { capabilities: caps, maxCalls: 8 });
        if (!r.ok)
          assert.match(r.problem.type, /^urn:ietf:params:jmap:error:(notJSON|notRequest|unknownCapability|limit)$/);
      },
    ),
  );
});

test('a key escaped into a pointer finds its value', () => {
  fc.assert(
    fc.property(fc.string({ maxLength: 20 }), json, (key, value) => {
      const pointer = `/${key.replaceAll('~', '~0').replaceAll('/', '~1')}`;
      assert.deepEqual(evaluatePointer({ [key]: value }, pointer), value);
    }),
  );
  fc.assert(
    fc.property(json, fc.string({ maxLength: 40 }), (doc, pointer) => {
      evaluatePointer(doc, pointer);
    }),
  );
});

test('applyPatch never changes its input', () => {
  fc.assert(
    fc.property(
      // (An own "__proto__" of the input would not survive the copy made for the comparison.)
      fc.dictionary(
        fc.string({ maxLength: 6 }).filter((k) => k !== '__proto__'),
        json,
        { maxKeys: 5 },
      ),
      fc.dictionary(fc.string({ maxLength: 12 }), json, { maxKeys: 5 }),
      (object, patch) => {
        const before = JSON.stringify(object);
        const r = applyPatch(object, patch);
        assert.equal(JSON.stringify(object), before);
        if (r.ok) assert.equal(Object.getPrototypeOf(r.value), Object.prototype);
      },
    ),
  );
});

test('resolveReferences throws nothing but MethodErrors', () => {
  const earlier: [string, Record<string, unknown>, string][] = [['Foo/get', { list: [{ id: 'a', n: [1, 2] }] }, 'c0']];
  fc.assert(
    fc.property(fc.dictionary(fc.constantFrom('#ids', 'ids', '#x', 'y'), json, { maxKeys: 3 }), (args) => {
      try {
        resolveReferences(args, earlier);
      } catch (e) {
        assert.ok(e instanceof MethodError, String(e));
      }
    }),
  );
});

test('queryChanges replays the old list into the new one', () => {
  const list = fc.uniqueArray(fc.constantFrom(...'abcdefghij'), { maxLength: 10 });
  fc.assert(
    fc.property(list, list, (old, now) => {
      const r = queryChanges(old, now, {
        filter: null,
        sort: [],
        sinceQueryState: 's',
        maxChanges: null,
        upToId: null,
        calculateTotal: false,
      });
      const replay = old.filter((id) => !r.removed.includes(id));
      for (const { id, index } of r.added) replay.splice(index, 0, id);
      assert.deepEqual(replay, now);
    }),
  );
});
