// JMAP Mail (RFC 8621) Mailbox/*, Thread/* and push over real HTTP against the real server:
// the Mail capability in the session (and jmap-jam's getPrimaryAccount), every Mailbox method
// and its errors, one truth with IMAP (CREATE/RENAME/DELETE and deliveries seen by
// Mailbox/changes; JMAP creations and renames seen by LIST), and StateChange events on the
// EventSource for an SMTP delivery and an IMAP STORE, timed.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { openEventStream } from '../harness/event-stream.ts';
import { RawImap } from '../harness/imap-client.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { transaction } from '../harness/smtp-client.ts';

let s: TestServer;
let base: string;
const ALICE = `Basic ${Buffer.from('alice@example.test:secret-password').toString('base64')}`;
const USING = ['urn:ietf:params:jmap:core', 'urn:ietf:params:jmap:mail'];
const aliceId = accountIdOf('alice@example.test' as AccountId);

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of many shapes, asserted field by field
type Json = any;

async function api(...methodCalls: unknown[]): Promise<Json[]> {
  const r = await fetch(`${base}/jmap/api`, {
    method: 'POST',
    headers: { authorization: ALICE, 'content-type': 'application/json' },
    body: JSON.stringify({ using: USING, methodCalls }),
  });
  assert.equal(r.status, 200);
  return ((await r.json()) as Json).methodResponses;
}

/** One method call's response arguments (asserting its name). */
async function one(name: string, args: Record<string, unknown>): Promise<Json> {
  const [res] = await api([name, { accountId: aliceId, ...args }, 'c']);
  assert.equal(res[0], name, JSON.stringify(res));
  return res[1];
}

async function oneError(name: string, args: Record<string, unknown>): Promise<Json> {
  const [res] = await api([name, { accountId: aliceId, ...args }, 'c']);
  assert.equal(res[0], 'error', JSON.stringify(res));
  return res[1];
}

async function mailboxes(): Promise<Json[]> {
  return (await one('Mailbox/get', { ids: null })).list;
}

const byName = async (name: string) => (await mailboxes()).find((m) => m.name === name);

async function imap(): Promise<RawImap> {
  const { client } = await RawImap.connect(s.imapPort);
  const r = await client.cmd('LOGIN alice@example.test secret-password');
  assert.match(r.at(-1) ?? '', /OK/);
  return client;
}

let seq = 0;
function deliver(subject = 'hello'): Promise<{ code: number }> {
  seq++;
  return transaction(
    s.port,
    'bob@example.org',
    ['alice@example.test'],
    `From: bob@example.org\r\nTo: alice@example.test\r\nSubject: ${subject}\r\nMessage-ID: <m${seq}-${Date.now()}@example.org>\r\n\r\nbody ${seq}\r\n`,
  );
}

/** The EventSource stream of alice (RFC 8620 §7.3). */
const events = () =>
  openEventStream<Json>(`${base}/jmap/eventsource?types=*&closeafter=no&ping=0`, { authorization: ALICE });

before(async () => {
  s = await startTestServer({ http: true });
  base = `http://127.0.0.1:${s.server.http[0]?.port}`;
});

after(async () => {
  await s?.stop();
});

