// The pure JMAP core (src/jmap/core/): JSON pointers with the "*" extension and PatchObjects,
// request parsing and its §3.6.1 problems, result references (§3.7, with the RFC's example),
// method processing and errors, and the /get, /set, /changes, /query and /queryChanges helpers.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { changesResponse, foldChanges, parseChanges } from '../../src/jmap/core/changes.ts';
import { MethodError, SetFailure } from '../../src/jmap/core/errors.ts';
import { getResponse, parseGet } from '../../src/jmap/core/get.ts';
import { applyPatch, evaluatePointer, nestedPatchPath } from '../../src/jmap/core/pointer.ts';
import {
  parseQuery,
  parseQueryChanges,
  queryChanges,
  queryChangesResponse,
  queryResponse,
  queryWindow,
} from '../../src/jmap/core/query.ts';
import {
  CORE_CAPABILITY,
  type CoreLimits,
  type MethodContext,
  MethodRegistry,
  processRequest,
} from '../../src/jmap/core/registry.ts';
import { parseRequest, resolveReferences } from '../../src/jmap/core/request.ts';
import { runSet } from '../../src/jmap/core/set.ts';

const LIMITS: CoreLimits = {
  maxSizeUpload: 1000,
  maxConcurrentUpload: 1,
  maxSizeRequest: 1000,
  maxConcurrentRequests: 1,
  maxCallsInRequest: 3,
  maxObjectsInGet: 2,
  maxObjectsInSet: 3,
};

const ctx = (createdIds = new Map<string, string>()): MethodContext => ({
  account: 'alice@example.test' as AccountId,
  accountId: 'Aacc',
  limits: LIMITS,
  using: new Set([CORE_CAPABILITY]),
  createdIds,
  followUps: [],
  callId: 'c0',
});

const methodError = (type: string) => (e: unknown) => e instanceof MethodError && e.type === type;

describe('JSON pointer (RFC 6901, RFC 8620 §3.7)', () => {
  const doc = { a: [{ b: [1, 2] }, { b: [3] }], 'x/y': { '~z': 5 }, list: [{ id: 'p' }, { id: 'q' }] };
  test('plain paths, escapes, array indexes', () => {
    assert.deepEqual(evaluatePointer(doc, ''), doc);
    assert.equal(evaluatePointer(doc, '/x~1y/~0z'), 5);
    assert.equal(evaluatePointer(doc, '/a/1/b/0'), 3);
    assert.equal(evaluatePointer(doc, '/a/2'), undefined);
    assert.equal(evaluatePointer(doc, '/a/01'), undefined);
    assert.equal(evaluatePointer(doc, 'a'), undefined);
    assert.equal(evaluatePointer(doc, '/x~2y'), undefined);
  });
  test('"*" maps over arrays and flattens array results', () => {
    assert.deepEqual(evaluatePointer(doc, '/list/*/id'), ['p', 'q']);
    assert.deepEqual(evaluatePointer(doc, '/a/*/b'), [1, 2, 3]);
    assert.equal(evaluatePointer(doc, '/list/*/nope'), undefined);
    assert.equal(evaluatePointer(doc, '/x~1y/*'), undefined);
  });
  test('too many tokens is no pointer', () => {
    assert.equal(evaluatePointer({}, '/a'.repeat(100)), undefined);
  });
});

