// The mail store contract, part: conversation threads (Mailboxes.threads, LocatedEmail.threadId;
// docs/jmap-email.md "Threads"). A reply naming a stored message in In-Reply-To or References
// joins its thread when the base subjects agree; the same subject without references does not;
// a copy or a move keeps the thread; the thread goes with its last email; thread ids survive a
// restart and an index rebuild; the account journal records each entry's thread. Per-mailbox
// thread counts (Mailboxes.mailboxThreads: JMAP totalThreads/unreadThreads) follow appends,
// \Seen on and off, copies, moves, expunges and mailbox deletions, and survive a rebuild.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import type { AccountId } from '../../src/core/ids.ts';
import type { Mailboxes } from '../../src/store/mailboxes.ts';
import type { MakeStore } from './contract-support.ts';
import { append, type Ctx, deliver, withStore } from './contract-support.ts';

const ID = /^T[A-Za-z0-9_-]{1,254}$/;

export const threadMessage = (id: string, subject: string, refs: readonly string[] = []) =>
  `From: a@example.test\r\nMessage-ID: <${id}>\r\n${
    refs.length > 0 ? `In-Reply-To: <${refs.at(-1)}>\r\nReferences: ${refs.map((r) => `<${r}>`).join(' ')}\r\n` : ''
  }Subject: ${subject}\r\n\r\nbody of ${id}\r\n`;

/** The thread of each email of the account, by Message-ID-ish label (the body). */
async function threadsByUid(ctx: Ctx, name: string): Promise<Map<number, { emailId: string; threadId: string }>> {
  const box = await ctx.open(name);
  const s = await box.sync();
  const ids = box.emailIds(s.messages.map((m) => m.uid));
  const located = new Map((await ctx.boxes.locate(ctx.account, [...ids.values()])).map((l) => [l.emailId, l]));
  ctx.boxes.release(ctx.account, box);
  return new Map([...ids].map(([uid, emailId]) => [uid, { emailId, threadId: located.get(emailId)?.threadId ?? '' }]));
}

async function emailsOf(boxes: Mailboxes, account: AccountId, threadId: string): Promise<string[]> {
  return (await boxes.threads(account, [threadId]))[0]?.emailIds ?? [];
}

