// The mail store contract, part: stable ids for JMAP (store/ids.ts; docs/architecture.md §7).
// Mailbox ids (MailboxListEntry.id) survive renames, restarts and the loss of the index; a
// mailbox deleted and created again gets a new one. Email ids (Mailbox.emailIds) are the same
// for every copy copyTo makes, survive a move, a restart and the loss of the index.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { deliver, type MakeStore, text, withStore } from './contract-support.ts';

/** RFC 8620 §1.2: 1-255 octets of URL-safe base64 characters. */
const ID = /^[A-Za-z0-9_-]{1,255}$/;

export function idsContract(make: MakeStore): void {
  test('mailbox ids: one per mailbox, kept by RENAME, restarts and a lost index; new after DELETE + CREATE', () =>
    withStore(make, async (ctx) => {
      await ctx.boxes.create(ctx.account, 'Projects.Old');
      const ids = async () => new Map((await ctx.boxes.list(ctx.account, { ids: true })).map((e) => [e.name, e.id]));
      const first = await ids();
      for (const name of ['INBOX', 'Sent', 'Drafts', 'Trash', 'Junk', 'Projects', 'Projects.Old']) {
        assert.match(first.get(name) ?? '', ID, name);
      }
      assert.equal(new Set(first.values()).size, first.size, 'distinct');
      await ctx.boxes.rename(ctx.account, 'Projects', 'Work');
      const renamed = await ids();
      assert.equal(renamed.get('Work'), first.get('Projects'));
      assert.equal(renamed.get('Work.Old'), first.get('Projects.Old'), 'children keep theirs');
      await ctx.boxes.create(ctx.account, 'Gone');
      const gone = (await ids()).get('Gone');
      await ctx.boxes.delete(ctx.account, 'Gone');
      await ctx.boxes.create(ctx.account, 'Gone');
      const again = await ids();
      assert.notEqual(again.get('Gone'), gone, 'a new mailbox under an old name is another mailbox');
      await ctx.reopen();
      assert.deepEqual(await ids(), again, 'after a restart');
      if (await ctx.reopen({ loseIndex: true })) assert.deepEqual(await ids(), again, 'after an index rebuild');
    }));

  test('email ids: the same for every copy and after a move; kept by restarts and a lost index', () =>
    withStore(make, async (ctx) => {
      for (const n of [1, 2, 3]) await deliver(ctx, text(n));
      const inbox = await ctx.open('INBOX');
      await inbox.sync();
      const ids = inbox.emailIds([1, 2, 3, 99]);
      assert.equal(ids.size, 3, 'a UID not in the mailbox has none');
      for (const id of ids.values()) assert.match(id, ID);
      assert.equal(new Set(ids.values()).size, 3, 'distinct');
      const sent = await ctx.open('Sent');
      await sent.sync();
      const copied = await inbox.copyTo([1, 2], sent);
      for (const [from, to] of copied) assert.equal(sent.emailIds([to]).get(to), ids.get(from), `copy of ${from}`);
      const trash = await ctx.open('Trash');
      await trash.sync();
      const [[, movedTo] = [0, 0]] = await inbox.copyTo([3], trash, { move: true });
      assert.equal(trash.emailIds([movedTo]).get(movedTo), ids.get(3), 'a move keeps the id');
      const [[, dup] = [0, 0]] = await inbox.copyTo([1], inbox);
      assert.notEqual(inbox.emailIds([dup]).get(dup), ids.get(1), 'a second copy in one mailbox is another Email');
      const snapshot = async () => {
        const out: string[] = [];
        for (const name of ['INBOX', 'Sent', 'Trash']) {
          const box = await ctx.open(name);
          const s = await box.sync();
          const e = box.emailIds(s.messages.map((m) => m.uid));
          out.push(...s.messages.map((m) => `${name} ${e.get(m.uid)} ${m.size}`));
          ctx.boxes.release(ctx.account, box);
        }
        return out.sort();
      };
      const before = await snapshot();
      assert.equal(before.length, 6);
      await ctx.reopen();
      assert.deepEqual(await snapshot(), before, 'after a restart');
      if (await ctx.reopen({ loseIndex: true })) assert.deepEqual(await snapshot(), before, 'after an index rebuild');
    }));
}