describe('PatchObject (RFC 8620 §5.3)', () => {
  const obj = { name: 'n', keywords: { $seen: true }, deep: { a: { b: 1 } } };
  test('sets, removes, nested paths; input unchanged', () => {
    const r = applyPatch(obj, { name: 'm', 'keywords/$flagged': true, 'keywords/$seen': null, 'deep/a/b': 2 });
    assert.ok(r.ok);
    assert.deepEqual(r.value, { name: 'm', keywords: { $flagged: true }, deep: { a: { b: 2 } } });
    assert.deepEqual(obj.keywords, { $seen: true });
  });
  test('missing parent, prefix paths, "*" are invalid', () => {
    assert.equal(applyPatch(obj, { 'nope/x': 1 }).ok, false);
    assert.equal(applyPatch(obj, { keywords: {}, 'keywords/$seen': true }).ok, false);
    assert.equal(applyPatch(obj, { 'keywords/*': true }).ok, false);
    assert.equal(applyPatch(obj, { 'name/x': 1 }).ok, false);
    // A prefix with a path sorting between them ("-" < "/"): still one inside the other.
    assert.equal(applyPatch(obj, { keywords: {}, 'keywords-x': 1, 'keywords/$seen': true }).ok, false);
    assert.equal(nestedPatchPath(['a', 'a-b', 'a/c/d']), 'a/c/d');
    assert.equal(nestedPatchPath(['a/b', 'a/bc', 'ab']), null);
    // ~1 is "/" and ~0 is "~" in a key (RFC 6901 §4); another "~" makes no path.
    const esc = applyPatch({ keywords: {} }, { 'keywords/a~1b~0c': true });
    assert.ok(esc.ok);
    assert.deepEqual(esc.value, { keywords: { 'a/b~c': true } });
    assert.equal(applyPatch(obj, { 'keywords/a~2': true }).ok, false);
    assert.equal(applyPatch(obj, JSON.parse('{"__proto__": {"polluted": true}}')).ok, false);
    assert.equal(({} as Record<string, unknown>).polluted, undefined);
  });
});

describe('request parsing (§3.3, §3.6.1)', () => {
  const caps = new Set([CORE_CAPABILITY]);
  const parse = (body: string) => parseRequest(Buffer.from(body), { capabilities: caps, maxCalls: 3 });
  test('problems', async () => {
    const notJson = await parse('{');
    assert.ok(!notJson.ok && notJson.problem.type === 'urn:ietf:params:jmap:error:notJSON');
    // §3.1 I-JSON is UTF-8: an invalid sequence is notJSON, not replaced.
    const bad = await parseRequest(Buffer.from('{"using":["\xff"],"methodCalls":[]}', 'latin1'), {
      capabilities: caps,
      maxCalls: 3,
    });
    assert.ok(!bad.ok && bad.problem.type === 'urn:ietf:params:jmap:error:notJSON');
    const notReq = await parse('{"using":[]}');
    assert.ok(!notReq.ok && notReq.problem.type === 'urn:ietf:params:jmap:error:notRequest');
    const cap = await parse('{"using":["urn:x"],"methodCalls":[]}');
    assert.ok(!cap.ok && cap.problem.type === 'urn:ietf:params:jmap:error:unknownCapability');
    const calls = JSON.stringify({ using: [], methodCalls: Array(4).fill(['Core/echo', {}, 'c']) });
    const lim = await parse(calls);
    assert.ok(!lim.ok && lim.problem.type === 'urn:ietf:params:jmap:error:limit');
    assert.equal(!lim.ok && lim.problem.limit, 'maxCallsInRequest');
  });
  test('a valid request', async () => {
    const r = await parse('{"using":["urn:ietf:params:jmap:core"],"methodCalls":[["Core/echo",{"a":1},"c1"]]}');
    assert.ok(r.ok);
  });
});

describe('result references (§3.7)', () => {
  test('the RFC example: Foo/changes → Foo/get with #ids, Foo/get → Bar/get with #ids', () => {
    const earlier: [string, Record<string, unknown>, string][] = [
      [
        'Foo/changes',
        {
          accountId: 'A1',
          oldState: 'abcdef',
          newState: 'bcdefg',
          hasMoreChanges: false,
          created: ['f1', 'f4'],
          updated: [],
          destroyed: [],
        },
        't0',
      ],
    ];
    const args = resolveReferences(
      { accountId: 'A1', '#ids': { resultOf: 't0', name: 'Foo/changes', path: '/created' } },
      earlier,
    );
    assert.deepEqual(args, { accountId: 'A1', ids: ['f1', 'f4'] });
    earlier.push([
      'Foo/get',
      {
        list: [
          { id: 'f1', barIds: ['b1'] },
          { id: 'f4', barIds: ['b2', 'b3'] },
        ],
      },
      't1',
    ]);
    assert.deepEqual(
      resolveReferences({ '#ids': { resultOf: 't1', name: 'Foo/get', path: '/list/*/barIds' } }, earlier),
      { ids: ['b1', 'b2', 'b3'] },
    );
  });
  test('errors', () => {
    const earlier: [string, Record<string, unknown>, string][] = [['Foo/get', { list: [] }, 'a']];
    assert.throws(() => resolveReferences({ ids: [], '#ids': {} }, earlier), methodError('invalidArguments'));
    const bad = (ref: unknown) =>
      assert.throws(() => resolveReferences({ '#ids': ref }, earlier), methodError('invalidResultReference'));
    bad({ resultOf: 'zz', name: 'Foo/get', path: '/list' });
    bad({ resultOf: 'a', name: 'Foo/set', path: '/list' });
    bad({ resultOf: 'a', name: 'Foo/get', path: '/nope' });
    bad({ resultOf: 'a', name: 'Foo/get' });
    bad('a');
  });
});