describe('session and Mailbox/get', () => {
  test('the Mail capability with its account properties; jmap-jam finds the primary account', async () => {
    const r = await fetch(`${base}/.well-known/jmap`, { headers: { authorization: ALICE } });
    const session = (await r.json()) as Json;
    assert.deepEqual(session.capabilities['urn:ietf:params:jmap:mail'], {});
    const acc = session.accounts[aliceId].accountCapabilities['urn:ietf:params:jmap:mail'];
    assert.equal(acc.maxMailboxesPerEmail, null);
    assert.equal(acc.maxMailboxDepth, 32);
    assert.equal(acc.maxSizeMailboxName, 200);
    assert.equal(acc.mayCreateTopLevelMailbox, true);
    assert.deepEqual(acc.emailQuerySortOptions, ['receivedAt', 'size']);
    assert.equal(typeof acc.maxSizeAttachmentsPerEmail, 'number');
    assert.equal(session.primaryAccounts['urn:ietf:params:jmap:mail'], aliceId);

    const name = 'jmap-jam';
    type Jam = { getPrimaryAccount(): Promise<string>; request(c: unknown): Promise<[Json, unknown]> };
    const { JamClient } = (await import(name)) as { JamClient: new (c: object) => Jam };
    // jmap-jam sends a Bearer token: a user token.
    const token = (await s.admin.access.create({ role: { kind: 'user', user: 'alice@example.test' } })).token;
    const jam2 = new JamClient({ bearerToken: token, sessionUrl: `${base}/.well-known/jmap` });
    const accountId = await jam2.getPrimaryAccount();
    assert.equal(accountId, aliceId);
    const [got] = await jam2.request(['Mailbox/get', { accountId, ids: null, properties: ['name', 'role'] }]);
    const names = (got.list as Json[]).map((m) => `${m.name}:${m.role}`).sort();
    assert.deepEqual(names, ['Drafts:drafts', 'INBOX:inbox', 'Junk:junk', 'Sent:sent', 'Trash:trash']);
  });

  test('every property; rights; ids, properties and notFound; errors', async () => {
    const list = await mailboxes();
    const inbox = list.find((m) => m.role === 'inbox');
    assert.deepEqual(Object.keys(inbox).sort(), [
      'id',
      'isSubscribed',
      'myRights',
      'name',
      'parentId',
      'role',
      'sortOrder',
      'totalEmails',
      'totalThreads',
      'unreadEmails',
      'unreadThreads',
    ]);
    assert.match(inbox.id, /^F[A-Za-z0-9_-]{16}$/);
    assert.equal(inbox.parentId, null);
    assert.equal(inbox.myRights.mayDelete, false);
    assert.equal(inbox.myRights.mayRename, false);
    assert.equal(inbox.myRights.maySetSeen, true);
    assert.equal(list.find((m) => m.name === 'Trash').myRights.mayDelete, true);

    const r = await one('Mailbox/get', { ids: [inbox.id, 'Fnope'], properties: ['name'] });
    assert.deepEqual(r.list, [{ id: inbox.id, name: 'INBOX' }]);
    assert.deepEqual(r.notFound, ['Fnope']);
    assert.match(r.state, /^[0-9]+$/);

    assert.equal((await oneError('Mailbox/get', { ids: null, properties: ['bogus'] })).type, 'invalidArguments');
    assert.equal((await oneError('Mailbox/get', { accountId: 'Anope', ids: null })).type, 'accountNotFound');
    // Without the mail capability in `using`, the method is unknown.
    const res = await fetch(`${base}/jmap/api`, {
      method: 'POST',
      headers: { authorization: ALICE, 'content-type': 'application/json' },
      body: JSON.stringify({
        using: ['urn:ietf:params:jmap:core'],
        methodCalls: [['Mailbox/get', { accountId: aliceId }, '0']],
      }),
    });
    assert.equal(((await res.json()) as Json).methodResponses[0][1].type, 'unknownMethod');
  });
});

