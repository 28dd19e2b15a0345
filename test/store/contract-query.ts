// The mail store contract, part: account-wide listing and lookups by email id (Mailboxes.
// accountMessages and locate; docs/architecture.md §7), what JMAP Email/query and Email/get
// are built on. An email with copies in several mailboxes is one email.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { append, type MakeStore, sorted, text, withStore } from './contract-support.ts';

export function queryContract(make: MakeStore): void {
  test('accountMessages: one entry per email, by date or size, both ways, paged, per mailbox', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      const inbox = await ctx.open('INBOX');
      const sent = await ctx.open('Sent');
      await Promise.all([inbox.sync(), sent.sync()]);
      const day = (d: number) => new Date(Date.UTC(2024, 0, d));
      // Dates 1..5, sizes in another order (the body length).
      const bodies = ['xxxxx', 'x', 'xxxx', 'xx', 'xxx'];
      const uids: number[] = [];
      for (const [i, b] of bodies.entries()) {
        const box = i < 3 ? inbox : sent;
        uids.push(await append(ctx, box, `${text(i)}${b}`, [], day(i + 1)));
      }
      const idOf = (i: number) =>
        (i < 3 ? inbox : sent)
          .emailIds([uids[i] ?? 0])
          .values()
          .next().value as string;
      const id = bodies.map((_, i) => idOf(i));
      // A copy of email 0 into Sent: still one email for the account.
      await inbox.copyTo([uids[0] ?? 0], sent);
      const q = (sort: 'receivedAt' | 'size', descending: boolean, more: object = {}) =>
        ctx.boxes.accountMessages(acc, { sort, descending, position: 0, limit: 100, ...more });
      assert.deepEqual(await q('receivedAt', true), { ids: [id[4], id[3], id[2], id[1], id[0]], total: 5 });
      assert.deepEqual((await q('receivedAt', false)).ids, [id[0], id[1], id[2], id[3], id[4]]);
      assert.deepEqual((await q('size', false)).ids, [id[1], id[3], id[4], id[2], id[0]]);
      assert.deepEqual((await q('size', true)).ids, [id[0], id[2], id[4], id[3], id[1]]);
      assert.deepEqual(await q('receivedAt', true, { position: 1, limit: 2 }), { ids: [id[3], id[2]], total: 5 });
      assert.deepEqual(await q('receivedAt', true, { position: 9 }), { ids: [], total: 5 });
      const ids = new Map((await ctx.boxes.list(acc, { ids: true })).map((e) => [e.name, e.id]));
      assert.deepEqual(await q('receivedAt', true, { mailboxId: ids.get('Sent') }), {
        ids: [id[4], id[3], id[0]],
        total: 3,
      });
      assert.deepEqual(await q('receivedAt', false, { mailboxId: 'Fnosuchmailbox00' }), { ids: [], total: 0 });
      // Expunging one copy keeps the email; expunging the last removes it.
      await inbox.expunge([uids[0] ?? 0]);
      assert.equal((await q('receivedAt', true)).total, 5);
      await inbox.expunge([uids[1] ?? 0]);
      assert.deepEqual((await q('receivedAt', true)).ids, [id[4], id[3], id[2], id[0]]);
      // Deleting a mailbox removes the emails only it had.
      await ctx.boxes.delete(acc, 'Sent');
      assert.deepEqual(await q('receivedAt', true), { ids: [id[2]], total: 1 });
      await ctx.reopen();
      assert.deepEqual(await q('receivedAt', true), { ids: [id[2]], total: 1 }, 'after a restart');
    }));

  test('locate: every copy with its mailbox, UID and flags, the size and internal date', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      const inbox = await ctx.open('INBOX');
      const drafts = await ctx.open('Drafts');
      await Promise.all([inbox.sync(), drafts.sync()]);
      const when = new Date('2024-02-03T04:05:06Z');
      const uid = await append(ctx, inbox, text(1), ['\\Seen', '$Work'], when);
      const other = await append(ctx, inbox, text(2), []);
      const id = inbox.emailIds([uid]).get(uid) as string;
      const [[, copy] = [0, 0]] = await inbox.copyTo([uid], drafts);
      await drafts.storeFlags([copy], 'add', ['\\Flagged']);
      const ids = new Map((await ctx.boxes.list(acc, { ids: true })).map((e) => [e.name, e.id]));
      const [found, ...rest] = await ctx.boxes.locate(acc, [id, 'Mnosuchemail000000000000']);
      assert.deepEqual(rest, [], 'an unknown id is left out');
      assert.ok(found);
      assert.equal(found.emailId, id);
      assert.equal(found.size, inbox.meta(uid)?.size);
      assert.equal(found.internalDate.getTime(), when.getTime());
      const copies = found.copies.map((c) => ({ ...c, flags: sorted(c.flags) }));
      assert.deepEqual(
        copies.sort((a, b) => a.mailbox.localeCompare(b.mailbox)),
        [
          {
            mailboxId: ids.get('Drafts'),
            mailbox: 'Drafts',
            uid: copy,
            flags: sorted(['$Work', '\\Flagged', '\\Seen']),
          },
          { mailboxId: ids.get('INBOX'), mailbox: 'INBOX', uid, flags: sorted(['$Work', '\\Seen']) },
        ],
      );
      const trash = await ctx.open('Trash');
      await trash.sync();
      await inbox.copyTo([uid], trash, { move: true });
      const after = await ctx.boxes.locate(acc, [id, inbox.emailIds([other]).get(other) as string]);
      assert.deepEqual(after[0]?.copies.map((c) => c.mailbox).sort(), ['Drafts', 'Trash']);
      assert.deepEqual(
        after[1]?.copies.map((c) => [c.mailbox, c.uid]),
        [['INBOX', other]],
      );
      await drafts.expunge([copy]);
      await trash.expunge([(await trash.sync()).messages[0]?.uid ?? 0]);
      assert.deepEqual(await ctx.boxes.locate(acc, [id]), [], 'gone with its last copy');
    }));
}