describe('processRequest (§3.5, §3.6.2)', () => {
  const registry = new MethodRegistry()
    .capability(CORE_CAPABILITY)
    .capability('urn:other')
    .method(CORE_CAPABILITY, 'Core/echo', (a) => a)
    .method(CORE_CAPABILITY, 'Test/fail', () => {
      throw new Error('boom');
    })
    .method('urn:other', 'Other/x', () => ({}));
  test('order, errors, unknown methods, capabilities not used, createdIds returned', async () => {
    const failures: string[] = [];
    const r = await processRequest(
      registry,
      {
        using: [CORE_CAPABILITY],
        methodCalls: [
          ['Core/echo', { hello: true }, 'a'],
          ['Nope/get', {}, 'b'],
          ['Other/x', {}, 'c'],
          ['Test/fail', {}, 'd'],
          ['Core/echo', { '#x': { resultOf: 'a', name: 'Core/echo', path: '/hello' } }, 'e'],
        ],
        createdIds: { k: 'v' },
      },
      {
        account: 'u@x' as AccountId,
        accountId: 'A',
        limits: LIMITS,
        sessionState: 's1',
        onFailure: (n) => failures.push(n),
      },
    );
    assert.deepEqual(r.methodResponses, [
      ['Core/echo', { hello: true }, 'a'],
      ['error', { type: 'unknownMethod', description: 'unknown method Nope/get' }, 'b'],
      ['error', { type: 'unknownMethod', description: 'unknown method Other/x' }, 'c'],
      ['error', { type: 'serverFail' }, 'd'],
      ['Core/echo', { x: true }, 'e'],
    ]);
    assert.deepEqual(r.createdIds, { k: 'v' });
    assert.equal(r.sessionState, 's1');
    assert.deepEqual(failures, ['Test/fail']);
  });
});

describe('/get helper (§5.1)', () => {
  const known = ['id', 'name', 'size'];
  test('properties filtered, id always, notFound, creation ids', () => {
    const c = ctx(new Map([['new1', 'x3']]));
    const req = parseGet({ accountId: 'Aacc', ids: ['x1', '#new1'], properties: ['name'] }, c, known);
    assert.deepEqual(req.ids, ['x1', 'x3']);
    const r = getResponse(req, c, 'st', [{ id: 'x3', name: 'three', size: 3 }]);
    assert.deepEqual(r, { accountId: 'Aacc', state: 'st', list: [{ name: 'three', id: 'x3' }], notFound: ['x1'] });
    const un = parseGet({ accountId: 'Aacc', ids: ['#nope'] }, c, known);
    assert.deepEqual(getResponse(un, c, 'st', []).notFound, ['#nope']);
  });
  test('errors', () => {
    assert.throws(() => parseGet({ accountId: 'other', ids: [] }, ctx(), known), methodError('accountNotFound'));
    assert.throws(
      () => parseGet({ accountId: 'Aacc', ids: ['a', 'b', 'c'] }, ctx(), known),
      methodError('requestTooLarge'),
    );
    assert.throws(
      () => parseGet({ accountId: 'Aacc', properties: ['bogus'] }, ctx(), known),
      methodError('invalidArguments'),
    );
    assert.throws(() => parseGet({ accountId: 'Aacc', ids: 'x' }, ctx(), known), methodError('invalidArguments'));
  });
});

