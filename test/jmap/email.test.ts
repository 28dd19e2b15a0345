// JMAP Email methods (RFC 8621 §4, §5) against the real server over HTTP, with IMAP (imapflow)
// as the other view of the same store: "one truth" in both directions.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ImapFlow } from 'imapflow';
import type { AccountId } from '../../src/core/ids.ts';
import { accountIdOf } from '../../src/jmap/session.ts';
import { startTestServer, type TestServer } from '../harness/server.ts';
import { transaction } from '../harness/smtp-client.ts';

const ALICE = 'alice@example.test';
const AUTH = `Basic ${Buffer.from(`${ALICE}:secret-password`).toString('base64')}`;
const USING = ['urn:ietf:params:jmap:core', 'urn:ietf:params:jmap:mail'];
const aliceId = accountIdOf(ALICE as AccountId);

let s: TestServer;
let base: string;
let imap: ImapFlow;

// biome-ignore lint/suspicious/noExplicitAny: JSON answers of many shapes, asserted field by field
type Json = any;

async function calls(...methodCalls: [string, Record<string, unknown>][]): Promise<Json[]> {
  const r = await fetch(`${base}/jmap/api`, {
    method: 'POST',
    headers: { authorization: AUTH, 'content-type': 'application/json' },
    body: JSON.stringify({ using: USING, methodCalls: methodCalls.map(([n, a], i) => [n, a, String(i)]) }),
  });
  assert.equal(r.status, 200);
  const body = (await r.json()) as { methodResponses: [string, Json, string][] };
  return body.methodResponses.map(([name, args]) => (name === 'error' ? { error: args } : args));
}

const call = async (name: string, args: Record<string, unknown>): Promise<Json> =>
  (await calls([name, { accountId: aliceId, ...args }]))[0];

const MESSAGE = (subject: string, body = 'Hello there, this is the body.') =>
  Buffer.from(
    `From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\n` +
      `Date: Mon, 7 Dec 2026 10:00:00 +0000\r\nMessage-ID: <${subject.replace(/\W/g, '')}@example.test>\r\n` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n${body}\r\n`,
  );

const MULTIPART = Buffer.from(
  'From: carol@example.test\r\nTo: alice@example.test\r\nSubject: with attachment\r\n' +
    'Date: Tue, 8 Dec 2026 10:00:00 +0000\r\nMIME-Version: 1.0\r\n' +
    'Content-Type: multipart/mixed; boundary="b1"\r\n\r\n--b1\r\nContent-Type: text/plain\r\n\r\nSee attached.\r\n' +
    '--b1\r\nContent-Type: application/octet-stream; name="a.bin"\r\nContent-Disposition: attachment; filename="a.bin"\r\n' +
    'Content-Transfer-Encoding: base64\r\n\r\nAAECAwQF\r\n--b1--\r\n',
);

/** Appends through IMAP; returns the Email id JMAP gives it (the newest Email in the account). */
async function append(raw: Buffer, mailbox = 'INBOX', flags: string[] = []): Promise<string> {
  const ids = async () => (await call('Email/get', { ids: null, properties: ['id'] })).list.map((e: Json) => e.id);
  const before = new Set(await ids());
  await imap.append(mailbox, raw, flags);
  const id = (await ids()).find((i: string) => !before.has(i));
  assert.ok(id);
  return id;
}

async function imapClient(): Promise<ImapFlow> {
  const c = new ImapFlow({
    host: '127.0.0.1',
    port: s.imapPort,
    secure: false,
    auth: { user: ALICE, pass: 'secret-password' },
    logger: false,
    tls: { rejectUnauthorized: false },
  });
  await c.connect();
  return c;
}

before(async () => {
  s = await startTestServer({ http: true });
  base = `http://127.0.0.1:${s.server.http[0]?.port}`;
  imap = await imapClient();
  await imap.mailboxCreate('Archive');
});

after(async () => {
  await imap?.logout().catch(() => {});
  await s?.stop();
});