describe('one truth with IMAP', () => {
  test('Mailbox/changes after IMAP CREATE, RENAME, DELETE and a delivery (counts only)', async () => {
    const before = (await one('Mailbox/get', { ids: [] })).state;
    const c = await imap();
    try {
      assert.match((await c.cmd('CREATE Projects')).at(-1) ?? '', /OK/);
      const created = await one('Mailbox/changes', { sinceState: before });
      const projects = await byName('Projects');
      assert.deepEqual(created.created, [projects.id]);
      assert.deepEqual(created.destroyed, []);
      assert.equal(created.oldState, before);

      assert.match((await c.cmd('RENAME Projects Work')).at(-1) ?? '', /OK/);
      const renamed = await one('Mailbox/changes', { sinceState: created.newState });
      assert.deepEqual(renamed.updated, [projects.id]);
      assert.equal(renamed.updatedProperties, null);
      assert.equal((await byName('Work')).id, projects.id);

      assert.match((await c.cmd('DELETE Work')).at(-1) ?? '', /OK/);
      const deleted = await one('Mailbox/changes', { sinceState: renamed.newState });
      assert.deepEqual(deleted.destroyed, [projects.id]);
      // Created and destroyed within the window: nowhere.
      const whole = await one('Mailbox/changes', { sinceState: before });
      assert.deepEqual([whole.created, whole.updated, whole.destroyed], [[], [], []]);

      // A delivery: INBOX updated, in its counts only.
      const inbox = await byName('INBOX');
      assert.equal((await deliver()).code, 250);
      // No session has INBOX open and nobody listens: the delivery is indexed when a state is read.
      const counts = await one('Mailbox/changes', { sinceState: deleted.newState });
      assert.deepEqual(counts.updated, [inbox.id]);
      assert.deepEqual(counts.updatedProperties, ['totalEmails', 'unreadEmails', 'totalThreads', 'unreadThreads']);
      const after = await byName('INBOX');
      assert.equal(after.totalEmails, inbox.totalEmails + 1);
      assert.equal(after.unreadEmails, inbox.unreadEmails + 1);
      assert.equal(after.totalThreads, after.totalEmails);
      // \Seen from IMAP: one fewer unread.
      await c.cmd('SELECT INBOX');
      assert.match((await c.cmd('STORE 1:* +FLAGS (\\Seen)')).at(-1) ?? '', /OK/);
      assert.equal((await byName('INBOX')).unreadEmails, 0);
      // RFC 8621 §2: a draft is not unread, \Seen or not (both counts).
      assert.match((await c.cmd('STORE 1 -FLAGS (\\Seen)')).at(-1) ?? '', /OK/);
      const unseen = await byName('INBOX');
      assert.equal(unseen.unreadEmails, 1);
      assert.equal(unseen.unreadThreads, 1);
      assert.match((await c.cmd('STORE 1 +FLAGS (\\Draft)')).at(-1) ?? '', /OK/);
      const draft = await byName('INBOX');
      assert.equal(draft.unreadEmails, 0);
      assert.equal(draft.unreadThreads, 0);
    } finally {
      c.close();
    }
    assert.equal((await oneError('Mailbox/changes', { sinceState: 'x' })).type, 'cannotCalculateChanges');
    assert.equal((await oneError('Mailbox/changes', { sinceState: '99999999' })).type, 'cannotCalculateChanges');
    assert.equal((await oneError('Mailbox/changes', { sinceState: '0', maxChanges: 0 })).type, 'invalidArguments');
  });

  test('maxChanges cuts the window at a state with hasMoreChanges', async () => {
    const since = (await one('Mailbox/get', { ids: [] })).state;
    const c = await imap();
    try {
      for (const n of ['Cut1', 'Cut2', 'Cut3']) await c.cmd(`CREATE ${n}`);
    } finally {
      c.close();
    }
    const first = await one('Mailbox/changes', { sinceState: since, maxChanges: 2 });
    assert.equal(first.created.length, 2);
    assert.equal(first.hasMoreChanges, true);
    const rest = await one('Mailbox/changes', { sinceState: first.newState, maxChanges: 2 });
    assert.equal(rest.created.length, 1);
    assert.equal(rest.hasMoreChanges, false);
    assert.deepEqual((await one('Mailbox/set', { destroy: [...first.created, ...rest.created] })).destroyed.length, 3);
  });

  test('IMAP LIST sees a JMAP-created mailbox, a child and a JMAP rename', async () => {
    const made = await one('Mailbox/set', {
      create: { a: { name: 'Clients', isSubscribed: true }, b: { name: 'Acme', parentId: '#a' } },
    });
    const a = made.created.a;
    assert.equal(a.totalEmails, 0);
    assert.equal(a.myRights.mayDelete, true);
    const b = made.created.b;
    const c = await imap();
    try {
      const list = (await c.cmd('LIST "" "*"')).join('\n');
      assert.match(list, /"Clients"|Clients\r?$/m);
      assert.match(list, /Clients\.Acme/);
      const lsub = (await c.cmd('LSUB "" "*"')).join('\n');
      assert.match(lsub, /Clients/);
      assert.doesNotMatch(lsub, /Acme/);

      const upd = await one('Mailbox/set', { update: { [a.id]: { name: 'Customers' } } });
      assert.deepEqual(upd.updated, { [a.id]: null });
      const list2 = (await c.cmd('LIST "" "*"')).join('\n');
      assert.match(list2, /Customers\.Acme/);
      assert.doesNotMatch(list2, /Clients/);
      const acme = (await mailboxes()).find((m) => m.id === b.id);
      assert.deepEqual([acme.name, acme.parentId], ['Acme', a.id]);

      // Move Acme to the top level, then subscribe it.
      await one('Mailbox/set', { update: { [b.id]: { parentId: null, isSubscribed: true } } });
      assert.match((await c.cmd('LSUB "" "*"')).join('\n'), /Acme/);
      assert.equal((await byName('Acme')).parentId, null);
    } finally {
      c.close();
    }
    const state = (await one('Mailbox/get', { ids: [] })).state;
    const gone = await one('Mailbox/set', { destroy: [a.id, b.id] });
    assert.deepEqual(gone.destroyed.sort(), [a.id, b.id].sort());
    // A subscribed mailbox deleted keeps its subscription (an index entry, no mailbox): only
    // the destroy shows.
    const ch = await one('Mailbox/changes', { sinceState: state });
    assert.deepEqual([ch.created, ch.updated, ch.destroyed.sort()], [[], [], [a.id, b.id].sort()]);
  });
});