describe('/set helper (§5.3)', () => {
  const store = () => {
    const objs = new Map<string, Record<string, unknown>>([['o1', { id: 'o1', name: 'one' }]]);
    let state = 1;
    let next = 2;
    return {
      objs,
      handlers: {
        state: () => String(state),
        async create(o: Record<string, unknown>) {
          if (typeof o.name !== 'string') throw new SetFailure('invalidProperties', 'name', ['name']);
          const id = `o${next++}`;
          objs.set(id, { id, ...o });
          state++;
          return { id };
        },
        async update(id: string, patch: Record<string, unknown>) {
          const o = objs.get(id);
          if (!o) throw new SetFailure('notFound');
          const r = applyPatch(o, patch);
          if (!r.ok) throw new SetFailure('invalidPatch', r.description);
          objs.set(id, r.value);
          state++;
          return null;
        },
        async destroy(id: string) {
          if (!objs.delete(id)) throw new SetFailure('notFound');
          state++;
        },
      },
    };
  };
  test('create, update by creation id, destroy, per-object failures', async () => {
    const s = store();
    const c = { ...ctx(), limits: { ...LIMITS, maxObjectsInSet: 5 } };
    const r = await runSet(
      {
        accountId: 'Aacc',
        create: { k1: { name: 'two' }, k2: { name: 5 } },
        update: { '#k1': { name: 'TWO' }, o9: { name: 'x' } },
        destroy: ['o1'],
      },
      c,
      s.handlers,
    );
    assert.equal(r.oldState, '1');
    assert.equal(r.newState, '4');
    assert.deepEqual(r.created, { k1: { id: 'o2' } });
    assert.deepEqual(r.updated, { o2: null });
    assert.deepEqual(r.destroyed, ['o1']);
    assert.deepEqual(r.notCreated, { k2: { type: 'invalidProperties', description: 'name', properties: ['name'] } });
    assert.deepEqual(r.notUpdated, { o9: { type: 'notFound' } });
    assert.equal(r.notDestroyed, null);
    assert.equal(c.createdIds.get('k1'), 'o2');
    assert.deepEqual(s.objs.get('o2'), { id: 'o2', name: 'TWO' });
  });
  test('willDestroy, invalidPatch, ifInState, requestTooLarge, a type without create', async () => {
    const s = store();
    const r = await runSet({ accountId: 'Aacc', update: { o1: { name: 'x' } }, destroy: ['o1'] }, ctx(), s.handlers);
    assert.deepEqual(r.notUpdated, { o1: { type: 'willDestroy' } });
    const p = await runSet({ accountId: 'Aacc', update: { o1: { 'a/b': 1 } } }, ctx(), store().handlers);
    assert.equal((p.notUpdated as Record<string, { type: string }>).o1?.type, 'invalidPatch');
    await assert.rejects(
      runSet({ accountId: 'Aacc', ifInState: 'old', destroy: [] }, ctx(), s.handlers),
      methodError('stateMismatch'),
    );
    await assert.rejects(
      runSet({ accountId: 'Aacc', destroy: ['a', 'b', 'c', 'd'] }, ctx(), s.handlers),
      methodError('requestTooLarge'),
    );
    const ro = await runSet({ accountId: 'Aacc', create: { k: {} } }, ctx(), { state: () => 's' });
    assert.equal((ro.notCreated as Record<string, { type: string }>).k?.type, 'forbidden');
  });
  test('an unexpected failure: serverFail before any change, serverPartialFail after one (§3.6.2)', async () => {
    const boom = new Error('disk on fire');
    const handlers = (failOn: string) => ({
      state: () => 's',
      async create(o: Record<string, unknown>) {
        if (o.name === failOn) throw boom;
        return { id: `x${String(o.name)}` };
      },
      async destroy(id: string) {
        if (id === failOn) throw boom;
      },
    });
    await assert.rejects(runSet({ accountId: 'Aacc', create: { a: { name: 'a' } } }, ctx(), handlers('a')), boom);
    await assert.rejects(
      runSet({ accountId: 'Aacc', create: { a: { name: 'a' }, b: { name: 'b' } } }, ctx(), handlers('b')),
      (e: unknown) => e instanceof MethodError && e.type === 'serverPartialFail' && e.cause === boom,
    );
    await assert.rejects(
      runSet({ accountId: 'Aacc', create: { a: { name: 'a' } }, destroy: ['z'] }, ctx(), handlers('z')),
      methodError('serverPartialFail'),
    );
    // Through processRequest: the cause is told to onFailure (logged), the answer is the error.
    const reg = new MethodRegistry().capability(CORE_CAPABILITY);
    reg.method(CORE_CAPABILITY, 'T/set', (a, c) => runSet(a, c, handlers('b')));
    const failures: unknown[] = [];
    const res = await processRequest(
      reg,
      {
        using: [CORE_CAPABILITY],
        methodCalls: [['T/set', { accountId: 'Aacc', create: { a: { name: 'a' }, b: { name: 'b' } } }, '0']],
      },
      {
        account: 'acc' as AccountId,
        accountId: 'Aacc',
        limits: LIMITS,
        sessionState: 's',
        onFailure: (_n, e) => failures.push(e),
      },
    );
    assert.deepEqual(res.methodResponses[0]?.[1], {
      type: 'serverPartialFail',
      description: 'the call failed after some of its changes were made',
    });
    assert.deepEqual(failures, [boom]);
  });
});