describe('Email/get (RFC 8621 §4.2)', () => {
  test('default properties, keywords from IMAP flags, header forms, body values', async () => {
    const id = await append(MESSAGE('First one'), 'INBOX', ['\\Seen', '\\Deleted', 'Work']);
    const r = await call('Email/get', { ids: [id, 'Mnope', 'Mxxxxxxxxxxxxxxxxxxxxxxxx'] });
    assert.match(r.state, /^\d+$/);
    assert.deepEqual(r.notFound, ['Mnope', 'Mxxxxxxxxxxxxxxxxxxxxxxxx']);
    const e = r.list[0];
    assert.equal(e.id, id);
    assert.equal(e.threadId, `T${id.slice(1)}`);
    assert.equal(e.blobId, `E${id.slice(1)}`);
    assert.deepEqual(e.keywords, { $seen: true, work: true }); // \Deleted hidden
    assert.equal(Object.keys(e.mailboxIds).length, 1);
    assert.equal(e.size, MESSAGE('First one').length);
    assert.match(e.receivedAt, /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    assert.equal(e.subject, 'First one');
    assert.deepEqual(e.from, [{ name: 'Bob', email: 'bob@example.test' }]);
    assert.deepEqual(e.messageId, ['Firstone@example.test']);
    assert.equal(e.sentAt, '2026-12-07T10:00:00+00:00');
    assert.equal(e.preview, 'Hello there, this is the body.');
    assert.equal(e.hasAttachment, false);
    assert.deepEqual(e.bodyValues, {});
    assert.equal(e.textBody[0].partId, '1');
    assert.deepEqual(
      Object.keys(e).sort(),
      [
        'attachments',
        'bcc',
        'blobId',
        'bodyValues',
        'cc',
        'from',
        'hasAttachment',
        'htmlBody',
        'id',
        'inReplyTo',
        'keywords',
        'mailboxIds',
        'messageId',
        'preview',
        'receivedAt',
        'references',
        'replyTo',
        'sender',
        'sentAt',
        'size',
        'subject',
        'textBody',
        'threadId',
        'to',
      ].sort(),
    );
    const v = await call('Email/get', {
      ids: [id],
      properties: ['subject', 'header:Subject:asRaw', 'bodyValues'],
      fetchTextBodyValues: true,
      maxBodyValueBytes: 5,
    });
    assert.deepEqual(v.list[0], {
      id,
      subject: 'First one',
      'header:Subject:asRaw': ' First one',
      bodyValues: { 1: { value: 'Hello', isEncodingProblem: false, isTruncated: true } },
    });
  });

  test('errors: unknown property, accountNotFound, requestTooLarge', async () => {
    assert.equal((await call('Email/get', { ids: [], properties: ['nope'] })).error.type, 'invalidArguments');
    assert.equal((await call('Email/get', { ids: [], bodyProperties: ['nope'] })).error.type, 'invalidArguments');
    assert.equal((await calls(['Email/get', { accountId: 'Ax', ids: [] }]))[0].error.type, 'accountNotFound');
    assert.equal((await call('Email/get', { ids: [], maxBodyValueBytes: 0 })).error.type, 'invalidArguments');
    const many = Array.from({ length: 501 }, (_, i) => `M${i}`);
    assert.equal((await call('Email/get', { ids: many })).error.type, 'requestTooLarge');
  });

  test('an email blob downloads byte-identical to IMAP BODY[], a part blob decoded; Blob/copy', async () => {
    const id = await append(MULTIPART);
    const [e] = (await call('Email/get', { ids: [id], properties: ['blobId', 'attachments', 'hasAttachment'] })).list;
    assert.equal(e.hasAttachment, true);
    const dl = async (blobId: string) => {
      const r = await fetch(`${base}/jmap/download/${aliceId}/${blobId}/x?type=application/octet-stream`, {
        headers: { authorization: AUTH },
      });
      return { status: r.status, bytes: Buffer.from(await r.arrayBuffer()) };
    };
    const whole = await dl(e.blobId);
    assert.equal(whole.status, 200);
    const lock = await imap.getMailboxLock('INBOX');
    try {
      const m = await imap.fetchOne('*', { source: true });
      if (!m) throw new Error('no message');
      assert.deepEqual(whole.bytes, m.source);
    } finally {
      lock.release();
    }
    const part = await dl(e.attachments[0].blobId);
    assert.equal(part.status, 200);
    assert.deepEqual(part.bytes, Buffer.from([0, 1, 2, 3, 4, 5]));
    assert.equal(e.attachments[0].size, 6);
    assert.equal((await dl(`P${id.slice(1)}9`)).status, 404);
    const copy = await call('Blob/copy', { fromAccountId: aliceId, blobIds: [e.blobId, 'Enope'] });
    assert.deepEqual(copy.copied, { [e.blobId]: e.blobId });
    assert.deepEqual(Object.keys(copy.notCopied), ['Enope']);
  });
});

describe('Email/changes (RFC 8621 §4.3)', () => {
  test('created, updated by an IMAP STORE and a COPY, destroyed by the last expunge', async () => {
    const s0 = (await call('Email/get', { ids: [] })).state;
    const id = await append(MESSAGE('Changing'));
    let c = await call('Email/changes', { sinceState: s0 });
    assert.deepEqual([c.created, c.updated, c.destroyed], [[id], [], []]);
    assert.equal(c.hasMoreChanges, false);
    const s1 = c.newState;
    assert.equal(s1, (await call('Email/get', { ids: [] })).state);
    // An IMAP STORE shows as an update, and in Email/get's keywords.
    const lock = await imap.getMailboxLock('INBOX');
    try {
      const uids = await imap.search({ subject: 'Changing' }, { uid: true });
      assert.ok(uids && uids.length === 1);
      await imap.messageFlagsAdd(uids, ['\\Flagged'], { uid: true });
      c = await call('Email/changes', { sinceState: s1 });
      assert.deepEqual([c.created, c.updated, c.destroyed], [[], [id], []]);
      assert.equal((await call('Email/get', { ids: [id], properties: ['keywords'] })).list[0].keywords.$flagged, true);
      const s2 = c.newState;
      await imap.messageCopy(uids, 'Archive', { uid: true });
      c = await call('Email/changes', { sinceState: s2 });
      assert.deepEqual([c.created, c.updated, c.destroyed], [[], [id], []]);
      assert.equal(
        Object.keys((await call('Email/get', { ids: [id], properties: ['mailboxIds'] })).list[0].mailboxIds).length,
        2,
      );
      const s3 = c.newState;
      await imap.messageDelete(uids, { uid: true });
      c = await call('Email/changes', { sinceState: s3 });
      assert.deepEqual([c.created, c.updated, c.destroyed], [[], [id], []]);
    } finally {
      lock.release();
    }
    const s4 = c.newState;
    const l2 = await imap.getMailboxLock('Archive');
    try {
      await imap.messageDelete('1:*');
    } finally {
      l2.release();
    }
    c = await call('Email/changes', { sinceState: s4 });
    assert.deepEqual([c.created, c.updated, c.destroyed], [[], [], [id]]);
    // A mailbox deleted with its messages: they are destroyed.
    await imap.mailboxCreate('Doomed');
    const doomed = await append(MESSAGE('Doomed one'), 'Doomed');
    const s5 = (await call('Email/get', { ids: [] })).state;
    await imap.mailboxDelete('Doomed');
    c = await call('Email/changes', { sinceState: s5 });
    assert.deepEqual([c.created, c.updated, c.destroyed], [[], [], [doomed]]);
    // From before: created and destroyed in the window is nothing.
    c = await call('Email/changes', { sinceState: s0 });
    assert.ok(!c.created.includes(id) && !c.destroyed.includes(id) && !c.updated.includes(id));
  });

  test('an SMTP delivery is created in Email/changes and found by Email/query', async () => {
    const s0 = (await call('Email/get', { ids: [] })).state;
    const r = await transaction(
      s.port,
      'bob@example.org',
      [ALICE],
      'From: bob@example.org\r\nTo: alice@example.test\r\nSubject: Delivered by SMTP\r\n\r\nbody\r\n',
    );
    assert.equal(r.code, 250);
    const c = await call('Email/changes', { sinceState: s0 });
    assert.equal(c.created.length, 1);
    const q = await call('Email/query', { filter: { subject: 'Delivered by SMTP' } });
    assert.deepEqual(q.ids, c.created);
  });

  test('maxChanges, cannotCalculateChanges', async () => {
    const s0 = (await call('Email/get', { ids: [] })).state;
    const a = await append(MESSAGE('Max a'));
    const b = await append(MESSAGE('Max b'));
    const c1 = await call('Email/changes', { sinceState: s0, maxChanges: 1 });
    assert.deepEqual(c1.created, [a]);
    assert.equal(c1.hasMoreChanges, true);
    const c2 = await call('Email/changes', { sinceState: c1.newState, maxChanges: 1 });
    assert.deepEqual(c2.created, [b]);
    assert.equal(c2.hasMoreChanges, false);
    assert.equal((await call('Email/changes', { sinceState: 'x1' })).error.type, 'cannotCalculateChanges');
    assert.equal((await call('Email/changes', { sinceState: '5' })).error.type, 'cannotCalculateChanges');
  });
});

describe('Email/query (RFC 8621 §4.4), Email/queryChanges, SearchSnippet/get (§5)', () => {
  let ids: { q1: string; q2: string; q3: string };
  let inbox: string;
  let archive: string;
  before(async () => {
    ids = {
      q1: await append(MESSAGE('Query apple', 'the first banana body'), 'INBOX', ['\\Flagged']),
      q2: await append(MESSAGE('Query cherry', 'a second body with apple'), 'Archive'),
      q3: await append(Buffer.concat([MESSAGE('Query big', 'x'.repeat(5000))]), 'INBOX', ['\\Seen']),
    };
    const got = await call('Email/get', { ids: [ids.q1, ids.q2], properties: ['mailboxIds'] });
    inbox = Object.keys(got.list.find((e: Json) => e.id === ids.q1).mailboxIds)[0] as string;
    archive = Object.keys(got.list.find((e: Json) => e.id === ids.q2).mailboxIds)[0] as string;
  });

  const q = async (args: Record<string, unknown>) => {
    const r = await call('Email/query', args);
    if (r.error) return r;
    const names = Object.fromEntries(Object.entries(ids).map(([k, v]) => [v, k]));
    return { ...r, names: (r.ids as string[]).map((i) => names[i]).filter(Boolean) };
  };

  test('the indexed path: inMailbox, sort by size and receivedAt, position, limit, total', async () => {
    const r = await q({ filter: { inMailbox: archive }, calculateTotal: true });
    assert.deepEqual(r.names, ['q2']);
    assert.equal(r.total, 1);
    assert.match(r.queryState, /^\d+$/);
    assert.equal(r.canCalculateChanges, true);
    const bySize = await q({ sort: [{ property: 'size', isAscending: false }], limit: 1 });
    assert.deepEqual(bySize.names, ['q3']);
    const all = await q({ calculateTotal: true });
    assert.deepEqual(all.ids.slice(0, 3).length, 3);
    const page = await q({ position: 1, limit: 1 });
    assert.deepEqual(page.ids, [all.ids[1]]);
    assert.equal(page.position, 1);
  });

  test('scanned filters: keywords, sizes, text, from, subject, body, header, operators', async () => {
    assert.deepEqual((await q({ filter: { hasKeyword: '$flagged' } })).names, ['q1']);
    assert.deepEqual(
      (
        await q({ filter: { operator: 'AND', conditions: [{ subject: 'query' }, { notKeyword: '$seen' }] } })
      ).names.sort(),
      ['q1', 'q2'],
    );
    assert.deepEqual((await q({ filter: { minSize: 4000 } })).names, ['q3']);
    assert.deepEqual((await q({ filter: { text: 'apple' } })).names.sort(), ['q1', 'q2']);
    assert.deepEqual((await q({ filter: { body: 'banana' } })).names, ['q1']);
    assert.deepEqual((await q({ filter: { subject: 'cherry' } })).names, ['q2']);
    assert.deepEqual((await q({ filter: { from: 'bob@example' } })).names.length, 3);
    assert.deepEqual((await q({ filter: { header: ['Subject', 'query BIG'] } })).names, ['q3']);
    assert.deepEqual((await q({ filter: { inMailboxOtherThan: [inbox], subject: 'query' } })).names, ['q2']);
    assert.deepEqual((await q({ filter: { operator: 'NOT', conditions: [{ inMailbox: inbox }] } })).names, ['q2']);
    const sorted = await q({ filter: { subject: 'query' }, sort: [{ property: 'subject', isAscending: true }] });
    assert.deepEqual(sorted.names, ['q1', 'q3', 'q2']);
    const anchored = await q({
      filter: { subject: 'query' },
      sort: [{ property: 'subject' }],
      anchor: ids.q3,
      anchorOffset: 0,
    });
    assert.deepEqual(anchored.names, ['q3', 'q2']);
    assert.equal(anchored.position, 1);
  });

  test('errors: unsupportedSort, unsupportedFilter, anchorNotFound, invalidArguments', async () => {
    assert.equal((await q({ sort: [{ property: 'nope' }] })).error.type, 'unsupportedSort');
    assert.equal((await q({ filter: { nope: 1 } })).error.type, 'unsupportedFilter');
    assert.equal((await q({ filter: { minSize: 'x' } })).error.type, 'invalidArguments');
    assert.equal((await q({ filter: { subject: 'x' }, anchor: 'Mnope' })).error.type, 'anchorNotFound');
  });

  test('Email/queryChanges from the journal: touched Emails removed, and added back at their index', async () => {
    const r = await call('Email/query', { filter: { subject: 'query' }, calculateTotal: true });
    assert.equal(r.canCalculateChanges, true);
    const same = await call('Email/queryChanges', {
      filter: { subject: 'query' },
      sinceQueryState: r.queryState,
      calculateTotal: true,
    });
    assert.deepEqual([same.removed, same.added, same.total, same.newQueryState], [[], [], 3, r.queryState]);
    // A keyword change on q1 and a new matching Email; q2 untouched.
    await call('Email/set', { update: { [ids.q1]: { 'keywords/$seen': true } } });
    const q4 = await append(MESSAGE('Query new'), 'INBOX');
    const all = await call('Email/query', { filter: { inMailbox: inbox } });
    const c = await call('Email/queryChanges', { filter: { inMailbox: inbox }, sinceQueryState: r.queryState });
    assert.deepEqual(c.removed.sort(), [ids.q1, q4].sort());
    assert.deepEqual(
      c.added,
      [ids.q1, q4].map((id) => ({ id, index: all.ids.indexOf(id) })).sort((a, b) => a.index - b.index),
    );
    assert.equal(c.newQueryState, all.queryState);
    // Replaying the changes on the old list gives the new one.
    const old = (await call('Email/query', { filter: { inMailbox: inbox } })).ids.filter((i: string) => i !== q4);
    const replay = old.filter((i: string) => !c.removed.includes(i));
    for (const a of c.added) replay.splice(a.index, 0, a.id);
    assert.deepEqual(replay, all.ids);
    const tooMany = await call('Email/queryChanges', { sinceQueryState: r.queryState, maxChanges: 1 });
    assert.equal(tooMany.error.type, 'tooManyChanges');
    assert.equal((await call('Email/queryChanges', { sinceQueryState: '1' })).error.type, 'cannotCalculateChanges');
    assert.equal((await call('Email/queryChanges', { sinceQueryState: 'x' })).error.type, 'cannotCalculateChanges');
  });

  test('SearchSnippet/get marks the terms', async () => {
    const r = await call('SearchSnippet/get', { filter: { text: 'apple' }, emailIds: [ids.q1, ids.q2, 'Mnope'] });
    const by = Object.fromEntries(r.list.map((s: Json) => [s.emailId, s]));
    assert.equal(by[ids.q1].subject, 'Query <mark>apple</mark>');
    assert.equal(by[ids.q1].preview, null);
    assert.match(by[ids.q2].preview, /with <mark>apple<\/mark>/);
    assert.deepEqual(r.notFound, ['Mnope']);
  });
});

describe('Email/set (RFC 8621 §4.6), /copy, /import, /parse', () => {
  let inbox: string;
  let archive: string;
  let watcher: ImapFlow;
  before(async () => {
    const r = await call('Email/get', { ids: null, properties: ['mailboxIds'] });
    const all = new Set(r.list.flatMap((e: Json) => Object.keys(e.mailboxIds)));
    const id = await append(MESSAGE('Locate inbox'));
    inbox = Object.keys(
      (await call('Email/get', { ids: [id], properties: ['mailboxIds'] })).list[0].mailboxIds,
    )[0] as string;
    archive = [...all].find((m) => m !== inbox) as string;
    assert.ok(archive);
    watcher = await imapClient();
    await watcher.mailboxOpen('INBOX');
  });
  after(async () => {
    await watcher?.logout().catch(() => {});
  });

  const event = <T>(name: string, pred: (e: T) => boolean) =>
    new Promise<T>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no ${name} event within 5 s`)), 5000);
      const on = (e: T) => {
        if (!pred(e)) return;
        clearTimeout(timer);
        watcher.off(name, on);
        resolve(e);
      };
      watcher.on(name, on);
      void watcher.idle();
    });

  test('a keyword patch is an IMAP STORE: seen by FETCH and by an IDLE client', async () => {
    const id = await append(MESSAGE('Set keywords'));
    const flagsEvent = event<{ flags: Set<string> }>('flags', (e) => e.flags.has('\\Seen'));
    const r = await call('Email/set', { update: { [id]: { 'keywords/$seen': true, 'keywords/Custom': true } } });
    assert.deepEqual(r.updated, { [id]: null });
    assert.notEqual(r.oldState, r.newState);
    const ev = await flagsEvent;
    assert.ok(ev.flags.has('custom'));
    const got = await call('Email/get', { ids: [id], properties: ['keywords'] });
    assert.deepEqual(got.list[0].keywords, { $seen: true, custom: true });
    const lock = await imap.getMailboxLock('INBOX');
    try {
      const uids = await imap.search({ subject: 'Set keywords' }, { uid: true });
      const m = await imap.fetchOne(String((uids as number[])[0]), { flags: true }, { uid: true });
      if (!m) throw new Error('no message');
      assert.deepEqual([...(m.flags ?? [])].sort(), ['\\Seen', 'custom']);
    } finally {
      lock.release();
    }
    const off = await call('Email/set', { update: { [id]: { keywords: { $flagged: true } } } });
    assert.deepEqual(off.updated, { [id]: null });
    assert.deepEqual((await call('Email/get', { ids: [id], properties: ['keywords'] })).list[0].keywords, {
      $flagged: true,
    });
  });

  test('a mailboxIds change is a move: EXPUNGE in one, EXISTS in the other; at least one mailbox', async () => {
    const id = await append(MESSAGE('Set move'));
    const known = await append(MESSAGE('Set patch'));
    const other = await imapClient();
    await other.mailboxOpen('Archive');
    const count = other.mailbox ? other.mailbox.exists : 0;
    const exists = new Promise<number>((resolve) => other.on('exists', (d) => resolve(d.count)));
    void other.idle();
    const expunged = event<unknown>('expunge', () => true);
    const r = await call('Email/set', { update: { [id]: { mailboxIds: { [archive]: true } } } });
    assert.deepEqual(r.updated, { [id]: null });
    await expunged;
    assert.equal(await exists, count + 1);
    await other.logout();
    const got = await call('Email/get', { ids: [id], properties: ['mailboxIds'] });
    assert.equal(got.list[0].id, id); // the same Email (the copy kept its identity)
    assert.deepEqual(got.list[0].mailboxIds, { [archive]: true });
    const lock = await imap.getMailboxLock('Archive');
    try {
      await imap.noop();
      assert.ok(((await imap.search({ subject: 'Set move' }, { uid: true })) as number[]).length === 1);
    } finally {
      lock.release();
    }
    const none = await call('Email/set', { update: { [id]: { [`mailboxIds/${archive}`]: null } } });
    assert.equal(none.notUpdated[id].type, 'invalidProperties');
    const patches = await call('Email/set', {
      update: { [id]: { 'keywords/a/b': true }, [known]: { 'keywords/$seen': 1 } },
    });
    assert.equal(patches.notUpdated[id].type, 'invalidPatch');
    assert.equal(patches.notUpdated[known].type, 'invalidPatch');
    const many = Object.fromEntries(Array.from({ length: 101 }, (_, i) => [`k${i}`, true]));
    assert.equal(
      (await call('Email/set', { update: { [id]: { keywords: many } } })).notUpdated[id].type,
      'tooManyKeywords',
    );
    const badKw = await call('Email/set', { update: { [id]: { keywords: { 'a b': true } } } });
    assert.deepEqual(badKw.notUpdated[id].properties, ['keywords']);
    const badBox = await call('Email/set', { update: { [id]: { mailboxIds: { Fnope: true } } } });
    assert.deepEqual(badBox.notUpdated[id].properties, ['mailboxIds']);
    const bad = await call('Email/set', { update: { [id]: { subject: 'x' }, Mnope: { keywords: {} } } });
    assert.equal(bad.notUpdated[id].type, 'invalidProperties');
    assert.equal(bad.notUpdated.Mnope.type, 'notFound');
  });

  test('a mailbox created earlier in the request is named by its creation id', async () => {
    const [mb, em] = await calls(
      ['Mailbox/set', { accountId: aliceId, create: { mb: { name: 'Made for email' } } }],
      [
        'Email/set',
        {
          accountId: aliceId,
          create: { e: { mailboxIds: { '#mb': true }, subject: 'In a new mailbox' } },
        },
      ],
    );
    const mailboxId = mb.created.mb.id;
    assert.ok(em.created, JSON.stringify(em));
    const id = em.created.e.id;
    const got = await call('Email/get', { ids: [id], properties: ['mailboxIds', 'subject'] });
    assert.deepEqual(got.list[0], { id, mailboxIds: { [mailboxId]: true }, subject: 'In a new mailbox' });
  });

  test('create, destroy, ifInState', async () => {
    const r = await call('Email/set', {
      create: {
        k1: {
          mailboxIds: { [inbox]: true },
          keywords: { $draft: true },
          from: [{ name: 'Alice', email: ALICE }],
          subject: 'Created by JMAP',
          bodyValues: { b: { value: 'Made here.' } },
          textBody: [{ partId: 'b', type: 'text/plain' }],
        },
        k2: { mailboxIds: {}, subject: 'no mailbox' },
        k3: { mailboxIds: { [inbox]: true }, id: 'Mx' },
      },
    });
    const made = r.created.k1;
    assert.match(made.id, /^M/);
    assert.equal(made.blobId, `E${made.id.slice(1)}`);
    assert.equal(r.notCreated.k2.type, 'invalidProperties');
    assert.deepEqual(r.notCreated.k3.properties, ['id']);
    const got = await call('Email/get', {
      ids: [made.id],
      properties: ['subject', 'keywords', 'from', 'bodyValues'],
      fetchTextBodyValues: true,
    });
    assert.equal(got.list[0].subject, 'Created by JMAP');
    assert.deepEqual(got.list[0].keywords, { $draft: true });
    assert.equal(got.list[0].bodyValues['1'].value, 'Made here.');
    const stale = await call('Email/set', { ifInState: '1', destroy: [made.id] });
    assert.equal(stale.error.type, 'stateMismatch');
    const d = await call('Email/set', { destroy: [made.id, 'Mnope'] });
    assert.deepEqual(d.destroyed, [made.id]);
    assert.equal(d.notDestroyed.Mnope.type, 'notFound');
    assert.deepEqual((await call('Email/get', { ids: [made.id], properties: ['id'] })).notFound, [made.id]);
  });

  test('Email/import from an upload (IMAP sees it), Email/parse, Email/copy', async () => {
    const raw = MESSAGE('Imported one', 'imported body');
    const up = await fetch(`${base}/jmap/upload/${aliceId}`, {
      method: 'POST',
      headers: { authorization: AUTH, 'content-type': 'message/rfc822' },
      body: raw,
    });
    const { blobId } = (await up.json()) as { blobId: string };
    const parsed = await call('Email/parse', { blobIds: [blobId, 'Bnope'] });
    assert.equal(parsed.parsed[blobId].subject, 'Imported one');
    assert.deepEqual(parsed.notFound, ['Bnope']);
    const partBlob = parsed.parsed[blobId].textBody[0].blobId;
    const part = await fetch(`${base}/jmap/download/${aliceId}/${partBlob}/t.txt`, {
      headers: { authorization: AUTH },
    });
    assert.equal(await part.text(), 'imported body\r\n');
    const r = await call('Email/import', {
      emails: {
        i1: { blobId, mailboxIds: { [archive]: true }, keywords: { $seen: true }, receivedAt: '2026-01-02T03:04:05Z' },
        i2: { blobId: 'Bnope', mailboxIds: { [archive]: true } },
      },
    });
    const id = r.created.i1.id;
    assert.equal(r.notCreated.i2.type, 'blobNotFound');
    assert.deepEqual(r.notCreated.i2.notFound, ['Bnope']);
    const got = await call('Email/get', { ids: [id], properties: ['receivedAt', 'keywords', 'mailboxIds'] });
    assert.deepEqual(got.list[0], {
      id,
      receivedAt: '2026-01-02T03:04:05Z',
      keywords: { $seen: true },
      mailboxIds: { [archive]: true },
    });
    const lock = await imap.getMailboxLock('Archive');
    try {
      await imap.noop();
      const uids = (await imap.search({ subject: 'Imported one' }, { uid: true })) as number[];
      const m = await imap.fetchOne(String(uids[0]), { source: true, flags: true }, { uid: true });
      if (!m) throw new Error('no message');
      assert.deepEqual(m.source, raw);
      assert.ok(m.flags?.has('\\Seen'));
    } finally {
      lock.release();
    }
    assert.equal((await call('Email/copy', { fromAccountId: 'Aother', create: {} })).error.type, 'fromAccountNotFound');
    assert.equal((await call('Email/copy', { fromAccountId: aliceId, create: {} })).error.type, 'invalidArguments');
  });
});

describe('jmap-jam (an independent client) and the cost of Email/get', () => {
  test('query with a result reference into get, then set keywords', async () => {
    interface Draft {
      $ref(path: string): unknown;
    }
    interface JamApi {
      Email: {
        query(a: Record<string, unknown>): Draft;
        get(a: Record<string, unknown>): Draft;
        set(a: Record<string, unknown>): Draft;
      };
    }
    interface Jam {
      getPrimaryAccount(): Promise<string>;
      requestMany<T>(f: (t: JamApi) => T): Promise<[Record<keyof T, Json>, unknown]>;
      api: { Email: { set(a: Record<string, unknown>): Promise<[Json, unknown]> } };
    }
    // Loaded by a computed name (its types do not compile under our settings; http.test.ts).
    const name = 'jmap-jam';
    const { JamClient } = (await import(name)) as { JamClient: new (c: object) => Jam };
    const bearerToken = s.admin.access.create({ role: { kind: 'user', user: ALICE } }).token;
    const jam = new JamClient({ bearerToken, sessionUrl: `${base}/.well-known/jmap` });
    const accountId = await jam.getPrimaryAccount();
    assert.equal(accountId, aliceId);
    const id = await append(MESSAGE('Jam one'));
    const [{ emails }] = await jam.requestMany((t) => {
      const ids = t.Email.query({ accountId, filter: { subject: 'Jam one' } });
      const emails = t.Email.get({ accountId, ids: ids.$ref('/ids'), properties: ['subject', 'keywords'] });
      return { ids, emails };
    });
    assert.deepEqual(emails.list, [{ id, subject: 'Jam one', keywords: {} }]);
    const [set] = await jam.api.Email.set({ accountId, update: { [id]: { 'keywords/$answered': true } } });
    assert.deepEqual(set.updated, { [id]: null });
  });

  test('Email/get of 50 small messages takes a few ms', async () => {
    const before = new Set((await call('Email/get', { ids: null, properties: ['id'] })).list.map((e: Json) => e.id));
    for (let i = 0; i < 50; i++) await imap.append('INBOX', MESSAGE(`Bulk ${i}`));
    const ids = (await call('Email/get', { ids: null, properties: ['id'] })).list
      .map((e: Json) => e.id)
      .filter((i: string) => !before.has(i));
    assert.equal(ids.length, 50);
    await call('Email/get', { ids }); // warm
    const times: number[] = [];
    for (let i = 0; i < 5; i++) {
      const t0 = performance.now();
      const r = await call('Email/get', { ids });
      times.push(performance.now() - t0);
      assert.equal(r.list.length, 50);
    }
    times.sort((a, b) => a - b);
    // The median over HTTP, default properties (headers, body parts, preview); a loose bound
    // for a shared machine (measured: docs/jmap-email.md).
    console.log(`Email/get of 50 messages: median ${times[2]?.toFixed(1)} ms`);
    assert.ok((times[2] as number) < 500);
  });
});
