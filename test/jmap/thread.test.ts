// JMAP Threads (RFC 8621 §3) against the real server over HTTP, with IMAP (imapflow) as the
// other writer: Thread/get (emailIds oldest first), Email threadId for an Email/set create and
// an IMAP APPEND of its reply, Thread/changes (created, updated, destroyed, maxChanges),
// Email/query collapseThreads (indexed and scanned) and the thread keyword filters,
// Email/queryChanges with collapseThreads.

import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';
import { call, imap, type Json, useEmailServer } from './email-support.ts';

useEmailServer();

const REPLY = (id: string, subject: string, refs: readonly string[]) =>
  Buffer.from(
    `From: Bob <bob@example.test>\r\nTo: alice@example.test\r\nSubject: ${subject}\r\n` +
      `Message-ID: <${id}>\r\n${refs.length > 0 ? `In-Reply-To: <${refs.at(-1)}>\r\nReferences: ${refs.map((r) => `<${r}>`).join(' ')}\r\n` : ''}` +
      `MIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\nbody of ${id}\r\n`,
  );

let inbox = '';
let archive = '';

/** IMAP APPEND with an internal date; returns the new Email's id. */
async function appendAt(raw: Buffer, date: Date, mailbox = 'INBOX', flags: string[] = []): Promise<string> {
  const r = await imap.append(mailbox, raw, flags, date);
  assert.ok(r && typeof r === 'object' && r.uid);
  await imap.mailboxOpen(mailbox);
  const found = await call('Email/query', {
    filter: { header: ['Message-ID', raw.toString().split('Message-ID: <')[1]?.split('>')[0] ?? ''] },
  });
  assert.equal(found.ids.length, 1);
  return found.ids[0];
}

async function threadOf(id: string): Promise<string> {
  return (await call('Email/get', { ids: [id], properties: ['threadId'] })).list[0].threadId;
}