describe('/changes helper (§5.2)', () => {
  const e = (state: string, id: string, kind: 'created' | 'updated' | 'destroyed') => ({ state, id, kind });
  test('folding: created+destroyed vanish, created+updated is created, updated+destroyed destroyed', () => {
    const r = foldChanges(
      [
        e('2', 'a', 'created'),
        e('3', 'a', 'updated'),
        e('3', 'b', 'updated'),
        e('4', 'b', 'destroyed'),
        e('5', 'c', 'created'),
        e('6', 'c', 'destroyed'),
      ],
      '6',
      null,
    );
    assert.deepEqual(r, { newState: '6', hasMoreChanges: false, created: ['a'], updated: [], destroyed: ['b'] });
    assert.deepEqual(foldChanges([], '9', 5), {
      newState: '9',
      hasMoreChanges: false,
      created: [],
      updated: [],
      destroyed: [],
    });
  });
  test('maxChanges cuts at a state boundary; too many in one state → cannotCalculateChanges', () => {
    const entries = [e('2', 'a', 'created'), e('3', 'b', 'created'), e('3', 'c', 'created'), e('4', 'd', 'created')];
    const r = foldChanges(entries, '4', 2);
    assert.deepEqual(r, { newState: '2', hasMoreChanges: true, created: ['a'], updated: [], destroyed: [] });
    assert.throws(() => foldChanges(entries.slice(1), '4', 1), methodError('cannotCalculateChanges'));
    assert.equal(changesResponse(ctx(), '1', r).oldState, '1');
  });
  test('arguments', () => {
    assert.deepEqual(parseChanges({ accountId: 'Aacc', sinceState: 'x' }, ctx()), {
      sinceState: 'x',
      maxChanges: null,
    });
    assert.throws(
      () => parseChanges({ accountId: 'Aacc', sinceState: 'x', maxChanges: 0 }, ctx()),
      methodError('invalidArguments'),
    );
    // §3.9: an unknown argument is invalidArguments.
    assert.throws(
      () => parseChanges({ accountId: 'Aacc', sinceState: 'x', sinceQueryState: 'y' }, ctx()),
      methodError('invalidArguments'),
    );
  });
});