describe('Mailbox/set', () => {
  test('create errors: names, parents, roles, sortOrder, server-set properties', async () => {
    const inbox = await byName('INBOX');
    const r = await one('Mailbox/set', {
      create: {
        dot: { name: 'a.b' },
        empty: { name: '' },
        long: { name: 'x'.repeat(201) },
        parent: { name: 'p', parentId: 'Fnope' },
        taken: { name: 'Sent' },
        inbox: { name: 'inbox' },
        role: { name: 'R', role: 'sent' },
        badRole: { name: 'R2', role: 'flagged' },
        order: { name: 'O', sortOrder: -1 },
        order2: { name: 'O2', sortOrder: 1.5 },
        counts: { name: 'C', totalEmails: 1 },
      },
    });
    assert.equal(r.created, null);
    // RFC 8620 §5.3 alreadyExists with existingId: a sibling of that name (INBOX in any case).
    const sent = await byName('Sent');
    assert.deepEqual(r.notCreated.taken, {
      type: 'alreadyExists',
      description: r.notCreated.taken.description,
      existingId: sent.id,
    });
    assert.equal(r.notCreated.inbox.type, 'alreadyExists');
    assert.equal(r.notCreated.inbox.existingId, inbox.id);
    delete r.notCreated.taken;
    delete r.notCreated.inbox;
    const props = Object.fromEntries(
      Object.entries(r.notCreated as Json).map(([k, v]: [string, Json]) => [k, v.properties]),
    );
    assert.deepEqual(props, {
      dot: ['name'],
      empty: ['name'],
      long: ['name'],
      parent: ['parentId'],
      role: ['role'],
      badRole: ['role'],
      order: ['sortOrder'],
      order2: ['sortOrder'],
      counts: ['totalEmails'],
    });
    for (const e of Object.values(r.notCreated as Json) as Json[]) assert.equal(e.type, 'invalidProperties');

    // A free role is taken, and shows in IMAP LIST as the special use.
    const ok = await one('Mailbox/set', { create: { arch: { name: 'Old mail', role: 'archive' } } });
    const arch = ok.created.arch;
    assert.equal((await byName('Old mail')).role, 'archive');
    const c = await imap();
    try {
      assert.match((await c.cmd('LIST "" "Old mail"')).join('\n'), /\\Archive/);
    } finally {
      c.close();
    }

    const up = await one('Mailbox/set', {
      update: {
        [inbox.id]: { name: 'Elsewhere' },
        [arch.id]: { role: 'trash' },
        Fnope: { name: 'x' },
      },
    });
    const taken = await one('Mailbox/set', { update: { [arch.id]: { name: 'Sent' } } });
    assert.equal(taken.notUpdated[arch.id].type, 'alreadyExists');
    assert.equal(taken.notUpdated[arch.id].existingId, (await byName('Sent')).id);
    const under = await one('Mailbox/set', {
      create: { kid: { name: 'Kid', parentId: arch.id } },
    });
    const loop = await one('Mailbox/set', { update: { [arch.id]: { parentId: under.created.kid.id } } });
    assert.deepEqual(loop.notUpdated[arch.id].properties, ['parentId']);
    await one('Mailbox/set', { destroy: [under.created.kid.id] });
    assert.equal(up.notUpdated[inbox.id].type, 'forbidden');
    assert.equal(up.notUpdated[arch.id].type, 'invalidProperties');
    assert.equal(up.notUpdated.Fnope.type, 'notFound');
    // Setting a server-set property to its value is allowed; sortOrder 0 is.
    const same = await one('Mailbox/set', { update: { [arch.id]: { sortOrder: 0, myRights: inbox.myRights } } });
    assert.equal(same.notUpdated?.[arch.id]?.type ?? null, 'invalidProperties'); // INBOX's rights differ
    const same2 = await one('Mailbox/set', { update: { [arch.id]: { sortOrder: 0, role: 'archive' } } });
    assert.deepEqual(same2.updated, { [arch.id]: null });
    await one('Mailbox/set', { destroy: [arch.id] });
  });

  test('destroy: INBOX forbidden, mailboxHasChild, mailboxHasEmail unless onDestroyRemoveEmails', async () => {
    const inbox = await byName('INBOX');
    const made = await one('Mailbox/set', { create: { p: { name: 'Parent' }, k: { name: 'Kid', parentId: '#p' } } });
    const p = made.created.p.id;
    const k = made.created.k.id;
    const c = await imap();
    try {
      await c.cmd('SELECT INBOX');
      await deliver('for Kid');
      await c.cmd('NOOP');
      assert.match((await c.cmd('UID COPY 1:* Parent.Kid')).at(-1) ?? '', /OK/);
    } finally {
      c.close();
    }
    const r = await one('Mailbox/set', { destroy: [inbox.id, p, k, 'Fnope'] });
    assert.equal(r.notDestroyed[inbox.id].type, 'forbidden');
    assert.equal(r.notDestroyed[p].type, 'mailboxHasChild');
    assert.equal(r.notDestroyed[k].type, 'mailboxHasEmail');
    assert.equal(r.notDestroyed.Fnope.type, 'notFound');
    const bad = await oneError('Mailbox/set', { destroy: [k], onDestroyRemoveEmails: 'yes' });
    assert.equal(bad.type, 'invalidArguments');
    const ok = await one('Mailbox/set', { destroy: [k, p], onDestroyRemoveEmails: true });
    assert.deepEqual(ok.destroyed, [k, p]);
    // INBOX keeps its copies.
    assert.ok((await byName('INBOX')).totalEmails > 0);
    assert.equal((await oneError('Mailbox/set', { ifInState: '1' })).type, 'stateMismatch');
  });
});