describe('Threads (RFC 8621 §3)', () => {
  before(async () => {
    const r = await call('Mailbox/get', { ids: null, properties: ['name', 'role'] });
    inbox = r.list.find((m: Json) => m.role === 'inbox').id;
    archive = r.list.find((m: Json) => m.name === 'Archive').id;
  });

  test('Thread/get: an Email/set create and the IMAP APPEND of its reply are one thread, oldest first', async () => {
    const state = (await call('Thread/get', { ids: [] })).state;
    const made = await call('Email/set', {
      create: {
        r: {
          mailboxIds: { [archive]: true },
          messageId: ['root-1@example.test'],
          subject: 'Quarterly plan',
          receivedAt: '2026-01-02T10:00:00Z',
          bodyValues: { b: { value: 'The plan.' } },
          textBody: [{ partId: 'b', type: 'text/plain' }],
        },
      },
    });
    const root = made.created.r;
    assert.match(root.threadId, /^T[A-Za-z0-9_-]+$/);
    // A reply received later, and one dated before the root (an old copy filed late).
    const reply = await appendAt(
      REPLY('reply-1@example.test', 'Re: Quarterly plan', ['root-1@example.test']),
      new Date('2026-01-03T10:00:00Z'),
    );
    const early = await appendAt(
      REPLY('reply-0@example.test', 'RE: quarterly plan', ['root-1@example.test']),
      new Date('2026-01-01T10:00:00Z'),
    );
    const other = await appendAt(REPLY('other@example.test', 'Quarterly plan', []), new Date('2026-01-04T10:00:00Z'));
    assert.equal(await threadOf(reply), root.threadId, 'the IMAP reply joins the JMAP thread');
    assert.equal(await threadOf(early), root.threadId);
    assert.notEqual(await threadOf(other), root.threadId, 'the same subject without references does not');
    const got = await call('Thread/get', { ids: [root.threadId, 'Tunknown'] });
    assert.deepEqual(got.list, [{ id: root.threadId, emailIds: [early, root.id, reply] }]);
    assert.deepEqual(got.notFound, ['Tunknown']);
    const all = await call('Thread/get', { ids: null });
    assert.ok(all.list.some((t: Json) => t.id === root.threadId && t.emailIds.length === 3));

    // Thread/changes: one thread created, one more.
    const ch = await call('Thread/changes', { sinceState: state });
    assert.deepEqual([...ch.created].sort(), [root.threadId, await threadOf(other)].sort());
    assert.deepEqual(ch.updated, []);
    assert.deepEqual(ch.destroyed, []);
    // An email joins: updated; the others' keywords change: not a Thread change.
    const s1 = ch.newState;
    await appendAt(
      REPLY('reply-2@example.test', 'Re: Quarterly plan', ['root-1@example.test', 'reply-1@example.test']),
      new Date('2026-01-05T10:00:00Z'),
    );
    await call('Email/set', { update: { [other]: { 'keywords/$seen': true } } });
    const ch2 = await call('Thread/changes', { sinceState: s1 });
    assert.deepEqual(ch2.created, []);
    assert.deepEqual(ch2.updated, [root.threadId]);
    assert.deepEqual(ch2.destroyed, []);
    // maxChanges counts threads: one at a time.
    const m1 = await call('Thread/changes', { sinceState: state, maxChanges: 1 });
    assert.equal(m1.created.length + m1.updated.length, 1);
    assert.equal(m1.hasMoreChanges, true);
    const m2 = await call('Thread/changes', { sinceState: m1.newState, maxChanges: 1 });
    assert.equal(m2.created.length + m2.updated.length, 1);
    // The last email of a thread gone: destroyed.
    const s2 = (await call('Thread/get', { ids: [] })).state;
    const otherThread = await threadOf(other);
    await call('Email/set', { destroy: [other] });
    const ch3 = await call('Thread/changes', { sinceState: s2 });
    assert.deepEqual(ch3.destroyed, [otherThread]);
    assert.deepEqual(ch3.updated, []);
    // Created and destroyed within the window: not reported.
    const s3 = ch3.newState;
    const gone = await appendAt(REPLY('brief@example.test', 'Brief', []), new Date('2026-01-06T10:00:00Z'));
    await call('Email/set', { destroy: [gone] });
    const ch4 = await call('Thread/changes', { sinceState: s3 });
    assert.deepEqual([ch4.created, ch4.updated, ch4.destroyed], [[], [], []]);
  });

  test('Email/query collapseThreads and the thread keyword filters', async () => {
    const a = await appendAt(REPLY('ka@example.test', 'Keywords', []), new Date('2026-02-01T10:00:00Z'));
    const b = await appendAt(
      REPLY('kb@example.test', 'Re: Keywords', ['ka@example.test']),
      new Date('2026-02-02T10:00:00Z'),
      'INBOX',
      ['\\Answered'],
    );
    const c = await appendAt(REPLY('kc@example.test', 'Alone', []), new Date('2026-02-03T10:00:00Z'));
    // Indexed path (no filter / inMailbox): the newest of each thread, totals in threads.
    const plain = await call('Email/query', { calculateTotal: true });
    const collapsed = await call('Email/query', { collapseThreads: true, calculateTotal: true });
    assert.ok(collapsed.total < plain.total);
    assert.ok(collapsed.ids.includes(b) && !collapsed.ids.includes(a), 'the newest of the thread represents it');
    const threads = (await call('Email/get', { ids: collapsed.ids, properties: ['threadId'] })).list.map(
      (e: Json) => e.threadId,
    );
    assert.equal(new Set(threads).size, threads.length, 'one email per thread');
    const inInbox = await call('Email/query', {
      filter: { inMailbox: inbox },
      collapseThreads: true,
      calculateTotal: true,
    });
    assert.ok(inInbox.ids.includes(b) && !inInbox.ids.includes(a));
    // Oldest first: the oldest of the thread represents it.
    const asc = await call('Email/query', {
      collapseThreads: true,
      sort: [{ property: 'receivedAt', isAscending: true }],
    });
    assert.ok(asc.ids.includes(a) && !asc.ids.includes(b));
    // Scanned path (a filter the index does not answer): the same rule.
    const scanned = await call('Email/query', {
      filter: { after: '2026-02-01T00:00:00Z' },
      collapseThreads: true,
      calculateTotal: true,
    });
    assert.deepEqual(scanned.ids, [c, b]);
    assert.equal(scanned.total, 2);
    // Thread keywords: b has $answered, a does not.
    const some = await call('Email/query', { filter: { someInThreadHaveKeyword: '$answered' } });
    assert.ok(some.ids.includes(a) && some.ids.includes(b) && !some.ids.includes(c));
    const none = await call('Email/query', { filter: { noneInThreadHaveKeyword: '$answered' } });
    assert.ok(!none.ids.includes(a) && !none.ids.includes(b) && none.ids.includes(c));
    const allOf = await call('Email/query', { filter: { allInThreadHaveKeyword: '$answered' } });
    assert.ok(!allOf.ids.includes(a) && !allOf.ids.includes(b));
    await call('Email/set', { update: { [a]: { 'keywords/$answered': true } } });
    const allNow = await call('Email/query', { filter: { allInThreadHaveKeyword: '$answered' } });
    assert.ok(allNow.ids.includes(a) && allNow.ids.includes(b) && !allNow.ids.includes(c));

    // Email/queryChanges with collapseThreads: a new reply replaces its thread's representative.
    const q = { filter: { after: '2026-02-01T00:00:00Z' }, collapseThreads: true };
    const before = await call('Email/query', q);
    const d = await appendAt(
      REPLY('kd@example.test', 'Re: Keywords', ['ka@example.test', 'kb@example.test']),
      new Date('2026-02-04T10:00:00Z'),
    );
    const qc = await call('Email/queryChanges', { ...q, sinceQueryState: before.queryState });
    assert.ok(qc.removed.includes(b), 'the old representative is removed');
    assert.deepEqual(qc.added, [{ id: d, index: 0 }]);
  });
});
