// The mail store contract, part: the JMAP Mailbox sortOrder (RFC 8621 §2) kept by the store: 0
// until set, an UnsignedInt only, kept through renames, restarts and the loss of the index, a
// change journaled as a mailbox entry (Mailbox/changes reports it), gone with the mailbox.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { type MakeStore, rejectsWith, withStore } from './contract-support.ts';

export function sortOrderContract(make: MakeStore): void {
  test('sortOrder: 0 by default, set, journaled, kept by RENAME, restarts and a lost index', () =>
    withStore(make, async (ctx) => {
      const acc = ctx.account;
      await ctx.boxes.create(acc, 'Projects.Old');
      const orders = async () =>
        new Map((await ctx.boxes.list(acc, { ids: true })).filter((e) => e.id).map((e) => [e.name, e.sortOrder]));
      const ids = async () => new Map((await ctx.boxes.list(acc, { ids: true })).map((e) => [e.name, e.id]));
      for (const [name, order] of await orders()) assert.equal(order, 0, name);

      const s0 = await ctx.boxes.accountState(acc);
      await ctx.boxes.setSortOrder(acc, 'Projects', 7);
      await ctx.boxes.setSortOrder(acc, 'INBOX', 1);
      await ctx.boxes.setSortOrder(acc, 'Projects', 7); // no change: no entry
      const changes = await ctx.boxes.accountChangesSince(acc, s0, 100);
      const id = await ids();
      assert.deepEqual(
        changes?.map((c) => [c.kind, c.mailboxId]),
        [
          ['mailbox-sort-order', id.get('Projects')],
          ['mailbox-sort-order', id.get('INBOX')],
        ],
      );
      assert.equal(await ctx.boxes.accountState(acc), changes?.at(-1)?.aseq);

      await rejectsWith(ctx.boxes.setSortOrder(acc, 'Nope', 1), 'NOT_FOUND', 'no such mailbox');
      await rejectsWith(ctx.boxes.setSortOrder(acc, 'Sent', -1), 'INVALID', 'negative');
      await rejectsWith(ctx.boxes.setSortOrder(acc, 'Sent', 1.5), 'INVALID', 'not an integer');

      await ctx.boxes.rename(acc, 'Projects', 'Work');
      await ctx.boxes.setSortOrder(acc, 'Work.Old', 2 ** 40);
      const want = new Map([
        ['INBOX', 1],
        ['Work', 7],
        ['Work.Old', 2 ** 40],
      ]);
      const check = async (when: string) => {
        const now = await orders();
        for (const [name, order] of now) assert.equal(order, want.get(name) ?? 0, `${name} ${when}`);
      };
      await check('after a rename');
      await ctx.boxes.setSortOrder(acc, 'Work.Old', 0);
      want.delete('Work.Old');
      await ctx.reopen();
      await check('after a restart');
      if (await ctx.reopen({ loseIndex: true })) await check('after an index rebuild');

      await ctx.boxes.delete(acc, 'Work.Old');
      await ctx.boxes.delete(acc, 'Work');
      await ctx.boxes.create(acc, 'Work');
      assert.equal((await orders()).get('Work'), 0, 'a new mailbox under an old name starts at 0');
    }));
}