describe('Mailbox/query', () => {
  test('filters, sorts, trees, windows; queryChanges', async () => {
    const made = await one('Mailbox/set', {
      create: {
        z: { name: 'Zeta', isSubscribed: true },
        a: { name: 'alpha' },
        a1: { name: 'beta', parentId: '#a' },
        z1: { name: 'Aardvark', parentId: '#z' },
      },
    });
    const id = (k: string) => made.created[k].id;
    const all = await mailboxes();
    const idOf = (n: string) => all.find((m) => m.name === n).id;
    const q = async (args: Record<string, unknown>) => (await one('Mailbox/query', args)).ids as string[];

    assert.deepEqual(await q({ filter: { role: 'sent' } }), [idOf('Sent')]);
    assert.equal((await q({ filter: { hasAnyRole: true } })).length, 5);
    assert.deepEqual((await q({ filter: { name: 'ALP' } })).sort(), [id('a')]);
    assert.deepEqual((await q({ filter: { parentId: id('a') } })).sort(), [id('a1')]);
    assert.ok((await q({ filter: { isSubscribed: true } })).includes(id('z')));
    assert.ok(!(await q({ filter: { isSubscribed: true } })).includes(id('a')));
    assert.deepEqual(
      (await q({ filter: { operator: 'AND', conditions: [{ parentId: null }, { hasAnyRole: false }] } })).sort(),
      [id('a'), id('z')].sort(),
    );
    const sorted = await q({ sort: [{ property: 'name' }] });
    assert.deepEqual(
      sorted.map((x) => all.find((m) => m.id === x).name),
      ['Aardvark', 'alpha', 'beta', 'Drafts', 'INBOX', 'Junk', 'Sent', 'Trash', 'Zeta'],
    );
    const tree = await q({ sort: [{ property: 'name', isAscending: false }], sortAsTree: true });
    assert.deepEqual(
      tree.map((x) => all.find((m) => m.id === x).name),
      ['Zeta', 'Aardvark', 'Trash', 'Sent', 'Junk', 'INBOX', 'Drafts', 'alpha', 'beta'],
    );
    // filterAsTree: a child only when its parent matches too ("e": beta but not alpha).
    const e = await q({ filter: { name: 'e' }, sort: [{ property: 'name' }] });
    assert.deepEqual(e, [id('a1'), idOf('Sent'), id('z')]);
    const eTree = await q({ filter: { name: 'e' }, filterAsTree: true, sort: [{ property: 'name' }] });
    assert.deepEqual(eTree, [idOf('Sent'), id('z')]);
    const page = await one('Mailbox/query', {
      sort: [{ property: 'name' }],
      position: 2,
      limit: 2,
      calculateTotal: true,
    });
    assert.deepEqual([page.position, page.ids.length, page.total], [2, 2, 9]);
    assert.equal(page.canCalculateChanges, true);

    assert.equal((await oneError('Mailbox/query', { sort: [{ property: 'totalEmails' }] })).type, 'unsupportedSort');
    assert.equal((await oneError('Mailbox/query', { filter: { text: 'x' } })).type, 'unsupportedFilter');
    assert.equal((await oneError('Mailbox/query', { filter: { name: 3 } })).type, 'unsupportedFilter');
    assert.equal((await oneError('Mailbox/query', { sortAsTree: 'yes' })).type, 'invalidArguments');

    const same = await one('Mailbox/queryChanges', { sinceQueryState: page.queryState });
    assert.deepEqual([same.removed, same.added], [[], []]);
    await one('Mailbox/set', { destroy: [id('a1'), id('z1')] });
    await one('Mailbox/set', { destroy: [id('a'), id('z')] });
    const gone = await one('Mailbox/queryChanges', { sinceQueryState: page.queryState, sort: [{ property: 'name' }] });
    assert.deepEqual(gone.removed.sort(), [id('a'), id('a1'), id('z'), id('z1')].sort());
    assert.deepEqual(gone.added, []);
    assert.equal((await oneError('Mailbox/queryChanges', { sinceQueryState: 'x1' })).type, 'cannotCalculateChanges');
  });

  test('queryChanges after a create, a rename, a sortOrder change and a destroy (RFC 8620 §5.6)', async () => {
    const sort = [{ property: 'sortOrder' }, { property: 'name' }];
    const query = async () => one('Mailbox/query', { sort, filter: { parentId: null } });
    const apply = (old: string[], ch: Json) => {
      const out = old.filter((x) => !ch.removed.includes(x));
      for (const a of ch.added) out.splice(a.index, 0, a.id);
      return out;
    };
    const q0 = await query();
    const made = await one('Mailbox/set', { create: { n: { name: 'Mid' }, k: { name: 'Kid', parentId: '#n' } } });
    const mid = made.created.n.id;
    const kid = made.created.k.id;
    const c1 = await one('Mailbox/queryChanges', { sinceQueryState: q0.queryState, sort, filter: { parentId: null } });
    const q1 = await query();
    assert.equal(c1.oldQueryState, q0.queryState);
    assert.equal(c1.newQueryState, q1.queryState);
    assert.deepEqual(c1.removed.sort(), [mid, kid].sort(), 'every changed id is removed');
    assert.deepEqual(c1.added, [{ id: mid, index: q1.ids.indexOf(mid) }], 'Kid is not a top-level mailbox');
    assert.deepEqual(apply(q0.ids, c1), q1.ids);

    // A delivery changes only counts: not a change of the query.
    await deliver('counts only');
    const counts = await one('Mailbox/queryChanges', { sinceQueryState: q1.queryState, sort, calculateTotal: true });
    assert.deepEqual([counts.removed, counts.added, counts.total], [[], [], (await mailboxes()).length]);

    // A rename and a sortOrder move it; the client's list follows.
    await one('Mailbox/set', { update: { [mid]: { name: 'Zzz' } } });
    const c2 = await one('Mailbox/queryChanges', { sinceQueryState: q1.queryState, sort, filter: { parentId: null } });
    const q2 = await query();
    assert.deepEqual(apply(q1.ids, c2), q2.ids);
    await one('Mailbox/set', { update: { [mid]: { sortOrder: 1 } } });
    const c3 = await one('Mailbox/queryChanges', { sinceQueryState: q2.queryState, sort, filter: { parentId: null } });
    const q3 = await query();
    assert.equal(q3.ids.at(-1), mid, 'sortOrder 1 after every 0');
    assert.deepEqual(apply(q2.ids, c3), q3.ids);

    // maxChanges: removed + added over it → tooManyChanges.
    const big = { sinceQueryState: q0.queryState, sort, maxChanges: 2 };
    assert.equal((await oneError('Mailbox/queryChanges', big)).type, 'tooManyChanges');
    assert.equal((await one('Mailbox/queryChanges', { ...big, maxChanges: 4 })).removed.length, 2);

    await one('Mailbox/set', { destroy: [kid, mid] });
    const c4 = await one('Mailbox/queryChanges', { sinceQueryState: q3.queryState, sort, filter: { parentId: null } });
    assert.deepEqual(apply(q3.ids, c4), (await query()).ids);
    assert.deepEqual(c4.added, []);
  });

  test('unknown arguments are invalidArguments (RFC 8620 §3.9)', async () => {
    const q = await one('Mailbox/query', {});
    for (const [name, args] of [
      ['Mailbox/get', { ids: null, bodyProperties: [] }],
      ['Mailbox/changes', { sinceState: q.queryState, upToId: 'x' }],
      ['Mailbox/query', { collapseThreads: true }],
      ['Mailbox/queryChanges', { sinceQueryState: q.queryState, position: 0 }],
      ['Mailbox/set', { destroy: [], onDestroyRemoveEmail: true }],
    ] as const) {
      const e = await oneError(name, args);
      assert.equal(e.type, 'invalidArguments', name);
      assert.match(e.description, /unknown argument|Unrecognized key/, name);
    }
    // The type's own arguments are known.
    await one('Mailbox/query', { sortAsTree: true, filterAsTree: false });
    await one('Mailbox/queryChanges', { sinceQueryState: q.queryState, sortAsTree: true });
    await one('Mailbox/set', { destroy: [], onDestroyRemoveEmails: true });
  });

  test('sortOrder is stored, sorts, and a change is in Mailbox/changes (updatedProperties null)', async () => {
    const made = await one('Mailbox/set', { create: { s: { name: 'Sorted', sortOrder: 5 } } });
    const id = made.created.s.id;
    assert.equal(made.created.s.sortOrder, 5);
    assert.equal((await byName('Sorted')).sortOrder, 5);
    const before = (await one('Mailbox/get', { ids: [] })).state;
    const up = await one('Mailbox/set', { update: { [id]: { sortOrder: 2 } } });
    assert.deepEqual(up.updated, { [id]: null });
    const ch = await one('Mailbox/changes', { sinceState: before });
    assert.deepEqual([ch.created, ch.updated, ch.destroyed, ch.updatedProperties], [[], [id], [], null]);
    const got = await one('Mailbox/get', { ids: [id], properties: ['sortOrder'] });
    assert.deepEqual(got.list, [{ id, sortOrder: 2 }]);
    const bad = await one('Mailbox/set', { update: { [id]: { sortOrder: -3 } } });
    assert.deepEqual(bad.notUpdated[id].properties, ['sortOrder']);
    const first = await one('Mailbox/query', { sort: [{ property: 'sortOrder', isAscending: false }] });
    assert.equal(first.ids[0], id);
    // RFC 8620 §5.3 patches: null resets to the default (sortOrder 0); a path into a property
    // that is no object, or under one that does not exist, or inside another path: invalidPatch;
    // a server-set sub-property set to its value is no change.
    const rights = (await byName('Sorted')).myRights;
    const p = await one('Mailbox/set', {
      update: { [id]: { sortOrder: null, 'myRights/mayDelete': rights.mayDelete } },
    });
    assert.deepEqual(p.updated, { [id]: null });
    assert.equal((await byName('Sorted')).sortOrder, 0);
    for (const patch of [
      { 'name/x': 'y' },
      { 'nope/x': 1 },
      { myRights: {}, 'myRights/mayDelete': true },
      { 'a~2': 1 },
    ]) {
      const r = await one('Mailbox/set', { update: { [id]: patch } });
      assert.equal(r.notUpdated?.[id]?.type, 'invalidPatch', JSON.stringify(patch));
    }
    const changed = await one('Mailbox/set', { update: { [id]: { 'myRights/mayDelete': !rights.mayDelete } } });
    assert.deepEqual(changed.notUpdated[id].properties, ['myRights']);
    const unknown = await one('Mailbox/set', { update: { [id]: { 'a~1b': 1 } } });
    assert.deepEqual(unknown.notUpdated[id].properties, ['a/b']);
    await one('Mailbox/set', { destroy: [id] });
  });
});

