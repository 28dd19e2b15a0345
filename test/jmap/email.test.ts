// JMAP Email methods (RFC 8621 §4, §5) against the real server over HTTP, with IMAP (imapflow)
// as the other view of the same store: "one truth" in both directions. Email/get, /changes,
// /query, /queryChanges, SearchSnippet/get here; Email/set, /copy, /import, /parse and the
// jmap-jam client in email-set.test.ts.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { transaction } from '../harness/smtp-client.ts';
import {
  ALICE,
  AUTH,
  aliceId,
  append,
  base,
  call,
  calls,
  imap,
  type Json,
  MESSAGE,
  MULTIPART,
  s,
  useEmailServer,
} from './email-support.ts';

useEmailServer();

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
    // RFC 8621 §4.2: maxBodyValueBytes is an UnsignedInt, 0 (the default) for no truncation.
    assert.equal((await call('Email/get', { ids: [], maxBodyValueBytes: -1 })).error.type, 'invalidArguments');
    assert.deepEqual((await call('Email/get', { ids: [], maxBodyValueBytes: 0 })).list, []);
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
