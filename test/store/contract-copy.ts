// The mail store contract, part: COPY and MOVE through Mailbox.copyTo (store/mailboxes.ts):
// durable copies with the source's bytes, flags and internal date, the source→target UID map
// (RFC 4315 COPYUID), MOVE expunging the sources, events on both sides.

import assert from 'node:assert/strict';
import { test } from 'node:test';
import { append, contentOf, deliver, type MakeStore, Recorder, sorted, text, withStore } from './contract-support.ts';

export function copyContract(make: MakeStore): void {
  test('copyTo: the target gets the bytes, flags and internal date; the UID map is in order', () =>
    withStore(make, async (ctx) => {
      const inbox = await ctx.open('INBOX');
      const when = new Date('2024-05-06T07:08:09Z');
      const u1 = await append(ctx, inbox, text(1), ['\\Seen', '$Work'], when);
      const u2 = await append(ctx, inbox, text(2), []);
      const u3 = await append(ctx, inbox, text(3), ['\\Flagged']);
      const sent = await ctx.open('Sent');
      const rec = new Recorder();
      const before = await sent.sync({ subscribe: { listener: rec.listener } });
      const pairs = await inbox.copyTo([u3, u1, 999], sent);
      assert.equal(pairs.length, 2, 'a UID not in the mailbox is skipped');
      assert.deepEqual(
        pairs.map((p) => p[0]),
        [u3, u1],
      );
      const s = await sent.sync();
      assert.deepEqual(
        s.messages.map((m) => m.uid),
        pairs.map((p) => p[1]),
      );
      assert.ok((pairs[0]?.[1] ?? 0) >= before.uidNext);
      for (const [from, to] of pairs) {
        assert.deepEqual(await contentOf(sent, to), await contentOf(inbox, from));
        assert.deepEqual(sorted(sent.meta(to)?.flags ?? []), sorted(inbox.meta(from)?.flags ?? []));
        assert.equal(sent.meta(to)?.internalDate.getTime(), inbox.meta(from)?.internalDate.getTime());
        assert.equal(sent.meta(to)?.size, inbox.meta(from)?.size);
      }
      assert.equal(sent.meta(pairs[1]?.[1] ?? 0)?.internalDate.getTime(), when.getTime());
      assert.ok(s.keywords.includes('$Work'), 'the keyword is defined in the target');
      assert.deepEqual(
        rec.entries().map((e) => `${e.kind} ${e.uid}`),
        pairs.map((p) => `append ${p[1]}`),
      );
      // The source is unchanged; the copies are independent messages.
      assert.equal((await inbox.sync()).messages.length, 3);
      await sent.storeFlags([pairs[0]?.[1] ?? 0], 'add', ['\\Answered']);
      assert.ok(!inbox.meta(u3)?.flags.includes('\\Answered'));
      await inbox.expunge([u2, u3]);
      assert.ok(await contentOf(sent, pairs[0]?.[1] ?? 0), 'a copy outlives the source');
      // Copying again into the same mailbox, and within one mailbox: new messages each time.
      const again = await inbox.copyTo([u1], sent);
      const within = await inbox.copyTo([u1], inbox);
      assert.notEqual(again[0]?.[1], pairs[1]?.[1]);
      assert.deepEqual(await contentOf(sent, again[0]?.[1] ?? 0), await contentOf(inbox, u1));
      assert.deepEqual(await contentOf(inbox, within[0]?.[1] ?? 0), await contentOf(inbox, u1));
      assert.equal((await sent.sync()).messages.length, 3);
      await ctx.reopen();
      const sent2 = await ctx.open('Sent');
      assert.deepEqual(
        (await sent2.sync()).messages.map((m) => m.uid),
        [...pairs.map((p) => p[1]), again[0]?.[1]],
        'copies survive a restart with their UIDs',
      );
    }));

  test('copyTo with move: the sources are expunged (event with the origin), the targets have them', () =>
    withStore(make, async (ctx) => {
      for (const n of [1, 2, 3]) await deliver(ctx, text(n));
      const inbox = await ctx.open('INBOX');
      const src = new Recorder();
      await inbox.sync({ subscribe: { listener: src.listener } });
      await inbox.storeFlags([2], 'add', ['\\Seen']);
      const bytes = await contentOf(inbox, 2);
      const trash = await ctx.open('Trash');
      await trash.sync();
      const origin = {};
      const pairs = await inbox.copyTo([2, 3], trash, { move: true, origin });
      assert.deepEqual(
        pairs.map((p) => p[0]),
        [2, 3],
      );
      assert.deepEqual(
        (await inbox.sync()).messages.map((m) => m.uid),
        [1],
      );
      const expunges = src.changes.filter((c) => c.change.kind === 'expunge');
      assert.equal(expunges.length, 1);
      assert.equal(expunges[0]?.origin, origin);
      assert.deepEqual(expunges[0]?.change.kind === 'expunge' && expunges[0].change.uids, [2, 3]);
      const t = await trash.sync();
      assert.deepEqual(
        t.messages.map((m) => m.uid),
        pairs.map((p) => p[1]),
      );
      assert.deepEqual(await contentOf(trash, pairs[0]?.[1] ?? 0), bytes);
      assert.deepEqual(trash.meta(pairs[0]?.[1] ?? 0)?.flags, ['\\Seen']);
      // A session that has not acknowledged the expunge can still read the moved message.
      assert.deepEqual(await contentOf(inbox, 2), bytes);
      inbox.acknowledgeExpunges(src.listener, [2, 3]);
      assert.deepEqual(
        await contentOf(trash, pairs[0]?.[1] ?? 0),
        bytes,
        'acknowledging does not remove the moved file',
      );
      // Back again: a move in the other direction keeps working.
      const back = await trash.copyTo([pairs[0]?.[1] ?? 0], inbox, { move: true });
      assert.equal(back.length, 1);
      assert.deepEqual(await contentOf(inbox, back[0]?.[1] ?? 0), bytes);
      assert.equal((await trash.sync()).messages.length, 1);
    }));

  test('concurrent copies in opposite directions finish (no deadlock) and lose nothing', () =>
    withStore(make, async (ctx) => {
      const a = await ctx.open('INBOX');
      const b = await ctx.open('Drafts');
      for (const n of [1, 2, 3, 4]) {
        await append(ctx, a, text(`a${n}`));
        await append(ctx, b, text(`b${n}`));
      }
      const runs: Promise<unknown>[] = [];
      for (let i = 0; i < 10; i++) {
        runs.push(a.copyTo([1, 2], b), b.copyTo([3, 4], a));
      }
      await Promise.all(runs);
      assert.equal((await a.sync()).messages.length, 4 + 20);
      assert.equal((await b.sync()).messages.length, 4 + 20);
    }));
}