describe('Thread', () => {
  test('each Email its own Thread; Thread/changes follows the journal', async () => {
    const since = (await one('Thread/get', { ids: [] })).state;
    assert.equal((await deliver('thread me')).code, 250);
    const c = await imap();
    let emailId: string;
    try {
      await c.cmd('SELECT INBOX');
      const changes = await one('Thread/changes', { sinceState: since });
      assert.equal(changes.created.length, 1, JSON.stringify(changes));
      const threadId = changes.created[0] as string;
      assert.match(threadId, /^T[A-Za-z0-9_-]{24}$/);
      emailId = `M${threadId.slice(1)}`;
      assert.deepEqual([changes.updated, changes.destroyed], [[], []]);
      const got = await one('Thread/get', { ids: [threadId, 'Tnope', 'bad id'] });
      assert.deepEqual(got.list, [{ id: threadId, emailIds: [emailId] }]);
      assert.deepEqual(got.notFound, ['Tnope', 'bad id']);
      const every = await one('Thread/get', { ids: null });
      assert.ok(every.list.some((t: Json) => t.id === threadId));
      assert.deepEqual(every.notFound, []);

      // A copy elsewhere changes no thread; the last copy gone destroys it.
      const mid = (await one('Thread/get', { ids: [] })).state;
      await c.cmd('UID COPY 1:* Trash');
      assert.deepEqual((await one('Thread/changes', { sinceState: mid })).created, []);
      const gone = (await one('Thread/get', { ids: [] })).state;
      await c.cmd('STORE 1:* +FLAGS (\\Deleted)');
      await c.cmd('EXPUNGE');
      await c.cmd('SELECT Trash');
      await c.cmd('STORE 1:* +FLAGS (\\Deleted)');
      await c.cmd('EXPUNGE');
      const d = await one('Thread/changes', { sinceState: gone });
      assert.ok(d.destroyed.includes(threadId), JSON.stringify(d));
      assert.deepEqual(d.created, []);

      // maxChanges: cut at a state, hasMoreChanges, the rest from there.
      const s2 = (await one('Thread/get', { ids: [] })).state;
      await deliver('one');
      await deliver('two');
      const first = await one('Thread/changes', { sinceState: s2, maxChanges: 1 });
      assert.deepEqual([first.created.length, first.hasMoreChanges], [1, true]);
      const second = await one('Thread/changes', { sinceState: first.newState, maxChanges: 1 });
      assert.deepEqual([second.created.length, second.hasMoreChanges], [1, false]);
      assert.notEqual(first.created[0], second.created[0]);
      assert.equal((await oneError('Thread/changes', { sinceState: 'nope' })).type, 'cannotCalculateChanges');
    } finally {
      c.close();
    }
  });
});