export function threadsContract(make: MakeStore): void {
  test('threads: replies join by In-Reply-To and References, the same subject alone does not', () =>
    withStore(make, async (ctx) => {
      await deliver(ctx, threadMessage('a@x', 'Lunch'));
      await deliver(ctx, threadMessage('b@x', 'Re: Lunch', ['a@x']));
      await deliver(ctx, threadMessage('c@x', 'RE: re: lunch', ['a@x', 'b@x']));
      await deliver(ctx, threadMessage('d@x', 'Lunch'));
      await deliver(ctx, threadMessage('e@x', 'Budget', ['a@x']));
      // IMAP APPEND (the bytes at hand) joins the same way.
      const inbox = await ctx.open('INBOX');
      await append(ctx, inbox, threadMessage('f@x', 'Re: Lunch', ['b@x']), [], new Date(Date.now() + 1000));
      ctx.boxes.release(ctx.account, inbox);
      const t = await threadsByUid(ctx, 'INBOX');
      const [a, b, c, d, e, f] = [1, 2, 3, 4, 5, 6].map((u) => t.get(u) as { emailId: string; threadId: string });
      assert.ok(a && b && c && d && e && f);
      assert.match(a.threadId, ID);
      assert.equal(a.threadId, `T${a.emailId.slice(1)}`, 'named after its first email');
      assert.equal(b.threadId, a.threadId, 'In-Reply-To');
      assert.equal(c.threadId, a.threadId, 'References');
      assert.equal(f.threadId, a.threadId, 'an APPEND');
      assert.notEqual(d.threadId, a.threadId, 'same subject, no reference');
      assert.notEqual(e.threadId, a.threadId, 'a reply on another subject');
      assert.deepEqual(
        await emailsOf(ctx.boxes, ctx.account, a.threadId),
        [a, b, c, f].map((x) => x.emailId),
      );
      assert.deepEqual(await ctx.boxes.threads(ctx.account, ['Tnothing']), []);
      // A parent stored after its reply joins the reply's thread.
      await deliver(ctx, threadMessage('y@x', 'Re: Later', ['x@x']));
      await deliver(ctx, threadMessage('x@x', 'Later'));
      const t2 = await threadsByUid(ctx, 'INBOX');
      assert.equal(t2.get(8)?.threadId, t2.get(7)?.threadId);
    }));

  test('threads: a copy or a move keeps the thread; the last email gone ends it; journal entries carry it', () =>
    withStore(make, async (ctx) => {
      const state = await ctx.boxes.accountState(ctx.account);
      await deliver(ctx, threadMessage('a@x', 'Plans'));
      await deliver(ctx, threadMessage('b@x', 'Re: Plans', ['a@x']));
      const inbox = await ctx.open('INBOX');
      await inbox.sync();
      const thread = (await threadsByUid(ctx, 'INBOX')).get(1)?.threadId as string;
      const trash = await ctx.open('Trash');
      await trash.sync();
      await inbox.copyTo([2], trash, { move: true });
      const sent = await ctx.open('Sent');
      await sent.sync();
      await inbox.copyTo([1], sent);
      assert.equal((await threadsByUid(ctx, 'Trash')).get(1)?.threadId, thread, 'moved');
      assert.equal((await threadsByUid(ctx, 'Sent')).get(1)?.threadId, thread, 'copied');
      assert.equal((await emailsOf(ctx.boxes, ctx.account, thread)).length, 2, 'a copy is the same email');
      const rows = (await ctx.boxes.accountChangesSince(ctx.account, state, 1000)) ?? [];
      const messageRows = rows.filter((r) => r.emailId !== null);
      assert.ok(messageRows.length >= 5);
      for (const r of messageRows) assert.equal(r.threadId, thread, `${r.kind} ${r.mailboxId}`);
      await inbox.expunge([1]);
      await sent.expunge([1]);
      assert.equal((await emailsOf(ctx.boxes, ctx.account, thread)).length, 1);
      await trash.expunge([1]);
      assert.deepEqual(await ctx.boxes.threads(ctx.account, [thread]), [], 'destroyed with its last email');
      for (const b of [inbox, sent, trash]) ctx.boxes.release(ctx.account, b);
      // Its message ids went with it: a new reply starts a new thread.
      await deliver(ctx, threadMessage('c@x', 'Re: Plans', ['a@x', 'b@x']));
      const t = await threadsByUid(ctx, 'INBOX');
      assert.notEqual([...t.values()][0]?.threadId, thread);
    }));

  test('threads: ids survive a restart and an index rebuild', () =>
    withStore(make, async (ctx) => {
      await deliver(ctx, threadMessage('a@x', 'One'));
      await deliver(ctx, threadMessage('b@x', 'Re: One', ['a@x']));
      await deliver(ctx, threadMessage('c@x', 'Two'));
      await deliver(ctx, threadMessage('d@x', 'Re: Two', ['c@x']));
      await deliver(ctx, threadMessage('e@x', 'Re: One', ['a@x', 'b@x']));
      const before = [...(await threadsByUid(ctx, 'INBOX')).values()];
      assert.equal(new Set(before.map((x) => x.threadId)).size, 2);
      await ctx.reopen();
      assert.deepEqual([...(await threadsByUid(ctx, 'INBOX')).values()], before, 'after a restart');
      if (await ctx.reopen({ loseIndex: true })) {
        assert.deepEqual([...(await threadsByUid(ctx, 'INBOX')).values()], before, 'after an index rebuild');
        const first = before[0] as { threadId: string };
        assert.equal((await emailsOf(ctx.boxes, ctx.account, first.threadId)).length, 3);
      }
    }));

  test('threads: per-mailbox thread counts follow appends, \\Seen, copies, moves, expunges, deletions', () =>
    withStore(make, async (ctx) => {
      const ids = async () => new Map((await ctx.boxes.list(ctx.account, { ids: true })).map((e) => [e.name, e.id]));
      const counts = async (name: string) => {
        const id = (await ids()).get(name);
        assert.ok(id, name);
        // As JMAP Mailbox/get does: the mailbox synchronised first (deliveries land in files).
        const box = await ctx.open(name);
        await box.sync();
        ctx.boxes.release(ctx.account, box);
        return ctx.boxes.mailboxThreads(ctx.account, id);
      };
      await deliver(ctx, threadMessage('a@x', 'Plans'));
      await deliver(ctx, threadMessage('b@x', 'Re: Plans', ['a@x']));
      await deliver(ctx, threadMessage('c@x', 'Other'));
      assert.deepEqual(await counts('INBOX'), { total: 2, unread: 2 });
      const inbox = await ctx.open('INBOX');
      await inbox.sync();
      await inbox.storeFlags([1], 'add', ['\\Seen']);
      assert.deepEqual(await counts('INBOX'), { total: 2, unread: 2 }, 'b@x of the thread is still unseen');
      await inbox.storeFlags([2, 3], 'add', ['\\Seen']);
      assert.deepEqual(await counts('INBOX'), { total: 2, unread: 0 });
      await inbox.storeFlags([2], 'remove', ['\\Seen']);
      assert.deepEqual(await counts('INBOX'), { total: 2, unread: 1 });
      // The thread spans two mailboxes: a copy of a@x (seen) and a move of b@x (unseen).
      const archive = await ctx.open('Sent');
      await archive.sync();
      await inbox.copyTo([1], archive);
      assert.deepEqual(await counts('Sent'), { total: 1, unread: 0 });
      await inbox.copyTo([2], archive, { move: true });
      assert.deepEqual(await counts('Sent'), { total: 1, unread: 1 });
      assert.deepEqual(await counts('INBOX'), { total: 2, unread: 0 }, 'a@x and c@x stay, both seen');
      await deliver(ctx, threadMessage('d@x', 'Re: Plans', ['a@x', 'b@x']), { mailbox: 'Sent' });
      assert.deepEqual(await counts('Sent'), { total: 1, unread: 1 }, 'a reply joins the thread there');
      await inbox.expunge([1]);
      assert.deepEqual(await counts('INBOX'), { total: 1, unread: 0 }, 'only c@x left');
      assert.deepEqual(await counts('Sent'), { total: 1, unread: 1 }, 'the other mailbox keeps the thread');
      await deliver(ctx, threadMessage('e@x', 'Re: Plans', ['a@x']), { mailbox: 'Gone', create: true });
      assert.deepEqual(await counts('Gone'), { total: 1, unread: 1 });
      await ctx.boxes.delete(ctx.account, 'Gone');
      assert.deepEqual(await counts('Sent'), { total: 1, unread: 1 }, 'a mailbox deletion leaves the others');
      for (const b of [inbox, archive]) ctx.boxes.release(ctx.account, b);
      const before = [await counts('INBOX'), await counts('Sent')];
      await ctx.reopen();
      assert.deepEqual([await counts('INBOX'), await counts('Sent')], before, 'after a restart');
      if (await ctx.reopen({ loseIndex: true })) {
        assert.deepEqual([await counts('INBOX'), await counts('Sent')], before, 'after an index rebuild');
      }
    }));
}