describe('/query and /queryChanges helpers (§5.5, §5.6)', () => {
  const type = {
    sortable: ['name'],
    checkCondition(c: Record<string, unknown>) {
      if (Object.keys(c).some((k) => k !== 'text')) throw new MethodError('unsupportedFilter');
    },
  };
  const ids = ['a', 'b', 'c', 'd', 'e'];
  const q = (args: Record<string, unknown>) => parseQuery({ accountId: 'Aacc', ...args }, ctx(), type);
  test('position, negative position, anchor and offset, limit, total', () => {
    assert.deepEqual(queryWindow(ids, q({ position: 1, limit: 2 }), 100), { position: 1, ids: ['b', 'c'] });
    assert.deepEqual(queryWindow(ids, q({ position: -2, calculateTotal: true, limit: 10 }), 100), {
      position: 3,
      ids: ['d', 'e'],
      total: 5,
    });
    assert.deepEqual(queryWindow(ids, q({ anchor: 'c', anchorOffset: -1, limit: 2 }), 100), {
      position: 1,
      ids: ['b', 'c'],
    });
    assert.deepEqual(queryWindow(ids, q({ anchor: 'a', anchorOffset: -5, limit: 1 }), 100), {
      position: 0,
      ids: ['a'],
    });
    assert.deepEqual(queryWindow(ids, q({}), 2), { position: 0, ids: ['a', 'b'], limit: 2 });
    assert.throws(() => queryWindow(ids, q({ anchor: 'zz' }), 10), methodError('anchorNotFound'));
    assert.deepEqual(queryResponse(ctx(), 'q1', true, queryWindow(ids, q({ limit: 1 }), 10)), {
      accountId: 'Aacc',
      queryState: 'q1',
      canCalculateChanges: true,
      position: 0,
      ids: ['a'],
    });
    assert.throws(() => q({ limit: -1 }), methodError('invalidArguments'));
  });
  test('sort and filter checks', () => {
    assert.throws(() => q({ sort: [{ property: 'size' }] }), methodError('unsupportedSort'));
    assert.throws(() => q({ sort: [{ property: 'name', collation: 'i;bogus' }] }), methodError('unsupportedSort'));
    assert.throws(() => q({ filter: { size: 1 } }), methodError('unsupportedFilter'));
    assert.throws(() => q({ filter: { operator: 'XOR', conditions: [] } }), methodError('invalidArguments'));
    let deep: Record<string, unknown> = { text: 'x' };
    for (let i = 0; i < 20; i++) deep = { operator: 'NOT', conditions: [deep] };
    assert.throws(() => q({ filter: deep }), methodError('unsupportedFilter'));
    assert.equal(
      q({ filter: { operator: 'AND', conditions: [{ text: 'a' }] }, sort: [{ property: 'name' }] }).sort[0]
        ?.isAscending,
      true,
    );
  });
  test('queryChanges: removed and added with indexes; unknown state; maxChanges', () => {
    const qc = (args: Record<string, unknown> = {}) =>
      parseQueryChanges({ accountId: 'Aacc', sinceQueryState: 's', ...args }, ctx(), type);
    const r = queryChanges(['a', 'b', 'c', 'd'], ['a', 'x', 'c', 'b', 'd'], qc({ calculateTotal: true }));
    // a, c, d keep their order (or a, b, d): one of b/c moves.
    assert.equal(r.total, 5);
    assert.equal(r.removed.length, 1);
    assert.deepEqual(r.added.map((x) => x.id).sort(), ['x', r.removed[0]].sort());
    // Replaying: remove, then insert at the indexes in order, gives the new list.
    const replay = ['a', 'b', 'c', 'd'].filter((id) => !r.removed.includes(id));
    for (const { id, index } of r.added) replay.splice(index, 0, id);
    assert.deepEqual(replay, ['a', 'x', 'c', 'b', 'd']);
    assert.deepEqual(queryChangesResponse(ctx(), 'q1', 'q2', queryChanges(['a'], ['a', 'b'], qc())), {
      accountId: 'Aacc',
      oldQueryState: 'q1',
      newQueryState: 'q2',
      removed: [],
      added: [{ id: 'b', index: 1 }],
    });
    assert.throws(() => queryChanges(null, [], qc()), methodError('cannotCalculateChanges'));
    assert.throws(() => queryChanges(['a'], ['b', 'c'], qc({ maxChanges: 2 })), methodError('tooManyChanges'));
  });
});