describe('push', () => {
  test('an SMTP delivery and an IMAP STORE make StateChange events within 100 ms', async () => {
    const es = await events();
    try {
      // Make sure the stream is subscribed: a JMAP change arrives first.
      const warm = es.next(() => true);
      await one('Mailbox/set', { create: { w: { name: 'Warm' } } });
      await warm;

      const delivered = es.next((e) => e.changed[aliceId]?.Email !== undefined);
      const t0 = performance.now();
      const reply = await deliver('pushed');
      const t1 = performance.now();
      const ev = await delivered;
      const ms = performance.now() - t1;
      assert.equal(reply.code, 250);
      assert.deepEqual(Object.keys(ev.changed[aliceId]).sort(), ['Email', 'Mailbox', 'Thread']);
      const state = ev.changed[aliceId].Mailbox;
      assert.ok(ms < 100, `StateChange ${ms.toFixed(1)} ms after the 250 reply (${(t1 - t0).toFixed(1)} ms SMTP)`);
      // The pushed state is the one Mailbox/get gives, with the delivery counted.
      const got = await one('Mailbox/get', { ids: [(await byName('INBOX')).id] });
      assert.equal(got.state, state);

      const c = await imap();
      try {
        await c.cmd('SELECT INBOX');
        const stored = es.next((e) => e.changed[aliceId]?.Email !== state);
        const s0 = performance.now();
        assert.match((await c.cmd('STORE 1 +FLAGS (\\Flagged)')).at(-1) ?? '', /OK/);
        const e2 = await stored;
        const ms2 = performance.now() - s0;
        assert.ok(ms2 < 100, `StateChange ${ms2.toFixed(1)} ms after STORE`);
        assert.ok(Number(e2.changed[aliceId].Email) > Number(state));
      } finally {
        c.close();
      }
      console.log(`push: delivery -> StateChange ${ms.toFixed(1)} ms`);
    } finally {
      es.close();
    }
    await one('Mailbox/set', { destroy: [(await byName('Warm')).id] });
  });
});

describe('push with the inbound SMTP threads', () => {
  let t: TestServer;
  let main: { s: TestServer; base: string };
  before(async () => {
    t = await startTestServer({ http: true, smtp: 'threads = 1' });
    main = { s, base };
    s = t;
    base = `http://127.0.0.1:${t.server.http[0]?.port}`;
  });
  after(async () => {
    s = main.s;
    base = main.base;
    await t?.stop();
  });

  test('a delivery by an SMTP thread (another thread than the store) makes a StateChange within 100 ms', async () => {
    const es = await events();
    try {
      const warm = es.next(() => true);
      await one('Mailbox/set', { create: { w: { name: 'Warm' } } });
      await warm;
      const delivered = es.next((e) => e.changed[aliceId]?.Email !== undefined);
      const reply = await deliver('threaded');
      const t1 = performance.now();
      await delivered;
      const ms = performance.now() - t1;
      assert.equal(reply.code, 250);
      assert.ok(ms < 100, `StateChange ${ms.toFixed(1)} ms after the 250 reply`);
      assert.equal((await byName('INBOX')).totalEmails, 1);
      console.log(`push (SMTP thread): delivery -> StateChange ${ms.toFixed(1)} ms`);
    } finally {
      es.close();
    }
  });
});
